"""Every model in the registry, through one suite: shapes, learning, save/load, seeded determinism, on images
and flat rows for the image-and-array entries, on tables and sentences for the others."""
import numpy as np
import pytest

import vaekit
from vaekit.estimators import estimator_for
from vaekit.models import MODELS
from vaekit.models.registry import IMAGES_AND_ARRAYS

IMAGE_MODELS = sorted(n for n, s in MODELS.items() if s.modality == IMAGES_AND_ARRAYS)

TINY = dict(latent_dim=3, hidden=(32,), conv_channels=(8, 16), epochs=3, batch_size=64, random_state=0)


@pytest.fixture(scope="module")
def data(mnist_small):
    xtr, _, xte, _ = mnist_small
    return xtr[:512], xte[:64]


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_contract(name, data, tmp_path):
    xtr, xte = data
    model = estimator_for(name, **TINY, **({"k_sparse": 2} if name == "k-sparse-ae" else {})).fit(xtr)
    n = len(xte)
    codes = (3,) if name != "mevae" else (3, 5)  # the MEVAE's code: 3 objects, each 3 numbers and its cell
    assert model.code_shape_ == codes and model.transform(xte).shape == (n, *codes)
    assert model.reconstruct(xte).shape == xte.shape
    assert model.sample(5, random_state=0).shape == (5, *xte.shape[1:])
    assert model.score_samples(xte).shape == (n,)
    assert model.interpolate(xte[0], xte[1], steps=4).shape == (4, *xte.shape[1:])
    # it learned: training loss fell, and scores are finite
    losses = [row["train_loss"] for row in model.history_]
    assert losses[-1] < losses[0] and np.isfinite(model.score_samples(xte)).all()
    # deterministic verbs
    np.testing.assert_array_equal(model.transform(xte), model.transform(xte))
    np.testing.assert_array_equal(model.sample(4, random_state=7), model.sample(4, random_state=7))
    # save / load gives identical outputs and the same model
    model.save(tmp_path / "m")
    again = vaekit.load(tmp_path / "m")
    assert type(again) is type(model) and again.model == model.model == name
    np.testing.assert_array_equal(again.transform(xte), model.transform(xte))
    np.testing.assert_array_equal(again.reconstruct(xte), model.reconstruct(xte))
    np.testing.assert_array_equal(again.sample(4, random_state=3), model.sample(4, random_state=3))


@pytest.mark.parametrize("name", ["vae", "ae"])
def test_seeded_runs_are_reproducible(name, data):
    xtr, xte = data
    a = estimator_for(name, **TINY).fit(xtr)
    b = estimator_for(name, **TINY).fit(xtr)
    c = estimator_for(name, **{**TINY, "random_state": 1}).fit(xtr)
    np.testing.assert_array_equal(a.transform(xte), b.transform(xte))
    assert [r["train_loss"] for r in a.history_] == [r["train_loss"] for r in b.history_]
    assert not np.array_equal(a.transform(xte), c.transform(xte))


def test_variants_are_parameters_not_copies():
    assert MODELS["beta-vae"].module is MODELS["vae"].module is MODELS["iwae"].module
    assert MODELS["beta-vae"].config().beta == 4.0 and MODELS["iwae"].config().k == 5


def test_gaussian_likelihood_on_real_valued_data(rng):
    x = rng.normal(size=(300, 6)).astype(np.float32) @ rng.normal(size=(6, 6)).astype(np.float32)
    model = vaekit.VAE(latent_dim=2, hidden=(32,), likelihood="gaussian", epochs=20, random_state=0).fit(x)
    assert model.reconstruct(x).shape == x.shape
    with pytest.raises(vaekit.VaekitError, match=r"needs data in \[0, 1\].*likelihood='gaussian'"):
        vaekit.VAE(epochs=1).fit(x)


def test_the_decoder_is_built_from_the_likelihoods_parameter_layout():
    """A likelihood says what it reads (param_shape); a decoder makes exactly that, whatever the data's shape."""
    import torch

    from vaekit.config import ModelConfig
    from vaekit.models import build_module
    from vaekit.models.networks import Decoder

    for name in IMAGE_MODELS:
        if name == "mevae":  # its decoder makes one object's patch, with as many parameters per pixel
            module = build_module(name, MODELS[name].config(latent_dim=3, hidden=(8,)), (1, 64, 64))
            assert module.likelihood.param_shape == (1, 64, 64)
            assert module.decoder[-1].out_features == module.params_per_pixel * module.patch ** 2
            continue
        module = build_module(name, MODELS[name].config(latent_dim=3, hidden=(8,)), (1, 28, 28))
        if hasattr(module, "likelihood"):  # the split-brain AE has one per half
            # one output per pixel, or a mean and a log-scale per pixel (the discretised likelihoods)
            per_pixel = 2 if module.cfg.likelihood.startswith("discretized") else 1
            assert module.decoder.out_shape == module.likelihood.param_shape == (per_pixel, 28, 28), name
    mlp = ModelConfig(latent_dim=3, hidden=(8,))
    assert Decoder(mlp, (1, 28, 28), (2, 28, 28))(torch.zeros(5, 3)).shape == (5, 2, 28, 28)
    assert Decoder(mlp, (10,), (17,))(torch.zeros(4, 3)).shape == (4, 17)  # e.g. 10 table columns, 17 parameters
    conv = ModelConfig(latent_dim=3, architecture="conv", conv_channels=(8, 16))
    assert Decoder(conv, (1, 28, 28), (2, 28, 28))(torch.zeros(2, 3)).shape == (2, 2, 28, 28)
    with pytest.raises(ValueError, match="convolutional decoder makes"):
        Decoder(conv, (1, 28, 28), (2, 14, 14))


