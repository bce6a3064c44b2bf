"""Random draws that depend on an example's place in the global batch, not on which process holds it.

Under torch.distributed each process sees a slice of every global batch. If each drew noise for its
slice only, a 2-process run would see other noise than a 1-process run with the same seed. Instead,
while a distributed trainer runs a step (`batch_shard`), every process draws the noise of the whole
global batch from the same seeded stream and keeps its own rows: the run is the same whatever the
number of processes. Outside a step, or in one process, these are plain torch draws.
"""
from __future__ import annotations

import contextlib

import torch

_shard: tuple[int, int] | None = None  # (global batch size, offset of this process's rows)


@contextlib.contextmanager
def batch_shard(global_size: int, offset: int):
    global _shard
    previous, _shard = _shard, (global_size, offset)
    try:
        yield
    finally:
        _shard = previous


def _draw(fn, shape, batch_dim: int, like: torch.Tensor) -> torch.Tensor:
    shape = list(shape)
    if _shard is None:
        return fn(shape, device=like.device, dtype=like.dtype)
    global_size, offset = _shard
    n, shape[batch_dim] = shape[batch_dim], global_size
    return fn(shape, device=like.device, dtype=like.dtype).narrow(batch_dim, offset, n)


def randn(shape, batch_dim: int, like: torch.Tensor) -> torch.Tensor:
    """Standard normal draws of this shape, whose axis batch_dim runs over the examples."""
    return _draw(torch.randn, shape, batch_dim, like)


def rand(shape, batch_dim: int, like: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) draws of this shape, whose axis batch_dim runs over the examples."""
    return _draw(torch.rand, shape, batch_dim, like)
