"""Reader for the IDX format of MNIST-like data sets (LeCun et al.), raw or gzip-compressed.

Layout: two zero bytes, a type code, the number of dimensions n, then n big-endian uint32 sizes and
the values in row-major order, big-endian.
"""
from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import numpy as np

from ...errors import VaekitError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


MAX_DEFLATE_RATIO = 1032  # the most deflate can expand: 258 bytes from 2 bits


def read_idx_bytes(path: str | Path) -> bytearray:
    """The uncompressed bytes of an IDX file (gzip detected by its magic bytes, not the file name).

    Returned in one mutable buffer that parse_idx wraps without copying: a 60k-image file is then
    held once (47 MB), not twice.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise VaekitError(f"IDX file not found: {path}") from None
    if raw[:2] != b"\x1f\x8b":
        return bytearray(raw)
    damaged = f"{path} is a damaged gzip file ({{}}); delete it and download or copy it again"
    size = int.from_bytes(raw[-4:], "little")  # gzip's trailer: the uncompressed size mod 2^32
    if size > MAX_DEFLATE_RATIO * len(raw):  # deflate cannot expand that much: the trailer lies
        raise VaekitError(damaged.format(f"its trailer claims {size} bytes from {len(raw)} compressed"))
    buf = bytearray(size)
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            n = f.readinto(buf)
            rest = f.read()
    except (EOFError, OSError, zlib.error) as e:
        raise VaekitError(damaged.format(e)) from None
    if n != len(buf):
        raise VaekitError(damaged.format(f"{n} bytes decompressed, its trailer says {len(buf)}"))
    return buf + rest if rest else buf  # rest: only for files over 4 GiB, whose trailer wraps around


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
    native = arr.dtype.newbyteorder("=")
    if not arr.flags.writeable:  # immutable bytes: a writable copy in native byte order
        return arr.astype(native)
    return arr if arr.dtype == native else arr.byteswap(inplace=True).view(native)


def read_idx(path: str | Path) -> np.ndarray:
    return parse_idx(read_idx_bytes(path), name=str(path))
