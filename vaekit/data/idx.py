"""Reader for the IDX format of MNIST-like data sets (LeCun et al.), raw or gzip-compressed.

Layout: two zero bytes, a type code, the number of dimensions n, then n big-endian uint32 sizes and
the values in row-major order, big-endian.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import VaekitError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx_bytes(path: str | Path) -> bytes:
    """The uncompressed bytes of an IDX file (gzip detected by its magic bytes, not the file name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise VaekitError(f"IDX file not found: {path}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise VaekitError(
                f"{path} is a damaged gzip file ({e}); delete it and download or copy it again"
            ) from None
    return raw


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Validate the header against the payload and return the array (native byte order)."""
    fix = "the file is corrupt or not IDX; delete it and download or copy it again"
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise VaekitError(f"{name}: bad magic number {data[:4].hex() or '(empty)'}, expected 0000TTNN; {fix}")
    dtype, ndim = _TYPES.get(data[2]), data[3]
    if dtype is None:
        raise VaekitError(f"{name}: unknown IDX type code 0x{data[2]:02x}; {fix}")
    if ndim == 0 or len(data) < 4 + 4 * ndim:
        raise VaekitError(f"{name}: header declares {ndim} dimensions but is cut short; {fix}")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = int(np.prod(dims)) * np.dtype(dtype).itemsize
    payload = len(data) - 4 - 4 * ndim
    if payload != expected:
        state = "truncated" if payload < expected else "longer than its header says"
        raise VaekitError(
            f"{name}: {state}: header {dims} needs {expected} bytes of values, found {payload}; {fix}"
        )
    arr = np.frombuffer(data, dtype, offset=4 + 4 * ndim).reshape(dims)
    return arr.astype(arr.dtype.newbyteorder("="))  # a writable copy in native byte order


def read_idx(path: str | Path) -> np.ndarray:
    return parse_idx(read_idx_bytes(path), name=str(path))
