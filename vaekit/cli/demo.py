"""vaekit demo: the main job on a built-in default: train a 2-D VAE and write every picture and metric."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..errors import VaekitError
from . import train, views
from . import evaluate as evaluate_cmd
from .common import count, load_run_data
from .options import Parser

HELP = "train a 2-D VAE on a built-in data set and write samples, reconstructions, maps, curve and metrics"

# 2-D codes on the 8x8 digits: small enough to train in well under a minute on a laptop CPU
DEFAULT_FLAGS = ["--latent-dim", "2", "--hidden", "256", "128", "--epochs", "150", "--batch-size", "64",
                 "--patience", "20"]


def add_arguments(p) -> None:
    p.add_argument("--out", default="runs/demo", help="folder for the run and its pictures")
    p.add_argument("--data", default="digits", help="data set (default: digits, bundled with scikit-learn)")
    p.add_argument("--data-dir", help="where named data sets live")
    p.add_argument("--epochs", type=count(), help="override the demo's epoch count")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise VaekitError(f"{out} already exists; remove it or pass another --out")
    t0 = time.perf_counter()
    flags = ["--out", str(out), "--data", args.data, *DEFAULT_FLAGS]
    if args.data != "digits":  # MNIST-sized sets need fewer passes and larger batches
        flags += ["--epochs", "10", "--batch-size", "128", "--hidden", "512", "256"]
    if args.epochs is not None:
        flags += ["--epochs", str(args.epochs)]
    if args.data_dir:
        flags += ["--data-dir", args.data_dir]
    if args.quiet:
        flags.append("--quiet")
    _call(train, flags)
    run_dir = str(out)
    start, end = _two_classes(run_dir)
    for name, extra in (("sample", ["-n", "100"]), ("reconstruct", ["-n", "20"]),
                        ("latent-map", []), ("manifold", ["--grid", "20"]),
                        ("interpolate", ["--from", str(start), "--to", str(end), "--steps", "10"])):
        _, add, run_view = views.COMMANDS[name]
        _call_view(add, run_view, [run_dir, "--out", str(out / f"{name.replace('-', '_')}.png"), *extra])
    _call(evaluate_cmd, [run_dir, "--out", str(out / "metrics.json"), "--k", "100"])
    print(json.dumps({"run": run_dir, "seconds": round(time.perf_counter() - t0, 1),
                      "files": sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith("."))}))
    return 0


def _two_classes(run_dir: str) -> tuple[int, int]:
    """Test-set indices of the first example and of the first one of another class: a path between two
    examples of one class shows little."""
    y = load_run_data(run_dir).test.y
    if y is None:
        return 0, 1
    other = np.flatnonzero(y != y[0])
    return 0, int(other[0]) if len(other) else 1


def _call(module, argv) -> None:
    p = Parser(prog=f"vaekit {module.__name__.rsplit('.', 1)[-1]}")
    module.add_arguments(p)
    module.run(p.parse_args(argv))


def _call_view(add, run_view, argv) -> None:
    p = Parser(prog="vaekit")
    add(p)
    run_view(p.parse_args(argv))
