"""Every command in-process on a small real-MNIST run, and the bad-input messages."""
import argparse
import gzip
import json
import shutil

import numpy as np
import pytest
import torch
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
    (["traverse", "--index", "3", "--dims", "0", "1"], None),
])
def test_picture_commands(run, tmp_path, argv, shape):
    out = tmp_path / "x.png"
    assert main([argv[0], str(run), "--out", str(out), *argv[1:]]) == 0
    size = _png(out)
    if shape:
        assert size == shape


def test_traverse_moves_the_dimensions_asked_for(run, tmp_path):
    out = tmp_path / "t.npy"
    assert main(["traverse", str(run), "--index", "3", "--dims", "0", "1", "--range", "-2", "2", "--steps", "5",
                 "--out", str(out)]) == 0
    grid = np.load(out)
    assert grid.shape[:2] == (2, 5) and not np.allclose(grid[0, 0], grid[0, -1])
    assert main(["traverse", str(run), "--dims", "999", "--out", str(tmp_path / "u.png")]) == 2


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


# -- pictures: converted once, labelled, in the format the suffix names ---------------------------------
@pytest.fixture(scope="module")
def rgb_run(mnist_small, tmp_path_factory):
    """A run on a folder of RGB PNGs: real MNIST digits, each tinted its own colour."""
    folder = tmp_path_factory.mktemp("rgb") / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, digit in enumerate(mnist_small[0][:60, 0]):
        tint = rng.uniform(0.3, 1.0, 3)
        Image.fromarray((digit[..., None] * tint).astype(np.uint8), "RGB").save(folder / f"{i:03d}.png")
    out = folder.parent / "run"
    assert main(["train", "--data", str(folder), "--epochs", "1", "--hidden", "32", "--latent-dim", "2",
                 "--out", str(out), "--quiet"]) == 0
    return out


def test_rgb_reconstructions_show_the_inputs_as_they_are(rgb_run, tmp_path):
    from vaekit.cli.common import load_run_data

    assert main(["reconstruct", str(rgb_run), "-n", "4", "--out", str(tmp_path / "r.png")]) == 0
    with Image.open(tmp_path / "r.png") as im:
        assert im.mode == "RGB"
        picture = np.asarray(im)
    x = load_run_data(str(rgb_run)).test.x[:4]  # (4, 3, 28, 28) uint8
    scale, pad = 2, 2
    for k in range(4):  # the top band holds the inputs: each cell's pixels are the image's, channels last
        top, left = pad * scale, (pad + k * (28 + pad)) * scale
        cell = picture[top:top + 28 * scale:scale, left:left + 28 * scale:scale]
        np.testing.assert_array_equal(cell, x[k].transpose(1, 2, 0))


def test_interpolation_rows_are_labelled(run, tmp_path):
    assert main(["interpolate", str(run), "--from", "0", "--to", "1", "--steps", "5", "--out", str(tmp_path / "i.png")]) == 0
    with Image.open(tmp_path / "i.png") as im:
        picture = np.asarray(im.convert("L"))
    grid_width = (5 * 30 + 2) * 2
    margin = picture.shape[1] - grid_width
    assert margin > 20  # a margin on the left for the labels
    rows = np.array_split(picture[:, :margin], 2)  # linear above spherical
    assert all((r < 128).sum() > 20 for r in rows)  # text in each row's margin


@pytest.mark.parametrize("suffix, magic", [(".jpg", "JPEG"), (".webp", "WEBP"), (".pdf", b"%PDF"), (".svg", b"<svg"),
                                           (".tif", "TIFF")])
def test_pictures_are_written_in_the_format_their_suffix_names(run, tmp_path, suffix, magic):
    for command in (["sample", "-n", "4"], ["latent-map", "-n", "200"]):
        out = tmp_path / f"{command[0]}{suffix}"
        assert main([command[0], str(run), "--out", str(out), *command[1:]]) == 0
        if isinstance(magic, bytes):
            assert magic in out.read_bytes()[:2000]
        else:
            with Image.open(out) as im:
                assert im.format == magic


def test_a_picture_suffix_vaekit_cannot_write_is_refused_before_any_work(tmp_path, capsys):
    _fails(["sample", str(tmp_path / "no-run"), "--out", str(tmp_path / "s.gif")], capsys,
           "argument --out: cannot write a picture as 's.gif'", ".jpg", ".npy")
    assert list(tmp_path.iterdir()) == []


def test_demo_interpolates_between_two_classes(tmp_path):
    from vaekit.cli.common import load_run_data
    from vaekit.cli.demo import _two_classes

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "2", "--quiet"]) == 0
    i, j = _two_classes(str(out))
    y = load_run_data(str(out)).test.y
    assert y[i] != y[j]


