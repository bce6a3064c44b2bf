"""How good a synthetic table is, measured by the libraries made for it: sdmetrics for fidelity and privacy,
scikit-learn for machine-learning efficacy. The report and the benchmark both call these, so their numbers
are the same computation.

- fidelity: sdmetrics' QualityReport (column shapes, column-pair trends) and DiagnosticReport (validity,
  structure) against the real training rows;
- efficacy: a gradient-boosted classifier trained on synthetic rows and tested on a real hold-out, next to the
  same classifier trained on the real rows (train on synthetic, test on real);
- privacy: sdmetrics' DCRBaselineProtection (distance of synthetic rows to the closest real one, against
  random rows) and DCROverfittingProtection (closer to the training rows than to a real hold-out?).
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np

TABLE = "table"  # the one table's name in sdmetrics' metadata
DCR_ROWS = 2000  # synthetic rows the distance-to-closest-record metrics subsample (each scans every real row)


def sdmetrics_metadata(df) -> dict:
    """sdmetrics' metadata (one table, named TABLE) for a DataFrame as vaekit writes it (numbers, text, datetimes)."""
    import pandas as pd

    columns = {}
    for name in df.columns:
        dtype = df[name].dtype
        if pd.api.types.is_bool_dtype(dtype):
            columns[name] = {"sdtype": "boolean"}
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            columns[name] = {"sdtype": "datetime"}
        elif pd.api.types.is_numeric_dtype(dtype):
            columns[name] = {"sdtype": "numerical"}
        else:
            columns[name] = {"sdtype": "categorical"}
    return {"tables": {TABLE: {"columns": columns}}}


@contextmanager
def _quiet():
    """sdmetrics and scikit-learn warn about their own deprecations and about constant columns."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def fidelity(real, synthetic, metadata: dict | None = None) -> dict:
    """{'quality', 'column_shapes', 'column_pair_trends', 'diagnostic', 'validity', 'structure'} in [0, 1], and
    the per-column shape scores and per-pair trend scores (for the report's tables and plots)."""
    from sdmetrics.reports import DiagnosticReport, QualityReport

    metadata = metadata or sdmetrics_metadata(real)
    with _quiet():
        quality = QualityReport()
        quality.generate({TABLE: real}, {TABLE: synthetic}, metadata, verbose=False)
        diagnostic = DiagnosticReport()
        diagnostic.generate({TABLE: real}, {TABLE: synthetic}, metadata, verbose=False)
    q = dict(zip(quality.get_properties()["Property"], quality.get_properties()["Score"]))
    d = dict(zip(diagnostic.get_properties()["Property"], diagnostic.get_properties()["Score"]))
    shapes = quality.get_details("Column Shapes")
    return {"quality": float(quality.get_score()), "column_shapes": float(q["Column Shapes"]),
            "column_pair_trends": float(q["Column Pair Trends"]), "diagnostic": float(diagnostic.get_score()),
            "validity": float(d["Data Validity"]), "structure": float(d["Data Structure"]),
            "per_column": {r["Column"]: float(r["Score"]) for _, r in shapes.iterrows()}}


def _features(frames: list, target: str):
    """The frames' features for one classifier: text as pandas categories over the union of every frame's
    values (so codes agree between training and test), datetimes as numbers."""
    import pandas as pd

    cols = [c for c in frames[0].columns if c != target]
    out = [f[cols].copy() for f in frames]
    for c in cols:
        kind = frames[0][c].dtype
        if pd.api.types.is_datetime64_any_dtype(kind):
            for f in out:
                f[c] = pd.to_datetime(f[c]).astype("int64") / 1e9
        elif not pd.api.types.is_numeric_dtype(kind) or pd.api.types.is_bool_dtype(kind):
            cats = sorted({str(v) for f in frames for v in f[c].dropna().unique()})
            for f in out:
                f[c] = pd.Categorical(f[c].map(lambda v: None if pd.isna(v) else str(v)), categories=cats)
    return out


def efficacy(train, test, target: str, positive, seed: int = 0) -> dict:
    """Macro F1 (the mean over both classes, as TabDDPM reports it) and AUC on the real test rows of a
    HistGradientBoostingClassifier fitted on train (real or synthetic rows); rows with no target are left out.
    A train set with a single class has no classifier: its scores are those of predicting that class."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import f1_score, roc_auc_score

    train = train[train[target].notna()]
    test = test[test[target].notna()]
    y_train = (train[target].astype(str) == str(positive)).to_numpy()
    y_test = (test[target].astype(str) == str(positive)).to_numpy()
    x_train, x_test = _features([train, test], target)
    if y_train.all() or not y_train.any():
        pred = np.full(len(y_test), bool(y_train.any()))
        return {"f1": float(f1_score(y_test, pred, average="macro", zero_division=0)), "auc": 0.5}
    clf = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    with _quiet():
        clf.fit(x_train, y_train)
        proba = clf.predict_proba(x_test)[:, 1]
    return {"f1": float(f1_score(y_test, proba >= 0.5, average="macro")), "auc": float(roc_auc_score(y_test, proba))}


def privacy(train, holdout, synthetic, metadata: dict | None = None, rows: int = DCR_ROWS, seed: int = 0) -> dict:
    """sdmetrics' distance-to-closest-record scores in [0, 1] (1 = private): 'dcr_baseline' (synthetic rows are
    as far from the real ones as random rows are) and 'dcr_overfitting' (they are no closer to the training rows
    than to a hold-out the model never saw), with the median distances behind them."""
    from sdmetrics.single_table import DCRBaselineProtection, DCROverfittingProtection

    metadata = metadata or sdmetrics_metadata(train)
    n = min(rows, len(synthetic))
    caller = np.random.get_state()
    np.random.seed(seed)  # sdmetrics subsamples with numpy's global generator: seeded here, the caller's put back
    try:
        with _quiet():
            base = DCRBaselineProtection.compute_breakdown(train, synthetic, metadata, TABLE, num_rows_subsample=n)
            over = DCROverfittingProtection.compute_breakdown(train, synthetic, holdout, metadata, TABLE,
                                                              num_rows_subsample=min(n, len(holdout)))
    finally:
        np.random.set_state(caller)
    return {"dcr_baseline": float(base["score"]), "dcr_overfitting": float(over["score"]),
            "median_dcr_synthetic": float(base["median_DCR_to_real_data"]["synthetic_data"]),
            "median_dcr_random": float(base["median_DCR_to_real_data"]["random_data_baseline"]),
            "share_closer_to_training": float(over["synthetic_data_percentages"]["closer_to_training"])}
