"""Memory over many fits in one process, as a grid search makes them: resident memory after each of --fits
consecutive vaekit.VAE(...).fit calls on real MNIST, beside the same number of plain PyTorch fits of the same
network (the baseline: what the framework itself leaves behind), in the same process.

Prints the resident set every 20 fits, the growth from fit --warmup to the last for both, and writes the curve
to --plot. The bound tests/test_trainer.py holds vaekit to: under 16 MiB of growth after the warm-up.

    python benchmarks/repeated_fit.py [--fits 200] [--plot docs/repeated-fit-memory.png]
"""
from __future__ import annotations

import argparse
import gc
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VAEKIT_DATA", ROOT.parent / "shared" / "data"))
BOUND_MIB = 16


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def vaekit_fits(x: np.ndarray, n: int, every=None) -> list[float]:
    """RSS after each of n fits of a small VAE (vaekit's estimator, trainer and everything they touch)."""
    import vaekit

    out = []
    for i in range(n):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vaekit.VAE(latent_dim=4, hidden=(64,), epochs=1, batch_size=128, random_state=i, device="cpu").fit(x)
        gc.collect()
        out.append(rss_mib())
        if every and (i + 1) % every == 0:
            print(f"  vaekit fit {i + 1:4d}: {out[-1]:7.1f} MiB", flush=True)
    return out


def plain_fits(x: np.ndarray, n: int) -> list[float]:
    """The baseline: the same 784-64-4 VAE trained one epoch by a plain PyTorch loop, n times."""
    data = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255)
    out = []
    for i in range(n):
        torch.manual_seed(i)
        enc, dec = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 8)), \
            nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 784))
        opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], 1e-3)
        for b in torch.randperm(len(data)).split(128):
            xb = data[b]
            mu, log_var = enc(xb).chunk(2, -1)
            z = mu + (0.5 * log_var).exp() * torch.randn_like(mu)
            rec = nn.functional.binary_cross_entropy_with_logits(dec(z), xb, reduction="sum")
            loss = rec - 0.5 * (1 + log_var - mu ** 2 - log_var.exp()).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        del enc, dec, opt
        gc.collect()
        out.append(rss_mib())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fits", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20, help="fits before growth is counted (caches fill)")
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--plot", default=str(ROOT / "docs" / "repeated-fit-memory.png"))
    args = p.parse_args()
    from vaekit.data import load_idx_set

    x = np.ascontiguousarray(load_idx_set("mnist", DATA, download=False)[0][:args.images, None])
    t0 = time.perf_counter()
    base = plain_fits(x, args.fits)
    t1 = time.perf_counter()
    ours = vaekit_fits(x, args.fits, every=20)
    t2 = time.perf_counter()
    w = args.warmup - 1
    grow_ours, grow_base = ours[-1] - ours[w], base[-1] - base[w]
    print(f"\n| loop | fits | RSS after fit {args.warmup} MiB | after fit {args.fits} MiB | growth MiB | s per fit |")
    print("|---|---|---|---|---|---|")
    print(f"| plain PyTorch (baseline) | {args.fits} | {base[w]:.1f} | {base[-1]:.1f} | {grow_base:+.1f} | "
          f"{(t1 - t0) / args.fits:.3f} |")
    print(f"| vaekit.VAE().fit | {args.fits} | {ours[w]:.1f} | {ours[-1]:.1f} | {grow_ours:+.1f} | "
          f"{(t2 - t1) / args.fits:.3f} |")
    print(f"\nvaekit growth after the warm-up: {grow_ours:+.1f} MiB (bound {BOUND_MIB} MiB: "
          f"{'met' if grow_ours < BOUND_MIB else 'NOT met'}); baseline {grow_base:+.1f} MiB")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(range(1, args.fits + 1), ours, label="vaekit.VAE(...).fit")
        ax.plot(range(1, args.fits + 1), base, label="plain PyTorch loop (baseline)")
        ax.axvline(args.warmup, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("consecutive fits in one process")
        ax.set_ylabel("resident memory (MiB)")
        ax.set_title(f"{args.fits} fits of a 784-64-4 VAE on {args.images} MNIST images")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(args.plot)


if __name__ == "__main__":
    main()
