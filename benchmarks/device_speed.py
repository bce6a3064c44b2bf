"""Training speed on whatever device this machine has: epoch time and samples/s per precision.

The 784-400-20 MLP VAE on full MNIST (data kept on the device, no host sync per step), and the
conv-vae beside it, trained by vaekit's Trainer at fp32, bf16 autocast and (on CUDA) fp16 with loss
scaling; ratios are against fp32 measured in the same run.

    python benchmarks/device_speed.py [--device auto|cpu|cuda] [--epochs 3] [--batch-size 128]
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from vaekit.config import DataConfig, TrainConfig
from vaekit.data import load_data
from vaekit.models import MODELS, build_module
from vaekit.train import Trainer, resolve_device

MODELS_TIMED = {"vae 784-400-20": ("vae", dict(latent_dim=20, hidden=(400,))),
                "conv-vae 32-64": ("conv-vae", dict(latent_dim=20, hidden=(256,)))}


def time_epochs(name: str, overrides: dict, x: torch.Tensor, precision: str, device: str, epochs: int,
                batch_size: int) -> tuple[float, float]:
    """(median seconds per epoch after the first, final train loss)."""
    torch.manual_seed(0)
    module = build_module(name, MODELS[name].config(**overrides), tuple(x.shape[1:]))
    cfg = TrainConfig(epochs=epochs + 1, batch_size=batch_size, precision=precision, device=device)
    history = Trainer(module, cfg, verbose=False).fit(x)
    return statistics.median(r["time_s"] for r in history[1:]), history[-1]["train_loss"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (one more warms up)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    data = load_data(DataConfig("mnist", data_dir=args.data_dir, val_fraction=0))
    x = torch.from_numpy(data.train.x).to(device)  # uint8 on the device: 47 MB
    precisions = ["fp32", "bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; {len(x)} images, batch {args.batch_size}\n")
    print(f"{'model':18}{'precision':>10}{'s/epoch':>10}{'samples/s':>12}{'vs fp32':>9}{'train loss':>12}")
    rows = []
    for label, (model, overrides) in MODELS_TIMED.items():
        base = None
        for precision in precisions:
            t, loss = time_epochs(model, overrides, x, precision, str(device), args.epochs, args.batch_size)
            base = base or t
            rows.append({"model": label, "precision": precision, "s_per_epoch": t, "samples_per_s": len(x) / t,
                         "speedup_vs_fp32": base / t, "train_loss": loss})
            print(f"{label:18}{precision:>10}{t:10.2f}{len(x) / t:12.0f}{base / t:8.2f}x{loss:12.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
