"""vaekit's optimiser class runs torch's own fused Adam / AdamW / SGD: the same numbers, bit for bit."""
import subprocess
import sys

import pytest
import torch
from torch import nn

from vaekit.train import checkpoint as ckpt
from vaekit.train.optim import FusedOptimizer
from conftest import ROOT


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))


@pytest.mark.parametrize("kind, reference", [
    ("adam", lambda p: torch.optim.Adam(p, lr=3e-3, weight_decay=1e-3, fused=True)),
    ("adamw", lambda p: torch.optim.AdamW(p, lr=3e-3, weight_decay=1e-2, fused=True)),
    ("sgd", lambda p: torch.optim.SGD(p, lr=3e-2, momentum=0.9, weight_decay=1e-3, fused=True)),
])
def test_same_updates_as_torch_optim(kind, reference, mnist_small, tmp_path):
    x = torch.from_numpy(mnist_small[0][:256]).float().flatten(1) / 255
    y = torch.from_numpy(mnist_small[1][:256])
    ours_net, ref_net = _net(), _net()
    wd = {"adam": 1e-3, "adamw": 1e-2, "sgd": 1e-3}[kind]
    ours = FusedOptimizer(ours_net.parameters(), kind, lr=3e-2 if kind == "sgd" else 3e-3, weight_decay=wd)
    ref = reference(ref_net.parameters())
    for step in range(6):
        for net, opt in ((ours_net, ours), (ref_net, ref)):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[step * 32:(step + 1) * 32]), y[step * 32:(step + 1) * 32]).backward()
            opt.step()
        if step == 2:  # the state survives a safetensors round trip mid-run
            tensors, meta = ckpt.optimizer_to_tensors(ours)
            ckpt.save_tensors(tmp_path / "o.safetensors", tensors, {"optimizer": meta})
            loaded, m = ckpt.load_tensors(tmp_path / "o.safetensors")
            ours = FusedOptimizer(ours_net.parameters(), kind, lr=0.0, weight_decay=wd)
            ckpt.optimizer_from_tensors(ours, loaded, m["optimizer"])
    for a, b in zip(ours_net.parameters(), ref_net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_training_imports_neither_dynamo_nor_sklearn(tmp_path):
    """Each is ~70 MB resident; the command line's training process needs neither."""
    code = ("import sys, numpy as np; from vaekit.cli import main; "
            "np.save(sys.argv[1] + '/x.npy', np.random.default_rng(0).random((64, 5), dtype=np.float32)); "
            "assert main(['train', '--data', sys.argv[1] + '/x.npy', '--latent-dim', '2', '--hidden', '8', "
            "'--epochs', '1', '--out', sys.argv[1] + '/r', '--quiet']) == 0; "
            "print(sorted(m for m in sys.modules if m.startswith(('torch._dynamo', 'sklearn'))))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
