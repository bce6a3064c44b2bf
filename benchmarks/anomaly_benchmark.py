"""Anomaly detection: vaekit's default detector against the detectors people use, two protocols, one run.

- one-class MNIST / Fashion-MNIST: train on one class's training images, score the whole test split
  (every other class is anomalous); AUROC per class and the mean.
- ADBench "classical" tables (../shared/data/anomaly/adbench): unsupervised, as ADBench runs it: fit on
  a stratified 70% of the rows without labels (anomalies included), score the other 30%; AUROC and AUPRC.
  Each seed draws its own split (ADBench's trials do too), and every method runs on every split.

Methods: vaekit.tasks.anomaly.AnomalyDetector() with its defaults (raw pixels / raw table; it scales tables
itself); scikit-learn's IsolationForest, OneClassSVM and LocalOutlierFactor(novelty=True) on standardised
features; PyOD's AutoEncoder and VAE with their defaults (they standardise internally). Several seeds
for the seeded methods. Results are cached in runs/anomaly/results.jsonl (rerunning resumes) and
written to docs/anomaly.md with a bar chart; a run of one protocol writes docs/anomaly-<protocol>.md and
its chart instead, so that it never overwrites the other protocol's tables.

    python benchmarks/anomaly_benchmark.py [--seeds 0 1 2] [--protocols one-class adbench] [--quick]
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import train_test_split
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from vaekit import plots
from vaekit.tasks.anomaly import AnomalyDetector, auroc_auprc
from vaekit.config import DataConfig
from vaekit.data import load_data

ROOT = Path(__file__).resolve().parents[1]
SEEDED = {"vaekit", "IsolationForest", "PyOD AutoEncoder", "PyOD VAE"}


def make(method: str, seed: int):
    """(fit(X) , score(X) higher = more anomalous) for a method; X: raw (images uint8 or a float table)."""
    if method == "vaekit":
        det = AnomalyDetector(random_state=seed)
        return det.fit, det.decision_function
    flat = lambda x: (x.reshape(len(x), -1).astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0))
    if method.startswith("PyOD"):
        from pyod.models.auto_encoder import AutoEncoder
        from pyod.models.vae import VAE

        model = (AutoEncoder if method == "PyOD AutoEncoder" else VAE)(random_state=seed, verbose=0)
        return (lambda x: model.fit(flat(x))), (lambda x: model.decision_function(flat(x)))
    est = {"IsolationForest": lambda: IsolationForest(random_state=seed),
           "OneClassSVM": lambda: OneClassSVM(gamma="scale"),
           "LOF": lambda: LocalOutlierFactor(novelty=True)}[method]()
    pipe = make_pipeline(StandardScaler(), est)
    return (lambda x: pipe.fit(flat(x))), (lambda x: -pipe.score_samples(flat(x)))


def one_class_tasks(data_dir: str, datasets, quick: bool):
    for name in datasets:
        data = load_data(DataConfig(name, data_dir=data_dir, val_fraction=0))
        for c in range(3 if quick else 10):
            train = data.train.x[data.train.y == c]
            yield f"{name}:{c}", name, train, data.test.x, (data.test.y != c).astype(int)


def adbench_tasks(data_dir: str, quick: bool, splits: list[int]):
    """(split, task, group, train, test, test labels) for each table and each split's seed; each file read once."""
    files = sorted((Path(data_dir) / "anomaly" / "adbench").glob("*.npz"), key=lambda p: int(p.stem.split("_")[0]))
    for path in files[:4] if quick else files:
        with np.load(path) as z:
            x, y = z["X"].astype(np.float64), z["y"].astype(int)
        for split in splits:
            xtr, xte, _, yte = train_test_split(x, y, test_size=0.3, stratify=y, random_state=split)
            yield split, path.stem.split("_", 1)[1], "adbench", xtr, xte, yte


def run(args) -> list[dict]:
    cache = Path(args.runs) / "results.jsonl"
    cache.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if cache.is_file():
        for line in cache.read_text().splitlines():
            r = json.loads(line)
            done[(r["protocol"], r["task"], r["method"], r["seed"], r.get("split"))] = r
    tasks = []  # (protocol, the split's seed or None where there is one split, task...)
    if "one-class" in args.protocols:
        tasks += [("one-class", None, *t) for t in one_class_tasks(args.data_dir, args.datasets, args.quick)]
    if "adbench" in args.protocols:
        tasks += [("adbench", *t) for t in adbench_tasks(args.data_dir, args.quick, args.seeds)]
    rows = []
    for protocol, split, task, group, xtr, xte, yte in tasks:
        for method in args.methods:
            seeds = [split] if split is not None else (args.seeds if method in SEEDED else args.seeds[:1])
            for seed in seeds:
                key = (protocol, task, method, seed, split)
                if key not in done and args.from_cache:
                    continue
                if key not in done:
                    fit, score = make(method, seed)
                    t0 = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fit(xtr)
                        s = np.nan_to_num(np.asarray(score(xte), dtype=np.float64), nan=np.inf)
                    r = {"protocol": protocol, "task": task, "group": group, "method": method, "seed": seed,
                         "split": split, **auroc_auprc(yte, s), "seconds": round(time.perf_counter() - t0, 1)}
                    with open(cache, "a") as f:
                        f.write(json.dumps(r) + "\n")
                    done[key] = r
                    print(json.dumps(r), flush=True)
                rows.append(done[key])
    return rows


