"""Synthetic tables: vaekit's TabularVAE against SDV's TVAE, CTGAN and GaussianCopula at their defaults.

    python benchmarks/tabular_benchmark.py [--datasets adult german telco] [--seeds 0 1 2]
        [--methods vaekit tvae ctgan gaussian-copula] [--out docs/tabular-benchmark]

On UCI Adult (adult.data in, adult.test as the hold-out), German credit and Telco churn (a fixed, stratified
20% hold-out) from ../shared/data/tabular. Each (data set, method, seed) fits and samples in its own process,
so its peak memory is its own (the growth of the peak resident set over fitting and sampling); its result is
kept in OUT-cells/ (the synthetic rows and the timings) and a later run reuses it, so the table can be built up
over several sittings on the same machine; scores are recomputed from the kept rows whenever the scoring code
is newer. Every method is scored by vaekit.tasks.synthesis.evaluate: sdmetrics' quality score against the training
rows, the F1 and AUC on the real hold-out of scikit-learn's HistGradientBoostingClassifier trained on the
synthetic rows (next to the same classifier trained on the real rows), and sdmetrics' DCRBaselineProtection.
Writes OUT.md, OUT.json and OUT.png. SDV is in the `bench` extra: pip install -e .[bench].
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from vaekit.io import atomic_write, atomic_write_json  # noqa: E402 (after the path to this checkout)
DATA = Path(os.environ.get("VAEKIT_DATA", ROOT.parent / "shared" / "data")) / "tabular"

ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
                 "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
                 "income"]
GERMAN_COLUMNS = ["status", "duration", "credit_history", "purpose", "credit_amount", "savings", "employment",
                  "installment_rate", "personal_status", "other_debtors", "residence_since", "property", "age",
                  "other_installment_plans", "housing", "existing_credits", "job", "people_liable", "telephone",
                  "foreign_worker", "class"]
# data set -> (target column, its positive class)
TARGETS = {"adult": ("income", ">50K"), "german": ("class", "bad"), "telco": ("churn", "Yes")}
METHODS = ("vaekit", "tvae", "ctgan", "gaussian-copula")


def load(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, real hold-out) of a data set."""
    if name == "adult":
        read = dict(names=ADULT_COLUMNS, skipinitialspace=True, na_values=["?"], comment="|")
        train = pd.read_csv(DATA / "adult" / "adult.data", **read)
        test = pd.read_csv(DATA / "adult" / "adult.test", **read)
        test["income"] = test["income"].str.rstrip(".")
        return train, test
    if name == "german":
        df = pd.read_csv(DATA / "german-credit" / "german.data", sep=" ", names=GERMAN_COLUMNS)
        df["class"] = df["class"].map({1: "good", 2: "bad"})
    elif name == "telco":
        df = pd.read_csv(DATA / "telco-churn" / "telco_churn_wa.csv")
    else:
        raise SystemExit(f"unknown data set {name}; choose from {sorted(TARGETS)}")
    from sklearn.model_selection import train_test_split

    target = TARGETS[name][0]
    train, test = train_test_split(df, test_size=0.2, random_state=0, stratify=df[target])
    return train.reset_index(drop=True), test.reset_index(drop=True)


def fit_and_sample(method: str, train: pd.DataFrame, seed: int, n: int):
    """(synthetic rows, fit seconds, sample seconds) of one method at its defaults."""
    if method == "vaekit":
        from vaekit import TabularVAE

        model = TabularVAE(random_state=seed)
        t0 = time.perf_counter()
        model.fit(train)
        t1 = time.perf_counter()
        synth = model.sample(n, random_state=seed)
        return synth, t1 - t0, time.perf_counter() - t1
    import torch
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

    np.random.seed(seed)
    torch.manual_seed(seed)
    metadata = Metadata.detect_from_dataframes({"table": train})
    cls = {"tvae": TVAESynthesizer, "ctgan": CTGANSynthesizer, "gaussian-copula": GaussianCopulaSynthesizer}[method]
    synth_model = cls(metadata)
    t0 = time.perf_counter()
    synth_model.fit({"table": train})  # SDV 2 takes {table name: DataFrame}, even for one table
    t1 = time.perf_counter()
    synth = synth_model.sample(n)
    synth = synth["table"] if isinstance(synth, dict) else synth
    return synth, t1 - t0, time.perf_counter() - t1


