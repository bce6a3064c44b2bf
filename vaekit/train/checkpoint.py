"""Checkpoints as safetensors + JSON: loading one runs no code (nothing is pickled).

Resume state (weights, optimiser, RNG streams, trainer counters, history) lives in one file, so a
crash can never pair weights of one epoch with optimiser state of another.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..errors import VaekitError
from ..io import atomic_write


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses strided tensors and tensors sharing storage: copy only those (serialising
    # copies everything once more anyway, so cloning the rest would hold every tensor three times)
    out, seen = {}, set()
    for k, v in tensors.items():
        v = v.detach().to("cpu")
        ptr = v.untyped_storage().data_ptr()
        whole = v.is_contiguous() and v.untyped_storage().nbytes() == v.numel() * v.element_size()
        out[k] = v if whole and ptr not in seen else v.contiguous().clone()
        seen.add(ptr)
    return out


def save_tensors(path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None) -> None:
    """Write a safetensors file atomically; a failed write (a full disk, a file-size limit) is an OSError
    naming its cause, and leaves the old file."""
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    tensors = _contiguous(tensors)

    def write(tmp: str) -> None:
        try:
            save_file(tensors, tmp, metadata=meta)
        except SafetensorError as e:  # safetensors wraps the OS's error in its own: give it back as one
            code = re.search(r"os error (\d+)", str(e))
            raise (OSError(int(code.group(1)), os.strerror(int(code.group(1)))) if code else OSError(str(e))) from e

    atomic_write(path, write)


def load_tensors(path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    return _load(path, tensors=True)


def load_metadata(path) -> dict[str, Any]:
    """A checkpoint's metadata from its header alone; safetensors checks that the header covers the file, so
    a truncated file is refused here as it is by load_tensors."""
    return _load(path, tensors=False)[1]


def _load(path, tensors: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
        return (load_file(str(path)) if tensors else {}), meta
    except (SafetensorError, OSError, json.JSONDecodeError) as e:
        raise VaekitError(f"{path} is not a readable vaekit checkpoint ({e}); it may be damaged") from None


def module_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The module's weights inside a resume state, whose keys are 'model.<name>' beside the optimiser's."""
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, values in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def load_module_weights(module: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Copy weights in, with one clear message when they belong to a different model."""
    check_module_weights(module, tensors, source)
    module.load_state_dict(tensors)


def check_module_weights(module: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights whose names or shapes are not module's, naming the differences. Shapes only: module may
    live on the meta device, built to check a stranger's config before anything is allocated."""
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = sorted(k for k in set(own) & set(tensors) if own[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{what}: {', '.join(keys[:3])}{'...' if len(keys) > 3 else ''}"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("other shapes", wrong))
            if keys
        )
        raise VaekitError(
            f"the weights in {source} do not fit this model ({detail}); they were saved by a model with "
            f"another architecture: load the run with its own config.json, or train a new run"
        )
