"""The likelihood results table (docs/results.md): every recipe in recipes/ on dynamically binarised
MNIST and Fashion-MNIST, trained with its one command and scored by `vaekit evaluate --k 5000`.

Each training and evaluation runs as its own process (`python -m vaekit ...`, as a user would) and its
wall time and CPU time are recorded; a finished run is not trained again, so the script can be
stopped and restarted. The rows of record live in docs/results.json (runs/ is not in git): a fresh
run's results.json replaces the row of the same data set and recipe, and docs/results.md is rewritten
from those rows after each step.

    python benchmarks/likelihood_results.py [--only hvae-30min] [--datasets mnist] [--k 5000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from vaekit.io import atomic_write_bytes, atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {  # name: (registry model, config file, the budget it is meant to fit on 2 CPU cores)
    "hvae-30min": ("hvae", "recipes/hvae-30min.json", "30 min"),
    "hvae-iwae5-2h": ("hvae", "recipes/hvae-iwae5-2h.json", "2 h"),
}
PUBLISHED = "Burda et al. 2016 (IWAE), Table 1, after 3,280 epochs: 1-layer VAE 86.76, 2-layer VAE 85.33, " \
            "2-layer IWAE k=5 83.89, k=50 82.90"


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a child process; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - t0, cpu


def _threads() -> int:
    """Threads the children run on: they inherit OMP_NUM_THREADS from this process, as torch reads it."""
    import torch

    return torch.get_num_threads()


def run_one(name: str, dataset: str, data_dir: str, k: int, runs: Path) -> dict:
    model, config, budget = RECIPES[name]
    run = runs / f"{dataset}-{name}"
    result_file = run / "results.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    train = [sys.executable, "-m", "vaekit", "train", "--config", config, "--model", model, "--data", dataset,
             "--data-dir", data_dir, "--out", str(run), "--quiet"]
    if (run / "state").is_dir():
        train.append("--resume")
    print(f"== {dataset} {name}: {' '.join(train[2:])}", flush=True)
    wall, cpu = _timed(train)
    history = json.loads((run / "history.json").read_text())
    metrics_file = run / f"evaluate-k{k}.json"
    evaluate = [sys.executable, "-m", "vaekit", "evaluate", str(run), "--k", str(k), "--binarize", "--no-quality",
                "--data-dir", data_dir, "--out", str(metrics_file), "--quiet"]
    eval_wall, _ = _timed(evaluate)
    m = json.loads(metrics_file.read_text())
    result = {"recipe": name, "dataset": dataset, "model": model, "config": config, "budget": budget,
              "epochs": len(history), "train_minutes": round(sum(r["time_s"] for r in history) / 60, 1),
              "process_wall_minutes": round(wall / 60, 1), "process_cpu_minutes": round(cpu / 60, 1),
              "nll": m["nll_nats"], "nll_stderr": m["nll_stderr"], "nll_bits_per_dim": m["nll_bits_per_dim"],
              "neg_elbo": m["neg_elbo_nats"], "active_units": m["active_units"], "k": k,
              "eval_minutes": round(eval_wall / 60, 1), "threads": _threads(),
              "date": time.strftime("%Y-%m-%d")}
    result_file.write_text(json.dumps(result, indent=2))
    return result


def _with_quiet_time(result_file: Path) -> dict:
    """The result, with the median epoch time x epochs: the run's length when nothing else shares the machine."""
    r = json.loads(result_file.read_text())
    times = [row["time_s"] for row in json.loads((result_file.parent / "history.json").read_text())]
    return {**r, "quiet_minutes": round(statistics.median(times) * len(times) / 60, 1)}


def update_record(runs: Path, record: Path) -> list[dict]:
    """The rows of record, each fresh run in runs/ replacing the row of its data set and recipe."""
    rows = {(r["dataset"], r["recipe"]): r for r in (json.loads(record.read_text()) if record.is_file() else [])}
    for p in runs.glob("*/results.json"):
        r = _with_quiet_time(p)
        rows[r["dataset"], r["recipe"]] = r
    ordered = [rows[key] for key in sorted(rows)]
    atomic_write_json(record, ordered)
    return ordered


def write_table(rows: list[dict], out: Path) -> None:
    import torch

    lines = [
        "# Test log-likelihood on dynamically binarised MNIST and Fashion-MNIST",
        "",
        "Written by `python benchmarks/likelihood_results.py`. Each recipe is one config file and one command:",
        "`vaekit train --config recipes/NAME.json --model MODEL --data DATASET --out RUN`, then",
        f"`vaekit evaluate RUN --k 5000 --binarize`. NLL: importance-sampled with k samples per test image",
        "(Burda et al. 2016), one fixed Bernoulli draw of the 10,000 test images; ± is the standard error over images.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}, "
        f"Python {platform.python_version()}. Threads: the torch threads the run used.",
        "",
        "Training time: the sum of the epochs' times as measured; the median epoch × epochs in brackets, which",
        "is what the run takes when nothing else uses the machine (the numbers differ when other work shared its cores).",
        "",
        "| data set | recipe | model | epochs | budget | threads | training time (min) | CPU time (min) | test NLL (nats) | bits/dim | −ELBO | active units |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['recipe']} | {r['model']} | {r['epochs']} | {r['budget']} | {r['threads']} | "
                     f"{r['train_minutes']} ({r['quiet_minutes']}) | {r['process_cpu_minutes']} | {r['nll']:.2f} ± {r['nll_stderr']:.2f} "
                     f"(k={r['k']}) | {r['nll_bits_per_dim']:.4f} | {r['neg_elbo']:.2f} | {r['active_units']} |")
    lines += ["", f"Published reference points: {PUBLISHED}.", ""]
    atomic_write_bytes(out, "\n".join(lines).encode())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=sorted(RECIPES), help="recipes to run (default: all)")
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--runs", default=str(ROOT / "runs" / "results"))
    p.add_argument("--table", default=str(ROOT / "docs" / "results.md"))
    p.add_argument("--record", default=str(ROOT / "docs" / "results.json"), help="the rows of record")
    args = p.parse_args(argv)
    runs = Path(args.runs)
    for dataset in args.datasets:
        for name in args.only or RECIPES:
            r = run_one(name, dataset, args.data_dir, args.k, runs)
            print(json.dumps(r), flush=True)
            write_table(update_record(runs, Path(args.record)), Path(args.table))


if __name__ == "__main__":
    main()
