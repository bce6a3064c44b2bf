"""The synthetic-data report: REPORT/report.md, metrics.json and the pictures it shows.

- columns.png: each column's real and synthetic distribution (histograms on shared bins; category shares);
- pairs.png: the pairwise association matrices of the real and the synthetic rows side by side (Pearson's r
  between numeric columns, Cramér's V, from scipy, between the rest, numbers cut into deciles), and their
  difference;
- the scores of vaekit.tasks.synthesis.evaluate: quality and diagnostic (sdmetrics), machine-learning efficacy
  (train on synthetic, test on real, next to train on real) and privacy (distance to the closest record).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import VaekitError
from ...io import atomic_write, atomic_write_json
from ...plots import _pyplot, _save_figure
from . import evaluate

MAX_BARS = 12  # categories shown per column (the most frequent in the real rows)


def write_report(real, synthetic, out, train=None, target: str | None = None, positive=None,
                 seed: int = 0) -> dict:
    """Compare synthetic rows with real ones and write the report into out. real: the rows the synthetic ones
    are measured against (a hold-out); train: the rows the model was fitted on (for the train-on-real baseline
    and the privacy scores; skipped without them); target (and its positive class, default the rarer one):
    the column a classifier predicts for the efficacy scores (skipped without one)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lacking = [c for c in real.columns if c not in synthetic.columns]
    if lacking:
        raise VaekitError(f"the synthetic table lacks column(s) {lacking} of the real one; sample it from a model "
                          f"fitted on a table with these columns")
    synthetic = synthetic[list(real.columns)]
    metrics = {"rows": {"real": len(real), "synthetic": len(synthetic)}}
    fid = evaluate.fidelity(real, synthetic)
    metrics["fidelity"] = fid
    if target is not None:
        if target not in real.columns:
            raise VaekitError(f"--target '{target}' is not a column; the columns are {list(real.columns)}")
        if positive is None:
            counts = real[target].astype(str).value_counts()
            positive = counts.index[-1]
        eff = {"target": target, "positive": str(positive),
               "synthetic": evaluate.efficacy(synthetic, real, target, positive, seed)}
        if train is not None:
            eff["real"] = evaluate.efficacy(train[list(real.columns)], real, target, positive, seed)
        metrics["efficacy"] = eff
    if train is not None:
        metrics["privacy"] = evaluate.privacy(train[list(real.columns)], real, synthetic, seed=seed)
    column_plot(real, synthetic, out / "columns.png", fid["per_column"])
    pair_plot(real, synthetic, out / "pairs.png")
    atomic_write_json(out / "metrics.json", metrics)
    atomic_write(out / "report.md", lambda tmp: Path(tmp).write_text(_markdown(metrics)))
    return metrics


def _markdown(m: dict) -> str:
    f = m["fidelity"]
    lines = ["# Synthetic data report", "",
             f"{m['rows']['synthetic']} synthetic rows against {m['rows']['real']} real ones.", "",
             "## Fidelity (sdmetrics)", "", "| score | value |", "|---|---|",
             f"| quality | {f['quality']:.3f} |", f"| column shapes | {f['column_shapes']:.3f} |",
             f"| column pair trends | {f['column_pair_trends']:.3f} |", f"| diagnostic | {f['diagnostic']:.3f} |",
             f"| data validity | {f['validity']:.3f} |", f"| data structure | {f['structure']:.3f} |", "",
             "Column shapes, worst first: " + ", ".join(
                 f"{c} {s:.3f}" for c, s in sorted(f["per_column"].items(), key=lambda kv: kv[1])[:8]) + ".", "",
             "![columns](columns.png)", "", "![pairs](pairs.png)", ""]
    if "efficacy" in m:
        e = m["efficacy"]
        lines += ["## Machine-learning efficacy", "",
                  f"A HistGradientBoostingClassifier predicts `{e['target']}` (positive: `{e['positive']}`) on the "
                  f"real rows; macro F1 and AUC.", "", "| trained on | F1 | AUC |", "|---|---|---|",
                  f"| synthetic rows | {e['synthetic']['f1']:.3f} | {e['synthetic']['auc']:.3f} |"]
        if "real" in e:
            lines.append(f"| real training rows | {e['real']['f1']:.3f} | {e['real']['auc']:.3f} |")
        lines.append("")
    if "privacy" in m:
        p = m["privacy"]
        lines += ["## Privacy (sdmetrics, distance to the closest real record)", "", "| score | value |", "|---|---|",
                  f"| DCR baseline protection | {p['dcr_baseline']:.3f} |",
                  f"| DCR overfitting protection | {p['dcr_overfitting']:.3f} |",
                  f"| median DCR, synthetic rows | {p['median_dcr_synthetic']:.4f} |",
                  f"| median DCR, random rows | {p['median_dcr_random']:.4f} |",
                  f"| share closer to a training row than to a hold-out row | "
                  f"{p['share_closer_to_training']:.3f} |", ""]
    return "\n".join(lines)