# -- messages instead of tracebacks --------------------------------------------------------------------
def test_damaged_files_get_messages(run, tmp_path, capsys):
    x = np.random.default_rng(0).random((50, 4)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "x.npz").read_bytes()[:300])
    _fails(["train", "--data", str(tmp_path / "cut.npz"), "--out", str(tmp_path / "r")], capsys,
           "cut.npz: the file is damaged or truncated", "copy or save it again")
    (tmp_path / "c.json").write_text('{"model": {"latent_dim": 2,}}')
    _fails(["train", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "r")], capsys,
           "c.json is not valid JSON (Expecting property name enclosed in double quotes at line 1, column 28)")
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "config.json").write_text((run / "config.json").read_text()[:100])
    _fails(["sample", str(broken), "--out", str(tmp_path / "s.png")], capsys, "config.json is not valid JSON")
    assert not (tmp_path / "r").exists()


def test_image_size_takes_exactly_two_numbers(tmp_path, capsys):
    _fails(["train", "--data", "digits", "--image-size", "32", "--out", str(tmp_path / "r")], capsys,
           "argument --image-size: expected 2 arguments")
    _fails(["train", "--data", "digits", "--image-size", "32", "32", "32", "--out", str(tmp_path / "r")], capsys,
           "unrecognized arguments: 32")
    (tmp_path / "c.json").write_text(json.dumps({"data": {"image_size": [32]}}))
    _fails(["train", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "r")], capsys,
           "'image_size' parameter of the data must be None or two ints >= 1 (height, width); got (32,)")
    assert not (tmp_path / "r").exists()


def test_damaged_weights_say_how_to_recover_and_resume_recovers_them(run, tmp_path, capsys):
    from vaekit.train import checkpoint as ckpt

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes()[:1000])
    _fails(["sample", str(copy), "--out", str(tmp_path / "s.png")], capsys, "model.safetensors is not a readable",
           "state/last.safetensors is intact (epoch 3)", f"'vaekit train --out {copy} --resume'")
    assert main(["train", "--out", str(copy), "--resume"]) == 0
    assert "rewrote model.safetensors from" in capsys.readouterr().err
    weights, _ = ckpt.load_tensors(copy / "model.safetensors")
    state, _ = ckpt.load_tensors(copy / "state" / "last.safetensors")
    assert all(torch.equal(v, state[f"model.{k}"]) for k, v in weights.items())
    assert main(["sample", str(copy), "--out", str(tmp_path / "s.png")]) == 0


# -- what a user sees while waiting ------------------------------------------------------------------
def test_resume_of_a_finished_run_says_so_and_extends_with_more_epochs(run, tmp_path, capsys):
    _fails(["train", "--out", str(run), "--resume"], capsys, "has already trained its 3 epochs: nothing to resume",
           "--epochs N with N > 3")
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert main(["train", "--out", str(copy), "--resume", "--epochs", "4", "--quiet"]) == 0
    assert [r["epoch"] for r in json.loads((copy / "history.json").read_text())] == [1, 2, 3, 4]


def test_early_stopping_is_announced_and_the_bar_ends_full(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--data", "digits", "--epochs", "200", "--patience", "1", "--hidden", "32",
                 "--latent-dim", "2", "--out", str(out)]) == 0
    history = json.loads((out / "history.json").read_text())
    err = capsys.readouterr().err
    assert len(history) < 200 and f"early stopping after epoch {len(history)}" in err
    best = min(history, key=lambda r: r["val_loss"])
    assert f"the weights of epoch {best['epoch']}" in err
    import re

    assert re.search(r"100%\|\S+\| (\d+)/\1 ", err.rstrip().rsplit("\r", 1)[-1])  # the bar ends full: n = total


def test_version_models_and_defaults_in_help(capsys):
    from vaekit import __version__
    from vaekit.models import MODELS

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"vaekit {__version__}"
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("images and arrays")
    groups = [line for line in lines if not line.startswith(" ")]
    assert groups == [f"{m}:" for m in dict.fromkeys(s.modality for s in MODELS.values())]
    assert [line.split()[0] for line in lines if line.startswith(" ")] == list(MODELS)
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            assert action.help, (path, action.option_strings)  # every option says what it is...
            has_default = not (action.default is None or action.default is False or action.default == [])
            if has_default:  # ...and, where it has one, its default
                assert "default" in parser._get_formatter()._get_help_string(action), (path, action.option_strings)
        text = parser.format_help()
        if path == ("vaekit", "sample"):
            assert "how many samples (default: 64)" in text and "seed for anything random (default: 0)" in text
        if path == ("vaekit", "anomaly", "fit"):
            assert "(default: nll)" in text and "(default: 0.1)" in text


# -- defaults that follow the user's choices ----------------------------------------------------------
def test_k_sparse_default_follows_the_code_size(tmp_path, capsys):
    import vaekit

    assert vaekit.estimator_for("k-sparse-ae").model_config().k_sparse == 25  # 25 of 256, as published
    assert vaekit.estimator_for("k-sparse-ae", latent_dim=16).model_config().k_sparse == 2
    assert vaekit.estimator_for("k-sparse-ae", latent_dim=16, k_sparse=5).model_config().k_sparse == 5
    assert main(["train", "--data", "digits", "--model", "k-sparse-ae", "--latent-dim", "16", "--epochs", "1",
                 "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["model_config"]["k_sparse"] == 2
