"""The training loop over any modality: its data are a data.Batches, which gives the loss's arguments for a
set of rows, so the loop never looks inside a batch.

Batches are gathered from tensors already in memory (or on the GPU) by a permutation, one gather per batch;
a DataLoader over a TensorDataset calls __getitem__ once per example and collates, which is most of the gap
to the matmul floor.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..config import TrainConfig, to_dict
from ..errors import VaekitError
from ..io import atomic_write_json
from ..data.batches import Batches, as_batches
from . import checkpoint as ckpt
from .distributed import Distributed
from ..malloc import keep_freed_memory, release_free_memory
from .optim import FusedOptimizer
from .progress import training_bar
from .precision import precision_context

STATE_FILE = "state/last.safetensors"
WEIGHTS_FILE = "model.safetensors"
HISTORY_FILE = "history.json"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VaekitError(f"device '{name}' was asked for but no CUDA GPU is visible; use device='cpu' or 'auto'")
    return torch.device(name)


def _term_sums(out: dict[str, torch.Tensor]) -> torch.Tensor:
    """Batch sums of each per-example loss term, (n_terms,); stays on the device (no host sync)."""
    return torch.stack(list(out.values())).detach().sum(1)


@dataclass
class TrainState:
    epoch: int = 0  # completed epochs
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)


class Trainer:
    """Fits any module with .loss(*batch) -> {'loss': (B,), ...}; checkpoints into run_dir every epoch."""

    def __init__(self, module: nn.Module, cfg: TrainConfig, run_dir: str | Path | None = None,
                 verbose: bool = True, on_step: Callable[[int, int], None] | None = None,
                 on_epoch_end: Callable[[dict], None] | None = None,
                 monitor: Callable[[nn.Module, torch.Tensor], dict] | None = None,
                 dist: Distributed | None = None):
        self.cfg = cfg.validate()
        self.dist = dist or Distributed.from_env()
        self.device = self.dist.device(resolve_device(cfg.device))
        self.dist.init(self.device)
        self.module = module.to(self.device)
        self.loss_fn = self.dist.wrap(self.module, self.device)  # module.loss, or DDP around it
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.verbose = verbose and self.dist.is_main
        self.on_step = on_step  # (epoch, step) hook, used by tests to interrupt mid-epoch
        self.on_epoch_end = on_epoch_end  # (history row) hook, called after the checkpoint, outside the timing
        self.monitor = monitor  # (module, model inputs) -> extra history columns, e.g. active latent units
        self.autocast, self.scaler = precision_context(cfg.precision, self.device)
        self.optimizer = self._make_optimizer()
        self.shuffle_rng = torch.Generator(device=self.device)
        self.state = TrainState()

    # -- set-up -------------------------------------------------------------------------------
    def _make_optimizer(self) -> FusedOptimizer:
        c = self.cfg
        return FusedOptimizer(self.module.parameters(), c.optimizer, lr=c.lr, weight_decay=c.weight_decay,
                              momentum=c.momentum)

    def _lr_factor(self, progress: float) -> float:
        if self.cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        if self.cfg.schedule == "step":
            return 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
        return 1.0

    # -- the loop -----------------------------------------------------------------------------
    def fit(self, x_train: Batches | torch.Tensor, x_val: Batches | torch.Tensor | None = None,
            resume: bool = False, targets: torch.Tensor | None = None) -> list[dict]:
        """Train on x_train: a modality's data.Batches, or image / array rows (a tensor or data.DiskRows,
        binarised if the config says so). With targets (one row per training example: labels, or what each
        example should be reconstructed as), the module's loss is called as loss(x, target)."""
        c = self.cfg
        if len(x_train) == 0:
            raise VaekitError("the training split is empty; give at least one example")
        x_train = as_batches(x_train, targets, c.binarize).to(self.device)
        x_val = None if x_val is None or len(x_val) == 0 else as_batches(x_val, None, c.binarize).to(self.device)
        keep_freed_memory()
        torch.manual_seed(c.seed)
        self.shuffle_rng.manual_seed(c.seed)
        best_weights = None
        if resume:
            best_weights = self._restore()
        n, bs = len(x_train), c.batch_size
        steps = math.ceil(n / bs)
        bar = training_bar(c.epochs * steps, self.state.epoch * steps, self.verbose)
        try:
            for epoch in range(self.state.epoch, c.epochs):
                if c.patience is not None and self.state.bad_epochs >= c.patience:
                    self._announce_early_stop(bar)
                    break
                t0 = time.perf_counter()
                train_means = self._train_epoch(x_train, epoch, steps, bar)
                row = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train_means.items()}}
                if x_val is not None:
                    row.update({f"val_{k}": v for k, v in self.evaluate_losses(x_val).items()})
                if self.monitor is not None:
                    row.update(self._monitor(x_train if x_val is None else x_val))
                row["lr"] = self.optimizer.param_groups[0]["lr"]
                row["time_s"] = round(time.perf_counter() - t0, 3)
                if not math.isfinite(row["train_loss"]):
                    where = f" The last good checkpoint is in {self.run_dir}." if self.run_dir else ""
                    raise VaekitError(
                        f"training diverged: the loss became {row['train_loss']} in epoch {epoch + 1}. "
                        f"Lower lr, set clip_norm (e.g. 10), or check the data for extreme values.{where}"
                    )
                best_weights = self._end_epoch(row, best_weights)
                bar.set_postfix_str(self._summary(row))
                if self.on_epoch_end is not None:
                    self.on_epoch_end(row)
        finally:
            bar.close()
        if c.patience is not None and best_weights is not None:
            self.module.load_state_dict(best_weights)
        if c.kl_warmup_epochs or c.kl_cycles:
            self.module.kl_scale = 1.0  # a run stopped during warm-up still scores with the true bound
        self.module.eval()
        release_free_memory()
        return self.state.history

    def _announce_early_stop(self, bar) -> None:
        st = self.state
        bar.finish()
        epochs = f"{st.bad_epochs} epoch{'s' if st.bad_epochs != 1 else ''}"
        bar.write(f"early stopping after epoch {st.epoch}: no better validation loss for {epochs}; "
                  f"the weights of epoch {st.best_epoch} (loss {st.best_loss:.4f}) are kept")

    def _train_epoch(self, data: Batches, epoch: int, steps: int, bar) -> dict[str, float]:
        c, module, opt, scaler = self.cfg, self.module, self.optimizer, self.scaler
        module.train()
        # the epoch's order of examples: a modality may give its own (sentences bucketed by length)
        order = getattr(data, "epoch_order", None)
        perm = (torch.randperm(len(data), generator=self.shuffle_rng, device=self.device) if order is None
                else order(c.batch_size, self.shuffle_rng).to(self.device))
        sums = None
        # the first step whose loss was not finite, kept on the device: looked at with the progress bar's
        # updates, so a GPU is not made to wait every step
        bad_step = torch.full((), -1, dtype=torch.long, device=self.device)
        params = [p for g in opt.param_groups for p in g["params"]]
        # a module that sets its own gradients skips autograd's engine (in one process without loss scaling:
        # DDP averages gradients through autograd's hooks, and the scaler scales the loss before backward)
        direct = getattr(module, "loss_with_grads", None) if not self.dist.active and scaler is None else None
        for step in range(steps):
            if c.schedule != "constant":
                for g in opt.param_groups:
                    g["lr"] = c.lr * self._lr_factor((epoch * steps + step) / (c.epochs * steps))
            if c.kl_warmup_epochs:
                module.kl_scale = min(1.0, (epoch * steps + step + 1) / (c.kl_warmup_epochs * steps))
            elif c.kl_cycles:
                cycle = c.epochs * steps / c.kl_cycles
                module.kl_scale = min(1.0, 2 * ((epoch * steps + step) % cycle + 1) / cycle)
            idx = perm[step * c.batch_size:(step + 1) * c.batch_size]  # the global batch
            # sum / (global batch / processes): DDP's average over processes is then the global batch mean
            per_example = len(idx) / self.dist.world_size
            with self.dist.shard(len(idx)) as mine, self.autocast():
                args = data.batch(idx[mine])
                # grads set; None: no such path (nor for a loss with more than the input)
                out = direct(*args, 1 / per_example) if direct is not None and len(args) == 1 else None
                set_grads = out is not None
                if not set_grads:
                    out = self.loss_fn(*args)  # per-example terms, each (B,)
            if not set_grads:
                opt.zero_grad(set_to_none=True)
                loss = out["loss"].sum() / per_example
                (loss if scaler is None else scaler.scale(loss)).backward()
            if scaler is not None and (c.clip_value is not None or c.clip_norm is not None):
                scaler.unscale_(opt)
            if c.clip_value is not None:
                nn.utils.clip_grad_value_(params, c.clip_value)
            if c.clip_norm is not None:
                nn.utils.clip_grad_norm_(params, c.clip_norm)
            if scaler is None:
                opt.step()
            else:
                scaler.step(opt)
                scaler.update()
            batch_sums = _term_sums(out)
            sums = batch_sums if sums is None else sums + batch_sums
            bad_step = torch.where((bad_step < 0) & ~torch.isfinite(batch_sums).all(), step, bad_step)
            if step % 20 == 19 or step == steps - 1:
                if bad_step.item() >= 0:
                    self._diverged(epoch, int(bad_step), steps)
                bar.update(step % 20 + 1)
            if self.on_step is not None:
                self.on_step(epoch, step)
        return dict(zip(out.keys(), (self.dist.all_sum(sums) / len(data)).tolist()))

    def _diverged(self, epoch: int, step: int, steps: int) -> None:
        """Stop: the loss was not finite at this step. The weights in memory may hold NaN now; the run folder
        keeps the last epoch's checkpoint, which the step never reached."""
        c = self.cfg
        where = (f" The run folder keeps the last good checkpoint (epoch {self.state.epoch}): change the settings "
                 f"and continue it with --resume, or start again." if self.run_dir is not None and self.state.epoch
                 else "")
        fixes = [f"a lower learning rate (lr, now {c.lr:g})"]
        if c.clip_norm is None:
            fixes.append("gradient clipping (clip_norm=10)")
        if c.precision != "fp32":
            fixes.append(f"precision='fp32' (now {c.precision})")
        raise VaekitError(f"training diverged: the loss stopped being finite (NaN or inf) at step {step + 1} of "
                          f"{steps} in epoch {epoch + 1}. Try {', '.join(fixes)}, and check the data "
                          f"for extreme or missing values.{where}")

    @torch.no_grad()
    def evaluate_losses(self, x: Batches | torch.Tensor, batch_size: int = 500) -> dict[str, float]:
        """Mean of each per-example loss term over x, in eval mode (each process takes its rows)."""
        was_training, kl_scale = self.module.training, getattr(self.module, "kl_scale", None)
        self.module.eval()
        if kl_scale is not None:
            self.module.kl_scale = 1.0  # validation scores the true bound, also during KL warm-up
        x = as_batches(x, None, self.cfg.binarize).to(self.device)
        sums = None
        for i in range(0, len(x), batch_size):
            n = min(batch_size, len(x) - i)
            with self.dist.shard(n) as mine, self.autocast():
                out = self.module.loss(*x.batch(slice(i + mine.start, i + mine.stop)))
            s = _term_sums(out)
            sums = s if sums is None else sums + s
        self.module.train(was_training)
        if kl_scale is not None:
            self.module.kl_scale = kl_scale
        return dict(zip(out.keys(), (self.dist.all_sum(sums) / len(x)).tolist()))

    @torch.no_grad()
    def _monitor(self, data: Batches, n: int = 2000) -> dict:
        was_training = self.module.training
        self.module.eval()
        out = self.monitor(self.module, data.inputs(slice(0, min(n, len(data)))))
        self.module.train(was_training)
        return out

    # -- bookkeeping ----------------------------------------------------------------------------
    def _end_epoch(self, row: dict, best_weights):
        """Record the row, track the best epoch, and (rank 0) write the checkpoint."""
        st = self.state
        st.epoch = row["epoch"]
        st.history.append(row)
        monitored = row.get("val_loss", row["train_loss"])
        improved = monitored < st.best_loss
        if improved:
            st.best_loss, st.best_epoch, st.bad_epochs = monitored, st.epoch, 0
            if self.cfg.patience is not None:
                best_weights = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        else:
            st.bad_epochs += 1
        if self.run_dir is not None and self.dist.is_main:
            self._checkpoint(write_weights=improved or self.cfg.patience is None)
        return best_weights

    def _checkpoint(self, write_weights: bool) -> None:
        run = self.run_dir
        model_sd = self.module.state_dict()
        opt_tensors, opt_meta = ckpt.optimizer_to_tensors(self.optimizer)
        tensors = {**{f"model.{k}": v for k, v in model_sd.items()}, **opt_tensors,
                   "rng.torch": torch.get_rng_state(), "rng.shuffle": self.shuffle_rng.get_state()}
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        st = self.state
        trainer_meta = {"epoch": st.epoch, "best_loss": st.best_loss, "best_epoch": st.best_epoch,
                        "bad_epochs": st.bad_epochs, "train_config": to_dict(self.cfg)}
        meta = {"trainer": trainer_meta, "optimizer": opt_meta, "history": st.history}
        if self.scaler is not None:
            meta["grad_scaler"] = self.scaler.state_dict()
        try:
            ckpt.save_tensors(run / STATE_FILE, tensors, meta)
            if write_weights:
                ckpt.save_tensors(run / WEIGHTS_FILE, model_sd, {"epoch": st.epoch})
            atomic_write_json(run / HISTORY_FILE, st.history)
        except OSError as e:  # a full disk, a file-size limit, a folder gone: each write left its old file
            raise VaekitError(f"could not write the checkpoint of epoch {st.epoch} into {run}: {e.strerror or e}. "
                              f"No file there was left half-written (each keeps its last good version); free space "
                              f"and continue with --resume") from e

    def _restore(self):
        """Load state/last.safetensors; returns the best weights so far (for early stopping)."""
        if self.run_dir is None or not (self.run_dir / STATE_FILE).is_file():
            raise VaekitError(
                f"nothing to resume in {self.run_dir}: it has no {STATE_FILE}; train without --resume"
            )
        tensors, meta = ckpt.load_tensors(self.run_dir / STATE_FILE)
        ckpt.load_module_weights(self.module, ckpt.module_tensors(tensors), str(self.run_dir / STATE_FILE))
        ckpt.optimizer_from_tensors(self.optimizer, tensors, meta["optimizer"])
        torch.set_rng_state(tensors["rng.torch"])
        self.shuffle_rng.set_state(tensors["rng.shuffle"].to(self.shuffle_rng.get_state().device))
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        if self.scaler is not None and "grad_scaler" in meta:
            self.scaler.load_state_dict(meta["grad_scaler"])
        t = meta["trainer"]
        self.state = TrainState(t["epoch"], t["best_loss"], t["best_epoch"], t["bad_epochs"], meta["history"])
        if self.cfg.patience is not None and (self.run_dir / WEIGHTS_FILE).is_file():
            best, _ = ckpt.load_tensors(self.run_dir / WEIGHTS_FILE)
            return {k: v.to(self.device) for k, v in best.items()}
        return None

    @staticmethod
    def _summary(row: dict) -> str:
        keys = ("train_loss", "val_loss")
        return " ".join(f"{k}={row[k]:.3f}" for k in keys if k in row)
