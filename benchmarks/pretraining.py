"""Does greedy layer-wise pretraining help when labels are few? Stacked denoising autoencoder on MNIST.

A stacked denoising autoencoder (784-500-500, registry 'stacked-ae') is pretrained greedily layer by
layer on all 60,000 training images without labels, then trained whole for reconstruction. Its encoder
plus a softmax layer is then fine-tuned on N labelled images (balanced over classes; N = 100 and 1,000;
several draws of the labels), beside the same network fine-tuned the same way from random weights.
Test accuracy on the 10,000 test images; written to docs/pretraining.md.

    python benchmarks/pretraining.py [--labels 100 1000] [--draws 0 1 2]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from vaekit.config import DataConfig, TrainConfig
from vaekit.data import load_data
from vaekit.models import MODELS, build_module
from vaekit.runs import fit_module
from vaekit.stacked import balanced_subset, finetune

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--layerwise-epochs", type=int, default=5)
    p.add_argument("--epochs", type=int, default=5, help="whole-network reconstruction epochs after the layers")
    p.add_argument("--finetune-epochs", type=int, default=100)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--out", default=str(ROOT / "docs" / "pretraining.md"))
    args = p.parse_args(argv)
    data = load_data(DataConfig("mnist", data_dir=args.data_dir, val_fraction=0))
    mcfg = MODELS["stacked-ae"].config()
    t0 = time.perf_counter()
    pretrained, _ = fit_module("stacked-ae", mcfg, TrainConfig(epochs=args.epochs, layerwise_epochs=args.layerwise_epochs),
                               torch.from_numpy(data.train.x))
    pretrain_s = time.perf_counter() - t0
    state = {k: v.clone() for k, v in pretrained.state_dict().items()}
    rows = []
    for n in args.labels:
        for draw in args.draws:
            idx = balanced_subset(data.train.y, n, seed=draw)
            x, y = torch.from_numpy(data.train.x[idx]), data.train.y[idx]
            tcfg = TrainConfig(epochs=args.finetune_epochs, batch_size=min(32, n), seed=draw)
            for start in ("pretrained", "random"):
                torch.manual_seed(draw)
                module = build_module("stacked-ae", mcfg, (1, 28, 28))
                if start == "pretrained":
                    module.load_state_dict(state)
                r = finetune(module, x, y, data.test.x, data.test.y, tcfg)
                rows.append({"labels": n, "draw": draw, "start": start, "test_accuracy": r["test_accuracy"]})
                print(json.dumps(rows[-1]), flush=True)
    lines = ["# Greedy layer-wise pretraining with few labels (MNIST)", "",
             f"Written by `python benchmarks/pretraining.py` (torch {torch.__version__}, "
             f"torch threads: {torch.get_num_threads()}). A stacked denoising autoencoder 784-500-500 (`stacked-ae`: "
             f"20% masking noise, sigmoid code) is pretrained on the 60,000 unlabelled training images: "
             f"{args.layerwise_epochs} epochs per layer, then {args.epochs} epochs of the whole network "
             f"({pretrain_s / 60:.1f} min). Its encoder plus a softmax layer is fine-tuned end to end on N labelled "
             f"images (balanced over the 10 classes), {args.finetune_epochs} epochs of Adam 1e-3; the same network "
             f"from random weights is fine-tuned identically. Test accuracy on the 10,000 test images, "
             f"mean ± standard deviation over {len(args.draws)} draws of the labelled images.", "",
             "| labels | pretrained | random initialisation | gain (points) |", "|---|---|---|---|"]
    for n in args.labels:
        acc = {s: [r["test_accuracy"] for r in rows if r["labels"] == n and r["start"] == s] for s in ("pretrained", "random")}
        gain = 100 * (np.mean(acc["pretrained"]) - np.mean(acc["random"]))
        lines.append(f"| {n} | {100 * np.mean(acc['pretrained']):.1f} ± {100 * np.std(acc['pretrained']):.1f} | "
                     f"{100 * np.mean(acc['random']):.1f} ± {100 * np.std(acc['random']):.1f} | {gain:+.1f} |")
    lines += ["", "Per draw: " + json.dumps(rows), ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
