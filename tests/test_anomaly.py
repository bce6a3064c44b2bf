"""Anomaly detection on real data: thresholds, determinism, tables with bad input, one-class MNIST, the CLI."""
import csv
import json

import numpy as np
import pytest

from vaekit.anomaly import AnomalyDetector, auroc_auprc, load_detector
from vaekit.cli import main
from vaekit.errors import VaekitError
from vaekit.tables import TableSchema, drop_missing, read_table
from conftest import require_data

FAST = dict(epochs=15, random_state=0)


@pytest.fixture(scope="module")
def cardio():
    path = require_data("anomaly", "adbench", "6_cardio.npz")
    with np.load(path) as z:
        return z["X"], z["y"]


@pytest.fixture(scope="module")
def telco_path():
    return require_data("tabular", "telco-churn", "telco_churn_wa.csv")


def test_contamination_threshold_flags_that_share_of_training_data(cardio):
    x, _ = cardio
    det = AnomalyDetector(contamination=0.1, **FAST).fit(x)
    assert abs(det.labels_.mean() - 0.1) <= 1.5 / len(x)
    np.testing.assert_array_equal(det.predict(x), det.labels_)
    assert len(det.trimmed_) == 6 and all(abs(len(t) - 0.2 * 512) < 1 for t in det.trimmed_)  # default: a fifth


def test_scores_are_deterministic_and_survive_save_load(cardio, tmp_path):
    x, y = cardio
    a = AnomalyDetector(**FAST).fit(x)
    b = AnomalyDetector(**FAST).fit(x)
    np.testing.assert_array_equal(a.decision_function(x), b.decision_function(x))
    np.testing.assert_array_equal(a.decision_function(x), a.decision_scores_)
    a.save(tmp_path / "det")
    np.testing.assert_array_equal(load_detector(tmp_path / "det").decision_function(x), a.decision_scores_)
    assert auroc_auprc(y, a.decision_scores_)["auroc"] > 0.7  # cardio's anomalies score higher


def test_table_ensemble_members_train_on_their_own_rows(cardio):
    x, y = cardio
    det = AnomalyDetector(n_members=3, max_samples=400, **FAST).fit(x)
    assert len(det.estimators_) == 3
    x_in = det._input(x)
    raw = [det._member_scores(e, x_in) for e in det.estimators_]
    for r, scale in zip(raw, det.member_scales_):  # each member's training scores have unit spread
        assert np.subtract(*np.percentile(r / scale, [75, 25])) == pytest.approx(1.0)
    np.testing.assert_allclose(det.decision_scores_, np.mean([r / s for r, s in zip(raw, det.member_scales_)], 0))
    assert np.corrcoef(raw[0], raw[1])[0, 1] < 0.9999  # own seed and rows: a different model
    assert auroc_auprc(y, det.decision_scores_)["auroc"] > 0.7


def test_trimmed_refit_leaves_out_the_rows_its_first_fit_finds_most_anomalous(cardio):
    x, y = cardio
    det = AnomalyDetector(n_members=2, max_samples=500, trim=0.1, **FAST).fit(x)
    a, b = det.trimmed_
    assert len(a) == len(b) == 50 and len(np.intersect1d(a, b)) < 25  # each member trims its own rows
    assert y[np.concatenate(det.trimmed_)].mean() > 3 * y.mean()  # the trimmed rows are rich in cardio's anomalies
    # the member kept is a fresh fit on the other rows: refitting those with the member's seed gives its scores
    whole = AnomalyDetector(n_members=1, max_samples=len(x), trim=0.1, **FAST).fit(x)
    keep = np.setdiff1d(np.arange(len(x)), whole.trimmed_[0])
    refit = whole._fit_member(whole._features(x)[keep], whole.estimators_[0].random_state)
    x_in = whole._input(x)
    np.testing.assert_array_equal(whole._member_scores(refit, x_in), whole.decision_scores_)
    assert len(AnomalyDetector(n_members=1, trim=0, **FAST).fit(x).trimmed_[0]) == 0


def test_ensemble_members_warnings_are_said_once_per_kind():
    import warnings
    from vaekit.anomaly.detector import _warn_once_per_kind
    from vaekit.errors import VaekitWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in (0, 1, 0):
            warnings.warn(f"posterior collapse: only {n} of 5 latent units are active", VaekitWarning)
        warnings.warn("something else", UserWarning)
    with pytest.warns(Warning) as said:
        _warn_once_per_kind(caught, 6)
    assert sorted(str(w.message) for w in said) == [
        "posterior collapse: only 0 of 5 latent units are active (from 3 of the ensemble's 6 fits)",
        "something else (from 1 of the ensemble's 6 fits)"]


@pytest.mark.parametrize("score", ["nll", "elbo", "reconstruction"])
def test_every_score_ranks_real_anomalies_high(cardio, score):
    x, y = cardio
    scores = AnomalyDetector(score=score, **FAST).fit(x).decision_scores_
    assert auroc_auprc(y, scores)["auroc"] > 0.7


def test_feature_contributions_add_up_to_the_reconstruction_score(telco_path):
    table, _ = drop_missing(read_table(telco_path, "churn"))
    table.values = [v[:1500] for v in table.values]
    det = AnomalyDetector(score="reconstruction", **FAST).fit(table)
    names, contrib = det.feature_contributions(table)
    assert names == [c for c in table.columns if c not in det.schema_.dropped]
    np.testing.assert_allclose(contrib.sum(1), det.decision_scores_, rtol=1e-4)