@pytest.mark.parametrize("name", ["vae", "mevae"])
def test_a_traversal_moves_one_dimension_and_passes_through_the_reconstruction(name):
    from vaekit.data.scenes import generate

    if name == "mevae":
        x, extra = generate("binarized", 256, seed=0).images, {"conv_channels": (8, 8, 8)}
    else:
        x, extra = (np.random.default_rng(0).random((256, 1, 16, 16)) < 0.3).astype(np.uint8) * 255, {}
    model = estimator_for(name, **{**TINY, **extra}).fit(x)
    z = model.transform(x[:1])[0].reshape(-1)
    grid = model.traverse(x[0], dims=[0, 2], values=[-2.0, float(z[2]), 2.0])
    assert grid.shape == (2, 3, *x.shape[1:])
    np.testing.assert_allclose(grid[1, 1], model.reconstruct(x[:1])[0], atol=1e-6)  # z2 at its own value
    assert not np.allclose(grid[0, 0], grid[0, 2])  # moving z0 changes the image
    with pytest.raises(vaekit.VaekitError, match="outside the code"):
        model.traverse(x[0], dims=[99])


CONV_ONLY = {"conv-vae", "mevae"}  # their networks read (C, H, W) images


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_contract_on_flat_inputs(name, data, tmp_path):
    """The same entries on flat (N, D) rows (the first 784 pixels as features scaled to [0, 1]): the MLP
    models fit and round-trip them; the convolutional ones refuse them with a message that says why."""
    xtr, xte = (a.reshape(len(a), -1).astype(np.float32) / 255 for a in data)
    extra = {"k_sparse": 2} if name == "k-sparse-ae" else {}
    if name in CONV_ONLY:
        with pytest.raises(vaekit.VaekitError, match=r"\(C, H, W\)|image|convolution"):
            estimator_for(name, **TINY, **extra).fit(xtr)
        return
    model = estimator_for(name, **TINY, **extra).fit(xtr)
    n = len(xte)
    assert model.transform(xte).shape == (n, 3) and model.reconstruct(xte).shape == (n, 784)
    assert model.sample(5, random_state=0).shape == (5, 784)
    losses = [row["train_loss"] for row in model.history_]
    assert losses[-1] < losses[0]
    model.save(tmp_path / "m")
    again = vaekit.load(tmp_path / "m")
    np.testing.assert_array_equal(again.transform(xte), model.transform(xte))
    np.testing.assert_array_equal(again.sample(4, random_state=3), model.sample(4, random_state=3))


OTHER_MODELS = sorted(n for n, s in MODELS.items() if s.modality != IMAGES_AND_ARRAYS)


@pytest.fixture(scope="module")
def other_data(german_csv):
    from conftest import require_data
    from vaekit.data.text import read_sentences

    import pandas as pd

    brown = read_sentences(require_data("text", "brown", "brown_sentences.txt"))
    return {"tables": pd.read_csv(german_csv), "text": (brown[:300], brown[:40])}  # held: words it knows


@pytest.mark.parametrize("name", OTHER_MODELS)
def test_contract_of_the_table_and_text_entries(name, other_data, tmp_path):
    """Every entry of the other modalities, through their estimators: it learns, its draws repeat with their
    seed and differ across seeds, its codes (where it has a latent space) decode back, and save / load gives the
    same model."""
    spec = MODELS[name]
    est = getattr(vaekit, spec.estimator)
    if spec.modality.startswith("tables"):
        frame = other_data["tables"]
        model = est(model=name, epochs=5, latent_dim=4, hidden=(32,), random_state=0, device="cpu").fit(frame)
        held = frame.iloc[:20]
        assert model.transform(held).shape == (20, 4) and list(model.inverse_transform(model.transform(held))) \
            == list(frame.columns)
        same = lambda a, b: a.equals(b)  # noqa: E731
    else:
        train, held = other_data["text"]
        model = est(model=name, epochs=2, latent_dim=4, hidden_dim=32, embed_dim=16, random_state=0,
                    device="cpu").fit(train)
        if model.module_.variational:
            codes = model.transform(held)
            assert codes.shape == (len(held), 4) and len(model.inverse_transform(codes)) == len(held)
        same = lambda a, b: a == b  # noqa: E731
    losses = [row["train_loss"] for row in model.history_]
    assert losses[-1] < losses[0]
    a, b, c = model.sample(6, random_state=1), model.sample(6, random_state=1), model.sample(6, random_state=2)
    assert same(a, b) and not same(a, c) and len(a) == 6
    model.save(tmp_path / "m")
    again = vaekit.load(tmp_path / "m", device="cpu")
    assert type(again) is type(model) and again.model == name
    assert same(again.sample(6, random_state=1), a)
