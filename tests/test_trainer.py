"""Training practices and crash safety: resume, a real kill mid-epoch, early stopping, atomic writes."""
import json
import os
import signal
import subprocess
import sys
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
from conftest import ROOT, load_benchmark, require_data

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


@pytest.mark.parametrize("family, plan", [("vae", ["step:5", "mid:1", "replace:2", "step:12"]),
                                          ("tabular-vae", ["replace:1", "step:20", "mid:3"]),
                                          ("sentence-vae", ["mid:2", "step:3", "replace:3"])])
def test_training_killed_at_a_step_or_mid_write_resumes_to_the_uninterrupted_weights_bit_for_bit(
        family, plan, tmp_path):
    """The kill-and-resume harness (benchmarks/crash_harness.py, which runs 50 random kills per family): SIGKILL
    at a training step, half-way through a checkpoint file, or just before one replaces the old, each in a
    real child process; after each the folder loads, and the resumed run's weights equal the straight run's."""
    require_data("mnist")
    require_data("tabular", "german-credit", "german.data")
    require_data("text", "brown", "brown_sentences.txt")
    harness = load_benchmark("crash_harness")
    result = harness.harness(family, 0, 0, tmp_path, plan=plan)
    assert result["kills"] == len(plan) and result["runs_finished"] >= 1


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


def test_a_loss_that_turns_nan_mid_epoch_stops_at_its_step_and_leaves_only_finite_weights(mnist_small, tmp_path):
    x = torch.from_numpy(mnist_small[0][:1024])  # 8 steps an epoch

    def poison(epoch, step):
        if (epoch, step) == (1, 4):  # after step 5 of epoch 2, the weights are NaN: step 6 sees it
            with torch.no_grad():
                next(tr.module.parameters()).fill_(float("nan"))

    tr = Trainer(_module(), TrainConfig(epochs=3, batch_size=128), tmp_path / "r", verbose=False, on_step=poison)
    with pytest.raises(vaekit.VaekitError, match=r"at step 6 of 8 in epoch 2\. Try a lower learning rate .*"
                                                 r"clip_norm.*last good checkpoint \(epoch 1\)"):
        tr.fit(x)
    weights, meta = ckpt.load_tensors(tmp_path / "r" / "model.safetensors")
    assert meta["epoch"] == 1 and all(torch.isfinite(v).all() for v in weights.values())
    assert [r["epoch"] for r in json.loads((tmp_path / "r" / "history.json").read_text())] == [1]


def test_a_second_writer_is_refused_while_the_first_trains_and_a_killed_one_leaves_no_lock(mnist_dir, tmp_path):
    from vaekit.train import lock

    run = tmp_path / "run"
    args = ["train", "--data", "mnist", "--data-dir", str(mnist_dir), "--limit", "300", "--latent-dim", "2",
            "--hidden", "16", "--epochs", "1", "--quiet"]
    # another process holds the folder: a child that takes the lock, says so, and waits to be killed
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from vaekit.train import lock; "
                               f"lock.acquire({str(run)!r}); print('held', flush=True); sys.stdin.read()"],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    for extra in ([], ["--resume"]):
        with pytest.raises(vaekit.VaekitError, match=r"is in use: process \d+ on .* is training into it"):
            lock.acquire(run)
        assert main([*args, "--out", str(run), *extra]) == 2
    with pytest.raises(vaekit.VaekitError, match="in use"):
        vaekit.VAE(latent_dim=2, hidden=(16,), epochs=1).fit(np.zeros((8, 4), np.float32), run_dir=run)
    assert not (run / "config.json").exists()  # nothing was written by the refused writers
    holder.send_signal(signal.SIGKILL)  # the kernel drops a dead process's lock
    holder.wait()
    assert main([*args, "--out", str(run)]) == 0
    assert vaekit.load(run).transform(np.zeros((1, 1, 28, 28), np.uint8)).shape == (1, 2)


def test_a_checkpoint_that_cannot_be_written_keeps_the_last_good_one_and_says_why(mnist_dir, tmp_path):
    import resource

    run = tmp_path / "run"
    args = ["train", "--data", "mnist", "--data-dir", str(mnist_dir), "--limit", "500", "--latent-dim", "4",
            "--hidden", "64", "--quiet", "--out", str(run)]
    assert main([*args, "--epochs", "1"]) == 0
    before = {p.name: p.read_bytes() for p in [run / "model.safetensors", run / "state" / "last.safetensors"]}
    limit = min(len(b) for b in before.values()) // 2  # smaller than any checkpoint: every write fails

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "vaekit", "train", "--out", str(run), "--resume", "--epochs", "2",
                           "--quiet"], cwd=ROOT, preexec_fn=small_files, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "could not write the checkpoint of epoch 2" in proc.stderr and "File too large" in proc.stderr
    assert "--resume" in proc.stderr and "Traceback" not in proc.stderr
    assert {p.name: p.read_bytes() for p in [run / "model.safetensors", run / "state" / "last.safetensors"]} == before
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]  # no half file left beside them
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--quiet"]) == 0


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


