"""vaekit train: fit a model on a data set into a run folder (checkpointed every epoch; --resume continues)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig, ModelConfig, TrainConfig, from_dict, to_dict
from ..data import DiskRows, load_data
from ..data.images.dataset import NAMED
from ..errors import VaekitError
from ..runs import CONFIG_FILE, fit_module, read_config
from ..train import lock
from ..io import atomic_write_json
from ..models import MODELS, get_spec
from ..models.registry import IMAGES_AND_ARRAYS
from ..plots import training_curve
from ..train import STATE_FILE, WEIGHTS_FILE, resolve_device
from ..train import checkpoint as ckpt
from ..train.distributed import Distributed
from .common import count
from .options import add_config_flags, configs_from_args, read_config_file

HELP = "train a model on a data set into a run folder"


def add_arguments(p) -> None:
    p.add_argument("--model", help=f"registry name (default: vae): {', '.join(MODELS)}")
    p.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    p.add_argument("--config", help='JSON file {"model": {...}, "train": {...}, "data": {...}}; flags override it')
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=count(), default=1,
                   help="data-parallel processes on this machine (runs torchrun; gloo on CPU, NCCL on GPUs)")
    add_config_flags(p)


def run(args) -> int:
    dist = Distributed.from_env()
    if args.nproc > 1 and not dist.active:
        return _launch(args)
    locked: list[Path] = []  # the run folder, once its lock is taken: held from when the folder exists to the end
    try:
        return _train(args, dist, locked)
    finally:
        for out in locked:
            lock.release(out)


def _lock(out: Path, locked: list[Path]) -> None:
    if not locked:
        lock.acquire(out)
        locked.append(out)


def _train(args, dist, locked: list[Path]) -> int:
    out = Path(args.out)
    if dist.is_main and out.is_dir():  # a folder another process trains into is refused before anything else
        _lock(out, locked)
    saved = read_config(out) if (out / CONFIG_FILE).is_file() else None
    if args.resume:
        if saved is None or "model" not in saved:
            raise VaekitError(f"--resume: {out} holds no run to continue (no {CONFIG_FILE}, or one written before "
                              f"training started); drop --resume, or delete the folder")
        if args.model and get_spec(args.model).name != saved["model"]:
            raise VaekitError(
                f"{out} holds a '{saved['model']}' run, not '{args.model}'; resume it with --model "
                f"{saved['model']} (or no --model), or train '{args.model}' into a new --out folder"
            )
        name = saved["model"]
        base = {"model": saved["model_config"], "train": saved["train_config"], "data": saved["data"]}
    else:
        if out.exists() and any(p.name != lock.LOCK_FILE for p in out.iterdir()):
            kind = f"a '{saved['model']}' run" if saved and "model" in saved else "files"
            raise VaekitError(f"{out} already holds {kind}; pass --resume to continue it, or choose a new --out")
        name = args.model or "vae"
        base = read_config_file(args.config) if args.config else {}
    spec = get_spec(name)
    if spec.modality != IMAGES_AND_ARRAYS:  # each other modality has its own command
        from ..estimators import estimator_class

        raise VaekitError(f"model '{spec.name}' takes {spec.modality.split(' (')[0]}, not images or arrays: "
                          f"train it with '{estimator_class(spec).TRAIN_COMMAND}'")
    groups = configs_from_args(args, base)
    data_cfg = _data_config(groups["data"])
    data = load_data(data_cfg)  # before touching --out, so a bad data set leaves nothing behind
    data.test = None  # training never reads it: leave its memory to training
    # every value is validated before anything is written
    mcfg = from_dict(ModelConfig, spec.values(**groups["model"]), "the model options")
    mcfg = mcfg.validate(f"model '{spec.name}'")
    tcfg = from_dict(TrainConfig, groups["train"], "the training options").validate("the trainer")
    if args.resume and _finished(out, tcfg):
        return 0
    dist.init(dist.device(resolve_device(tcfg.device)))
    dist.barrier()  # every process has checked --out before rank 0 writes into it
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        _lock(out, locked)
        doc = saved or {}
        doc["data"] = _recorded(data_cfg)
        atomic_write_json(out / CONFIG_FILE, doc)
    _, history = fit_module(spec.name, mcfg, tcfg, _tensor(data.train.x),
                            None if data.val is None else _tensor(data.val.x),
                            run_dir=out, resume=args.resume, verbose=not args.quiet)
    del data  # the plot below imports matplotlib: let it take the data's memory, not add to it
    if dist.is_main:
        training_curve(history, out / "history.png")
        last = history[-1] if history else {}
        print(json.dumps({"run": str(out), "model": spec.name, "epochs": last.get("epoch"),
                          **{k: round(v, 4) for k, v in last.items() if k.endswith("loss")}}))
    dist.close()
    return 0


def _finished(out: Path, tcfg: TrainConfig) -> bool:
    """--resume on a run with nothing left to train: say so (an error, not a silent no-op), or, where its
    model.safetensors is damaged, rewrite that file from the resume state and say so. False: train on."""
    state = out / STATE_FILE
    if not state.is_file():
        return False  # the trainer says there is nothing to resume from
    t = ckpt.load_metadata(state)["trainer"]  # the header only: training, if any, reads the tensors
    done, stopped = t["epoch"], tcfg.patience is not None and t["bad_epochs"] >= tcfg.patience
    if done < tcfg.epochs and not stopped:
        return False
    try:
        ckpt.load_metadata(out / WEIGHTS_FILE)  # readable: nothing to rewrite
    except VaekitError as e:
        weights = ckpt.module_tensors(ckpt.load_tensors(state)[0])
        ckpt.save_tensors(out / WEIGHTS_FILE, weights, {"epoch": done})
        print(f"vaekit train: {e}; rewrote {WEIGHTS_FILE} from {state} (epoch {done})", file=sys.stderr)
        return True
    if stopped:
        raise VaekitError(f"{out} stopped early at epoch {done} (no better validation loss for {t['bad_epochs']} "
                          f"epochs; best epoch {t['best_epoch']}): nothing to resume. Pass a larger --patience "
                          f"(now {tcfg.patience}) to train on")
    raise VaekitError(f"{out} has already trained its {done} epochs: nothing to resume. Pass --epochs N with "
                      f"N > {done} to train further")


def _tensor(x):
    """In-memory arrays as tensors; on-disk rows (--memmap) stay on disk."""
    return x if isinstance(x, DiskRows) else torch.from_numpy(np.ascontiguousarray(x))


def _launch(args) -> int:
    """Run this same command under torchrun in args.nproc processes on this machine."""
    argv, skip = [], False
    for token in args.argv[1:]:  # drop the command name and --nproc N
        if skip or token.startswith("--nproc="):
            skip = False
            continue
        if token == "--nproc":
            skip = True
            continue
        argv.append(token)
    threads = max(1, (os.cpu_count() or 1) // args.nproc)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads))}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
           "-m", "vaekit", "train", *argv]
    return subprocess.call(cmd, env=env)


def _recorded(cfg: DataConfig) -> dict:
    """The data options as config.json keeps them: relative paths made absolute, so that the run's other
    commands find its data from any working directory."""
    doc = to_dict(cfg)
    if doc["data_dir"] is not None:
        doc["data_dir"] = str(Path(doc["data_dir"]).expanduser().resolve())
    source = Path(doc["source"]).expanduser()
    if doc["source"] not in NAMED and source.exists():  # a name wins over a same-named file, as in load_data
        doc["source"] = str(source.resolve())
    return doc


def _data_config(values: dict):
    return from_dict(DataConfig, values, "the data options").validate()