def summarise(rows: list[dict], methods: list[str], chart: Path) -> str:
    """Markdown: per-task AUROC (mean over seeds) per method, the mean per group, and the bar chart."""
    by = {}
    for r in rows:
        by.setdefault((r["group"], r["task"], r["method"]), []).append(r)
    groups = sorted({r["group"] for r in rows}, key=lambda g: (g == "adbench", g))
    lines, bars = [], []
    for group in groups:
        tasks = sorted({t for (g, t, _) in by if g == group}, key=lambda t: (len(t), t))
        metrics = ["auroc"] if group != "adbench" else ["auroc", "auprc"]
        for metric in metrics:
            seeds = sorted({r["seed"] for r in rows if r["group"] == group})
            lines += [f"### {group}: {metric.upper()} (mean over seeds {', '.join(map(str, seeds))})", "",
                      "| task | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
            means = {m: [] for m in methods}
            for t in tasks:
                cells = []
                for m in methods:
                    vals = [r[metric] for r in by.get((group, t, m), [])]
                    v = float(np.mean(vals)) if vals else float("nan")
                    means[m].append(v)
                    cells.append(f"{100 * v:.1f}")
                lines.append(f"| {t} | " + " | ".join(cells) + " |")
            seed_means = {m: _seed_means(rows, group, m, metric) for m in methods}
            lines.append("| **mean** | " + " | ".join(
                f"**{100 * np.nanmean(means[m]):.1f}** ± {100 * np.std(seed_means[m]):.1f}" for m in methods) + " |")
            lines.append("")
            if metric == "auroc":
                bars.append({"group": group, **{m: 100 * np.nanmean(means[m]) for m in methods}})
    _bar_chart(bars, methods, chart)
    return "\n".join(lines)


def _seed_means(rows, group, method, metric) -> list[float]:
    """The mean over tasks for each seed (its spread is the ± in the table)."""
    seeds = sorted({r["seed"] for r in rows if r["group"] == group and r["method"] == method})
    return [float(np.mean([r[metric] for r in rows if r["group"] == group and r["method"] == method and r["seed"] == s]))
            for s in seeds]


def _bar_chart(bars: list[dict], methods: list[str], path: Path) -> None:
    rows = [{"method": m, **{b["group"]: b[m] for b in bars}} for m in methods]
    plots.metric_bars(rows, [b["group"] for b in bars], path, title="mean AUROC (%)", label="method")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--protocols", nargs="+", choices=["one-class", "adbench"], default=["one-class", "adbench"])
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    p.add_argument("--methods", nargs="+", default=["vaekit", "IsolationForest", "OneClassSVM", "LOF",
                                                    "PyOD AutoEncoder", "PyOD VAE"])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--runs", default=str(ROOT / "runs" / "anomaly"))
    p.add_argument("--out", default=str(ROOT / "docs"))
    p.add_argument("--quick", action="store_true", help="3 classes, 4 tables: a smoke run")
    p.add_argument("--from-cache", action="store_true",
                   help="write the report from the results cached so far; run nothing (tasks not yet run are left out)")
    args = p.parse_args(argv)
    rows = run(args)
    if not rows:
        raise SystemExit(f"no results cached in {args.runs} for {', '.join(args.protocols)}: "
                         "run once without --from-cache first")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    both = set(args.protocols) >= {"one-class", "adbench"}
    name = "anomaly" if both else f"anomaly-{args.protocols[0]}"
    command = f"--seeds {' '.join(map(str, args.seeds))}" + ("" if both else f" --protocols {args.protocols[0]}")
    text = ["# Anomaly detection: vaekit against IsolationForest, OneClassSVM, LOF and PyOD", "",
            f"Written by `python benchmarks/anomaly_benchmark.py {command}` "
            "(see its docstring for the protocols). Numbers are percentages; ± is the standard deviation of the "
            "mean over seeds (OneClassSVM and LOF are deterministic: they run once per ADBench split, "
            "and once on the one-class protocol).", "",
            f"![mean AUROC]({name}.png)", "", summarise(rows, args.methods, out / f"{name}.png")]
    (out / f"{name}.md").write_text("\n".join(text))


if __name__ == "__main__":
    main()
