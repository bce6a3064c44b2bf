"""Random draws that depend on an example's place in the global batch, not on which process holds it.

Under torch.distributed each process sees a slice of every global batch. If each drew noise for its
slice only, a 2-process run would see other noise than a 1-process run with the same seed. Instead,
while a distributed trainer runs a step (`batch_shard`), every process draws the noise of the whole
global batch from the same seeded stream and keeps its own rows: the run is the same whatever the
number of processes. Outside a step, or in one process, these are plain torch draws.

Scores (score_samples, anomaly scores) use `per_example` instead: each example's noise comes from its
own generator, seeded by a hash of its bytes, so its score does not depend on the batch, order or
subset it is scored in. That context is per thread, so examples scored on worker threads at once each
draw from their own generators.
"""
from __future__ import annotations

import contextlib
import hashlib
import threading

import torch

_shard: tuple[int, int] | None = None  # (global batch size, offset of this process's rows)
_local = threading.local()  # .per_example: {"seeds": one int per example, "draws": draws made so far}


@contextlib.contextmanager
def batch_shard(global_size: int, offset: int):
    global _shard
    previous, _shard = _shard, (global_size, offset)
    try:
        yield
    finally:
        _shard = previous


@contextlib.contextmanager
def per_example(seeds: list[int]):
    """Inside: example b's noise comes from a generator seeded by seeds[b] and the draw's index."""
    previous = getattr(_local, "per_example", None)
    _local.per_example = {"seeds": seeds, "draws": 0}
    try:
        yield
    finally:
        _local.per_example = previous


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Inside: torch's global draws start from seed on the CPU and on device (GPUs keep their own stream);
    after: every stream is as it was."""
    gpus = list(range(torch.cuda.device_count())) if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):
        torch.manual_seed(seed)  # seeds the CPU and every GPU
        yield


@contextlib.contextmanager
def caller_rng_kept():
    """Inside: fitting may reseed torch's global generators; after: the caller's CPU and GPU streams are as they
    were, so fit() leaves a user's own random draws where it found them."""
    gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=gpus):
        yield


def example_seeds(x: torch.Tensor, seed: int) -> list[int]:
    """A seed per example from a keyed hash of its bytes: the same example gets the same noise anywhere."""
    key = int(seed).to_bytes(8, "little", signed=True)
    rows = x.detach().reshape(len(x), -1).contiguous().cpu().numpy()
    return [int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8, key=key).digest(), "little") >> 1 for r in rows]


def _draw(fn, shape, batch_dim: int, like: torch.Tensor) -> torch.Tensor:
    shape = list(shape)
    per_example = getattr(_local, "per_example", None)
    if per_example is not None:
        n = shape.pop(batch_dim)
        seeds, draw = per_example["seeds"], per_example["draws"]
        if n != len(seeds):
            raise ValueError(f"per-example noise for {len(seeds)} examples, asked for a batch of {n}")
        per_example["draws"] += 1
        rows = [fn(shape, generator=torch.Generator().manual_seed((s + 1_000_003 * draw) % 2 ** 63)) for s in seeds]
        return torch.stack(rows, dim=batch_dim).to(like.device, like.dtype)
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
