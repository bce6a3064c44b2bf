"""vaekit anomaly fit|score|evaluate: train a detector on normal data, score new data, measure it.

Data: a named image set (mnist, fashion-mnist, digits; --normal-class picks the normal class: fit
reads its training images, evaluate the whole test split with every other class as anomalous), an
image folder or array file, or a table (.csv with a header, .parquet, or .npz with X and optional y). Labels
are 0/1 (1 = anomaly), true/false, or two values of which --anomaly-label names the anomalous one.
"""
from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import plots
from ..tasks.anomaly import SCORES, anomaly_labels, threshold_metrics
from ..config import DataConfig
from ..data import NAMED, load_data
from ..data.images.files import reading_arrays
from ..errors import VaekitError, listed
from ..io import atomic_write, atomic_write_json
from ..data.tables.reader import drop_missing, read_metadata, read_table
from .common import add_table_reading_args, count

HELP = "anomaly detection: fit a detector on normal data, score data, evaluate AUROC/AUPRC with plots"


def _data_args(p, labels: bool = False) -> None:
    """The data flags of every anomaly command; labels: also --anomaly-label (evaluate, the one that reads them)."""
    p.add_argument("--data", required=True,
                   help="named image set, image folder, .npy/.npz array, or .csv/.parquet/.npz table")
    p.add_argument("--data-dir", help="where named data sets live")
    p.add_argument("--normal-class", help="named sets: the normal class (index or name)")
    p.add_argument("--label-column", help="CSV tables: the column holding labels, left out of the features")
    if labels:
        p.add_argument("--anomaly-label", metavar="VALUE", help="the label value that marks an anomaly, where the "
                       "labels are not 0/1 (1 = anomaly) or true/false, e.g. --anomaly-label 2")
    p.add_argument("--drop-missing", action="store_true", help="tables: drop rows with missing values (and say which)")
    add_table_reading_args(p, "tables: ")


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    fit = sub.add_parser("fit", help="train a detector on (mostly) normal data")
    _data_args(fit)
    fit.add_argument("--out", required=True, help="folder for the detector")
    fit.add_argument("--model", default="vae", help="registry model (default: vae)")
    fit.add_argument("--score", choices=SCORES, default="nll", help="nll: -log p(x) by importance sampling; elbo: "
                     "the negative ELBO; reconstruction: the error at the posterior mean (any model)")
    fit.add_argument("--contamination", type=float, default=0.1, help="share of the training data flagged")
    fit.add_argument("--epochs", type=count(), help="default: sized to the data")
    fit.add_argument("--latent-dim", type=count(), help="code size of every member (default: tables a quarter of "
                     "the features, 2 to 16; images 16)")
    fit.add_argument("--beta", type=float, help="weight of every member's KL term (default: 1); lower lets the "
                     "codes model how columns relate where the unit-variance likelihood leaves them unused")
    fit.add_argument("--trim", type=float, help="share of each model's training rows left out of its refit "
                     "(default: 0.2 for tables, 0 for images)")
    fit.add_argument("--seed", type=int, default=0, help="seeds every member's initialisation, rows and noise")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    for name in ("score", "evaluate"):
        q = sub.add_parser(name, help="score data with a saved detector" if name == "score"
                           else "AUROC / AUPRC against labels, ROC and PR plots, scores")
        q.add_argument("detector", help="a folder written by 'vaekit anomaly fit'")
        _data_args(q, labels=name == "evaluate")
        q.add_argument("--out", required=True, help="scores .csv" if name == "score" else "output folder")


def run(args) -> int:
    return {"fit": _fit, "score": _score, "evaluate": _evaluate}[args.action](args)


def _is_table(path: str) -> bool:
    p = Path(path)
    if p.suffix.lower() in (".csv", ".parquet"):
        return True
    if p.suffix.lower() == ".npz" and p.is_file():
        with reading_arrays(p), np.load(p, allow_pickle=False) as z:
            return "X" in z and z["X"].ndim == 2
    return False


@dataclass
class RoleData:
    """What a command reads: the detector's input, the labels as read (or None), each row's number in the
    input, and the numbers of the rows dropped for missing values."""

    x: object
    labels: np.ndarray | None
    rows: np.ndarray
    dropped: np.ndarray


