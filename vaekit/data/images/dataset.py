"""One loaded data set with deterministic train / validation / test splits."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...config import DataConfig
from ...errors import VaekitError, unknown_name
from .files import check_array, load_array_file, load_image_folder
from ..scenes.named import SCENE_SETS, classes as scene_classes, load_scene_split
from .named import IDX_SETS, load_idx_set
from .rows import DiskRows

SPLIT_SEED = 0  # fixed, so runs with different training seeds share one split


@dataclass
class Split:
    x: np.ndarray | DiskRows  # (N, *shape): uint8 images in [0, 255] or float32
    y: np.ndarray | None  # (N,) int64


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split | None
    test: Split
    classes: list[str] | None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])


NAMED = ("digits", *IDX_SETS, *SCENE_SETS)


def load_data(cfg: DataConfig) -> Dataset:
    """Load cfg.source (a named set or a path) and split it."""
    cfg.validate()
    src = cfg.source
    path = Path(src).expanduser()
    if src in IDX_SETS:
        xtr, ytr, xte, yte = load_idx_set(src, cfg.data_dir)
        xtr, xte = xtr[:, None], xte[:, None]  # (N, 1, 28, 28)
        classes = list(IDX_SETS[src].classes)
        return _finish(src, Split(xtr, ytr.astype(np.int64)), Split(xte, yte.astype(np.int64)), classes, cfg)
    if src in SCENE_SETS:  # generated from a fixed seed: the same scenes on every machine
        train, test = (load_scene_split(src, part, cfg.limit) for part in ("train", "test"))
        return _finish(src, Split(train.images, train.labels), Split(test.images, test.labels),
                       scene_classes(src), cfg)
    if src == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (d.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
        train, test = _holdout(Split(x, d.target.astype(np.int64)), cfg.test_fraction)
        return _finish("digits", train, test, [str(i) for i in range(10)], cfg)
    if path.is_dir():
        x, y, classes = load_image_folder(path, cfg.image_size)
        train, test = _holdout(Split(x, y), cfg.test_fraction)
        return _finish(str(path), train, test, classes, cfg)
    if path.suffix in (".npy", ".npz"):
        if not path.is_file():
            raise VaekitError(f"array file not found: {path}")
        if cfg.memmap:
            if path.suffix != ".npy":
                raise VaekitError(f"memmap reads .npy files; {path} is .npz: save the array with np.save")
            train, test = _holdout(Split(DiskRows.open(path), None), cfg.test_fraction)
            return _finish(str(path), train, test, None, cfg)
        x, y = load_array_file(path)
        train, test = _holdout(Split(to_model_layout(x, str(path)), y), cfg.test_fraction)
        return _finish(str(path), train, test, None, cfg)
    if path.exists():
        raise VaekitError(f"cannot read {path}: expected a folder of images, a .npy or an .npz file")
    err = unknown_name("data set", src, NAMED)
    raise VaekitError(f"{err} Or pass a path to an image folder, a .npy or an .npz file (no such path: {path}).")


def to_model_layout(x: np.ndarray, name: str = "X") -> np.ndarray:
    """(N, D) stays flat; (N, H, W) becomes (N, 1, H, W); channels-last (N, H, W, C<=4) becomes (N, C, H, W)."""
    x = check_array(x, name)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    elif x.ndim > 4:
        raise VaekitError(f"{name} has shape {x.shape}; expected (N, D), (N, H, W) or (N, C, H, W)")
    if x.dtype != np.uint8:
        x = x.astype(np.float32, copy=False)
    return x


def _holdout(data: Split, fraction: float) -> tuple[Split, Split]:
    n = len(data.x)
    n_out = max(1, round(n * fraction))
    if n - n_out < 2:
        raise VaekitError(f"only {n} examples: too few to split off a test set; add data or lower test_fraction")
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    return _take(data, order[n_out:]), _take(data, order[:n_out])


def _take(data: Split, idx) -> Split:
    x = data.x.subset(idx) if isinstance(data.x, DiskRows) else data.x[idx]  # on-disk rows stay on disk
    return Split(x, None if data.y is None else data.y[idx])


def _finish(name, train: Split, test: Split, classes, cfg: DataConfig) -> Dataset:
    if cfg.limit is not None:
        train, test = _take(train, slice(cfg.limit)), _take(test, slice(cfg.limit))
    val = None
    if cfg.val_fraction > 0:
        train, val = _holdout(train, cfg.val_fraction)
    return Dataset(name, train, val, test, classes)
