"""Mixed precision: bf16 autocast (CPU or CUDA) or fp16 autocast with loss scaling (CUDA).

Only the networks run in low precision: likelihoods and KL terms cast their inputs back to float32,
so per-example losses and their sums keep full precision.
"""
from __future__ import annotations

import contextlib

import torch

from ..errors import VaekitError

PRECISIONS = ("fp32", "bf16", "fp16")


def precision_context(precision: str, device: torch.device):
    """(a factory of autocast contexts, a GradScaler or None) for this precision on this device."""
    if precision == "fp32":
        return contextlib.nullcontext, None
    if precision == "fp16" and device.type != "cuda":
        raise VaekitError("precision='fp16' needs a CUDA GPU (loss scaling); use precision='bf16' on the CPU")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    return (lambda: torch.autocast(device.type, dtype=dtype)), scaler
