"""vaekit anomaly fit|score|evaluate: train a detector on normal data, score new data, measure it.

Data: a named image set (mnist, fashion-mnist, digits; --normal-class picks the normal class: fit
reads its training images, evaluate the whole test split with every other class as anomalous), an
image folder or array file, or a table (.csv with a header, or .npz with X and optional y, 1 = anomaly).
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from .. import plots
from ..anomaly import SCORES, auroc_auprc
from ..config import DataConfig
from ..data import load_data
from ..errors import VaekitError
from ..io import atomic_write, atomic_write_json
from ..tables import drop_missing, read_table
from .common import count

HELP = "anomaly detection: fit a detector on normal data, score data, evaluate AUROC/AUPRC with plots"


def _data_args(p) -> None:
    p.add_argument("--data", required=True, help="named image set, image folder, .npy/.npz array, or .csv/.npz table")
    p.add_argument("--data-dir", help="where named data sets live")
    p.add_argument("--normal-class", help="named sets: the normal class (index or name)")
    p.add_argument("--label-column", help="CSV tables: the column holding labels (1 = anomaly); left out of the features")
    p.add_argument("--drop-missing", action="store_true", help="tables: drop rows with missing values (and say which)")


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    fit = sub.add_parser("fit", help="train a detector on (mostly) normal data")
    _data_args(fit)
    fit.add_argument("--out", required=True, help="folder for the detector")
    fit.add_argument("--model", default="vae", help="registry model (default: vae)")
    fit.add_argument("--score", choices=SCORES, default="nll")
    fit.add_argument("--contamination", type=float, default=0.1, help="share of the training data flagged")
    fit.add_argument("--epochs", type=count(), help="default: sized to the data")
    fit.add_argument("--latent-dim", type=count())
    fit.add_argument("--trim", type=float, help="share of each model's training rows left out of its refit "
                     "(default: 0.2 for tables, 0 for images)")
    fit.add_argument("--seed", type=int, default=0)
    for name in ("score", "evaluate"):
        q = sub.add_parser(name, help="score data with a saved detector" if name == "score"
                           else "AUROC / AUPRC against labels, ROC and PR plots, scores")
        q.add_argument("detector", help="a folder written by 'vaekit anomaly fit'")
        _data_args(q)
        q.add_argument("--out", required=True, help="scores .csv" if name == "score" else "output folder")


def run(args) -> int:
    return {"fit": _fit, "score": _score, "evaluate": _evaluate}[args.action](args)


def _is_table(path: str) -> bool:
    p = Path(path)
    if p.suffix.lower() == ".csv":
        return True
    if p.suffix.lower() == ".npz" and p.is_file():
        with np.load(p, allow_pickle=False) as z:
            return "X" in z and z["X"].ndim == 2
    return False


def load_role(args, role: str):
    """(X for the detector, labels 1 = anomaly or None) for role 'fit' (training data) or 'score'/'evaluate'."""
    if _is_table(args.data):
        table = read_table(args.data, args.label_column)
        if args.drop_missing:
            table, dropped = drop_missing(table)
            if len(dropped):
                print(f"vaekit anomaly: dropped {len(dropped)} rows with missing values (first: {dropped[:5].tolist()})",
                      file=sys.stderr)
        return table, table.label
    data = load_data(DataConfig(args.data, data_dir=args.data_dir, val_fraction=0))
    split = data.train if role == "fit" else data.test
    x, y = split.x, split.y
    if args.normal_class is None:
        return x, (y if role != "fit" else None)
    normal = _class_index(args.normal_class, data.classes)
    if role == "fit":
        return x[y == normal], None
    return x, (y != normal).astype(int)


def _class_index(name: str, classes) -> int:
    if name.lstrip("-").isdigit():
        return int(name)
    if classes and name in classes:
        return classes.index(name)
    raise VaekitError(f"unknown class '{name}'; classes: {classes}")


def _fit(args) -> int:
    from ..anomaly.detector import AnomalyDetector  # scikit-learn: only for this command

    x, _ = load_role(args, "fit")
    det = AnomalyDetector(model=args.model, score=args.score, contamination=args.contamination, epochs=args.epochs,
                          latent_dim=args.latent_dim, trim=args.trim, random_state=args.seed)
    det.fit(x)
    det.save(args.out)
    print(json.dumps({"detector": args.out, "kind": det.kind_, "n_train": len(det.decision_scores_),
                      "threshold": det.threshold_, "flagged": int(det.labels_.sum())}))
    return 0


def _score_rows(det, x, path) -> np.ndarray:
    scores = det.decision_function(x)
    header, extra = ["row", "score", "anomaly"], [[] for _ in scores]
    if det.kind_ == "table":
        names, contrib = det.feature_contributions(x)
        header.append("top_columns")
        for i, row in enumerate(contrib):
            top = np.argsort(row)[::-1][:3]
            extra[i] = ["; ".join(f"{names[j]} ({row[j]:.2f})" for j in top)]

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for i, s in enumerate(scores):
                w.writerow([i, f"{s:.6g}", int(s > det.threshold_), *extra[i]])
    atomic_write(path, write)
    return scores


def _score(args) -> int:
    from ..anomaly.detector import load_detector

    det = load_detector(args.detector)
    x, _ = load_role(args, "score")
    scores = _score_rows(det, x, args.out)
    print(json.dumps({"scores": args.out, "n": len(scores), "flagged": int((scores > det.threshold_).sum())}))
    return 0


def _evaluate(args) -> int:
    from ..anomaly.detector import load_detector

    det = load_detector(args.detector)
    x, y = load_role(args, "evaluate")
    if y is None:
        raise VaekitError("evaluate needs labels: a table's y (or --label-column), or --normal-class for a named set")
    out = Path(args.out)
    scores = _score_rows(det, x, out / "scores.csv")
    metrics = auroc_auprc(np.asarray(y), scores)
    flagged = scores > det.threshold_
    y = np.asarray(y).astype(bool)
    metrics.update({"threshold": det.threshold_, "precision_at_threshold": float(y[flagged].mean()) if flagged.any() else 0.0,
                    "recall_at_threshold": float(flagged[y].mean()), "fpr_at_threshold": float(flagged[~y].mean())})
    plots.roc_pr_curves(y.astype(int), scores, out / "roc.png", out / "pr.png", title=Path(args.detector).name)
    atomic_write_json(out / "metrics.json", metrics)
    print(json.dumps(metrics))
    return 0