def test_table_preprocessing_fits_on_training_rows_only(telco_path):
    table = read_table(telco_path, "churn")
    with pytest.raises(VaekitError, match=r"11 rows have missing values .*total_charges \(11\).*--drop-missing"):
        TableSchema.fit(table)
    train, dropped = drop_missing(read_table(telco_path, "churn"))
    assert len(dropped) == 11 and len(train) == 7032
    train.values = [v[:1000] for v in train.values]
    schema = TableSchema.fit(train)
    assert set(schema.categorical["contract"]) == {"Month-to-month", "One year", "Two year"}
    med, scale = schema.numeric["tenure"]
    assert med == np.median(train.values[train.columns.index("tenure")])  # training rows only
    x = schema.transform(train)
    assert x.shape[1] == len(schema.feature_names()) and np.isfinite(x).all()


def test_bad_tables_get_clear_errors(tmp_path, cardio):
    det = AnomalyDetector(**FAST).fit(cardio[0])
    with pytest.raises(VaekitError, match="lacks column"):
        det.decision_function(cardio[0][:, :5])
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,2,x\n3,4\n")
    with pytest.raises(VaekitError, match="data row 2 has 2 cells but the header has 3"):
        read_table(path)
    path.write_text("a,b,c\n1,7,x\n2,7,y\n3,7,x\n")
    schema = TableSchema.fit(read_table(path))
    assert schema.dropped == ["b"] and list(schema.numeric) == ["a"]  # the constant column is dropped, and said so
    path.write_text("a,b,c\n1,7,x\nzz,7,y\n")
    with pytest.raises(VaekitError, match="numeric in training but holds text"):
        schema.transform(read_table(path))
    with pytest.raises(VaekitError, match="contamination"):
        AnomalyDetector(contamination=0.7).fit(cardio[0])
    with pytest.raises(VaekitError, match=r"'trim' parameter of AnomalyDetector must be a float in \[0, 0.5\)"):
        AnomalyDetector(trim=0.5).fit(cardio[0])


def test_one_class_mnist_separates_an_unseen_digit(mnist):
    xtr, ytr, xte, yte = mnist
    det = AnomalyDetector(epochs=5, k=16, random_state=0).fit(xtr[ytr == 0][:3000])
    keep = np.isin(yte, [0, 7])
    scores = det.decision_function(xte[keep][:1000])
    assert auroc_auprc((yte[keep][:1000] != 0).astype(int), scores)["auroc"] > 0.95


def test_cli_fit_score_evaluate_on_a_real_csv(telco_path, tmp_path, capsys):
    det = tmp_path / "det"
    assert main(["anomaly", "fit", "--data", str(telco_path), "--label-column", "churn", "--out", str(det),
                 "--epochs", "5"]) == 2
    assert "--drop-missing" in capsys.readouterr().err
    assert main(["anomaly", "fit", "--data", str(telco_path), "--label-column", "churn", "--drop-missing",
                 "--out", str(det), "--epochs", "5", "--trim", "0.05"]) == 0
    assert "dropped 11 rows" in capsys.readouterr().err
    assert load_detector(det).trim == 0.05  # the option reaches the detector and is saved with it
    assert main(["anomaly", "score", str(det), "--data", str(telco_path), "--label-column", "churn",
                 "--drop-missing", "--out", str(tmp_path / "s.csv")]) == 0
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7032 and rows[0]["top_columns"].count(";") == 2
    assert main(["anomaly", "evaluate", str(det), "--data", str(telco_path), "--label-column", "churn",
                 "--drop-missing", "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0 <= metrics["auroc"] <= 1 and (tmp_path / "eval" / "roc.png").is_file() and (tmp_path / "eval" / "pr.png").is_file()


def test_a_score_does_not_depend_on_what_else_is_scored(cardio):
    x, _ = cardio
    det = AnomalyDetector(**FAST).fit(x)
    whole = det.decision_function(x)
    order = np.random.default_rng(0).permutation(len(x))[:300]
    np.testing.assert_allclose(det.decision_function(x[order]), whole[order], rtol=1e-6)


def test_entropy_correction_subtracts_the_pixels_own_entropy(mnist_small):
    xtr = mnist_small[0][:600]
    det = AnomalyDetector(score="reconstruction", epochs=2, random_state=0).fit(xtr)
    x = mnist_small[2][:50]
    corrected = det.decision_function(x)
    det.entropy_correction = False
    raw = det.decision_function(x)
    p = np.clip(x.reshape(50, -1) / 255.0, 1e-7, 1 - 1e-7)
    entropy = -(p * np.log(p) + (1 - p) * np.log1p(-p)).sum(1)
    np.testing.assert_allclose(raw - corrected, entropy, rtol=1e-4)
    assert (corrected > -1e-3).all()  # a KL divergence: never below zero


@pytest.mark.parametrize("param", ["epochs", "latent_dim", "n_members", "max_samples"])
def test_zero_sizes_are_refused_not_read_as_the_default(cardio, param):
    with pytest.raises(VaekitError, match=f"'{param}' parameter of AnomalyDetector must be an int >= 1; got 0"):
        AnomalyDetector(**{**FAST, param: 0}).fit(cardio[0])
