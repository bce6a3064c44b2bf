"""Every command in-process on a small real-MNIST run, and the bad-input messages."""
import argparse
import gzip
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from vaekit.cli import build_parser, main


@pytest.fixture(scope="module")
def run(mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mnist"
    code = main(["train", "--data", "mnist", "--data-dir", str(mnist_dir), "--limit", "2000", "--latent-dim", "2",
                 "--hidden", "128", "--epochs", "3", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def _png(path):
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_train_writes_a_complete_run(run):
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "model.safetensors", "history.json", "history.png", "state"} <= names
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3] and "val_loss" in history[0]
    assert history[-1]["train_loss"] < history[0]["train_loss"]


@pytest.mark.parametrize("argv, shape", [
    (["sample", "-n", "16"], None), (["reconstruct", "-n", "10"], None), (["latent-map"], None),
    (["manifold", "--grid", "5"], (5 * 30 + 2,) * 2), (["interpolate", "--from", "0", "--to", "1", "--steps", "6"], None),
])
def test_picture_commands(run, tmp_path, argv, shape):
    out = tmp_path / "x.png"
    assert main([argv[0], str(run), "--out", str(out), *argv[1:]]) == 0
    size = _png(out)
    if shape:
        assert size == shape


def test_sample_npy_and_interpolate_from_image_paths(run, tmp_path, mnist_small):
    assert main(["sample", str(run), "-n", "7", "--out", str(tmp_path / "s.npy")]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (7, 1, 28, 28) and 0 <= s.min() and s.max() <= 1
    for i in (0, 1):
        Image.fromarray(mnist_small[2][i, 0]).save(tmp_path / f"{i}.png")
    assert main(["interpolate", str(run), "--from", str(tmp_path / "0.png"), "--to", str(tmp_path / "1.png"),
                 "--steps", "5", "--method", "slerp", "--out", str(tmp_path / "p.npy")]) == 0
    path = np.load(tmp_path / "p.npy")
    assert path.shape == (5, 1, 28, 28)
    # the path starts at the first image's reconstruction
    from vaekit import load

    start = load(run).reconstruct(mnist_small[2][:1])
    np.testing.assert_allclose(path[0], start[0], atol=1e-5)


def test_evaluate_prints_metrics(run, capsys, tmp_path):
    assert main(["evaluate", str(run), "--k", "20", "--quality-samples", "500", "--quiet",
                 "--out", str(tmp_path / "m.json")]) == 0
    m = json.loads(capsys.readouterr().out)
    for key in ("neg_elbo_nats", "neg_elbo_bits_per_dim", "kl_nats", "reconstruction_nats", "active_units",
                "nll_nats", "nll_stderr", "kl_per_dim", "mutual_info_nats", "fd_classifier", "precision", "recall"):
        assert key in m
    assert m["neg_elbo_nats"] == pytest.approx(m["reconstruction_nats"] + m["kl_nats"])
    assert m["nll_nats"] < m["neg_elbo_nats"] + 1 and m["n_examples"] == 2000 and not m["binarized"]
    assert json.loads((tmp_path / "m.json").read_text()) == m
    assert main(["evaluate", str(run), "--k", "5", "--no-quality", "--binarize", "--limit", "100", "--quiet"]) == 0
    m2 = json.loads(capsys.readouterr().out)
    assert m2["binarized"] and m2["n_examples"] == 100 and "fd_classifier" not in m2


def test_finetune_trains_an_autoencoders_encoder_on_a_few_labels(run, mnist_dir, tmp_path, capsys):
    ae = tmp_path / "ae"
    assert main(["train", "--data", "mnist", "--data-dir", str(mnist_dir), "--limit", "2000", "--model", "stacked-ae",
                 "--latent-dim", "16", "--hidden", "64", "--layerwise-epochs", "1", "--epochs", "2", "--out", str(ae),
                 "--quiet"]) == 0
    capsys.readouterr()
    accuracy = {}
    for flag in ([], ["--from-scratch"]):
        assert main(["finetune", str(ae), "--labels", "200", "--epochs", "20", "--quiet", *flag,
                     "--out", str(tmp_path / "f.json")]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["pretrained"] == (not flag) and out["n_labels"] == 200
        assert json.loads((tmp_path / "f.json").read_text()) == out
        accuracy[bool(flag)] = out["test_accuracy"]
    assert min(accuracy.values()) > 0.3, accuracy  # ten classes: chance is 0.1 (docs/pretraining.md compares them)
    _fails(["finetune", str(run), "--quiet"], capsys, "finetune takes an autoencoder's encoder")


def test_demo_writes_everything(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "5", "--quiet"]) == 0
    for name in ("sample", "reconstruct", "latent_map", "manifold", "interpolate", "history"):
        _png(out / f"{name}.png")
    assert "neg_elbo_nats" in json.loads((out / "metrics.json").read_text())


# -- bad input: one clear message, exit 2, nothing lost ---------------------------------------------
def _fails(argv, capsys, *patterns):
    assert main(argv) == 2
    err = capsys.readouterr().err
    for p in patterns:
        assert p in err, err
    return err


@pytest.mark.parametrize("argv, flag, minimum", [
    (["evaluate", "RUN", "--quiet", "--k"], "--k", 1), (["evaluate", "RUN", "--limit"], "--limit", 1),
    (["evaluate", "RUN", "--quality-samples"], "--quality-samples", 1), (["sample", "RUN", "--out", "s.png", "-n"], "-n", 1),
    (["reconstruct", "RUN", "--out", "r.png", "-n"], "-n", 1), (["latent-map", "RUN", "--out", "m.png", "-n"], "-n", 1),
    (["interpolate", "RUN", "--from", "0", "--to", "1", "--out", "i.png", "--steps"], "--steps", 2),
    (["manifold", "RUN", "--out", "m.png", "--grid"], "--grid", 1), (["finetune", "RUN", "--labels"], "--labels", 1),
    (["finetune", "RUN", "--batch-size"], "--batch-size", 1), (["train", "--data", "digits", "--nproc"], "--nproc", 1),
    (["anomaly", "fit", "--data", "digits", "--out", "d", "--epochs"], "--epochs", 1), (["demo", "--epochs"], "--epochs", 1),
])
def test_counts_below_their_minimum_are_refused_before_any_work(argv, flag, minimum, tmp_path, capsys):
    argv = [str(tmp_path / "no-run") if a == "RUN" else a for a in argv]  # parsing fails before the run is read
    _fails([*argv, str(minimum - 1)], capsys, f"argument {flag}: must be an int >= {minimum}; got {minimum - 1}")
    _fails([*argv, "two"], capsys, f"argument {flag}: must be an int >= {minimum}; got 'two'")
    assert list(tmp_path.iterdir()) == []


def test_a_run_finds_its_data_from_any_working_directory(mnist_dir, tmp_path, monkeypatch, capsys):
    """Relative --data-dir and data paths are recorded absolute: the run's views work from elsewhere."""
    import os

    monkeypatch.chdir(mnist_dir.parent)
    x = np.random.default_rng(0).random((60, 3, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for name, data in (("named", ["--data", "mnist", "--data-dir", os.path.relpath(mnist_dir), "--limit", "300"]),
                       ("array", ["--data", os.path.relpath(tmp_path / "x.npy"), "--likelihood", "gaussian"])):
        assert main(["train", *data, "--epochs", "1", "--out", str(tmp_path / name), "--quiet"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    for name in ("named", "array"):
        assert main(["reconstruct", str(tmp_path / name), "-n", "4", "--out", f"{name}.npy"]) == 0, capsys.readouterr().err
        assert np.load(tmp_path / f"{name}.npy").shape[0] == 4


def _parsers(parser, path=("vaekit",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


def test_every_command_has_a_help_page():
    # help strings come from config docstrings, and argparse %-formats them: a bare '%' broke `train --help`
    pages = dict(_parsers(build_parser()))
    assert ("vaekit", "anomaly", "fit") in pages
    for path, parser in pages.items():
        assert parser.format_help().startswith("usage: " + " ".join(path)), path
    assert main(["train", "--help"]) == 0


def test_unknown_model_suggests_the_closest(tmp_path, capsys):
    _fails(["train", "--model", "vea", "--out", str(tmp_path / "r")], capsys, "unknown model 'vea'", "Did you mean 'vae'")
    assert not (tmp_path / "r").exists()


def test_unknown_config_key_suggests_the_closest(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"model": {"latnet_dim": 3}}))
    _fails(["train", "--config", str(cfg), "--out", str(tmp_path / "r")], capsys, "latnet_dim", "latent_dim")


def test_misspelt_flag_suggests_the_closest(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r"), "--latent-dims", "2"]) == 2
    assert "did you mean --latent-dim" in capsys.readouterr().err


def test_missing_data_set(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VAEKIT_MIRROR", "http://127.0.0.1:9")  # nothing listens: no internet used
    _fails(["train", "--data", "mnist", "--data-dir", str(tmp_path / "nodata"), "--out", str(tmp_path / "r")],
           capsys, "not found in", "--data-dir")
    assert not (tmp_path / "r").exists()


def test_unknown_data_name(tmp_path, capsys):
    _fails(["train", "--data", "minst", "--out", str(tmp_path / "r")], capsys, "Did you mean 'mnist'")


def test_corrupt_idx_file(mnist_dir, tmp_path, capsys):
    bad = tmp_path / "data" / "mnist"
    shutil.copytree(mnist_dir / "mnist", bad)
    blob = (bad / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(gzip.decompress(blob)[:-100]))
    _fails(["train", "--data", "mnist", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "r")],
           capsys, "truncated", "download or copy it again")


def test_existing_run_is_never_overwritten(run, tmp_path, capsys):
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    _fails(["train", "--out", str(run), "--epochs", "1"], capsys, "already holds a 'vae' run", "--resume")
    _fails(["train", "--out", str(run), "--resume", "--model", "ae"], capsys, "holds a 'vae' run, not 'ae'")
    assert before == {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}


def test_loading_another_models_weights_is_refused(run, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(run, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["model_config"]["latent_dim"] = 5
    (other / "config.json").write_text(json.dumps(cfg))
    _fails(["sample", str(other), "--out", str(tmp_path / "s.png")], capsys, "do not fit this model")
    _fails(["sample", str(tmp_path), "--out", str(tmp_path / "s.png")], capsys, "not a vaekit model folder")


def test_images_keep_their_scale_in_a_grid(tmp_path):
    """uint8 images are 0-255; an unbounded decoder's floats a little over 1 are still [0, 1] images."""
    from vaekit import plots

    rng = np.random.default_rng(0)
    floats = rng.random((4, 28, 28)).astype(np.float32)
    floats[0, 0, 0] = 1.07  # a linear decoder overshoots
    shown = plots.as_images(floats)
    assert shown.max() == 1.0 and np.allclose(shown[1:], floats[1:])
    assert np.allclose(plots.as_images((floats[1:] * 255).astype(np.uint8)), floats[1:], atol=1 / 255)
    plots.image_grid(floats, tmp_path / "g.png", ncol=2)
    with Image.open(tmp_path / "g.png") as im:
        assert np.asarray(im).mean() > 100  # mean pixel ~0.5 on white padding, not a black sheet
