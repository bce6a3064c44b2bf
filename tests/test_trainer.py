"""Training practices and crash safety: resume, a real kill mid-epoch, early stopping, atomic writes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli import main
from vaekit.config import ModelConfig, TrainConfig
from vaekit.io import atomic_write_bytes
from vaekit.models import build_module
from vaekit.train import Trainer
from vaekit.train import checkpoint as ckpt
from conftest import ROOT

SMALL = ModelConfig(latent_dim=4, hidden=(64,))


def _module():
    torch.manual_seed(0)
    return build_module("vae", SMALL, (1, 28, 28))


def test_resume_after_interrupt_mid_epoch_matches_uninterrupted_run(mnist_small, tmp_path):
    x = torch.from_numpy(mnist_small[0][:1024])
    cfg = TrainConfig(epochs=3, batch_size=128, seed=5)
    straight = Trainer(_module(), cfg, tmp_path / "a", verbose=False)
    straight.fit(x)

    def crash(epoch, step):
        if epoch == 1 and step == 3:
            raise KeyboardInterrupt

    broken = Trainer(_module(), cfg, tmp_path / "b", verbose=False, on_step=crash)
    with pytest.raises(KeyboardInterrupt):
        broken.fit(x)
    assert json.loads((tmp_path / "b" / "history.json").read_text())[-1]["epoch"] == 1
    resumed = Trainer(_module(), cfg, tmp_path / "b", verbose=False)
    history = resumed.fit(x, resume=True)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    for k, v in straight.module.state_dict().items():
        torch.testing.assert_close(resumed.module.state_dict()[k], v, rtol=0, atol=0)
    assert [r["train_loss"] for r in history] == [r["train_loss"] for r in straight.state.history]


def test_run_killed_mid_epoch_stays_readable_and_resumes(mnist_dir, tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "vaekit", "train", "--data", "mnist", "--data-dir", str(mnist_dir),
            "--limit", "3000", "--latent-dim", "4", "--hidden", "64", "--epochs", "40", "--out", str(run),
            "--quiet"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (run / "history.json").is_file() and len(json.loads((run / "history.json").read_text())) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    time.sleep(0.15)  # land inside a later epoch, or inside a checkpoint write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(json.loads((run / "history.json").read_text()))
    assert 2 <= done < 40
    model = vaekit.load(run)  # the folder is readable as it was left
    assert model.transform(np.zeros((1, 1, 28, 28), np.uint8)).shape == (1, 4)
    assert main(["train", "--out", str(run), "--resume", "--quiet"]) == 0
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == list(range(1, 41))


def test_early_stopping_restores_the_best_weights(mnist_small, tmp_path):
    xtr, _, xte, _ = mnist_small
    x, xv = torch.from_numpy(xtr[:64]), torch.from_numpy(xte[:200])
    torch.manual_seed(0)
    module = build_module("vae", ModelConfig(latent_dim=8, hidden=(256,)), (1, 28, 28))
    # 64 training images overfit: the validation loss stops improving long before 300 epochs
    cfg = TrainConfig(epochs=300, lr=3e-3, batch_size=32, patience=5, seed=0)
    trainer = Trainer(module, cfg, tmp_path / "r", verbose=False)
    history = trainer.fit(x, xv)
    best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    assert len(history) < 300
    assert len(history) == best + 1 + 5  # stopped after 5 epochs without improvement
    saved, meta = ckpt.load_tensors(tmp_path / "r" / "model.safetensors")
    assert meta["epoch"] == best + 1
    for k, v in trainer.module.state_dict().items():
        torch.testing.assert_close(v.cpu(), saved[k])


def test_clipping_by_norm_and_value_bound_the_step(mnist_small):
    x = torch.from_numpy(mnist_small[0][:128])
    seen = {}

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
            seen["norm"] = torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])).item()
            seen["max"] = max(g.abs().max().item() for g in grads)
            return super().step(closure)

    for cfg, check in ((dict(clip_norm=0.5), lambda: seen["norm"] <= 0.5 + 1e-4),
                       (dict(clip_value=0.01), lambda: seen["max"] <= 0.01 + 1e-7)):
        tr = Trainer(_module(), TrainConfig(epochs=1, optimizer="sgd", batch_size=128, **cfg), verbose=False)
        tr.optimizer = Spy(tr.module.parameters(), lr=1e-3)
        tr.fit(x)
        assert check(), seen


def test_divergence_is_reported_and_keeps_the_last_good_checkpoint(mnist_small, tmp_path):
    x = torch.from_numpy(mnist_small[0][:256])
    tr = Trainer(_module(), TrainConfig(epochs=1), tmp_path / "r", verbose=False)
    tr.fit(x)
    good = (tmp_path / "r" / "model.safetensors").read_bytes()
    tr.cfg.epochs = 2
    with torch.no_grad():
        for p in tr.module.parameters():
            p.fill_(float("nan"))
    with pytest.raises(vaekit.VaekitError, match="diverged.*clip_norm.*last good checkpoint"):
        tr.fit(x, resume=False)
    assert (tmp_path / "r" / "model.safetensors").read_bytes() == good


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "model.safetensors"
    atomic_write_bytes(target, b"good")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"half")
    assert target.read_bytes() == b"good"
    assert list(tmp_path.iterdir()) == [target]


def test_loading_a_run_unpickles_nothing(mnist_small, tmp_path, monkeypatch):
    model = vaekit.VAE(latent_dim=2, hidden=(16,), epochs=1).fit(mnist_small[0][:256])
    model.save(tmp_path / "m")
    import pickle

    def forbidden(*a, **k):
        raise AssertionError("pickle used while loading")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    again = vaekit.load(tmp_path / "m")
    np.testing.assert_array_equal(again.transform(mnist_small[2][:5]), model.transform(mnist_small[2][:5]))
    for f in Path(tmp_path / "m").iterdir():
        head = f.read_bytes()[:2]
        assert head != b"\x80\x04" and head[:1] != b"\x80", f"{f} looks like a pickle"
