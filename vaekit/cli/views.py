"""Commands that look at a trained run: sample, reconstruct, interpolate, traverse, latent-map, manifold."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import plots
from ..errors import VaekitError
from ..latent import interpolate_codes
from ..io import atomic_write_npy
from .common import add_run_args, count, load_run, load_run_data


def _write(array: np.ndarray, out: str, draw) -> None:
    """.npy gets the raw array; anything else gets the picture."""
    if out.endswith(".npy"):
        atomic_write_npy(out, array)
    else:
        draw(out)
    print(out)


# -- sample ----------------------------------------------------------------------------------------
def add_sample(p) -> None:
    add_run_args(p)
    p.add_argument("-n", type=count(), default=64, help="how many samples")


def run_sample(args) -> int:
    model = load_run(args.run)
    x = model.sample(args.n, random_state=args.seed)
    _write(x, args.out, lambda out: plots.image_grid(x, out))
    return 0


# -- reconstruct -----------------------------------------------------------------------------------
def add_reconstruct(p) -> None:
    add_run_args(p)
    p.add_argument("-n", type=count(), default=20, help="how many test examples")


def run_reconstruct(args) -> int:
    model = load_run(args.run)
    x = load_run_data(args.run, args.data_dir).test.x[:args.n]
    x_hat = model.reconstruct(x)
    _write(x_hat, args.out, lambda out: plots.paired_rows(x, x_hat, out))
    return 0


# -- interpolate -----------------------------------------------------------------------------------
def add_interpolate(p) -> None:
    add_run_args(p)
    p.add_argument("--from", dest="start", required=True, help="test-set index or image path")
    p.add_argument("--to", dest="end", required=True, help="test-set index or image path")
    p.add_argument("--steps", type=count(2), default=10, help="images on the path, both ends included")
    p.add_argument("--method", choices=["linear", "slerp", "both"], default="both",
                   help="path through latent space (both: the linear row above the spherical one)")


def _example(ref: str, run: str, args, model) -> np.ndarray:
    if ref.lstrip("-").isdigit():
        test = load_run_data(run, args.data_dir).test.x
        i = int(ref)
        if not -len(test) <= i < len(test):
            raise VaekitError(f"test-set index {i} is out of range: the test split has {len(test)} examples")
        return test[i]
    path = Path(ref)
    if not path.is_file():
        raise VaekitError(f"'{ref}' is neither a test-set index nor an image file")
    from ..data.images.files import load_image_folder  # one image: reuse the folder reader's conversions
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(path, tmp)
        shape = model.input_shape_
        x, _, _ = load_image_folder(tmp, image_size=tuple(shape[1:]) if len(shape) == 3 else None)
    if x.shape[1:] != tuple(shape):
        if x.shape[1] == 1 and shape[0] == 3:
            x = np.repeat(x, 3, axis=1)
        elif x.shape[1] == 3 and shape[0] == 1:
            x = x.mean(1, keepdims=True).round().astype(np.uint8)
    x = x[0]
    if model._user_shape != model.input_shape_:
        x = x.reshape(model._user_shape)
    if x.dtype == np.uint8 and _trained_on_floats(run):
        x = x.astype(np.float32) / 255
    return x


def _trained_on_floats(run: str) -> bool:
    try:
        return load_run_data(run).train.x.dtype != np.uint8
    except VaekitError:
        return False


def run_interpolate(args) -> int:
    model = load_run(args.run)
    x0, x1 = _example(args.start, args.run, args, model), _example(args.end, args.run, args, model)
    z = model.transform(np.stack([x0, x1]))
    methods = ["linear", "slerp"] if args.method == "both" else [args.method]
    rows = np.concatenate([model.inverse_transform(interpolate_codes(z[0], z[1], args.steps, m)) for m in methods])
    labels = [{"linear": "linear", "slerp": "spherical"}[m] for m in methods]
    _write(rows, args.out, lambda out: plots.image_grid(rows, out, ncol=args.steps, row_labels=labels))
    return 0


# -- traverse --------------------------------------------------------------------------------------
def add_traverse(p) -> None:
    add_run_args(p)
    p.add_argument("--index", default="0", help="test-set index or image path of the example to start from")
    p.add_argument("--dims", type=int, nargs="+", default=None, help="latent dimensions to move (default: all)")
    p.add_argument("--range", type=float, nargs=2, default=(-3.0, 3.0), metavar=("LOW", "HIGH"),
                   help="the values each dimension takes")
    p.add_argument("--steps", type=count(2), default=9, help="values from LOW to HIGH")


def run_traverse(args) -> int:
    model = load_run(args.run)
    x = _example(args.index, args.run, args, model)
    grid = model.traverse(x, args.dims, np.linspace(args.range[0], args.range[1], args.steps))
    dims = args.dims if args.dims is not None else range(len(grid))
    rows = grid.reshape(-1, *grid.shape[2:])
    _write(grid, args.out, lambda out: plots.image_grid(rows, out, ncol=args.steps,
                                                         row_labels=[f"z{d}" for d in dims]))
    return 0


# -- latent map ------------------------------------------------------------------------------------
def add_latent_map(p) -> None:
    add_run_args(p)
    p.add_argument("-n", type=count(), default=None, help="use only the first n test examples")


def run_latent_map(args) -> int:
    model = load_run(args.run)
    data = load_run_data(args.run, args.data_dir)
    x, y = data.test.x[:args.n], None if data.test.y is None else data.test.y[:args.n]
    codes = model.transform(x)
    codes = codes.reshape(len(codes), -1)  # codes of objects (K, D) are mapped as flat vectors
    _write(codes, args.out, lambda out: plots.latent_map(
        codes, y, data.classes, out, title=f"{Path(args.run).name}: test-set posterior means"))
    return 0


# -- manifold --------------------------------------------------------------------------------------
def add_manifold(p) -> None:
    add_run_args(p)
    p.add_argument("--grid", type=count(), default=20, help="images per side")
    p.add_argument("--dims", type=int, nargs=2, default=(0, 1), help="the two latent dimensions to vary")


def run_manifold(args) -> int:
    model = load_run(args.run)
    if len(model.code_shape_) != 1:
        raise VaekitError(f"a manifold walks a plane of one code vector; this model's code is "
                          f"{model.code_shape_} (objects by their numbers): use 'vaekit traverse' instead")
    d = model.module_.cfg.latent_dim
    if d < 2 or max(args.dims) >= d or args.dims[0] == args.dims[1]:
        raise VaekitError(f"--dims must name two different dimensions below latent_dim={d}; got {args.dims}")
    z = plots.gaussian_grid(args.grid, tuple(args.dims), d)
    x = model.inverse_transform(z)
    _write(x, args.out, lambda out: plots.image_grid(x, out, ncol=args.grid, scale=1 if x.shape[-1] >= 28 else 2))
    return 0


COMMANDS = {
    "sample": ("decode draws from the prior into an image grid", add_sample, run_sample),
    "reconstruct": ("test inputs above their reconstructions", add_reconstruct, run_reconstruct),
    "interpolate": ("decode a path between two inputs' codes", add_interpolate, run_interpolate),
    "traverse": ("move one latent dimension at a time from an input's code", add_traverse, run_traverse),
    "latent-map": ("test-set codes coloured by label (PCA above 2-D)", add_latent_map, run_latent_map),
    "manifold": ("decode a grid over a 2-D latent plane at Gaussian quantiles", add_manifold, run_manifold),
}
