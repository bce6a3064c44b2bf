"""The autoencoder family side by side on MNIST and Fashion-MNIST: docs/autoencoders.md and its PNGs.

Every registry model is trained here with the same budget (--epochs over --train-size images) and
measured on the test split:
- reconstruction: mean squared error per pixel of the reconstruction of clean test images;
- linear probe: accuracy of logistic regression on the codes (fitted on training codes);
- kNN: accuracy of a 5-nearest-neighbour classifier on the codes;
- sparsity: Hoyer's measure of the codes, (sqrt(n) - |z|_1 / |z|_2) / (sqrt(n) - 1), 0 dense to 1 one-hot;
- denoising: PSNR (dB) of the reconstruction of test images with 30% of pixels zeroed, against the clean
  image, beside the PSNR of the noisy image itself;
- training time in seconds on this machine.
PCA at the default code size is the reference row. The numbers come from this run only.

    python benchmarks/autoencoder_report.py [--epochs 10] [--datasets mnist fashion-mnist]
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

import vaekit
from vaekit import plots
from vaekit.config import DataConfig
from vaekit.data import load_data
from vaekit.models import MODELS
from vaekit.models.regularizers import corrupt

ROOT = Path(__file__).resolve().parents[1]
FAMILY = ["ae", "overcomplete-ae", "deep-ae", "stacked-ae", "linear-ae", "sparse-ae", "k-sparse-ae",
          "denoising-ae", "contractive-ae", "embedding-ae", "gae", "split-brain-ae", "vae", "beta-vae"]
EXTRA = {"stacked-ae": {"layerwise_epochs": 3}}


def hoyer(z: np.ndarray) -> float:
    n = z.shape[1]
    l1, l2 = np.abs(z).sum(1), np.sqrt((z ** 2).sum(1)) + 1e-12
    return float(np.mean((np.sqrt(n) - l1 / l2) / (np.sqrt(n) - 1)))


def psnr(a: np.ndarray, clean: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - clean) ** 2)))


def measure(name, encode, decode, fit_seconds, data, noisy, clean) -> dict:
    ztr, zte = encode(data.train.x[:10000]), encode(data.test.x)
    ytr, yte = data.train.y[:10000], data.test.y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs convergence notes on raw codes
        probe = LogisticRegression(max_iter=500).fit(ztr, ytr).score(zte, yte)
    knn = KNeighborsClassifier(5).fit(ztr, ytr).score(zte, yte)
    rec = decode(zte).reshape(clean.shape)
    return {"model": name, "code_size": zte.shape[1], "reconstruction_mse": float(np.mean((rec - clean) ** 2)),
            "linear_probe": probe, "knn": knn, "sparsity_hoyer": hoyer(zte),
            "denoised_psnr": psnr(decode(encode(noisy)).reshape(clean.shape), clean), "train_seconds": fit_seconds}


def run_dataset(dataset: str, args, out_dir: Path) -> list[dict]:
    data = load_data(DataConfig(dataset, data_dir=args.data_dir, val_fraction=0))
    data.train.x, data.train.y = data.train.x[:args.train_size], data.train.y[:args.train_size]
    clean = data.test.x.astype(np.float32) / 255
    torch.manual_seed(0)
    noisy = corrupt(torch.from_numpy(clean), "mask", 0.3).numpy()
    rows = []
    flat = lambda x: np.asarray(x, np.float32).reshape(len(x), -1) / (255.0 if np.asarray(x).dtype == np.uint8 else 1)
    t0 = time.perf_counter()
    pca = PCA(20, random_state=0).fit(flat(data.train.x))
    rows.append(measure("PCA (20 components)", lambda x: pca.transform(flat(x)),
                        lambda z: np.clip(pca.inverse_transform(z), 0, 1), time.perf_counter() - t0, data, noisy, clean))
    print(json.dumps(rows[-1]), flush=True)
    recon_rows = [clean[:10]]
    for name in FAMILY:
        est = vaekit.estimator_for(name, epochs=args.epochs, random_state=0, **EXTRA.get(name, {}))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", vaekit.VaekitWarning)
            est.fit(data.train.x)
        seconds = time.perf_counter() - t0
        rows.append(measure(name, est.transform, lambda z, e=est: e.inverse_transform(z), seconds, data, noisy, clean))
        rows[-1]["summary"] = MODELS[name].summary
        recon_rows.append(est.reconstruct(data.test.x[:10]).reshape(10, *clean.shape[1:]))
        print(json.dumps(rows[-1]), flush=True)
    plots.image_grid(np.concatenate(recon_rows), out_dir / f"{dataset}-reconstructions.png", ncol=10)
    plots.metric_bars(rows, ["reconstruction_mse", "linear_probe", "knn", "denoised_psnr"],
                      out_dir / f"{dataset}-metrics.png", title=f"{dataset}: the autoencoder family")
    return rows


def write_markdown(results: dict, args, path: Path) -> None:
    lines = ["# The autoencoder family on MNIST and Fashion-MNIST", "",
             f"Written by `python benchmarks/autoencoder_report.py --epochs {args.epochs} --train-size {args.train_size}` "
             f"(torch {torch.__version__}, torch threads: {torch.get_num_threads()}). Each model: registry defaults, "
             f"{args.epochs} epochs on the first {args.train_size} training images; measured on the 10,000 test images.",
             "Reconstruction: MSE per pixel. Probe / kNN: test accuracy of logistic regression / 5-NN on the codes. "
             "Sparsity: Hoyer's measure (0 dense, 1 one-hot). Denoised PSNR: reconstruction of test images with "
             "30% of pixels zeroed, against the clean images (dB).", ""]
    for dataset, rows in results.items():
        noisy = rows[0].get("noisy_psnr")
        lines += [f"## {dataset}", "", f"![metrics]({dataset}-metrics.png)", "",
                  "| model | code | reconstruction MSE | linear probe | kNN | sparsity | denoised PSNR | train s |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['model']} | {r['code_size']} | {r['reconstruction_mse']:.4f} | {r['linear_probe']:.3f} | "
                         f"{r['knn']:.3f} | {r['sparsity_hoyer']:.2f} | {r['denoised_psnr']:.1f} | {r['train_seconds']:.0f} |")
        lines += ["", f"The noisy test images themselves: PSNR {noisy:.1f} dB." if noisy else "",
                  f"Test inputs (top row), then each model's reconstruction in table order, PCA excluded:",
                  f"![reconstructions]({dataset}-reconstructions.png)", ""]
    path.write_text("\n".join(lines))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--train-size", type=int, default=20000)
    p.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--out", default=str(ROOT / "docs"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for dataset in args.datasets:
        results[dataset] = run_dataset(dataset, args, out)
        clean = load_data(DataConfig(dataset, data_dir=args.data_dir)).test.x.astype(np.float32) / 255
        torch.manual_seed(0)
        results[dataset][0]["noisy_psnr"] = psnr(corrupt(torch.from_numpy(clean), "mask", 0.3).numpy(), clean)
        (out / "autoencoders.json").write_text(json.dumps(results, indent=2))
        write_markdown(results, args, out / "autoencoders.md")


if __name__ == "__main__":
    main()