def import_libraries(method: str) -> None:
    """Import what a method runs on (torch, pandas, its own package), so that its peak memory is that of
    fitting and sampling, not of loading code."""
    if method == "vaekit":
        import sklearn.mixture  # noqa: F401 (what TabularVAE imports when it fits)

        from vaekit import TabularVAE  # noqa: F401
    else:
        import sdv.single_table  # noqa: F401


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak_rss() -> int:
    """Reset this process's peak resident memory (Linux: VmHWM) to its current one, and return that. The
    peak of getrusage() will not do: a child started by a large process starts with its parent's peak."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def peak_rss() -> int:
    return _status_bytes("VmHWM")


def run_cell(name: str, method: str, seed: int, cell: Path) -> None:
    """Fit and sample one (data set, method, seed) in this process: the synthetic rows go to CELL.pkl, the
    timings to CELL.fit.json."""
    train, _ = load(name)
    import_libraries(method)
    before = reset_peak_rss()
    synth, fit_s, sample_s = fit_and_sample(method, train, seed, len(train))
    peak_mb = (peak_rss() - before) / 2**20
    rows = synth[list(train.columns)]
    atomic_write(cell.with_suffix(".pkl"), rows.to_pickle)  # this script's own file, read back by score_cell
    atomic_write_json(cell.with_suffix(".fit.json"), {"dataset": name, "method": method, "seed": seed,
                                                      "fit_s": fit_s, "sample_s": sample_s, "peak_mb": peak_mb,
                                                      "rows": len(train)})


def score_cell(name: str, cell: Path) -> dict:
    """The scores of a cell's synthetic rows (kept in CELL.score.json; recomputed when the scoring changes)."""
    from vaekit.tasks.synthesis.evaluate import efficacy, fidelity, privacy

    train, test = load(name)
    target, positive = TARGETS[name]
    synth = pd.read_pickle(cell.with_suffix(".pkl"))
    result = json.loads(cell.with_suffix(".fit.json").read_text())
    fid = fidelity(train, synth)
    result.update({k: v for k, v in fid.items() if k != "per_column"})
    result.update(efficacy(synth, test, target, positive, result["seed"]))
    result.update({f"real_{k}": v for k, v in efficacy(train, test, target, positive, result["seed"]).items()})
    result.update(privacy(train, test, synth, seed=result["seed"]))
    atomic_write_json(cell.with_suffix(".score.json"), result)
    return result


COLUMNS = [("fit_s", "fit s", "{:.1f}"), ("sample_s", "sample s", "{:.2f}"), ("peak_mb", "peak MB", "{:.0f}"),
           ("quality", "quality", "{:.3f}"), ("column_shapes", "shapes", "{:.3f}"),
           ("column_pair_trends", "pairs", "{:.3f}"), ("f1", "F1", "{:.3f}"), ("f1_gap", "F1 gap", "{:+.3f}"),
           ("auc", "AUC", "{:.3f}"), ("dcr_baseline", "DCR", "{:.3f}")]


def summarise(rows: list[dict], datasets, methods) -> tuple[str, dict]:
    """A Markdown table of means (± std over seeds) per data set and method, and the same as JSON."""
    summary, lines = {}, []
    for name in datasets:
        lines += [f"\n### {name}\n", "| method | seeds | " + " | ".join(c[1] for c in COLUMNS) + " |",
                  "|---|---|" + "---|" * len(COLUMNS)]
        for method in methods:
            cells = [r for r in rows if r["dataset"] == name and r["method"] == method]
            if not cells:
                continue
            for r in cells:
                r["f1_gap"] = r["f1"] - r["real_f1"]
            stats = {k: (float(np.mean([r[k] for r in cells])), float(np.std([r[k] for r in cells])))
                     for k, _, _ in COLUMNS}
            summary.setdefault(name, {})[method] = {"seeds": [r["seed"] for r in cells], **stats}
            shown = [fmt.format(m) + (f" ± {fmt.format(s).lstrip('+')}" if len(cells) > 1 and k in
                                      ("quality", "f1", "fit_s") else "") for (k, _, fmt), (m, s) in
                     zip(COLUMNS, stats.values())]
            lines.append(f"| {method} | {len(cells)} | " + " | ".join(shown) + " |")
        real = [r for r in rows if r["dataset"] == name]
        if real:
            lines.append(f"\nReal training rows: F1 {real[0]['real_f1']:.3f}, AUC {real[0]['real_auc']:.3f}.")
        tvae = summary.get(name, {}).get("tvae")
        ours = summary.get(name, {}).get("vaekit")
        if tvae and ours:
            lines.append(f"vaekit fits {tvae['fit_s'][0] / ours['fit_s'][0]:.1f}x faster than SDV TVAE.")
    return "\n".join(lines), summary


