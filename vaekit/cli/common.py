"""Pieces the commands share: loading a run and its data."""
from __future__ import annotations

import argparse

from ..config import DataConfig, from_dict
from ..data import Dataset, load_data
from ..errors import VaekitError
from ..runs import CONFIG_FILE, read_config


def load_run(run: str, device: str = "cpu"):
    """The run as an estimator (vaekit.LatentModel), for its latent-space verbs."""
    from ..estimators import LatentModel, load  # scikit-learn: only for commands that use a trained model

    model = load(run, device=device)
    if not isinstance(model, LatentModel):
        raise VaekitError(f"{run} holds a {type(model).__name__}, which this command does not take: use "
                          f"{model.COMMANDS.replace('RUN', run)}")
    return model


def load_run_data(run: str, data_dir: str | None = None) -> Dataset:
    """The data a run was trained on (its config.json says where), optionally from another data dir."""
    doc = read_config(run)
    if "data" not in doc:
        raise VaekitError(f"{run} does not record its data (it was saved from Python); pass images by path instead")
    cfg = from_dict(DataConfig, doc["data"], f"{run}/{CONFIG_FILE} (data)")
    if data_dir is not None:
        cfg.data_dir = data_dir
    return load_data(cfg)


def count(minimum: int = 1):
    """An argparse type for counts: below minimum, argparse names the flag and exits 2 before any work."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an int >= {minimum}; got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an int >= {minimum}; got {value}")
        return value
    parse.__name__ = "count"  # argparse's messages name the type by it
    return parse


def picture_or_array(text: str) -> str:
    """An argparse type for --out of a picture command: a .npy array or a picture suffix vaekit writes."""
    from ..plots import picture_format

    if not text.lower().endswith(".npy"):
        try:
            picture_format(text)
        except VaekitError as e:
            raise argparse.ArgumentTypeError(f"{e}, or .npy for the raw array") from None
    return text


picture_or_array.__name__ = "output file"


def add_run_args(p, out_suffix: str | None = ".png") -> None:
    p.add_argument("run", help="a run folder written by 'vaekit train'")
    if out_suffix:
        p.add_argument("--out", required=True, type=picture_or_array,
                       help=f"output file: a picture ({out_suffix}, .jpg, .webp, .pdf, .svg, .tif) in the format its "
                            f"suffix names, or .npy for the raw array")
    p.add_argument("--data-dir", help="where the run's named data set lives, if not where it was trained")
    p.add_argument("--seed", type=int, default=0, help="seed for anything random")


def add_table_reading_args(p, prefix: str = "") -> None:
    """The flags that say how a table file is read: --coerce, --categorical, --metadata."""
    p.add_argument("--coerce", action="store_true", help=f"{prefix}read stray text cells of a numeric column as "
                   "missing (with a warning) instead of refusing them")
    p.add_argument("--categorical", nargs="+", default=[], metavar="COLUMN",
                   help=f"{prefix}read these columns as categories even where they hold numbers")
    p.add_argument("--metadata", metavar="JSON",
                   help=f'{prefix}column types, {{"columns": {{"name": "categorical"}}}}; types: continuous, '
                   "integer, boolean, categorical, datetime, id (not modelled)")
