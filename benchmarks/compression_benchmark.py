"""Compression of MNIST and Fashion-MNIST: lossless (binarised and 8-bit images: vaekit's bits-back codec against
classical codecs, on the whole test sets) and lossy (vaekit's lossy-ae at several lambdas against JPEG, WebP,
JPEG 2000 and AVIF at several qualities), each kind in one run.

    python benchmarks/compression_benchmark.py [--data mnist fashion-mnist] [--kinds binary 8-bit lossy]
        [--run-dir DIR]

For each data set and kind a model is trained on the training split, or read from --run-dir/DATASET-KIND when
there: for binary images a VAE (784-400-20 by default, Bernoulli likelihood, dynamic binarisation; the test
images binarised by one Bernoulli draw, seed 0), for 8-bit images the registry's `lossless-vae`. Every codec
writes real bytes and decodes them again (checked bit for bit): vaekit's .vkz file (header and the chains'
initial words included, shown apart), gzip / bzip2 / LZMA of the packed bits or bytes, PNG (optimised; 1-bit
for binary images) and WebP lossless per image as a user would store them. Bits per dimension next to the
model's -ELBO and importance-sampled NLL, and images per second to encode and to decode. Writes OUT.md,
OUT.json and OUT.png.

Lossy: a `lossy-ae` per lambda (--lambdas), trained on the training split or read from DIR/DATASET-lossy-LAMBDA,
codes the first --lossy-limit test images into one .vkz file; each classical codec writes one file per image at
each quality (Pillow), as a user would store them. Bits per pixel count every byte; PSNR and SSIM (scikit-image,
in the `bench` extra) are means over the images. Writes OUT-lossy.md, OUT-lossy.json, OUT-lossy.png (the
curves) and OUT-lossy-examples.png (reconstructions).
"""
from __future__ import annotations

import argparse
import bz2
import gzip
import io
import json
import lzma
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import vaekit  # noqa: E402 (after the path to this checkout)
from vaekit.data import load_idx_set  # noqa: E402
from vaekit.data.batches import binarize_once  # noqa: E402
from vaekit.evaluate import evaluate  # noqa: E402
from vaekit.tasks.compression import container  # noqa: E402

DATA = Path(os.environ.get("VAEKIT_DATA", ROOT.parent / "shared" / "data"))


def _timed(f, *a):
    t0 = time.perf_counter()
    out = f(*a)
    return out, time.perf_counter() - t0


def _stream(compress, decompress):
    """A codec over the whole set at once: the packed bits of binary images, the bytes of 8-bit ones."""
    def enc(x, binary):
        flat = x.reshape(len(x), -1)
        return compress((np.packbits(flat, axis=1) if binary else flat).tobytes())

    def dec(data, like, binary):
        raw = np.frombuffer(decompress(data), np.uint8).reshape(len(like), -1)
        flat = np.unpackbits(raw, axis=1)[:, :like[0].size] if binary else raw
        return flat.reshape(like.shape)
    return enc, dec


def _per_image(fmt: str, **save):
    """A codec that writes one image file per image (their sizes summed, as a user would store them); binary
    images as 1-bit PNGs."""
    from PIL import Image

    def enc(x, binary):
        files = []
        for im in x:
            buf = io.BytesIO()
            img = Image.fromarray((im.reshape(28, 28) * (255 if binary else 1)).astype(np.uint8))
            (img.convert("1") if binary and fmt == "PNG" else img).save(buf, fmt, **save)
            files.append(buf.getvalue())
        return files

    def dec(files, like, binary):
        ims = np.stack([np.asarray(Image.open(io.BytesIO(f)).convert("L")) for f in files])
        return (ims > 127 if binary else ims).astype(np.uint8).reshape(like.shape)
    return enc, dec


