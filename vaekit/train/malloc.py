"""Keep freed tensor memory in the process between training steps (glibc only).

glibc serves blocks above its mmap threshold (128 KiB, raised as big blocks are freed) straight from
the kernel and hands them back on free; it also trims the heap top once more than twice that is free.
A training step allocates and frees the same activations and gradients every time (0.4-1.3 MB each
for an MNIST MLP), so without this every step page-faults fresh zeroed pages: about 40 faults and a
tenth of the step on the 2-core benchmark machine. Fixed thresholds make freed blocks reusable.
This is what the PyTorch CPU tuning guides get from jemalloc or tcmalloc, without a preload.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
MMAP_THRESHOLD = 16 * 2 ** 20  # blocks above this (whole data sets) still come from and go back to the kernel
TRIM_THRESHOLD = 8 * 2 ** 20  # at most this much free heap is kept back from the OS between steps

_done = False


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_free_memory() -> None:
    """Hand the heap's free pages back to the OS (after training, before plots and evaluation)."""
    libc = _libc() if sys.platform.startswith("linux") else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def keep_freed_memory() -> bool:
    """Set glibc's thresholds once per process; returns whether they were set (False off glibc)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:  # musl and other C libraries have no mallopt
        return False
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
