"""vaekit evaluate: test-set metrics of a run as JSON."""
from __future__ import annotations

import json

from ..evaluate import evaluate
from ..io import atomic_write_json
from .common import add_run_args, load_run, load_run_data

HELP = "test ELBO (nats, bits/dim), its terms, active units and the importance-sampled NLL, as JSON"


def add_arguments(p) -> None:
    add_run_args(p, out_suffix=None)
    p.add_argument("--k", type=int, default=100, help="importance samples for the NLL estimate")
    p.add_argument("--out", help="also write the JSON to this file")


def run(args) -> int:
    model = load_run(args.run)
    test = load_run_data(args.run, args.data_dir).test
    metrics = evaluate(model, test.x, k=args.k, seed=args.seed)
    print(json.dumps(metrics, indent=2))
    if args.out:
        atomic_write_json(args.out, metrics)
    return 0
