"""Keep freed tensor memory in the process instead of faulting fresh pages in (glibc only).

glibc serves blocks above its mmap threshold (128 KiB, raised as big blocks are freed) straight from
the kernel and hands them back on free; it also trims the heap top once more than twice that is free.
Training and evaluation allocate and free the same blocks over and over (0.4-1.3 MB activations per
training step of an MNIST MLP; ~3 MB decoder outputs per test image of the IS-NLL), so by default
every step page-faults fresh zeroed pages: a tenth of a training step, a quarter of an evaluation on
the 2-core benchmark machine. Fixed thresholds make freed blocks reusable: what the PyTorch CPU tuning
guides get from jemalloc or tcmalloc, without a preload.

The settings are process-wide, so they only go up: a process that evaluates and then trains keeps what
the evaluation asked for (lowering it again made every IS-NLL block fault ~500 pages back in). They are the
one piece of process state vaekit changes and does not put back; VAEKIT_MALLOC_TUNING=0 turns them off.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
MMAP_THRESHOLD = 16 * 2 ** 20  # blocks above this (whole data sets) still come from and go back to the kernel
TRAINING_KEEP = 8 * 2 ** 20  # free heap kept back from the OS between training steps
EVALUATION_KEEP = 256 * 2 ** 20  # an evaluating process holds a few 4 MB blocks per call: keep them all

_kept = 0  # the trim threshold this process has set; 0 before the first call


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


def keep_freed_memory(keep: int = TRAINING_KEEP) -> bool:
    """Let glibc keep up to `keep` bytes of freed heap (never less than an earlier call asked for).

    Returns whether the thresholds are set (False off glibc).
    """
    global _kept
    if os.environ.get("VAEKIT_MALLOC_TUNING", "1") == "0":  # the opt-out: leave the C library's settings alone
        return False
    if keep <= _kept:
        return True
    if not sys.platform.startswith("linux"):
        return False
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:  # musl and other C libraries have no mallopt
        return False
    if bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, keep)):
        _kept = keep
    return _kept > 0
