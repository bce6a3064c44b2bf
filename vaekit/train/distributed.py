"""Data-parallel training through torch.distributed: `torchrun --nproc_per_node N -m vaekit train ...`.

Each process holds the data, draws the same global permutation and takes its rows of every global
batch; DistributedDataParallel averages gradients (gloo on CPU, NCCL on CUDA). Losses are scaled so
the average over processes is the mean over the global batch, and noise follows the global batch
(models.noise), so N processes reproduce one process with the same global batch and seed.
Only rank 0 writes files and shows progress.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..errors import VaekitError
from ..models import noise


class LossModule(nn.Module):
    """forward(x) = module.loss(x): DistributedDataParallel synchronises gradients only through forward."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.module.loss(x) if target is None else self.module.loss(x, target)


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Distributed:
        """The layout torchrun describes in RANK / WORLD_SIZE / LOCAL_RANK; one process when they are unset."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: torch.device) -> torch.device:
        """One GPU per process on CUDA machines."""
        if self.active and requested.type == "cuda" and requested.index is None:
            if self.local_rank >= torch.cuda.device_count():
                raise VaekitError(
                    f"process {self.local_rank} of this machine needs GPU {self.local_rank}, but only "
                    f"{torch.cuda.device_count()} GPU(s) are visible; run at most that many processes per machine "
                    f"(--nproc / torchrun --nproc_per_node), or train with --device cpu (gloo)")
            return torch.device("cuda", self.local_rank)
        return requested

    def init(self, device: torch.device) -> None:
        if self.active and not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()

    def barrier(self) -> None:
        if self.active and dist.is_initialized():
            dist.barrier()

    def rows(self, n: int) -> tuple[int, int]:
        """(start, stop) of this process's rows of a global batch of n (torch.tensor_split's partition)."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (self.rank < extra)

    @contextlib.contextmanager
    def shard(self, n: int):
        """Inside: this process's rows of a global batch of n, with noise drawn for the whole batch."""
        start, stop = self.rows(n)
        if not self.active:
            yield slice(0, n)
            return
        with noise.batch_shard(n, start):
            yield slice(start, stop)

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.active:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def wrap(self, module: nn.Module, device: torch.device):
        """The per-example loss function the trainer steps through: module.loss, or DDP around it."""
        if not self.active:
            return module.loss
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(LossModule(module), device_ids=ids)
