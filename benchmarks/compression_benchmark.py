"""Lossless compression of dynamically binarised MNIST and Fashion-MNIST: vaekit's bits-back codec against
classical codecs, on the whole test sets, in one run.

    python benchmarks/compression_benchmark.py [--data mnist fashion-mnist] [--epochs 30] [--run-dir DIR]

For each data set a VAE (784-400-20 by default, Bernoulli likelihood, dynamic binarisation) is trained on the
training split, or read from --run-dir/DATASET when there; the 10,000 test images are binarised by one
Bernoulli draw (seed 0). Every codec writes real bytes and decodes them again (checked bit for bit): vaekit's
.vkz file (header included; the chain's initial words shown apart), gzip / bzip2 / LZMA of the packed bits,
PNG (1-bit, optimised) and WebP lossless per image as a user would store them. Bits per dimension next to the
model's -ELBO and importance-sampled NLL, and images per second to encode and to decode. Writes OUT.md,
OUT.json and OUT.png.
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
from vaekit.evaluate import evaluate  # noqa: E402
from vaekit.tasks.compression import container  # noqa: E402

DATA = Path(os.environ.get("VAEKIT_DATA", ROOT.parent / "shared" / "data"))


def _timed(f, *a):
    t0 = time.perf_counter()
    out = f(*a)
    return out, time.perf_counter() - t0


def _stream(compress, decompress):
    """A codec over the whole set's packed bits."""
    def enc(x):
        return compress(np.packbits(x.reshape(len(x), -1), axis=1).tobytes())

    def dec(data, like):
        bits = np.frombuffer(decompress(data), np.uint8).reshape(len(like), -1)
        return np.unpackbits(bits, axis=1)[:, :like[0].size].reshape(like.shape)
    return enc, dec


def _per_image(fmt: str, **save):
    """A codec that writes one image file per image (their sizes summed, as a user would store them)."""
    from PIL import Image

    def enc(x):
        files = []
        for im in x:
            buf = io.BytesIO()
            img = Image.fromarray((im.reshape(28, 28) * 255).astype(np.uint8))
            (img.convert("1") if fmt == "PNG" else img).save(buf, fmt, **save)
            files.append(buf.getvalue())
        return files

    def dec(files, like):
        return np.stack([(np.asarray(Image.open(io.BytesIO(f)).convert("L")) > 127).astype(np.uint8)
                         for f in files]).reshape(like.shape)
    return enc, dec


CLASSICAL = {
    "gzip -9": _stream(lambda b: gzip.compress(b, 9), gzip.decompress),
    "bzip2 -9": _stream(lambda b: bz2.compress(b, 9), bz2.decompress),
    "LZMA (xz -9e)": _stream(lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
    "PNG (1-bit, optimised)": _per_image("PNG", optimize=True),
    "WebP lossless": _per_image("WEBP", lossless=True, quality=100, method=6),
}


def _model(name: str, args):
    run = Path(args.run_dir) / name if args.run_dir else None
    if run is not None and (run / "config.json").is_file():
        return vaekit.load(run, device="cpu"), f"read from {run}"
    xtr = load_idx_set(name, DATA, download=False)[0]
    model = vaekit.VAE(latent_dim=args.latent_dim, hidden=(args.hidden,), epochs=args.epochs, binarize=True,
                       random_state=0, verbose=True)
    _, seconds = _timed(model.fit, xtr)
    if run is not None:
        model.save(run)
    return model, f"trained here in {seconds:.0f} s"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["mnist", "fashion-mnist"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--latent-dim", type=int, default=20)
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--limit", type=int, default=None, help="code only the first N test images")
    p.add_argument("--k", type=int, default=1000, help="importance samples of the NLL")
    p.add_argument("--run-dir", default=None, help="read (or save) each data set's model in DIR/DATASET")
    p.add_argument("--out", default=str(ROOT / "docs" / "compression-benchmark"))
    args = p.parse_args()
    results = {}
    for name in args.data:
        model, origin = _model(name, args)
        xte = load_idx_set(name, DATA, download=False)[2][:args.limit]
        x = (np.random.default_rng(0).random(xte.shape) < xte / 255.0).astype(np.uint8)
        dims = x.size
        scores = evaluate(model, x * 255, k=args.k, seed=0)
        codec = vaekit.Codec(model)
        data, t_enc = _timed(codec.compress, x)
        back, t_dec = _timed(codec.decompress, data)
        assert np.array_equal(back, x), "vaekit's codec did not decode bit for bit"
        initial = 32 * codec.coder.initial_words * math.ceil(len(x) / codec.block)
        header = 8 * (len(data) - sum(len(b.data) for b in container.from_bytes(data).blocks))
        rows = {"vaekit bits-back (.vkz)": {"bits_per_dim": 8 * len(data) / dims,
                                            "overhead_bits_per_dim": (header + initial) / dims,
                                            "encode_images_per_s": len(x) / t_enc,
                                            "decode_images_per_s": len(x) / t_dec}}
        for codec_name, (enc, dec) in CLASSICAL.items():
            out, te = _timed(enc, x)
            got, td = _timed(dec, out, x)
            assert np.array_equal(got, x), f"{codec_name} did not decode bit for bit"
            size = sum(len(f) for f in out) if isinstance(out, list) else len(out)
            rows[codec_name] = {"bits_per_dim": 8 * size / dims, "encode_images_per_s": len(x) / te,
                                "decode_images_per_s": len(x) / td}
        results[name] = {"images": len(x), "model": origin, "neg_elbo_bits_per_dim": scores["neg_elbo_bits_per_dim"],
                         "nll_bits_per_dim": scores["nll_bits_per_dim"], "k": args.k, "codecs": rows}
        print(json.dumps({name: results[name]}), flush=True)
    write(args, results)


def write(args, results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [f"# Lossless compression of binarised images\n\nWritten by `python benchmarks/compression_benchmark.py "
             f"{' '.join(sys.argv[1:])}` on {os.cpu_count()} CPU cores ({torch.get_num_threads()} torch threads). "
             f"The test images are binarised by one Bernoulli draw (seed 0); every codec's bytes were decoded again "
             f"and checked bit for bit. Bits per dimension count every byte written (for vaekit, the .vkz header "
             f"and the chains' initial words too, shown apart as overhead); an uncompressed binary image is 1 "
             f"bit per dimension."]
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 3.6), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items()):
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
        ax.set_title(f"binarised {name}, {r['images']} test images")
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