def plot(summary: dict, cells: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("quality", "quality score"), ("f1", "ML-efficacy F1"), ("dcr_baseline", "DCR baseline protection"),
               ("fit_s", "fit time (s, log)")]
    names = list(summary)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6))
    for ax, (key, title) in zip(axes, metrics):
        methods = [m for m in METHODS if any(m in summary[n] for n in names)]
        width = 0.8 / len(methods)
        for i, method in enumerate(methods):
            vals = [summary[n].get(method, {}).get(key, (np.nan, 0)) for n in names]
            ax.bar(np.arange(len(names)) + i * width, [v[0] for v in vals], width, yerr=[v[1] for v in vals],
                   label=method)
        ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
        if key == "f1":  # the classifier trained on the real rows
            real = [np.mean([r["real_f1"] for r in cells if r["dataset"] == n]) for n in names]
            ax.scatter(np.arange(len(names)) + 0.4 - width / 2, real, marker="_", s=900, color="black",
                       label="real rows", zorder=3)
        ax.set_title(title)
        if key == "fit_s":
            ax.set_yscale("log")
        elif key != "f1":
            ax.set_ylim(0.5 if key == "quality" else 0, 1)
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate_file() -> str:
    from vaekit.tasks.synthesis import evaluate

    return evaluate.__file__


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--out", default=str(ROOT / "docs" / "tabular-benchmark"))
    p.add_argument("--rerun", action="store_true", help="fit again the cells that already have a result")
    p.add_argument("--no-fit", action="store_true", help="fit nothing: summarise the cells that have a result")
    p.add_argument("--cell", nargs=3, metavar=("DATASET", "METHOD", "SEED"), help=argparse.SUPPRESS)
    args = p.parse_args()
    out = Path(args.out)
    cells = out.parent / f"{out.name}-cells"
    if args.cell:
        name, method, seed = args.cell
        run_cell(name, method, int(seed), cells / f"{name}-{method}-{seed}")
        return
    rows = []
    for name in args.datasets:
        for seed in args.seeds:
            for method in args.methods:
                cell = cells / f"{name}-{method}-{seed}"
                if args.no_fit and not cell.with_suffix(".fit.json").is_file():
                    continue
                if args.rerun or not cell.with_suffix(".fit.json").is_file():
                    print(f"{name} {method} seed {seed} ...", flush=True)
                    subprocess.run([sys.executable, __file__, "--out", str(out), "--cell", name, method, str(seed)],
                                   check=True)
                scored = cell.with_suffix(".score.json")
                fresh = scored.is_file() and scored.stat().st_mtime > max(
                    cell.with_suffix(".fit.json").stat().st_mtime, Path(evaluate_file()).stat().st_mtime)
                rows.append(json.loads(scored.read_text()) if fresh else score_cell(name, cell))
    text, summary = summarise(rows, args.datasets, args.methods)
    print(text)
    out.with_suffix(".json").write_text(json.dumps({"summary": summary, "cells": rows}, indent=1))
    plot(summary, rows, out.with_suffix(".png"))
    out.with_suffix(".md").write_text(
        "# Synthetic tables: vaekit against SDV\n\nWritten by `python benchmarks/tabular_benchmark.py` on "
        f"{os.cpu_count()} CPU cores, {os.environ.get('OMP_NUM_THREADS', 'all')} thread(s) per method (means over "
        "seeds, ± their standard deviation). F1 gap: F1 of the classifier "
        "trained on synthetic rows minus F1 of the one trained on the real rows, both tested on the real "
        "hold-out (macro F1). DCR: sdmetrics' DCRBaselineProtection. peak MB: the peak resident memory of fitting and "
        f"sampling, above what the process held before them (the libraries imported, the data read).\n{text}\n\n"
        f"![benchmark]({out.with_suffix('.png').name})\n")


if __name__ == "__main__":
    main()
