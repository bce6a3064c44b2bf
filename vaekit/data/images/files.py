"""The user's own data: a folder of images, or a .npy / .npz array."""
from __future__ import annotations

import math
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ...errors import VaekitError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F", "P"}  # P is checked for colour below


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def load_image_folder(folder: str | Path, image_size: tuple[int, int] | None = None):
    """(x uint8 (N, C, H, W), y int64 or None, class names or None).

    Images in sub-folders are labelled by the sub-folder's name; grey images load as 1 channel, any
    colour image makes every image RGB.
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    files = _image_files(folder)
    if not files:
        raise VaekitError(
            f"no images in {folder}: expected .png/.jpg files there or in one sub-folder per class"
        )
    classes = sorted({p.relative_to(folder).parts[0] for p in files if len(p.relative_to(folder).parts) > 1})
    loose = [p for p in files if len(p.relative_to(folder).parts) == 1]
    if classes and loose:
        raise VaekitError(
            f"{folder} mixes images in sub-folders (read as classes {classes[:3]}...) with loose images "
            f"such as {loose[0].name}; move every image into a class sub-folder, or none"
        )
    images = []
    for p in files:
        try:
            with Image.open(p) as im:
                im.load()
                images.append(im.copy())
        except Exception as e:  # a decoder meets a damaged file with any of a dozen error types
            what = e if isinstance(e, (UnidentifiedImageError, OSError)) else f"{type(e).__name__}: {e}"
            raise VaekitError(f"cannot read image {p}: {what}; remove or replace the file") from None
    grey = all(im.mode in _GREY_MODES and not (im.mode == "P" and _palette_has_colour(im)) for im in images)
    mode = "L" if grey else "RGB"
    if image_size is None:
        sizes = {im.size for im in images}
        if len(sizes) > 1:
            (w0, h0), (w1, h1) = sorted(sizes)[:2]
            a = next(p for p, im in zip(files, images) if im.size == (w0, h0))
            b = next(p for p, im in zip(files, images) if im.size == (w1, h1))
            raise VaekitError(
                f"images in {folder} have {len(sizes)} different sizes (e.g. {a.name} is {h0}x{w0}, "
                f"{b.name} is {h1}x{w1}); pass --image-size H W (image_size=(H, W)) to resize them all"
            )
    arrays = []
    for im in images:
        im = im.convert(mode)
        if image_size is not None and im.size != (image_size[1], image_size[0]):
            im = im.resize((image_size[1], image_size[0]), Image.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    x = np.stack(arrays)
    if not classes:
        return x, None, None
    y = np.array([classes.index(p.relative_to(folder).parts[0]) for p in files], dtype=np.int64)
    return x, y, classes


def _palette_has_colour(im) -> bool:
    rgb = np.asarray(im.convert("RGB"))
    return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())


_X_KEYS = ("x", "X", "images", "data")
_Y_KEYS = ("y", "Y", "labels", "targets")


@contextmanager
def reading_arrays(path):
    """Inside: numpy's errors for a damaged .npy / .npz (a truncated zip, a short array, a pickled object)
    become one VaekitError that names the file and what to do."""
    try:
        yield
    except VaekitError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise VaekitError(f"cannot read {path}: the file is damaged or truncated ({type(e).__name__}: {e}); "
                          f"copy or save it again") from None
    except ValueError as e:  # object arrays need pickle, which is refused; short or malformed .npy headers
        raise VaekitError(f"cannot read {path}: {e}; save plain numeric arrays (no objects) with np.save / "
                          f"np.savez") from None
    except Exception as e:  # numpy's header parser meets a damaged header with others too (TokenError, ...)
        raise VaekitError(f"cannot read {path}: its array header is damaged ({type(e).__name__}: {e}); copy or "
                          f"save it again") from None


def check_npy_header(f, available: int, name: str) -> None:
    """Refuse a .npy stream whose header claims more bytes than the file holds, or objects (which need pickle),
    from the header alone: a header that claims 10^9 rows is refused before anything is allocated."""
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(f)
    if dtype.hasobject:
        raise VaekitError(f"{name} holds Python objects, which only pickle can load, and vaekit loads no pickle; "
                          f"save plain numeric arrays (no objects) with np.save / np.savez")
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > available - f.tell():
        raise VaekitError(f"{name}: its header claims an array of shape {shape} ({claimed} bytes), but the file holds "
                          f"{max(available - f.tell(), 0)} bytes after the header: it is truncated or damaged")


def _check_array_file(path: Path) -> None:
    if path.suffix == ".npy":
        with open(path, "rb") as f:
            check_npy_header(f, path.stat().st_size, str(path))
        return
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.filename.endswith(".npy"):
                with z.open(info) as f:
                    check_npy_header(f, info.file_size, f"{path}:{info.filename[:-4]}")


def load_array_file(path: str | Path):
    """(x, y or None) from .npy (x only) or .npz (x under x/X/images/data, labels under y/labels/targets).

    Loaded with allow_pickle=False: an array file from a stranger runs no code.
    """
    path = Path(path)
    with reading_arrays(path):
        _check_array_file(path)
        if path.suffix == ".npy":
            return check_array(np.load(path, allow_pickle=False), str(path)), None
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            xkey = next((k for k in _X_KEYS if k in z), keys[0] if len(keys) == 1 else None)
            if xkey is None:
                raise VaekitError(
                    f"{path} holds arrays {keys} but none named {'/'.join(_X_KEYS)}; save the data as "
                    f"np.savez(path, x=data, y=labels)"
                )
            ykey = next((k for k in _Y_KEYS if k in z), None)
            x = check_array(z[xkey], f"{path}:{xkey}")
            y = None if ykey is None else np.asarray(z[ykey])
    if y is not None and len(y) != len(x):
        raise VaekitError(f"{path}: {len(x)} examples but {len(y)} labels; they must match one to one")
    return x, y


def refuse_sparse(x, name: str = "X") -> None:
    if hasattr(x, "toarray") and hasattr(x, "nnz"):  # scipy.sparse matrices and arrays
        raise VaekitError(f"{name} is sparse; sparse input is not supported: pass {name}.toarray()")


def check_array(x: np.ndarray, name: str = "X") -> np.ndarray:
    """Numeric, non-empty, finite: else a VaekitError naming the first bad row."""
    refuse_sparse(x, name)
    x = np.asarray(x)
    if np.iscomplexobj(x):
        raise VaekitError(f"{name}: Complex data not supported; pass the real part, or magnitude and phase as features")
    if x.dtype == bool:
        x = x.astype(np.uint8)
    elif x.dtype == object:  # numbers held as Python objects; anything else raises TypeError here
        x = x.astype(np.float64)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise VaekitError(f"{name} has dtype {x.dtype}; expected numbers (uint8 images or floats)")
    if x.ndim < 2 or len(x) == 0:
        raise VaekitError(f"{name} has shape {x.shape}; expected (n_examples, features...) with n_examples >= 1")
    if x[0].size == 0:  # scikit-learn's wording
        raise VaekitError(f"{name}: Found array with 0 feature(s) (shape={x.shape}) while a minimum of 1 is required.")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise VaekitError(
                f"{name} has NaN or inf values in {len(rows)} rows (first: row {rows[0]}); "
                f"remove or impute them before training"
            )
    return x
