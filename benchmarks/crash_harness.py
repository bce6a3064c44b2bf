"""Kill-and-resume: training killed with SIGKILL at random points, resumed each time, ends bit for bit where an
uninterrupted run ends.

For each model family (the image VAE on MNIST, the tabular VAE on German credit, the sentence VAE on the Brown
corpus) a child process trains through the shared fit_module into a run folder, resuming when the folder holds
a checkpoint, and kills itself at a point the harness draws: at a random training step, in the middle of
writing a checkpoint file (the temporary file half written), or just before a finished temporary file
replaces the old one. After every kill the folder must load; when a run finishes, its weights must equal the
uninterrupted run's exactly. Prints a table of kills per family and where they landed.

    python benchmarks/crash_harness.py [--kills 50] [--families vae tabular-vae sentence-vae] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VAEKIT_DATA", ROOT.parent / "shared" / "data"))
FAMILIES = ("vae", "tabular-vae", "sentence-vae")
EPOCHS = 6


# -- the child: one training process, killed where it is told --------------------------------------------------
def build(family: str):
    """(registry name, model config, train config, data, likelihood) of a small real-data run of family."""
    import numpy as np
    import torch

    from vaekit.config import ModelConfig, TrainConfig
    from vaekit.models import get_spec

    train = TrainConfig(epochs=EPOCHS, batch_size=64, seed=3)
    if family == "vae":
        from vaekit.data import load_idx_set

        x = load_idx_set("mnist", DATA, download=False)[0][:512, None]
        return "vae", ModelConfig(latent_dim=4, hidden=(64,)), train, torch.from_numpy(np.ascontiguousarray(x)), None
    if family == "tabular-vae":
        import pandas as pd

        from vaekit.data.tables.encoding import TableBatches, TableEncoding
        from vaekit.data.tables.reader import Table
        from vaekit.models.likelihoods import TableLikelihood

        frame = pd.read_csv(DATA / "tabular" / "german-credit" / "german.data", sep=" ", header=None)
        frame.columns = [f"a{i}" for i in range(1, frame.shape[1] + 1)]
        table = Table.from_frame(frame)
        enc = TableEncoding.fit(table, {}, 3)
        data = TableBatches(enc, *enc.encode(table, 3))
        torch.manual_seed(3)
        likelihood = TableLikelihood.of(enc, 64)
        cfg = get_spec("tabular-vae").config(latent_dim=8, hidden=(64, 64))
        return "tabular-vae", cfg, train, data, likelihood
    from vaekit.data.text import read_sentences
    from vaekit.tasks.text.sentences import SentenceVAE

    sentences = read_sentences(DATA / "text" / "brown" / "brown_sentences.txt")[:400]
    est = SentenceVAE(latent_dim=8, hidden_dim=32, embed_dim=16, epochs=EPOCHS, batch_size=32, random_state=3)
    from vaekit.data.text import fit_tokenizer

    d = est.data_config()
    est.tokenizer_ = fit_tokenizer(d.tokenizer, sentences, d.vocab_size, d.min_count, d.lower)
    return est.model, est.model_config(), est.train_config(), est._batches(sentences, None), None


def child(family: str, run: str, kill: str) -> None:
    """Train family into run (resuming from its checkpoint if it has one); kill: 'none', 'step:N' (at this
    process's N-th training step), 'mid:N' (half-way through its N-th checkpoint file) or 'replace:N' (just
    before its N-th finished checkpoint file replaces the old one)."""
    import vaekit.io
    import vaekit.train.checkpoint as ckpt
    from vaekit.runs import fit_module
    from vaekit.train import STATE_FILE, trainer

    kind, _, n = kill.partition(":")
    count = {"n": 0}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def tick() -> bool:
        count["n"] += 1
        return count["n"] == int(n)

    if kind == "step":
        init = trainer.Trainer.__init__

        def with_killer(self, *a, **k):
            init(self, *a, **k)
            self.on_step = lambda epoch, step: die() if tick() else None

        trainer.Trainer.__init__ = with_killer
    elif kind == "mid":
        save_file = ckpt.save_file

        def half_then_die(tensors, path, metadata=None):
            save_file(tensors, path, metadata=metadata)
            if tick():
                size = os.path.getsize(path)
                os.truncate(path, size // 2)
                die()

        ckpt.save_file = half_then_die
    elif kind == "replace":
        replace = os.replace

        def die_before(src, dst):
            if str(dst).endswith(".safetensors") and tick():
                die()
            replace(src, dst)

        vaekit.io.os.replace = die_before
    name, mcfg, tcfg, data, likelihood = build(family)
    fit_module(name, mcfg, tcfg, data, run_dir=run, resume=(Path(run) / STATE_FILE).is_file(),
               likelihood=likelihood, warn_collapse=False)


# -- the harness ------------------------------------------------------------------------------------------------
def run_child(family: str, run: Path, kill: str) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "VAEKIT_DATA": str(DATA)}
    proc = subprocess.run([sys.executable, __file__, "--child", family, str(run), kill], env=env,
                          capture_output=True, text=True)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(f"{family} child ({kill}) failed with {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc.returncode


def weights(run: Path):
    from vaekit.train import checkpoint as ckpt

    return ckpt.load_tensors(run / "model.safetensors")[0]


def check_loadable(run: Path) -> None:
    """After a kill: every checkpoint file the folder holds loads."""
    from vaekit.train import checkpoint as ckpt

    for name in ("model.safetensors", "state/last.safetensors"):
        if (run / name).exists():
            ckpt.load_tensors(run / name)
    if (run / "history.json").exists():
        json.loads((run / "history.json").read_text())


def harness(family: str, kills: int, seed: int, root: Path, plan: list[str] | None = None) -> dict:
    """kills random kills of family's training (plan: these kills, in order, instead), resumed after each."""
    rng = random.Random(f"{family}-{seed}")
    plan = list(plan) if plan is not None else None
    if plan is not None:
        kills = len(plan)
    reference = root / f"{family}-reference"
    assert run_child(family, reference, "none") == 0
    expected = weights(reference)
    steps_per_epoch = {"vae": 8, "tabular-vae": 16, "sentence-vae": 13}[family]
    done = {"step": 0, "mid": 0, "replace": 0}
    finished = 0
    attempt = 0
    run = root / f"{family}-0"
    while sum(done.values()) < kills:
        if plan is not None:
            kind, _, n = plan.pop(0).partition(":")
        else:
            kind = rng.choices(["step", "mid", "replace"], [0.6, 0.2, 0.2])[0]
            n = rng.randint(1, 2 * steps_per_epoch) if kind == "step" else rng.randint(1, 4)
        rc = run_child(family, run, f"{kind}:{n}")
        if rc == 0:  # the run finished before the kill point: it must end where the reference does
            _compare(weights(run), expected, family)
            finished += 1
            attempt += 1
            run = root / f"{family}-{attempt}"
            continue
        done[kind] += 1
        check_loadable(run)
    assert run_child(family, run, "none") == 0
    _compare(weights(run), expected, family)
    finished += 1
    return {"family": family, "kills": sum(done.values()), **done, "runs_finished": finished}


def _compare(got, expected, family: str) -> None:
    import torch

    assert got.keys() == expected.keys(), family
    for k, v in expected.items():
        if not torch.equal(got[k], v):
            raise AssertionError(f"{family}: {k} differs from the uninterrupted run after resuming")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", nargs=3, metavar=("FAMILY", "RUN", "KILL"), help=argparse.SUPPRESS)
    p.add_argument("--kills", type=int, default=50, help="kills per family")
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.child:
        child(*args.child)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families:
            rows.append(harness(family, args.kills, args.seed, Path(tmp)))
            print(f"{family}: {rows[-1]}", flush=True)
    print("\n| family | kills | at a step | mid-write | before rename | runs finished, all bitwise equal |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['family']} | {r['kills']} | {r['step']} | {r['mid']} | {r['replace']} | {r['runs_finished']} |")


if __name__ == "__main__":
    main()
