"""Named data sets: found in a data directory or downloaded from their official sources and checksummed."""
from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import VaekitError
from ...io import atomic_write_bytes
from .idx import parse_idx, read_idx_bytes


@dataclass(frozen=True)
class IdxSet:
    """An MNIST-like set: four IDX files and the SHA-256 of each file's uncompressed bytes."""

    name: str
    mirrors: tuple[str, ...]
    sha256: dict[str, str]
    classes: tuple[str, ...]

    files = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


IDX_SETS = {
    s.name: s
    for s in (
        IdxSet(
            "mnist",
            ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
            {
                "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            },
            tuple(str(d) for d in range(10)),
        ),
        IdxSet(
            "fashion-mnist",
            ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
            {
                "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            },
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        ),
    )
}


def data_dirs(data_dir: str | os.PathLike | None) -> list[Path]:
    """Where named sets are looked for, in order: --data-dir, else $VAEKIT_DATA, then the per-user cache."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    dirs = [Path(os.environ["VAEKIT_DATA"]).expanduser()] if os.environ.get("VAEKIT_DATA") else []
    return dirs + [user_cache()]


def user_cache() -> Path:
    """The per-user cache: downloaded data sets and the feature nets of sample-quality metrics."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vaekit"


def _find(folder: Path, file: str) -> Path | None:
    for candidate in (folder / file, folder / f"{file}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_idx_set(name: str, data_dir=None, mirrors: tuple[str, ...] | None = None, download: bool = True):
    """(x_train, y_train, x_test, y_test) as uint8 arrays, from disk or, failing that, downloaded."""
    spec = IDX_SETS[name]
    dirs = data_dirs(data_dir)
    for base in dirs:
        folder = base / name
        paths = [_find(folder, f) for f in spec.files]
        if all(paths):
            return tuple(parse_idx(read_idx_bytes(p), str(p)) for p in paths)
        if any(paths):
            missing = [f for f, p in zip(spec.files, paths) if p is None]
            raise VaekitError(
                f"{folder} holds only part of {name}: missing {', '.join(missing)}. "
                f"Copy the missing files there (raw or .gz), or delete the folder to download it again."
            )
    searched = ", ".join(str(d / name) for d in dirs)
    if not download:
        raise VaekitError(f"data set '{name}' not found in {searched}; pass --data-dir DIR holding {name}/")
    env_mirror = os.environ.get("VAEKIT_MIRROR")
    mirrors = mirrors or ((env_mirror.rstrip("/") + f"/{name}/",) if env_mirror else spec.mirrors)
    target = dirs[0] / name
    try:
        arrays = tuple(_download(spec, f, target, mirrors) for f in spec.files)
    except VaekitError as e:
        raise VaekitError(
            f"data set '{name}' not found in {searched}, and downloading it failed: {e}. "
            f"Copy the four IDX files of {name} into {target}/ or pass --data-dir DIR holding {name}/."
        ) from None
    return arrays


def _download(spec: IdxSet, file: str, folder: Path, mirrors: tuple[str, ...]) -> np.ndarray:
    errors = []
    for mirror in mirrors:
        url = f"{mirror}{file}.gz"
        try:
            print(f"downloading {url}", file=sys.stderr)
            with urllib.request.urlopen(url, timeout=30) as response:
                blob = response.read()
        except (urllib.error.URLError, OSError) as e:
            errors.append(f"{url}: {getattr(e, 'reason', e)}")
            continue
        path = folder / f"{file}.gz"
        atomic_write_bytes(path, blob)  # written before checking so the checksum error can name it
        data = read_idx_bytes(path)
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.sha256[file]:
            path.unlink()
            errors.append(f"{url}: checksum {digest[:12]}… != expected {spec.sha256[file][:12]}…")
            continue
        return parse_idx(data, str(path))
    raise VaekitError("; ".join(errors) or "no mirror to download from")
