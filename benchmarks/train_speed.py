"""Training speed on full MNIST: vaekit's trainer vs the classic recipe, and the matmul floor.

The classic recipe is pytorch/examples' vae/main.py (784-400-20, sigmoid + BCE summed, Adam 1e-3,
batch 128) fed the common way: a DataLoader over an in-memory TensorDataset, in a process of its own
with the C library's default allocator settings (vaekit's trainer tunes glibc's for its process, and
that tuning alone makes the classic loop ~10% faster). The floor is the time of only the matrix
multiplies one epoch needs (forward, weight gradients, input gradients but the first layer's). The
three take turns epoch by epoch (the classic process waits while this one works and back), so a busy
machine slows them alike.

    python benchmarks/train_speed.py [--epochs 10] [--data-dir ../shared/data]
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.config import DataConfig, TrainConfig
from vaekit.data import load_data
from vaekit.models import MODELS, build_module
from vaekit.train import Trainer

LAYERS = [(784, 400), (400, 40), (20, 400), (400, 784)]  # fc21 and fc22 counted as one 400x40


class ClassicVAE(nn.Module):
    """The model of pytorch/examples vae/main.py, as people run it."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def classic_loss(recon, x, mu, logvar):
    bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


class ClassicRun:
    """pytorch/examples' training loop, one epoch per call, fed by a DataLoader over a TensorDataset."""

    def __init__(self, x_train):
        torch.manual_seed(0)
        self.model = ClassicVAE()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train), batch_size=128,
                                                  shuffle=True)
        self.times = []

    def epoch(self) -> None:
        self.model.train()
        t0 = time.perf_counter()
        train_loss = 0.0
        for (xb,) in self.loader:
            self.opt.zero_grad()
            loss = classic_loss(*_fwd(self.model, xb))
            loss.backward()
            train_loss += loss.item()
            self.opt.step()
        self.times.append(time.perf_counter() - t0)

    @torch.no_grad()
    def test_loss(self, x_test) -> float:
        self.model.eval()
        total = sum(classic_loss(*_fwd(self.model, x_test[i:i + 1000])).item() for i in range(0, len(x_test), 1000))
        return total / len(x_test)


def classic_process(conn, data_dir: str) -> None:
    """The classic recipe in its own process: one epoch per 'epoch' message, its time sent back."""
    data = load_data(DataConfig("mnist", data_dir=data_dir, val_fraction=0))
    run = ClassicRun(torch.from_numpy(data.train.x.copy()).float() / 255)
    conn.send("ready")
    while conn.recv() != "test":  # "epoch"
        run.epoch()
        conn.send(run.times[-1])
    conn.send((run.times, run.test_loss(torch.from_numpy(data.test.x.copy()).float() / 255)))


def _fwd(model, xb):
    recon, mu, logvar = model(xb)
    return recon, xb, mu, logvar


def matmul_floor(steps: int, batch: int = 128, repeats: int = 3) -> float:
    """Seconds for one epoch of only the matrix multiplies (best of repeats)."""
    ops = []
    for i, (n_in, n_out) in enumerate(LAYERS):
        x, w, g = torch.randn(batch, n_in), torch.randn(n_out, n_in), torch.randn(batch, n_out)
        ops.append((x, w.t()))  # forward
        ops.append((g.t(), x))  # weight gradient
        if i > 0:
            ops.append((g, w))  # input gradient (the data need none)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            for a, b in ops:
                torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    data = load_data(DataConfig("mnist", data_dir=args.data_dir, val_fraction=0))
    x_train_u8, x_test_u8 = torch.from_numpy(data.train.x.copy()), torch.from_numpy(data.test.x.copy())
    steps = math.ceil(len(x_train_u8) / 128)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(x_train_u8)} images, "
          f"{steps} steps/epoch, {args.epochs} epochs each\n")
    conn, child_conn = multiprocessing.Pipe()
    classic = multiprocessing.get_context("spawn").Process(target=classic_process, args=(child_conn, args.data_dir))
    classic.start()
    assert conn.recv() == "ready"
    floors = []

    def between_epochs(row):
        # one classic epoch and one floor timing after every vaekit epoch: machine noise hits all three alike
        conn.send("epoch")
        conn.recv()
        floors.append(matmul_floor(steps, repeats=1))

    torch.manual_seed(0)
    module = build_module("vae", MODELS["vae"].config(latent_dim=20, hidden=(400,)), (1, 28, 28))
    trainer = Trainer(module, TrainConfig(epochs=args.epochs, batch_size=128, lr=1e-3), verbose=False,
                      on_epoch_end=between_epochs)
    ours_times = [row["time_s"] for row in trainer.fit(x_train_u8)]
    ours_elbo = trainer.evaluate_losses(x_test_u8)["loss"]
    conn.send("test")
    classic_times, classic_elbo = conn.recv()
    classic.join()
    floor = statistics.median(floors)
    c, o = statistics.median(classic_times), statistics.median(ours_times)
    rows = [("classic (DataLoader)", c, classic_elbo), ("vaekit Trainer", o, ours_elbo), ("matmul floor", floor, None)]
    print(f"{'':24}{'s/epoch (median)':>18}{'test -ELBO':>12}")
    for name, t, elbo in rows:
        print(f"{name:24}{t:18.2f}{'' if elbo is None else f'{elbo:.2f}':>12}")
    print(f"\nspeed-up over classic: {c / o:.2f}x   vaekit / floor: {o / floor:.2f}x   classic / floor: {c / floor:.2f}x")
    result = {"classic_s_per_epoch": c, "vaekit_s_per_epoch": o, "floor_s_per_epoch": floor,
              "speedup": c / o, "vaekit_over_floor": o / floor, "classic_test_neg_elbo": classic_elbo,
              "vaekit_test_neg_elbo": ours_elbo, "classic_times": classic_times, "vaekit_times": ours_times}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
