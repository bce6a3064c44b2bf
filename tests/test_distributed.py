"""Data-parallel training: 2 CPU processes (gloo, through torchrun) reproduce 1 process with the same
global batch and seed, including a resume under DDP and dynamic binarisation."""
import json

import pytest
import torch

from vaekit.cli import main
from vaekit.train import checkpoint as ckpt
from vaekit.train.distributed import Distributed


def _train(mnist_dir, out, *extra):
    argv = ["train", "--data", "mnist", "--data-dir", str(mnist_dir), "--limit", "900", "--latent-dim", "4",
            "--hidden", "64", "--batch-size", "64", "--binarize", "--seed", "3", "--out", str(out), "--quiet",
            "--device", "cpu", *extra]  # gloo on CPU even where a GPU is visible
    assert main(argv) == 0


def test_two_gloo_processes_match_one(mnist_dir, tmp_path):
    _train(mnist_dir, tmp_path / "one", "--epochs", "2")
    _train(mnist_dir, tmp_path / "two", "--epochs", "1", "--nproc", "2")
    _train(mnist_dir, tmp_path / "two", "--epochs", "2", "--nproc", "2", "--resume")
    one, _ = ckpt.load_tensors(tmp_path / "one" / "model.safetensors")
    two, _ = ckpt.load_tensors(tmp_path / "two" / "model.safetensors")
    assert one.keys() == two.keys()
    for k in one:  # summation order differs between one all-reduced sum and one local sum: float noise only
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5)
    h1 = json.loads((tmp_path / "one" / "history.json").read_text())
    h2 = json.loads((tmp_path / "two" / "history.json").read_text())
    assert [r["epoch"] for r in h2] == [1, 2]
    for a, b in zip(h1, h2):
        for key in ("train_loss", "val_loss", "train_kl"):
            assert b[key] == pytest.approx(a[key], rel=1e-5)


@pytest.mark.parametrize("n, world", [(10, 3), (2, 4), (128, 2)])
def test_rows_partition_every_global_batch(n, world):
    parts = [Distributed(rank, world).rows(n) for rank in range(world)]
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    assert [b - a for a, b in parts] == [len(t) for t in torch.tensor_split(torch.arange(n), world)]


def test_more_processes_than_gpus_is_a_clear_error(monkeypatch):
    from vaekit.errors import VaekitError

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert Distributed(0, 2, 0).device(torch.device("cuda")) == torch.device("cuda", 0)
    with pytest.raises(VaekitError, match="only 1 GPU.*--device cpu"):
        Distributed(1, 2, 1).device(torch.device("cuda"))
