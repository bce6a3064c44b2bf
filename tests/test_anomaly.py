"""Anomaly detection on real data: thresholds, determinism, tables with bad input, one-class MNIST, the CLI."""
import csv
import json

import numpy as np
import pytest

from vaekit.tasks.anomaly import AnomalyDetector, auroc_auprc, load_detector
from vaekit.cli import main
from vaekit.errors import VaekitError
from vaekit.data.tables.reader import TableSchema, drop_missing, read_table
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
    loaded = load_detector(tmp_path / "det")
    np.testing.assert_array_equal(loaded.decision_function(x), a.decision_scores_)
    np.testing.assert_array_equal(loaded.decision_scores_, a.decision_scores_)  # saved: the threshold can move
    np.testing.assert_array_equal(loaded.labels_, a.labels_)
    assert all(np.array_equal(p, q) for p, q in zip(loaded.trimmed_, a.trimmed_))
    loaded.set_threshold(contamination=0.2)
    assert loaded.threshold_ == a.set_threshold(contamination=0.2).threshold_ and loaded.labels_.mean() == pytest.approx(0.2, abs=1e-3)
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
    from vaekit.tasks.anomaly.detector import _warn_once_per_kind
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
    import math

    table, _ = drop_missing(read_table(telco_path, "churn"))
    table.values = [v[:1500] for v in table.values]
    det = AnomalyDetector(score="reconstruction", n_members=1, **FAST).fit(table)
    names, raw = det.feature_contributions(table, relative=False)
    assert names == [c for c in table.columns if c not in det.schema_.dropped]
    floor = len(det.schema_.feature_names()) * 0.5 * math.log(2 * math.pi)  # a unit-variance Gaussian's constant
    np.testing.assert_allclose(raw.sum(1) + floor, det.decision_scores_, rtol=1e-4)
    _, relative = det.feature_contributions(table)
    np.testing.assert_allclose(relative * det.column_errors_, raw, rtol=1e-5)
    np.testing.assert_allclose(relative.mean(0), 1.0, rtol=1e-4)  # 1 = a column's mean error on the training rows


