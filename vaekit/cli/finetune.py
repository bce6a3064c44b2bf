"""vaekit finetune: an autoencoder run's encoder with a softmax on top, trained on a few labels."""
from __future__ import annotations

import json

import torch

from ..config import ModelConfig, TrainConfig, from_dict
from ..errors import VaekitError
from ..io import atomic_write_json
from ..models import AutoencoderModule, build_module
from ..runs import load_module
from ..stacked import balanced_subset, finetune
from .common import add_run_args, count, load_run_data

HELP = "train a run's encoder plus a softmax classifier on N labels; print the test accuracy as JSON"


def add_arguments(p) -> None:
    add_run_args(p, out_suffix=None)
    p.add_argument("--labels", type=count(), default=100, help="labelled training examples, balanced over classes")
    p.add_argument("--epochs", type=count(), default=100, help="passes over the labelled examples")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate of the encoder and the softmax layer")
    p.add_argument("--batch-size", type=count(), default=32, help="labelled examples per step")
    p.add_argument("--from-scratch", action="store_true",
                   help="the same network from a random initialisation: the baseline pretraining should beat")
    p.add_argument("--out", help="also write the JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    doc, module, _ = load_module(args.run)
    if not isinstance(module, AutoencoderModule):
        raise VaekitError(f"{args.run} holds a '{doc['model']}' run; finetune takes an autoencoder's encoder "
                          f"(e.g. --model stacked-ae)")
    if args.from_scratch:
        torch.manual_seed(args.seed)
        mcfg = from_dict(ModelConfig, doc["model_config"], "the run's model_config")
        module = build_module(doc["model"], mcfg, tuple(doc["input_shape"]))
    data = load_run_data(args.run, args.data_dir)
    if data.train.y is None:
        raise VaekitError(f"{args.run}'s data have no labels to fine-tune on")
    if not 1 <= args.labels <= len(data.train.y):
        raise VaekitError(f"--labels must be between 1 and {len(data.train.y)}; got {args.labels}")
    idx = balanced_subset(data.train.y, args.labels, seed=args.seed)
    tcfg = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=min(args.batch_size, args.labels), seed=args.seed,
                       device="cpu").validate("finetune")
    result = finetune(module, torch.from_numpy(data.train.x[idx]), data.train.y[idx], data.test.x, data.test.y,
                      tcfg, verbose=not args.quiet)
    out = {"run": args.run, "pretrained": not args.from_scratch, **{k: v for k, v in result.items() if k != "history"}}
    print(json.dumps(out))
    if args.out:
        atomic_write_json(args.out, out)
    return 0
