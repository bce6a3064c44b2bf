"""vaekit evaluate: test-set metrics of a run as JSON."""
from __future__ import annotations

import argparse
import json
import sys

from ..data import user_cache
from ..models import get_spec
from ..models.registry import TEXT
from ..runs import read_config
from ..evaluate import evaluate
from ..malloc import EVALUATION_KEEP, keep_freed_memory
from ..io import atomic_write_json
from .common import add_run_args, count, load_run, load_run_data

HELP = ("test ELBO and importance-sampled NLL (nats, bits/dim, standard errors), collapse diagnostics and "
        "sample quality (FD-classifier, precision/recall), as JSON")


def add_arguments(p) -> None:
    add_run_args(p, out_suffix=None)
    p.add_argument("--k", type=count(), default=100, help="importance samples per example for the NLL (5000 for papers)")
    p.add_argument("--out", help="also write the JSON to this file")
    p.add_argument("--binarize", action=argparse.BooleanOptionalAction, default=None,
                   help="score one Bernoulli draw of the test images (default: as the run was trained)")
    p.add_argument("--quality", action=argparse.BooleanOptionalAction, default=None,
                   help="FD-classifier and precision/recall of samples (default: when the data have labels); "
                        "trains a feature classifier on the training split once and caches it")
    p.add_argument("--quality-samples", type=count(), default=10000, help="samples drawn for the quality metrics")
    p.add_argument("--limit", type=count(), help="evaluate only the first N test examples")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--device", default="auto", help="'auto' (a GPU when there is one), 'cpu', 'cuda' or 'cuda:N'")


def run(args) -> int:
    doc = read_config(args.run)
    metrics = (_text_metrics if get_spec(doc.get("model")).modality == TEXT else _image_metrics)(args, doc)
    print(json.dumps(metrics, indent=2))
    if "warning" in metrics:
        print(f"vaekit evaluate: warning: {metrics['warning']}", file=sys.stderr)
    if args.out:
        atomic_write_json(args.out, metrics)
    return 0


def _image_metrics(args, doc: dict) -> dict:
    keep_freed_memory(EVALUATION_KEEP)  # keep the IS-NLL's big blocks instead of faulting them in again
    model = load_run(args.run, device=args.device)
    data = load_run_data(args.run, args.data_dir)
    binarize = doc.get("train_config", {}).get("binarize", False) if args.binarize is None else args.binarize
    quality = data.train.y is not None if args.quality is None else args.quality
    net = None
    if quality:
        from ..quality import feature_net

        net, info = feature_net(data.train.x, data.train.y, user_cache() / "feature-nets", verbose=not args.quiet)
        print(f"feature classifier: validation accuracy {info['val_accuracy']:.4f}", file=sys.stderr)
    x = data.test.x[:args.limit]
    metrics = evaluate(model, x, k=args.k, seed=args.seed, binarize=binarize, quality_net=net,
                       quality_samples=args.quality_samples, verbose=not args.quiet)
    from ..tasks.disentanglement import factor_vae_metric, factors_of_run, mig

    if factors_of_run(doc):  # dSprites-like: how single latents follow single factors
        metrics["disentanglement"] = {"factor_vae": factor_vae_metric(model, seed=args.seed),
                                      "mig": mig(model, seed=args.seed)}
    return metrics


def _text_metrics(args, doc: dict) -> dict:
    """A text run: NLL, PPL, KL, active units, I(x; z), token accuracy and BLEU on its test sentences."""
    from .text import _load, text_splits

    return _load(args).evaluate(text_splits(doc)[2][:args.limit], k=args.k, seed=args.seed)
