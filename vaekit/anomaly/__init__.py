"""Anomaly detection with the autoencoder family (the detector: anomaly.detector.AnomalyDetector)."""
from __future__ import annotations

import numpy as np

from ..errors import VaekitError

SCORES = ("nll", "elbo", "reconstruction")


def auroc_auprc(y_true: np.ndarray, scores: np.ndarray) -> dict:
    """Area under the ROC and precision-recall curves (y_true 1 = anomaly)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true = np.asarray(y_true)
    if len(np.unique(y_true)) < 2:
        raise VaekitError("AUROC needs both normal (0) and anomalous (1) examples among the labels")
    return {"auroc": float(roc_auc_score(y_true, scores)), "auprc": float(average_precision_score(y_true, scores)),
            "anomaly_rate": float(np.mean(y_true)), "n": int(len(y_true))}


def __getattr__(name: str):
    # the detector is a scikit-learn estimator: imported on first use, not with the command line
    if name in ("AnomalyDetector", "load_detector"):
        from . import detector

        return getattr(detector, name)
    raise AttributeError(f"module 'vaekit.anomaly' has no attribute {name!r}")