def _is_numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype) \
        and series.nunique() > MAX_BARS


def column_plot(real, synthetic, path, scores: dict | None = None) -> Path:
    plt = _pyplot()
    cols = list(real.columns)
    ncol = min(4, len(cols))
    nrow = -(-len(cols) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.6 * nrow), squeeze=False)
    for ax, name in zip(axes.flat, cols):
        r, s = real[name], synthetic[name]
        if _is_numeric(r):
            rv, sv = r.dropna().to_numpy(float), s.dropna().to_numpy(float)
            lo, hi = np.quantile(rv, [0.005, 0.995])
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 31)
            ax.hist(np.clip(rv, lo, hi), bins, density=True, alpha=0.55, label="real")
            ax.hist(np.clip(sv, lo, hi), bins, density=True, alpha=0.55, label="synthetic")
        else:
            shares_r = _shown(r).value_counts(normalize=True)
            shares_s = _shown(s).value_counts(normalize=True)
            top = list(shares_r.index[:MAX_BARS])
            x = np.arange(len(top))
            ax.bar(x - 0.2, [shares_r.get(c, 0) for c in top], 0.4, label="real")
            ax.bar(x + 0.2, [shares_s.get(c, 0) for c in top], 0.4, label="synthetic")
            ax.set_xticks(x, [c[:10] for c in top], rotation=60, fontsize=6)
        score = f" ({scores[name]:.2f})" if scores and name in scores else ""
        ax.set_title(f"{name}{score}", fontsize=9)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("real and synthetic distributions (sdmetrics column shape score)", fontsize=10)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return Path(path)


def _shown(series):
    """Values as the bars label them: text, with missing values as '(missing)'."""
    return series.astype(object).where(series.notna(), "(missing)").astype(str)


def associations(df) -> np.ndarray:
    """The columns' pairwise association: Pearson's r between numeric columns, in [-1, 1]; Cramér's V (scipy)
    between the others, in [0, 1], numbers cut into deciles. Missing values count as a value of their own."""
    import pandas as pd
    from scipy.stats.contingency import association

    cols = list(df.columns)
    codes = {c: _codes(df[c]) for c in cols}
    out = np.eye(len(cols))
    for i, a in enumerate(cols):
        for j in range(i + 1, len(cols)):
            b = cols[j]
            if _is_numeric(df[a]) and _is_numeric(df[b]):
                v = df[a].astype(float).corr(df[b].astype(float))
            else:
                table = pd.crosstab(codes[a], codes[b]).to_numpy()
                v = association(table, method="cramer") if min(table.shape) > 1 else 0.0
            out[i, j] = out[j, i] = 0.0 if pd.isna(v) else v
    return out


def _codes(series):
    import pandas as pd

    if _is_numeric(series):
        return pd.qcut(series.rank(method="first"), 10, labels=False).fillna(-1)
    return series.astype(str)


def pair_plot(real, synthetic, path) -> Path:
    plt = _pyplot()
    cols = list(real.columns)
    a_real, a_synth = associations(real), associations(synthetic[cols])
    size = max(5.0, 0.32 * len(cols) + 2)
    fig, axes = plt.subplots(1, 3, figsize=(3 * size, size))
    panels = [(a_real, "real", -1, 1, "coolwarm"), (a_synth, "synthetic", -1, 1, "coolwarm"),
              (np.abs(a_real - a_synth), "|real - synthetic| (scale to 0.3)", 0, 0.3, "Reds")]
    for ax, (m, title, lo, hi, cmap) in zip(axes, panels):
        im = ax.imshow(m, vmin=lo, vmax=hi, cmap=cmap)
        ax.set_title(title)
        ax.set_xticks(range(len(cols)), [c[:14] for c in cols], rotation=90, fontsize=6)
        ax.set_yticks(range(len(cols)), [c[:14] for c in cols], fontsize=6)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle("pairwise association: Pearson's r (numeric pairs), Cramér's V (the rest)")
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return Path(path)