def test_the_column_that_makes_a_row_unusual_comes_first(adult_csv):
    """A wide one-hot block (native-country: 41 categories) must not top every row: each column's error is
    read against its own typical error, so a planted extreme number names its column."""
    table, _ = drop_missing(read_table(adult_csv, "income"))
    table.values, table.rows = [v[:3000] for v in table.values], table.rows[:3000]
    det = AnomalyDetector(**FAST).fit(table)
    names, contrib = det.feature_contributions(table)
    top = np.array(names)[contrib.argmax(1)]
    _, counts = np.unique(top, return_counts=True)
    assert counts.max() < 0.5 * len(top), dict(zip(*np.unique(top, return_counts=True)))
    for column, value in (("age", 400.0), ("hours-per-week", 900.0), ("capital-loss", 90000.0), ("fnlwgt", 2.5e7)):
        planted = type(table)(table.columns, [v[:20].copy() for v in table.values])
        planted.values[table.columns.index(column)][:] = value
        _, c = det.feature_contributions(planted)
        assert (np.array(names)[c.argmax(1)] == column).all(), (column, np.array(names)[c.argmax(1)])


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
    path.write_text("a,b,c\n1,2,x\n3,4,y,z\n")
    with pytest.raises(VaekitError, match=r"not a readable CSV .*Expected 3 fields in line 3, saw 4.*quote cells"):
        read_table(path)
    path.write_text("a,b,c\n1,2,x\n3,4\n")  # a short row ends in empty cells, as spreadsheets write it
    with pytest.raises(VaekitError, match=r"1 rows have missing values \(first rows: \[1\]; columns: c \(1\)\)"):
        TableSchema.fit(read_table(path))
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
    out = capsys.readouterr()
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7032 and rows[0]["top_columns"].count(";") == 2
    # each score keeps its input row's number: the rows dropped (blank total_charges) leave gaps, not a shift
    with open(telco_path) as f:
        blank = [i for i, r in enumerate(csv.DictReader(f)) if not r["total_charges"].strip()]
    assert json.loads(out.out)["dropped_rows"] == blank and f"rows {blank[0]}, {blank[1]}," in out.err
    assert sorted(int(r["row"]) for r in rows) == sorted(set(range(7043)) - set(blank))
    assert main(["anomaly", "evaluate", str(det), "--data", str(telco_path), "--label-column", "churn",
                 "--anomaly-label", "Yes", "--drop-missing", "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["dropped_rows"] == blank
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


# -- labels: 0/1, booleans, or a value named by --anomaly-label; never an order guessed ------------------
def test_labels_are_0_1_booleans_or_the_value_named():
    from vaekit.tasks.anomaly import anomaly_labels

    np.testing.assert_array_equal(anomaly_labels(np.array([0.0, 1.0, 1.0])), [0, 1, 1])
    np.testing.assert_array_equal(anomaly_labels(np.array([True, False])), [1, 0])
    np.testing.assert_array_equal(anomaly_labels(np.array(["False", "TRUE", "1", "0"], dtype=object)), [0, 1, 1, 0])
    with pytest.raises(VaekitError, match=r"holds '1' \(1 rows\), '2' \(2 rows\); labels must be 0/1.*--anomaly-label 1"):
        anomaly_labels(np.array([1, 2, 2]))
    np.testing.assert_array_equal(anomaly_labels(np.array([1, 2, 2]), anomaly_label="2"), [0, 1, 1])
    np.testing.assert_array_equal(anomaly_labels(np.array(["1", "2.0"], dtype=object), anomaly_label=2), [0, 1])
    words = np.array(["normal", "anomaly", "normal"], dtype=object)
    with pytest.raises(VaekitError, match=r"'anomaly' \(1 rows\), 'normal' \(2 rows\).*--anomaly-label anomaly"):
        anomaly_labels(words)
    np.testing.assert_array_equal(anomaly_labels(words, anomaly_label="anomaly"), [0, 1, 0])
    with pytest.raises(VaekitError, match="no row of labels is 'odd'"):
        anomaly_labels(words, anomaly_label="odd")
    with pytest.raises(VaekitError, match="holds 3 distinct values"):
        anomaly_labels(np.array([0, 1, 2]), anomaly_label=2)
    with pytest.raises(VaekitError, match=r"missing values in 1 rows \(first: \[7\]\)"):
        anomaly_labels(np.array([0, np.nan]), rows=np.array([3, 7]))


def _strict_json(path):
    def refuse(name):
        raise AssertionError(f"{name} in {path}")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_cli_refuses_labels_it_would_have_to_guess_and_plots_what_it_reports(german_csv, tmp_path, capsys,
                                                                             monkeypatch):
    from vaekit import plots

    det = tmp_path / "det"
    assert main(["anomaly", "fit", "--data", str(german_csv), "--label-column", "class", "--out", str(det),
                 "--epochs", "5", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["anomaly", "evaluate", str(det), "--data", str(german_csv), "--label-column", "class",
                 "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "'1' (700 rows), '2' (300 rows)" in err and "--anomaly-label 2" in err and not (tmp_path / "e").exists()
    drawn = {}
    real = plots.roc_pr_curves
    monkeypatch.setattr(plots, "roc_pr_curves",
                        lambda y, s, *a, **k: (drawn.update(y=y, metrics=a[2]), real(y, s, *a, **k)))
    assert main(["anomaly", "evaluate", str(det), "--data", str(german_csv), "--label-column", "class",
                 "--anomaly-label", "2", "--out", str(tmp_path / "e")]) == 0
    metrics = _strict_json(tmp_path / "e" / "metrics.json")
    assert metrics["anomaly_rate"] == 0.3 and 0 < metrics["fpr_at_threshold"] < 1 and metrics["n"] == 1000
    assert drawn["metrics"] == metrics and set(np.unique(drawn["y"])) == {0, 1}  # the plots print these numbers
    assert 0.5 < metrics["auroc"] < 1


def test_cli_text_labels_follow_the_named_value(telco_path, tmp_path, capsys):
    det = tmp_path / "det"
    assert main(["anomaly", "fit", "--data", str(telco_path), "--label-column", "churn", "--drop-missing",
                 "--out", str(det), "--epochs", "3", "--quiet"]) == 0
    auroc = {}
    for value in ("Yes", "No"):
        assert main(["anomaly", "evaluate", str(det), "--data", str(telco_path), "--label-column", "churn",
                     "--drop-missing", "--anomaly-label", value, "--out", str(tmp_path / value)]) == 0
        auroc[value] = _strict_json(tmp_path / value / "metrics.json")["auroc"]
    assert auroc["Yes"] == pytest.approx(1 - auroc["No"])  # the flag decides which rows are anomalies
    capsys.readouterr()
    assert main(["anomaly", "evaluate", str(det), "--data", str(telco_path), "--label-column", "churn",
                 "--drop-missing", "--out", str(tmp_path / "guess")]) == 2
    assert "'No' (5163 rows), 'Yes' (1869 rows)" in capsys.readouterr().err


def test_anomaly_fit_shows_progress_and_names_accepted_formats(cardio, tmp_path, capsys):
    np.savez(tmp_path / "t.npz", X=cardio[0][:300], y=cardio[1][:300])
    assert main(["anomaly", "fit", "--data", str(tmp_path / "t.npz"), "--out", str(tmp_path / "d"), "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "anomaly fit: 100%" in err and "12.0/12 fits" in err
    AnomalyDetector(n_members=2, epochs=2, params={"patience": 1}, random_state=0).fit(cardio[0][:300])
    assert capsys.readouterr().err == ""  # not verbose: no bar, no notes
    raw = require_data("tabular", "german-credit", "german.data")
    assert main(["anomaly", "fit", "--data", str(raw), "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert ".csv (with a header line)" in err and "Save a table in another format as CSV" in err
    (tmp_path / "cut.npz").write_bytes((tmp_path / "t.npz").read_bytes()[:500])
    assert main(["anomaly", "fit", "--data", str(tmp_path / "cut.npz"), "--out", str(tmp_path / "c")]) == 2
    assert "damaged or truncated" in capsys.readouterr().err


def test_every_folder_says_what_it_is_and_loaders_name_the_right_one(cardio, tmp_path, capsys):
    import vaekit

    det_dir = AnomalyDetector(n_members=2, max_samples=300, **FAST).fit(cardio[0]).save(tmp_path / "det")
    assert main(["train", "--data", "digits", "--epochs", "1", "--hidden", "16", "--out", str(tmp_path / "run"),
                 "--quiet"]) == 0
    capsys.readouterr()
    manifest = json.loads((det_dir / "vaekit.json").read_text())
    assert manifest["kind"] == "anomaly-detector" and manifest["modality"] == "table" and manifest["format"] == 1
    assert manifest["artefacts"]["members"] == ["member-0", "member-1"] and "schema" in manifest["artefacts"]
    assert json.loads((det_dir / "member-0" / "vaekit.json").read_text())["kind"] == "model"
    run = json.loads((tmp_path / "run" / "vaekit.json").read_text())
    assert run["kind"] == "model" and run["artefacts"]["resume_state"] == "state/last.safetensors"
    with pytest.raises(VaekitError, match=r"holds an anomaly detector, not a model .*vaekit.load_detector"):
        vaekit.load(det_dir)
    with pytest.raises(VaekitError, match=r"holds a model .*, not an anomaly detector: load it with vaekit.load"):
        load_detector(tmp_path / "run")
    assert main(["sample", str(det_dir), "--out", str(tmp_path / "s.png")]) == 2
    assert f"'vaekit anomaly score {det_dir}'" in capsys.readouterr().err
    (det_dir / "vaekit.json").unlink()  # a folder from before manifests still loads by its files
    assert load_detector(det_dir).kind_ == "table"
    (tmp_path / "run" / "vaekit.json").write_text(json.dumps({**run, "format": 99}))
    with pytest.raises(VaekitError, match=r"written by a newer vaekit \(format 99; this one reads up to 1\)"):
        vaekit.load(tmp_path / "run")


def test_only_evaluate_takes_an_anomaly_label(tmp_path, capsys):
    assert main(["anomaly", "fit", "--data", "digits", "--anomaly-label", "2", "--out", str(tmp_path / "d")]) == 2
    assert "unrecognized arguments: --anomaly-label 2" in capsys.readouterr().err and not (tmp_path / "d").exists()
