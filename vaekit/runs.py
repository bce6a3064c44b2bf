"""Runs: a registry model fitted on data, and the folder that holds it (config.json + safetensors).

This is the one place that builds, trains, saves and reloads modules. The command line trains
through it directly; the scikit-learn estimators wrap it. It imports no scikit-learn, so a training
process carries only what training needs (scikit-learn alone is ~70 MB resident).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import ModelConfig, TrainConfig, from_dict, to_dict
from .data import DiskRows
from .diagnostics import collapse_warning, posterior_summary
from .errors import VaekitError, VaekitWarning
from .io import atomic_write_json, read_json
from .manifest import check_manifest, write_manifest
from .models import build_module, get_spec, noise
from .train.lock import run_lock
from .train import HISTORY_FILE, STATE_FILE, WEIGHTS_FILE, Trainer, resolve_device, to_unit_float
from .train import checkpoint as ckpt
from .train.distributed import Distributed

CONFIG_FILE = "config.json"
LAYERWISE_FILE = "layerwise.json"  # the losses of greedy layer-wise pretraining, one row per layer
FORMAT_VERSION = 1


@noise.caller_rng_kept()  # fitting seeds torch's generators; the caller's streams come back after
def fit_module(model_name: str, mcfg: ModelConfig, tcfg: TrainConfig, x, x_val=None, run_dir=None,
               resume: bool = False, verbose: bool = False, user_shape: tuple[int, ...] | None = None,
               likelihood: nn.Module | None = None, artefacts: dict | None = None, extra: dict | None = None,
               warn_collapse: bool = True) -> tuple[nn.Module, list[dict]]:
    """Build model_name with mcfg, train it on x (N, *shape) and, with run_dir, keep the run there.

    x: a tensor (uint8 data are pixels in [0, 255]), data.DiskRows read from disk batch by batch, or any
    modality's data.Batches with a .shape; likelihood: the one that modality assembled for it; artefacts: the
    files it adds to the run folder, for the manifest; extra: more keys for its config.json; warn_collapse: warn when most latent units are unused
    (off where fewer used units than the code has is expected, as for a table of a dozen columns).
    Returns (the fitted module, in eval mode; the history).
    """
    shape = tuple(x.shape[1:])
    if getattr(mcfg, "likelihood", None) == "bernoulli":
        require_unit_interval(x, model_name)
    torch.manual_seed(tcfg.seed)
    module = build_module(model_name, mcfg, shape, likelihood)
    if hasattr(module, "init_from_data"):
        module.init_from_data(x, torch.Generator().manual_seed(tcfg.seed))
    is_main = Distributed.from_env().is_main  # under torchrun only rank 0 writes files
    with run_lock(run_dir if is_main else None):  # one writer per run folder, from its config to its weights
        if run_dir is not None and is_main:
            write_config(run_dir, model_name, shape, user_shape or shape, mcfg, tcfg, run=True, artefacts=artefacts,
                         extra=extra)
        if tcfg.layerwise_epochs and not resume:
            from .stacked import greedy_pretrain

            layers = greedy_pretrain(module, x, tcfg, verbose)
            if run_dir is not None and is_main:
                atomic_write_json(Path(run_dir) / LAYERWISE_FILE, layers)
        targets = module.training_targets(x) if hasattr(module, "training_targets") else None
        monitor = posterior_summary if module.variational else None
        trainer = Trainer(module, tcfg, run_dir=run_dir, verbose=verbose, monitor=monitor)
        history = trainer.fit(x, x_val, resume=resume, targets=targets)
        if hasattr(module, "fit_prior"):  # autoencoders sample from a Gaussian fitted to their codes
            module.fit_prior(encode_means(module, x))
        last = history[-1] if history else {}
        msg = collapse_warning(last["active_units"], mcfg.latent_dim) if "active_units" in last else None
        if warn_collapse and msg:
            warnings.warn(msg, VaekitWarning, stacklevel=3)
        if run_dir is not None and is_main:
            ckpt.save_tensors(Path(run_dir) / WEIGHTS_FILE, module.state_dict(), {"epoch": trainer.state.epoch})
        return module, history


@torch.no_grad()
def encode_means(module: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Posterior means E[z|x] (N, latent_dim) of uint8 or unit-scaled x, in eval mode."""
    module.eval()
    dev = next(module.parameters()).device
    with repeatable_kernels():
        return torch.cat([module.inference(to_unit_float(torch.as_tensor(x[i:i + batch_size]).to(dev))).mean
                          for i in range(0, len(x), batch_size)])


def repeatable_kernels():
    """Inside: the same input gives the same output bit for bit on a GPU too. cuDNN may otherwise run a
    (transposed) convolution with an algorithm that adds in any order: 1-ulp drift between identical calls."""
    return torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, benchmark=False, deterministic=True)