def load_role(args, role: str) -> RoleData:
    """The data of role 'fit' (training data) or 'score'/'evaluate'."""
    if _is_table(args.data):
        types = read_metadata(args.metadata) if args.metadata else None
        table = read_table(args.data, args.label_column, coerce=args.coerce, categorical=args.categorical, types=types)
        dropped = np.array([], dtype=np.int64)
        if args.drop_missing:
            table, dropped = drop_missing(table)
            if len(dropped):
                print(f"vaekit anomaly: dropped {len(dropped)} rows with missing values (rows {listed(dropped, 20)}; "
                      f"rows count data lines from 0); the other rows keep their numbers", file=sys.stderr)
        return RoleData(table, table.label, table.rows, dropped)
    path = Path(args.data).expanduser()
    if path.is_file() and path.suffix.lower() not in (".npy", ".npz"):
        raise VaekitError(f"cannot read {path}: anomaly commands read a named image set ({', '.join(NAMED)}), a folder "
                          f"of images, a .npy or .npz array, or a table as .csv (with a header line), .parquet or "
                          f".npz (X, y). Save a table in another format as CSV with a header line")
    data = load_data(DataConfig(args.data, data_dir=args.data_dir, val_fraction=0))
    split = data.train if role == "fit" else data.test
    x, y = split.x, split.y
    rows = np.arange(len(x))
    none = np.array([], dtype=np.int64)
    if args.normal_class is None:
        return RoleData(x, y if role != "fit" else None, rows, none)
    normal = _class_index(args.normal_class, data.classes)
    if role == "fit":
        keep = y == normal
        return RoleData(x[keep], None, rows[keep], none)
    return RoleData(x, (y != normal).astype(int), rows, none)


def _class_index(name: str, classes) -> int:
    if name.lstrip("-").isdigit():
        return int(name)
    if classes and name in classes:
        return classes.index(name)
    raise VaekitError(f"unknown class '{name}'; classes: {classes}")


def _fit(args) -> int:
    from ..tasks.anomaly.detector import AnomalyDetector  # scikit-learn: only for this command

    data = load_role(args, "fit")
    det = AnomalyDetector(model=args.model, score=args.score, contamination=args.contamination, epochs=args.epochs,
                          latent_dim=args.latent_dim, trim=args.trim, random_state=args.seed, verbose=not args.quiet,
                          params=None if args.beta is None else {"beta": args.beta})
    det.fit(data.x)
    det.save(args.out)
    print(json.dumps({"detector": args.out, "kind": det.kind_, "n_train": len(det.decision_scores_),
                      "threshold": det.threshold_, "flagged": int(det.labels_.sum()), "dropped": len(data.dropped)}))
    return 0


def _score_rows(det, data: RoleData, path) -> np.ndarray:
    """Write scores.csv: the input's row number, score, 0/1 flag and (tables) the three columns whose errors
    are largest relative to their typical error on the training rows."""
    scores = det.decision_function(data.x)
    header, extra = ["row", "score", "anomaly"], [[] for _ in scores]
    if det.kind_ == "table":
        names, contrib = det.feature_contributions(data.x)
        header.append("top_columns")
        for i, row in enumerate(contrib):
            top = np.argsort(row, kind="stable")[::-1][:3]
            extra[i] = ["; ".join(f"{names[j]} ({row[j]:.1f}x)" for j in top)]

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for r, s, e in zip(data.rows.tolist(), scores, extra):
                w.writerow([r, f"{s:.6g}", int(s > det.threshold_), *e])
    atomic_write(path, write)
    return scores


def _score(args) -> int:
    from ..tasks.anomaly.detector import load_detector

    det = load_detector(args.detector)
    data = load_role(args, "score")
    scores = _score_rows(det, data, args.out)
    print(json.dumps({"scores": args.out, "n": len(scores), "flagged": int((scores > det.threshold_).sum()),
                      "dropped_rows": data.dropped.tolist()}))
    return 0


def _evaluate(args) -> int:
    from ..tasks.anomaly.detector import load_detector

    det = load_detector(args.detector)
    data = load_role(args, "evaluate")
    if data.labels is None:
        raise VaekitError("evaluate needs labels: a table's y (or --label-column), or --normal-class for a named set")
    name = f"label column '{args.label_column}'" if args.label_column else "the labels"
    y = anomaly_labels(data.labels, name, args.anomaly_label, data.rows)
    out = Path(args.out)
    scores = _score_rows(det, data, out / "scores.csv")
    metrics = threshold_metrics(y, scores, det.threshold_)
    metrics["dropped_rows"] = data.dropped.tolist()
    plots.roc_pr_curves(y, scores, out / "roc.png", out / "pr.png", metrics, title=Path(args.detector).name)
    atomic_write_json(out / "metrics.json", metrics)
    print(json.dumps({k: v for k, v in metrics.items() if k != "dropped_rows"} | {"dropped": len(data.dropped)}))
    return 0