def test_200_fits_in_one_process_keep_memory_flat_and_leave_the_caller_s_random_streams_alone(mnist_small):
    """A grid search's loop (benchmarks/repeated_fit.py prints the curve beside a plain PyTorch loop): after
    a warm-up, resident memory grows by less than the stated bound over the remaining fits; and fit() gives the
    caller's torch, numpy and thread settings back as they were."""
    bench = load_benchmark("repeated_fit")
    x = mnist_small[0][:128]
    torch.manual_seed(7)
    np.random.seed(7)
    threads = torch.get_num_threads()
    expected_torch, expected_numpy = torch.rand(4), np.random.rand(4)
    torch.manual_seed(7)
    np.random.seed(7)
    rss = bench.vaekit_fits(x, 200)
    assert torch.equal(torch.rand(4), expected_torch) and np.array_equal(np.random.rand(4), expected_numpy)
    assert torch.get_num_threads() == threads
    assert rss[-1] - rss[19] < bench.BOUND_MIB, rss[19::20]


SAVE_CHILD = """
import os, signal, sys
import vaekit, vaekit.io
kind, src, dst, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
calls = {"n": 0}

def maybe_die():
    calls["n"] += 1
    if calls["n"] == n:
        os.kill(os.getpid(), signal.SIGKILL)

replace, exchange = os.replace, vaekit.io._exchange
def dying_replace(a, b):
    maybe_die()
    replace(a, b)
def dying_exchange(a, b):
    maybe_die()  # before the swap
    done = exchange(a, b)
    maybe_die()  # after it, before the old folder is removed
    return done
vaekit.io.os.replace, vaekit.io._exchange = dying_replace, dying_exchange
if kind == "model":
    vaekit.load(src, device="cpu").save(dst)
else:
    from vaekit.tasks.anomaly.detector import load_detector
    load_detector(src, device="cpu").save(dst)
print("calls", calls["n"])
"""


@pytest.mark.parametrize("kind", ["model", "detector"])
def test_a_save_killed_at_any_of_its_writes_leaves_the_old_folder_or_the_new_one_whole(kind, mnist_small, tmp_path):
    """Saving B over a folder that holds A, killed (SIGKILL, in a child process) at each of its file renames
    and around the final swap in turn: after every kill the folder loads as A or as B, never as a mix."""
    from vaekit.tasks.anomaly.detector import AnomalyDetector, load_detector

    x, probe = mnist_small[0][:256], mnist_small[2][:8]
    if kind == "model":
        a, b = (vaekit.VAE(latent_dim=d, hidden=(16,), epochs=1, random_state=0, device="cpu").fit(x) for d in (2, 3))
        load, out = vaekit.load, (lambda m: m.transform(probe))
    else:
        a, b = (AnomalyDetector(epochs=1, latent_dim=d, hidden=(16,), random_state=0).fit(x) for d in (2, 3))
        load, out = load_detector, (lambda m: m.decision_function(probe))
    b.save(tmp_path / "b")
    expected = {"a": out(a), "b": out(b)}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    a.save(tmp_path / "probe")
    full = subprocess.run([sys.executable, "-c", SAVE_CHILD, kind, str(tmp_path / "b"), str(tmp_path / "probe"),
                           "0"], env=env, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr
    writes = int(full.stdout.split()[-1])  # renames and swap points of one save over a folder that exists
    seen = set()
    for n in range(1, writes + 1):
        target = tmp_path / f"t{n}"
        a.save(target)
        proc = subprocess.run([sys.executable, "-c", SAVE_CHILD, kind, str(tmp_path / "b"), str(target), str(n)],
                              env=env, capture_output=True, text=True)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        got = out(load(target, device="cpu"))
        which = [k for k, v in expected.items() if v.shape == got.shape and np.array_equal(v, got)]
        assert which, f"a save killed at write {n} left a folder that is neither the old nor the new"
        seen.add(which[0])
    assert seen == {"a", "b"}  # kills before the swap keep the old folder, kills after it the new one