def require_unit_interval(x, owner: str) -> None:
    if x.dtype in (torch.uint8, np.uint8):
        return
    lo, hi = x.min_max() if isinstance(x, DiskRows) else (float(x.min()), float(x.max()))
    if lo < 0 or hi > 1:
        raise VaekitError(
            f"{owner} with likelihood='bernoulli' needs data in [0, 1]; got values in [{lo:.3g}, {hi:.3g}]. "
            f"Scale the data to [0, 1], or use likelihood='gaussian'"
        )


def write_config(directory, model_name: str, input_shape, user_shape, mcfg: ModelConfig, tcfg: TrainConfig,
                 run: bool = False, artefacts: dict | None = None, extra: dict | None = None) -> None:
    """config.json of a run (run=True) or saved model: what it is and how it was trained (keys it already
    holds, like 'data', stay; extra adds more), and the folder's manifest (with the modality's own artefacts,
    if any)."""
    path = Path(directory) / CONFIG_FILE
    doc = read_json(path) if path.is_file() else {}
    doc.update({"format": FORMAT_VERSION, "model": model_name, "input_shape": list(input_shape),
                "user_shape": list(user_shape), "model_config": to_dict(mcfg), "train_config": to_dict(tcfg),
                **(extra or {})})
    atomic_write_json(path, doc)
    artefacts = {"config": CONFIG_FILE, "weights": WEIGHTS_FILE, **(artefacts or {})}
    if run:
        artefacts.update(history=HISTORY_FILE, resume_state=STATE_FILE)
    write_manifest(directory, "model", get_spec(model_name).modality, artefacts)


def read_config(directory) -> dict:
    """config.json of a run or saved model (its manifest checked first), checked to be a JSON object."""
    path = Path(directory) / CONFIG_FILE
    check_manifest(directory, "model")
    if not path.is_file():
        raise VaekitError(f"{directory} is not a vaekit model folder: it has no {CONFIG_FILE}")
    doc = read_json(path, "replace it with a good copy, or train the run again")
    if not isinstance(doc, dict):
        raise VaekitError(f"{path} holds a JSON {type(doc).__name__}, not the object a run's config is; "
                          f"replace it with a good copy, or train the run again")
    return doc


def load_module(directory, device: str = "cpu", likelihood: nn.Module | None = None
                ) -> tuple[dict, nn.Module, list[dict]]:
    """(config, module in eval mode, history) of a run folder. Reads JSON and safetensors only: no code runs.
    likelihood: the one the data's modality assembled from the folder's artefacts (a table's encoding)."""
    directory = Path(directory)
    doc = read_config(directory)
    if not (directory / WEIGHTS_FILE).is_file():
        raise VaekitError(f"{directory} has no {WEIGHTS_FILE} yet: the run saved no epoch; train it (or --resume)")
    spec = get_spec(doc.get("model"))
    mcfg = from_dict(spec.config_class, doc["model_config"], f"{directory / CONFIG_FILE} (model_config)")
    shape = doc["input_shape"]
    if not (isinstance(shape, list) and shape and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                                                      for d in shape)):
        raise VaekitError(f"{directory / CONFIG_FILE} is damaged: input_shape is {shape!r}, not a list of positive "
                          f"ints; replace the folder with a good copy, or train the run again")
    tensors = _delivered_weights(directory)
    _check_sizes(spec.name, mcfg, tuple(shape), likelihood, tensors, directory)
    module = build_module(spec.name, mcfg, tuple(shape), likelihood).to(resolve_device(device))
    ckpt.load_module_weights(module, tensors, str(directory / WEIGHTS_FILE))
    history = read_json(directory / HISTORY_FILE) if (directory / HISTORY_FILE).is_file() else []
    return doc, module.eval(), history


def _check_sizes(name, mcfg, shape, likelihood, tensors, directory: Path) -> None:
    """Build the module on the meta device (no memory) and compare its parameters with the weights file's, so
    a config that claims a billion inputs or units is refused before anything that size is allocated."""
    try:
        with torch.device("meta"):
            probe = build_module(name, mcfg, shape, likelihood)
    except VaekitError:
        raise
    except Exception:  # a module that cannot be built without real memory: load_module_weights compares later
        return
    ckpt.check_module_weights(probe, tensors, str(directory / WEIGHTS_FILE))


def _delivered_weights(directory: Path) -> dict[str, torch.Tensor]:
    """model.safetensors; if it is damaged, the message says whether the resume state can replace it."""
    try:
        tensors, _ = ckpt.load_tensors(directory / WEIGHTS_FILE)
        return tensors
    except VaekitError as e:
        state = directory / STATE_FILE
        try:
            meta = ckpt.load_metadata(state)
        except VaekitError:
            hint = "" if not state.exists() else f" {state} is damaged too: train the run again."
            raise VaekitError(f"{e}.{hint or ' Train the run again, or restore the file from a copy.'}") from None
        epoch = meta.get("trainer", {}).get("epoch")
        raise VaekitError(
            f"{e}. {state} is intact (epoch {epoch}): 'vaekit train --out {directory} --resume' rewrites "
            f"{WEIGHTS_FILE} from it (with early stopping, the weights of that last epoch, not of the best one)"
        ) from None