CLASSICAL = {
    "gzip -9": _stream(lambda b: gzip.compress(b, 9), gzip.decompress),
    "bzip2 -9": _stream(lambda b: bz2.compress(b, 9), bz2.decompress),
    "LZMA (xz -9e)": _stream(lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
    "PNG (optimised)": _per_image("PNG", optimize=True),
    "WebP lossless": _per_image("WEBP", lossless=True, quality=100, method=6),
}
KINDS = ("binary", "8-bit", "lossy")
LAMBDAS = (0.001, 0.003, 0.01, 0.03, 0.1)
QUALITIES = (5, 10, 20, 35, 50, 75, 90)
J2K_PSNR = (20, 25, 30, 35, 40, 45)  # the PSNRs JPEG 2000 aims at (quality_mode="dB"; on images this small
# its "rates" mode gives one size whatever the ratio)


def _model(name: str, kind: str, args):
    run = Path(args.run_dir) / f"{name}-{kind}" if args.run_dir else None
    if run is not None and (run / "config.json").is_file():
        return vaekit.load(run, device="cpu"), f"read from {run}"
    xtr = load_idx_set(name, DATA, download=False)[0]
    if kind == "binary":
        model = vaekit.VAE(latent_dim=args.latent_dim, hidden=(args.hidden,), epochs=args.epochs, binarize=True,
                           random_state=0, verbose=True)
    else:
        model = vaekit.estimator_for("lossless-vae", epochs=args.epochs_8bit, random_state=0, verbose=True)
    _, seconds = _timed(model.fit, xtr)
    if run is not None:
        model.save(run)
    return model, f"'{model.model}' trained here in {seconds:.0f} s"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["mnist", "fashion-mnist"])
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))  # binary and 8-bit write OUT.*
    p.add_argument("--epochs", type=int, default=30, help="epochs of the binary images' VAE")
    p.add_argument("--epochs-8bit", type=int, default=30, help="epochs of the 8-bit images' lossless-vae")
    p.add_argument("--latent-dim", type=int, default=20)
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--limit", type=int, default=None, help="code only the first N test images")
    p.add_argument("--k", type=int, default=1000, help="importance samples of the NLL")
    p.add_argument("--run-dir", default=None, help="read (or save) each model in DIR/DATASET-KIND")
    p.add_argument("--lambdas", nargs="+", type=float, default=list(LAMBDAS), help="the lossy-ae's lambdas")
    p.add_argument("--epochs-lossy", type=int, default=15, help="epochs of each lossy-ae")
    p.add_argument("--lossy-limit", type=int, default=2000, help="test images every lossy codec codes")
    p.add_argument("--out", default=str(ROOT / "docs" / "compression-benchmark"))
    args = p.parse_args()
    results, lossy = {}, {}
    for kind in args.kinds:
        for name in args.data:
            if kind == "lossy":
                lossy[name] = one_lossy(name, args)
                continue
            results[f"{name}, {kind}"] = one(name, kind, args)
            print(json.dumps({f"{name}, {kind}": results[f"{name}, {kind}"]}), flush=True)
    if results:
        write(args, results)
    if lossy:
        write_lossy(args, lossy)


