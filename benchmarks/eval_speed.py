"""Importance-sampled NLL speed: vaekit's estimator vs the per-example loop, and the matmul floor.

Model: the 784-400-20 MLP VAE (Bernoulli), trained briefly here (a trained model's very negative logits
make softplus slower than random weights do).
Task: log p(x) with k importance samples for the 10,000 binarised MNIST test images.
- vaekit: `vaekit.evaluate.iw_log_likelihood` (blocks of ~2^20 decoder outputs, one logsumexp), in a
  process set up as `vaekit evaluate` sets up its own (`keep_freed_memory`: no page faults per block).
- per-example loop: how VAE libraries commonly write it (one test image at a time, its k samples in
  batches of 100 through encoder and decoder, sigmoid + binary cross-entropy); timed on a subset and
  scaled to 10,000 images.
- floor: only the decoder's two matrix products for all N * k samples (6.4 TFLOP at k=1000), timed on
  a tenth of them and scaled.
The three are timed in turn on each tenth of the test set, so the machine's drift reaches all of them.

    python benchmarks/eval_speed.py [--k 1000] [--data-dir ../shared/data]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vaekit.config import DataConfig, TrainConfig
from vaekit.data import load_data
from vaekit.evaluate import iw_log_likelihood
from vaekit.malloc import EVALUATION_KEEP, keep_freed_memory
from vaekit.models import MODELS, build_module
from vaekit.train import Trainer

DEC = [(20, 400), (400, 784)]


@torch.no_grad()
def per_example_loop(module, x: torch.Tensor, k: int, batch: int = 100) -> torch.Tensor:
    out = []
    for xi in x:
        xr = xi.unsqueeze(0).expand(batch, *xi.shape)
        log_w = []
        for _ in range(math.ceil(k / batch)):
            mu, log_var = module.encoder(xr).chunk(2, -1)
            std = torch.exp(0.5 * log_var)
            z = mu + std * torch.randn_like(std)
            log_q = -0.5 * (log_var + (z - mu) ** 2 / torch.exp(log_var) + math.log(2 * math.pi)).sum(-1)
            log_p = -0.5 * (z ** 2 + math.log(2 * math.pi)).sum(-1)
            recon = torch.sigmoid(module.decoder(z)).reshape(batch, -1)
            log_px = -F.binary_cross_entropy(recon, xr.reshape(batch, -1), reduction="none").sum(-1)
            log_w.append(log_px + log_p - log_q)
        log_w = torch.cat(log_w)[:k]
        out.append(torch.logsumexp(log_w, 0) - math.log(k))
    return torch.stack(out)


def matmul_floor(n_samples: int, rows: int = 2048) -> float:
    """Seconds for the decoder's matrix products over n_samples latent codes, in blocks of rows."""
    h = torch.randn(rows, DEC[0][0])
    w = [torch.randn(o, i) for i, o in DEC]
    torch.mm(torch.mm(h, w[0].T), w[1].T)
    t0 = time.perf_counter()
    for _ in range(math.ceil(n_samples / rows)):
        torch.mm(torch.mm(h, w[0].T), w[1].T)
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    p.add_argument("--loop-examples", type=int, default=200, help="test images timed with the per-example loop")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    kept = keep_freed_memory(EVALUATION_KEEP)  # as `vaekit evaluate` does; training below keeps it
    data = load_data(DataConfig("mnist", data_dir=args.data_dir, val_fraction=0))
    torch.manual_seed(0)
    module = build_module("vae", MODELS["vae"].config(latent_dim=20, hidden=(400,)), (1, 28, 28))
    Trainer(module, TrainConfig(epochs=2, binarize=True), verbose=False).fit(torch.from_numpy(data.train.x))
    module.eval()
    x = torch.bernoulli(torch.from_numpy(data.test.x).float() / 255, generator=torch.Generator().manual_seed(0))
    n, k = len(x), args.k
    flops = 2 * n * k * sum(i * o for i, o in DEC)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {n} test images, k={k}: "
          f"{flops / 1e12:.2f} TFLOP in the decoder's matrix products; freed blocks kept: {kept}\n")

    # The three are timed slice by slice, interleaved, so a busy minute on a shared machine slows all of them
    # alike and the ratios stay honest; each slice's floor is timed on a tenth of its samples and scaled.
    slices, m = 10, args.loop_examples
    floor = ours = loop = 0.0
    nll, loop_nll, looped = [], [], []
    with tqdm(total=n, file=sys.stderr, unit="ex", desc=f"IS-NLL k={k}", mininterval=1.0) as bar:
        for part in torch.arange(n).chunk(slices):
            floor += matmul_floor(len(part) * k // 10) * 10
            t0 = time.perf_counter()
            nll.append(-iw_log_likelihood(module, x[part], k))
            ours += time.perf_counter() - t0
            looped.append(part[:m // slices])
            t0 = time.perf_counter()
            loop_nll.append(-per_example_loop(module, x[looped[-1]], k))
            loop += (time.perf_counter() - t0) * len(part) / len(looped[-1])
            bar.update(len(part))
    nll, loop_nll, looped = torch.cat(nll), torch.cat(loop_nll), torch.cat(looped)
    stderr = (nll.std() / math.sqrt(n)).item()
    gap = (loop_nll - nll[looped]).mean().item()  # the two estimators agree up to sampling noise
    print(f"{'':26}{'seconds':>10}{'vs floor':>10}")
    for name, t in (("vaekit", ours), (f"per-example loop (x{n // m})", loop), ("matmul floor", floor)):
        print(f"{name:26}{t:10.1f}{t / floor:9.2f}x")
    print(f"\ntest NLL {nll.mean():.2f} ± {stderr:.2f} nats; loop - vaekit on the {len(looped)} looped images: {gap:+.3f} nats")
    print(f"speed-up over the loop: {loop / ours:.2f}x   vaekit / floor: {ours / floor:.2f}x   "
          f"({flops / ours / 1e9:.0f} GFLOP/s of useful matrix work)")
    result = {"k": k, "n": n, "vaekit_s": ours, "loop_s": loop, "floor_s": floor, "nll": nll.mean().item(),
              "nll_stderr": stderr, "loop_minus_vaekit": gap}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
