"""Training speed on full MNIST: vaekit's trainer vs the classic recipe, and the matmul floor.

The classic recipe is pytorch/examples' vae/main.py (784-400-20, sigmoid + BCE summed, Adam 1e-3,
batch 128) fed the common way: a DataLoader over an in-memory TensorDataset, in a process of its own
with the C library's default allocator settings (vaekit's trainer tunes glibc's for its process, and
that tuning alone makes the classic loop ~10% faster). The floor is the time of only the matrix
multiplies one epoch needs (forward, weight gradients, input gradients but the first layer's).

The three take turns in slices of an eighth of an epoch (the classic process waits while this one
works and back), and each epoch's time is the sum of its slices: on a shared machine whose speed
drifts by 30% within a minute, all three then see the same machine. Epoch-by-epoch turns gave ratios
that moved by 0.15 between runs of the same code.

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
    """pytorch/examples' training loop fed by a DataLoader over a TensorDataset, run a slice of an epoch
    per call; an epoch's time is the sum of its slices."""

    def __init__(self, x_train):
        torch.manual_seed(0)
        self.model = ClassicVAE()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train), batch_size=128,
                                                  shuffle=True)
        self.batches, self.elapsed, self.times = None, 0.0, []

    def run_slice(self, n_steps: int) -> None:
        self.model.train()
        t0 = time.perf_counter()
        if self.batches is None:  # a new epoch: its iterator (and shuffle) counts in its time
            self.batches = iter(self.loader)
        train_loss = 0.0
        for _ in range(n_steps):
            (xb,) = next(self.batches)
            self.opt.zero_grad()
            loss = classic_loss(*_fwd(self.model, xb))
            loss.backward()
            train_loss += loss.item()
            self.opt.step()
        self.elapsed += time.perf_counter() - t0

    def end_epoch(self) -> None:
        assert next(self.batches, None) is None, "slices must cover the epoch"
        self.times.append(self.elapsed)
        self.batches, self.elapsed = None, 0.0

    @torch.no_grad()
    def test_loss(self, x_test) -> float:
        self.model.eval()
        total = sum(classic_loss(*_fwd(self.model, x_test[i:i + 1000])).item() for i in range(0, len(x_test), 1000))
        return total / len(x_test)


def classic_process(conn, data_dir: str) -> None:
    """The classic recipe in its own process: ('slice', n) runs n steps, ('end',) closes an epoch."""
    data = load_data(DataConfig("mnist", data_dir=data_dir, val_fraction=0))
    run = ClassicRun(torch.from_numpy(data.train.x.copy()).float() / 255)
    conn.send("ready")
    while (msg := conn.recv())[0] != "test":
        if msg[0] == "slice":
            run.run_slice(msg[1])
        else:
            run.end_epoch()
        conn.send("done")
    conn.send((run.times, run.test_loss(torch.from_numpy(data.test.x.copy()).float() / 255)))


def _fwd(model, xb):
    recon, mu, logvar = model(xb)
    return recon, xb, mu, logvar


class MatmulFloor:
    """Only the matrix multiplies of training steps at batch 128, on random operands."""

    def __init__(self, batch: int = 128):
        self.ops = []
        for i, (n_in, n_out) in enumerate(LAYERS):
            x, w, g = torch.randn(batch, n_in), torch.randn(n_out, n_in), torch.randn(batch, n_out)
            self.ops.append((x, w.t()))  # forward
            self.ops.append((g.t(), x))  # weight gradient
            if i > 0:
                self.ops.append((g, w))  # input gradient (the data need none)

    def seconds(self, steps: int) -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            for a, b in self.ops:
                torch.mm(a, b)
        return time.perf_counter() - t0


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
    floor, slices = MatmulFloor(), 8
    ends = {round(steps * (j + 1) / slices) for j in range(slices)}  # the last step of each slice, 1-based
    pauses, floor_times, done = [0.0] * args.epochs, [0.0] * args.epochs, [0]

    def ask(*msg):
        conn.send(msg)
        assert conn.recv() == "done"

    def between_slices(epoch, step):
        # after each eighth of a vaekit epoch: the same steps of the classic recipe, then of the floor
        if step + 1 not in ends:
            return
        t0 = time.perf_counter()
        ask("slice", step + 1 - done[0])
        floor_times[epoch] += floor.seconds(step + 1 - done[0])
        done[0] = step + 1
        if step + 1 == steps:
            ask("end")
            done[0] = 0
        pauses[epoch] += time.perf_counter() - t0

    torch.manual_seed(0)
    module = build_module("vae", MODELS["vae"].config(latent_dim=20, hidden=(400,)), (1, 28, 28))
    trainer = Trainer(module, TrainConfig(epochs=args.epochs, batch_size=128, lr=1e-3), verbose=False,
                      on_step=between_slices)
    ours_times = [row["time_s"] - pause for row, pause in zip(trainer.fit(x_train_u8), pauses)]
    ours_elbo = trainer.evaluate_losses(x_test_u8)["loss"]
    conn.send(("test",))
    classic_times, classic_elbo = conn.recv()
    classic.join()
    floor = statistics.median(floor_times)
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
