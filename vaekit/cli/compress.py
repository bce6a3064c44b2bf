"""`vaekit compress RUN INPUT --out FILE [--lossy]` and `vaekit decompress FILE --run RUN --out DIR|FILE.npy`:
images into .vkz files with a trained model (tasks.compression): lossless with a VAE (binary images) or
`lossless-vae` (8-bit ones), lossy with a `lossy-ae`."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..errors import VaekitError
from .common import count, load_run

HELP = "compress images into a .vkz file with a trained model (lossless: bits-back ANS; --lossy: a lossy-ae)"
DECOMPRESS_HELP = "decompress a .vkz file with the run that wrote it"


def add_arguments(p) -> None:
    p.add_argument("run", help="a run folder: a VAE trained on binarised images ('vaekit train --binarize'), a "
                               "'lossless-vae' (8-bit images) or, with --lossy, a 'lossy-ae'")
    p.add_argument("input", help="a named data set (its test split, e.g. mnist), a .npy / .npz array or a folder "
                                 "of images")
    p.add_argument("--out", required=True, help="the .vkz file to write")
    p.add_argument("--binarize", action="store_true",
                   help="read grey pixels as probabilities and code one Bernoulli draw (fixed by --seed); a named "
                        "data set is binarised so when the model codes binary images")
    p.add_argument("--lossy", action="store_true",
                   help="code with a lossy-ae: the file decodes to its reconstructions, at the rate-distortion "
                        "trade-off it was trained with ('vaekit train --model lossy-ae --lambda L')")
    p.add_argument("--limit", type=count(), help="code only the first N examples")
    p.add_argument("--block", type=count(), default=10000, help="examples per independent chain")
    p.add_argument("--data-dir", help="where a named data set lives")
    p.add_argument("--seed", type=int, default=0, help="seed of the binarisation")


def add_decompress_arguments(p) -> None:
    p.add_argument("file", help="a .vkz file written by 'vaekit compress'")
    p.add_argument("--run", required=True, help="the run folder that compressed it")
    p.add_argument("--out", required=True, help="a .npy file, or a folder to fill with PNG images")


def _inputs(args, binary_model: bool) -> np.ndarray:
    from ..data.images.files import load_array_file, load_image_folder
    from ..data.images.named import IDX_SETS, load_idx_set

    path = Path(args.input)
    if args.input in IDX_SETS and not path.exists():
        x, binarize = load_idx_set(args.input, args.data_dir)[2], binary_model
    elif path.is_dir():
        x, binarize = load_image_folder(path)[0], args.binarize
    elif path.suffix in (".npy", ".npz") and path.is_file():
        x, binarize = load_array_file(path)[0], args.binarize
    else:
        raise VaekitError(f"{args.input} is neither a named data set ({', '.join(IDX_SETS)}), a .npy / .npz file "
                          f"nor a folder of images")
    x = x[:args.limit]
    if binarize:
        import torch

        from ..data.batches import binarize_once, to_unit_float

        grey = to_unit_float(torch.from_numpy(np.ascontiguousarray(x))).float()
        if grey.min() < 0 or grey.max() > 1:
            raise VaekitError("--binarize reads pixels as probabilities: give uint8 images or floats in [0, 1]")
        x = binarize_once(grey, args.seed).numpy().astype(np.uint8)  # the draw 'vaekit evaluate --binarize' scores
    return x


def run(args) -> int:
    from ..io import atomic_write_bytes
    from ..tasks.compression.codec import Codec

    model = load_run(args.run)
    codec = Codec(model, block=args.block)
    if codec.lossy != args.lossy:
        raise VaekitError(f"{args.run} is a lossy model: its files decode to reconstructions, not the images; "
                          f"say --lossy to code with it" if codec.lossy else
                          f"--lossy needs a lossy-ae run ('vaekit train --model lossy-ae --lambda L'); {args.run} "
                          f"codes losslessly: drop --lossy")
    x = _inputs(args, codec.coder.values == "binary")
    t0 = time.perf_counter()
    data = codec.compress(x)
    seconds = time.perf_counter() - t0
    atomic_write_bytes(args.out, data)
    dims = x[0].size * len(x)
    print(json.dumps({"file": args.out, "examples": len(x), "bytes": len(data),
                      "bits_per_dim": round(8 * len(data) / dims, 5),
                      "initial_bits_per_dim": round(codec.initial_bits(len(x)) / dims, 5),
                      "images_per_s": round(len(x) / seconds, 1)}))
    return 0


def run_decompress(args) -> int:
    from ..io import atomic_write_npy
    from ..tasks.compression.codec import Codec

    path = Path(args.file)
    if not path.is_file():
        raise VaekitError(f"{path} does not exist")
    model = load_run(args.run)
    codec = Codec(model)
    x = codec.decompress(path.read_bytes(), str(path))
    out = Path(args.out)
    if out.suffix == ".npy":
        atomic_write_npy(out, x)
    else:
        from PIL import Image

        out.mkdir(parents=True, exist_ok=True)
        width = len(str(max(len(x) - 1, 0)))
        for i, im in enumerate(x):
            im = np.squeeze(im * 255 if codec.coder.values == "binary" else im).astype(np.uint8)
            if im.ndim == 3:
                im = np.moveaxis(im, 0, -1)
            Image.fromarray(im).save(out / f"{i:0{width}d}.png")
    print(json.dumps({"file": str(path), "examples": len(x), "out": str(out)}))
    return 0
