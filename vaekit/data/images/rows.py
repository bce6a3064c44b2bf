"""Rows of an array that stays on disk: training data larger than memory.

`DiskRows` wraps np.load(path, mmap_mode='r'). Splits are index arrays into it, never copies, and
indexing (an int, a slice, an index array) reads just those rows: the trainer gathers each minibatch
this way. The pages it reads are file-backed, so the OS evicts them under memory pressure instead of
the process running out of memory.
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import VaekitError

CHUNK_ROWS = 8192  # rows per read when the whole array must be scanned (checks)


class DiskRows:
    """A read-only, row-indexable view of an on-disk array in the model's layout: (N, D) or (N, C, H, W),
    uint8 (pixels) or float32."""

    def __init__(self, array: np.ndarray, index: np.ndarray | None = None, channels_last: bool = False):
        self.array = array
        self.index = np.arange(len(array)) if index is None else np.asarray(index)
        self.channels_last = channels_last  # (N, H, W, C) on disk: transposed per read
        row = array.shape[1:]
        if channels_last:
            row = (row[-1], *row[:-1])
        elif array.ndim == 3:
            row = (1, *row)
        self.row_shape = tuple(row)
        self.dtype = np.dtype(np.uint8) if array.dtype == np.uint8 else np.dtype(np.float32)

    @classmethod
    def open(cls, path) -> DiskRows:
        """Map a .npy file (no pickle) and check it streams finite numbers in a supported layout."""
        from .files import reading_arrays

        with reading_arrays(path):
            a = np.load(path, mmap_mode="r", allow_pickle=False)
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)) or a.ndim < 2 or not len(a):
            raise VaekitError(f"{path} holds {a.dtype} of shape {a.shape}; expected numbers, (n_examples, features...)")
        channels_last = a.ndim == 4 and a.shape[-1] in (1, 3, 4) and a.shape[1] not in (1, 3, 4)
        rows = cls(a, channels_last=channels_last)
        if np.issubdtype(a.dtype, np.floating):
            for start in range(0, len(a), CHUNK_ROWS):
                bad = ~np.isfinite(a[start:start + CHUNK_ROWS].reshape(-1, math.prod(a.shape[1:]))).all(1)
                if bad.any():
                    raise VaekitError(f"{path} has NaN or inf values (first: row {start + int(np.flatnonzero(bad)[0])}); "
                                      f"remove or impute them before training")
        return rows

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key) -> np.ndarray:
        sel = self.index[key]
        if np.ndim(sel) == 0:
            return self[np.array([int(key)])][0]
        order = np.argsort(sel, kind="stable")  # sorted reads are sequential on disk
        rows = np.empty((len(sel), *self.array.shape[1:]), self.array.dtype)
        rows[order] = self.array[sel[order]]
        if self.channels_last:
            rows = rows.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(rows.reshape(len(sel), *self.row_shape), dtype=self.dtype)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def subset(self, idx) -> DiskRows:
        """Some of the rows, still on disk."""
        return DiskRows(self.array, self.index[idx], self.channels_last)

    def min_max(self) -> tuple[float, float]:
        lo, hi = math.inf, -math.inf
        for start in range(0, len(self), CHUNK_ROWS):
            chunk = self[start:start + CHUNK_ROWS]
            lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
        return lo, hi
