"""Anomaly detection with the autoencoder family (the detector: anomaly.detector.AnomalyDetector)."""
from __future__ import annotations

import math

import numpy as np

from ...errors import VaekitError, listed

SCORES = ("nll", "elbo", "reconstruction")
_BOOLEAN = {"0": 0, "1": 1, "false": 0, "true": 1}


def anomaly_labels(values, name: str = "labels", anomaly_label=None, rows=None) -> np.ndarray:
    """Labels as 0/1 ints, 1 = anomaly, from 0/1 numbers, booleans (or the words true/false), or any two
    values of which anomaly_label names the anomalous one. Anything else is refused with the values found:
    mapping two arbitrary values to 0 and 1 by their order would invert every score half the time.
    rows: the rows' numbers in the input, for messages (default: their positions)."""
    raw = np.asarray(values)
    rows = np.arange(len(raw)) if rows is None else np.asarray(rows)
    text = np.array([_text(v) for v in raw.tolist()], dtype=object)
    missing = np.array([t is None for t in text])
    if missing.any():
        raise VaekitError(f"{name} has missing values in {int(missing.sum())} rows (first: "
                          f"{rows[missing][:5].tolist()}); every row needs a label")
    found, counts = np.unique(text.astype(str), return_counts=True)
    if anomaly_label is not None:
        wanted = _text(anomaly_label)
        if wanted not in found:
            raise VaekitError(f"no row of {name} is '{anomaly_label}' (--anomaly-label); the values found are "
                              f"{_listing(found, counts)}")
        if len(found) > 2:
            raise VaekitError(f"{name} holds {len(found)} distinct values ({_listing(found, counts)}); with "
                              f"--anomaly-label it must hold two, normal and anomalous: merge the normal classes first")
        return (text == wanted).astype(np.int64)
    if set(t.lower() for t in found) <= set(_BOOLEAN):
        return np.array([_BOOLEAN[t.lower()] for t in text], dtype=np.int64)
    if len(found) > 2:
        raise VaekitError(
            f"{name} holds {len(found)} distinct values ({_listing(found, counts)}); anomaly labels have two: "
            f"0/1 (1 = anomaly), true/false, or two values with --anomaly-label VALUE naming the anomalous one. "
            f"Merge the classes into normal and anomalous first (for a named image set: --normal-class)")
    example = str(found[np.argmin(counts)])
    raise VaekitError(
        f"{name} holds {_listing(found, counts)}; labels must be 0/1 (1 = anomaly) or true/false. If one of "
        f"these two values marks the anomalies, say which: --anomaly-label {example} (anomaly_label={example!r})")


def _text(v) -> str | None:
    """A label value as comparable text: 2, 2.0 and '2' are all '2'; True is '1'; None and NaN are missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (int, float, np.integer, np.floating)):
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    s = str(v).strip()
    if s.lower() in ("", "nan", "na", "n/a", "?", "null", "none"):
        return None
    try:
        f = float(s)
    except ValueError:
        return s
    return str(int(f)) if f.is_integer() else repr(f)


def _listing(found, counts, limit: int = 6) -> str:
    return listed((f"'{v}' ({c} rows)" for v, c in zip(found, counts)), limit)


def auroc_auprc(y_true: np.ndarray, scores: np.ndarray) -> dict:
    """Area under the ROC and precision-recall curves (y_true 0/1, 1 = anomaly)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true = np.asarray(y_true)
    if not set(np.unique(y_true).tolist()) <= {0, 1}:
        raise VaekitError(f"labels must be 0/1 (1 = anomaly); got {np.unique(y_true).tolist()[:6]}: "
                          f"convert them with anomaly_labels()")
    if len(np.unique(y_true)) < 2:
        raise VaekitError("AUROC needs both normal (0) and anomalous (1) examples among the labels")
    return {"auroc": float(roc_auc_score(y_true, scores)), "auprc": float(average_precision_score(y_true, scores)),
            "anomaly_rate": float(np.mean(y_true)), "n": int(len(y_true))}


def threshold_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """AUROC / AUPRC and what the detector's threshold does: precision, recall and false-positive rate of
    flagging score > threshold (precision is None when nothing is flagged: it is undefined, not 0)."""
    out = auroc_auprc(y_true, scores)
    y = np.asarray(y_true).astype(bool)
    flagged = np.asarray(scores) > threshold
    out.update({"threshold": float(threshold), "flagged": int(flagged.sum()),
                "precision_at_threshold": float(y[flagged].mean()) if flagged.any() else None,
                "recall_at_threshold": float(flagged[y].mean()), "fpr_at_threshold": float(flagged[~y].mean())})
    return out


def __getattr__(name: str):
    # the detector is a scikit-learn estimator: imported on first use, not with the command line
    if name in ("AnomalyDetector", "load_detector"):
        from . import detector

        return getattr(detector, name)
    raise AttributeError(f"module 'vaekit.tasks.anomaly' has no attribute {name!r}")