# -- lossy ---------------------------------------------------------------------------------------------------
def _quality(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean PSNR (dB) and SSIM of reconstructions y of uint8 images x (N, 28, 28)."""
    from skimage.metrics import structural_similarity

    mse = ((x.astype(np.float64) - y) ** 2).reshape(len(x), -1).mean(1)
    psnr = 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))
    ssim = [structural_similarity(a, b, data_range=255) for a, b in zip(x, y)]
    return float(np.mean(np.minimum(psnr, 99.0))), float(np.mean(ssim))


def _pillow_lossy(fmt: str, settings: list[dict]):
    """(setting label, encode(x) -> files, decode(files) -> images) for each setting of a Pillow format."""
    from PIL import Image

    def make(save):
        def enc(x):
            files = []
            for im in x:
                buf = io.BytesIO()
                Image.fromarray(im).save(buf, fmt, **save)
                files.append(buf.getvalue())
            return files

        def dec(files):
            return np.stack([np.asarray(Image.open(io.BytesIO(f)).convert("L")) for f in files])
        return enc, dec
    return [(s, *make(s)) for s in settings]


def _lossy_codecs() -> dict:
    from PIL import features

    codecs = {"JPEG": _pillow_lossy("JPEG", [{"quality": q, "optimize": True} for q in QUALITIES]),
              "WebP": _pillow_lossy("WEBP", [{"quality": q, "method": 6} for q in QUALITIES])}
    if features.check("jpg_2000"):
        codecs["JPEG 2000"] = _pillow_lossy("JPEG2000", [{"quality_mode": "dB", "quality_layers": [db],
                                                          "irreversible": True} for db in J2K_PSNR])
    if features.check("avif"):
        codecs["AVIF"] = _pillow_lossy("AVIF", [{"quality": q} for q in QUALITIES])
    return codecs


def _lossy_model(name: str, lam: float, args):
    run = Path(args.run_dir) / f"{name}-lossy-{lam:g}" if args.run_dir else None
    if run is not None and (run / "config.json").is_file():
        return vaekit.load(run, device="cpu"), f"read from {run}"
    model = vaekit.estimator_for("lossy-ae", rate_lambda=lam, epochs=args.epochs_lossy, random_state=0,
                                 verbose=True)
    _, seconds = _timed(model.fit, load_idx_set(name, DATA, download=False)[0])
    if run is not None:
        model.save(run)
    return model, f"trained here in {seconds:.0f} s"


def one_lossy(name: str, args) -> dict:
    x = load_idx_set(name, DATA, download=False)[2][:args.lossy_limit]
    pixels = x.size
    curves, examples = {}, {"original": x[:8]}
    points = []
    for lam in args.lambdas:
        model, origin = _lossy_model(name, lam, args)
        codec = vaekit.Codec(model)
        data, te = _timed(codec.compress, x)
        back, td = _timed(codec.decompress, data)
        back = back.reshape(x.shape)
        psnr, ssim = _quality(x, back)
        points.append({"setting": f"lambda {lam:g}", "bpp": 8 * len(data) / pixels, "psnr": psnr, "ssim": ssim,
                       "estimate_bpp": codec.coder.bits_estimate(x.reshape(len(x), 1, 28, 28)) / pixels,
                       "encode_images_per_s": len(x) / te, "decode_images_per_s": len(x) / td, "model": origin})
        examples[f"vaekit, lambda {lam:g}"] = back[:8]
        print(json.dumps({name: points[-1]}), flush=True)
    curves["vaekit lossy-ae (.vkz)"] = points
    for codec_name, settings in _lossy_codecs().items():
        points = []
        for setting, enc, dec in settings:
            files, te = _timed(enc, x)
            back, td = _timed(dec, files)
            psnr, ssim = _quality(x, back)
            label = (f"target {setting['quality_layers'][0]} dB" if "quality_layers" in setting
                     else f"quality {setting['quality']}")
            points.append({"setting": label, "bpp": 8 * sum(map(len, files)) / pixels, "psnr": psnr, "ssim": ssim,
                           "encode_images_per_s": len(x) / te, "decode_images_per_s": len(x) / td})
            if setting.get("quality") == 50 or setting.get("quality_layers") == [30]:
                examples[f"{codec_name}, {label}"] = back[:8]
        curves[codec_name] = points
        print(json.dumps({name: {codec_name: points}}), flush=True)
    return {"images": len(x), "curves": curves, "examples": {k: v.tolist() for k, v in examples.items()}}


def write_lossy(args, results: dict) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(f"{args.out}-lossy")
    lines = [f"# Lossy compression of images\n\nWritten by `python benchmarks/compression_benchmark.py "
             f"{' '.join(sys.argv[1:])}` on {os.cpu_count()} CPU cores ({torch.get_num_threads()} torch threads). "
             f"Bits per pixel count every byte written: for vaekit one .vkz file of all the images (its header "
             f"included), for the classical codecs one file per image, as a user would store them (their "
             f"headers included: on 28x28 images a JPEG header alone is over 2 bits per pixel). PSNR and SSIM "
             f"(scikit-image) are means over the images; every file was decoded again to measure them."]
    fig, axes = plt.subplots(len(results), 2, figsize=(11, 3.8 * len(results)), squeeze=False)
    for (name, r), (ax_p, ax_s) in zip(results.items(), axes):
        lines += [f"\n## {name} (the first {r['images']} test images)\n",
                  "| codec | setting | bits/pixel | PSNR dB | SSIM | encode images/s | decode images/s |",
                  "|---|---|---|---|---|---|---|"]
        for codec_name, points in r["curves"].items():
            for pt in points:
                lines.append(f"| {codec_name} | {pt['setting']} | {pt['bpp']:.3f} | {pt['psnr']:.2f} | "
                             f"{pt['ssim']:.3f} | {pt['encode_images_per_s']:,.0f} | "
                             f"{pt['decode_images_per_s']:,.0f} |")
            bpp = [pt["bpp"] for pt in points]
            style = dict(marker="o", lw=2.2, color="C3") if codec_name.startswith("vaekit") else dict(marker=".")
            ax_p.plot(bpp, [pt["psnr"] for pt in points], label=codec_name, **style)
            ax_s.plot(bpp, [pt["ssim"] for pt in points], label=codec_name, **style)
        ours = r["curves"]["vaekit lossy-ae (.vkz)"]
        worst = max(abs(pt["bpp"] / pt["estimate_bpp"] - 1) for pt in ours)
        lines.append(f"\nvaekit's files against its entropy model's estimate of the same codes: within "
                     f"{100 * worst:.2f}% (the header included).")
        for ax, what in ((ax_p, "PSNR (dB)"), (ax_s, "SSIM")):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # decades only: no crowded labels
            ax.set_xlabel("bits per pixel (log scale)")
            ax.set_ylabel(what)
            ax.set_title(f"{name}: {what} against rate")
            ax.grid(alpha=0.3)
        ax_s.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out.with_suffix(".png"), dpi=110)
    plt.close(fig)
    _examples_figure(results, Path(f"{out}-examples.png"))
    lines.append(f"\n![rate-distortion curves]({out.with_suffix('.png').name})\n\n"
                 f"![reconstructions]({out.name}-examples.png)\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({k: {**v, "examples": None} for k, v in results.items()},
                                                   indent=1))
    print("\n".join(lines))


def _examples_figure(results: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    rows = [(name, label, np.asarray(ims, np.uint8)) for name, r in results.items()
            for label, ims in r["examples"].items()]
    fig, axes = plt.subplots(len(rows), 8, figsize=(8 * 0.9, len(rows) * 0.95), squeeze=False)
    for (name, label, ims), row in zip(rows, axes):
        for ax, im in zip(row, ims):
            ax.imshow(im, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(f"{name}\n{label}", rotation=0, ha="right", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def one(name: str, kind: str, args) -> dict:
    binary = kind == "binary"
    model, origin = _model(name, kind, args)
    xte = load_idx_set(name, DATA, download=False)[2][:args.limit]
    x = binarize_once(torch.from_numpy(xte).float() / 255, 0).numpy().astype(np.uint8) if binary else xte
    dims = x.size
    scores = evaluate(model, x * 255 if binary else x, k=args.k, seed=0)
    codec = vaekit.Codec(model)
    data, t_enc = _timed(codec.compress, x)
    back, t_dec = _timed(codec.decompress, data)
    assert np.array_equal(back, x), "vaekit's codec did not decode bit for bit"
    header = 8 * (len(data) - sum(len(b.data) for b in container.from_bytes(data).blocks))
    rows = {"vaekit bits-back (.vkz)": {"bits_per_dim": 8 * len(data) / dims,
                                        "overhead_bits_per_dim": (header + codec.initial_bits(len(x))) / dims,
                                        "encode_images_per_s": len(x) / t_enc,
                                        "decode_images_per_s": len(x) / t_dec}}
    for codec_name, (enc, dec) in CLASSICAL.items():
        out, te = _timed(enc, x, binary)
        got, td = _timed(dec, out, x, binary)
        assert np.array_equal(got, x), f"{codec_name} did not decode bit for bit"
        size = sum(len(f) for f in out) if isinstance(out, list) else len(out)
        rows[codec_name] = {"bits_per_dim": 8 * size / dims, "encode_images_per_s": len(x) / te,
                            "decode_images_per_s": len(x) / td}
    return {"images": len(x), "model": origin, "neg_elbo_bits_per_dim": scores["neg_elbo_bits_per_dim"],
            "nll_bits_per_dim": scores["nll_bits_per_dim"], "k": args.k, "codecs": rows}


def write(args, results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [f"# Lossless compression of images\n\nWritten by `python benchmarks/compression_benchmark.py "
             f"{' '.join(sys.argv[1:])}` on {os.cpu_count()} CPU cores ({torch.get_num_threads()} torch threads). "
             f"Binary images: the test images binarised by one Bernoulli draw (seed 0); 8-bit: the test images as "
             f"they are. Every codec's bytes were decoded again "
             f"and checked bit for bit. Bits per dimension count every byte written (for vaekit, the .vkz header "
             f"and the chains' initial words too, shown apart as overhead); uncompressed, a binary image is 1 "
             f"bit per dimension and an 8-bit one 8."]
    cols = min(2, len(results))
    rows_ = math.ceil(len(results) / cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(6.5 * cols, 3.6 * rows_), squeeze=False)
    for ax, (name, r) in zip(axes.flat, results.items()):
        lines += [f"\n## {name} ({r['images']} test images; model {r['model']})\n",
                  f"The model's -ELBO: {r['neg_elbo_bits_per_dim']:.4f} bits/dim; its importance-sampled NLL (k="
                  f"{r['k']}): {r['nll_bits_per_dim']:.4f} bits/dim.\n",
                  "| codec | bits/dim | of which header and initial words | encode images/s | decode images/s |",
                  "|---|---|---|---|---|"]
        for codec_name, c in r["codecs"].items():
            init = f"{c['overhead_bits_per_dim']:.4f}" if "overhead_bits_per_dim" in c else "-"
            lines.append(f"| {codec_name} | {c['bits_per_dim']:.4f} | {init} | {c['encode_images_per_s']:,.0f} | "
                         f"{c['decode_images_per_s']:,.0f} |")
        ours = r["codecs"]["vaekit bits-back (.vkz)"]
        net = ours["bits_per_dim"] - ours["overhead_bits_per_dim"]
        lines.append(f"\nvaekit's file: {ours['bits_per_dim']:.4f} bits/dim, {net:.4f} without header and initial "
                     f"words: {100 * (net / r['neg_elbo_bits_per_dim'] - 1):+.2f}% against the -ELBO.")
        names = list(r["codecs"])
        ax.barh(names, [r["codecs"][n]["bits_per_dim"] for n in names], color=["C3"] + ["C0"] * (len(names) - 1))
        ax.axvline(r["neg_elbo_bits_per_dim"], color="k", ls="--", lw=1, label="model -ELBO")
        ax.set_xlabel("bits per dimension (lower is better)")
        ax.set_title(f"{name}, {r['images']} test images")
        ax.invert_yaxis()
        ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out.with_suffix(".png"), dpi=110)
    lines.append(f"\n![bits per dimension]({out.with_suffix('.png').name})\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
