"""Compression: lossless coding of binary and 8-bit images by bits-back ANS (real bytes that decode bit for bit,
at the model's -ELBO), lossy coding by a lossy autoencoder's quantised codes (at its entropy model's rate), in
a file that refuses damage and the wrong model."""
import json
import math

import numpy as np
import pytest

import vaekit
from vaekit.cli import main
from vaekit.evaluate import evaluate
from vaekit.tasks.compression import container
from vaekit.tasks.compression.codec import Codec


def _binarised(x: np.ndarray, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(x.shape) < x / 255.0).astype(np.uint8)


@pytest.fixture(scope="module")
def models(mnist):
    xtr = mnist[0][:6000]
    vae = vaekit.VAE(latent_dim=16, hidden=(256,), epochs=4, binarize=True, random_state=0).fit(xtr)
    hvae = vaekit.VAE(model="hvae", latent_dim=8, hidden=(128,), stochastic_layers=(16,), inner_hidden=(64,),
                      epochs=4, binarize=True, random_state=0).fit(xtr)
    return {"vae": vae, "hvae": hvae}


@pytest.fixture(scope="module")
def test_images(mnist):
    return _binarised(mnist[2][:600])


@pytest.mark.parametrize("name", ["vae", "hvae"])
def test_binary_images_decode_bit_for_bit_at_the_model_s_elbo(models, test_images, name):
    model, x = models[name], test_images
    codec = Codec(model, block=400)  # two chains: 400 and 200 images, lanes of 25 with no remainder, then
    data = codec.compress(x[:587])  # ... a last lane of 12 in the second chain
    back = codec.decompress(data)
    assert back.dtype == np.uint8 and back.shape == x[:587].shape and np.array_equal(back, x[:587])
    assert codec.compress(x[:587]) == data  # the same bytes every time

    # the rate: the chains' words (less the initial words each one carries) against -ELBO, in bits
    c = container.from_bytes(data)
    words = sum(len(b.data) for b in c.blocks) * 8
    assert len(data) == words // 8 + sum(len(p) for p in (container.MAGIC, b"\0" * 6, b"\0" * 32)) + len(
        _header_bytes(data))
    net = words - 32 * codec.coder.initial_words * len(c.blocks)
    neg_elbo = evaluate(model, x[:587] * 255, k=1, seed=0)["neg_elbo_nats"] / math.log(2)  # bits per image
    assert net / 587 == pytest.approx(neg_elbo, rel=0.015), (net / 587, neg_elbo)


def _header_bytes(data: bytes) -> bytes:
    n = int.from_bytes(data[10:14], "little")
    return data[14:14 + n]


def test_damaged_truncated_and_foreign_files_are_refused(models, test_images):
    codec = Codec(models["vae"])
    data = codec.compress(test_images[:60])
    head = len(container.MAGIC) + 6 + len(_header_bytes(data)) + 32
    cases = {
        "not a vaekit compressed file": b"PK\x03\x04" + data[4:],
        "truncated": data[:-7],
        "truncated or damaged: its header claims": data[:head - 40],
        "does not match its checksum": data[:head + 5] + bytes([data[head + 5] ^ 0x10]) + data[head + 6:],
        "header does not match": data[:20] + bytes([data[20] ^ 0x01]) + data[21:],
        "bytes after its last block": data + b"\0",
    }
    for message, bad in cases.items():
        with pytest.raises(vaekit.VaekitError, match=message):
            codec.decompress(bad)
    with pytest.raises(vaekit.VaekitError, match="compressed with another model"):
        Codec(models["hvae"]).decompress(data)
    with pytest.raises(vaekit.VaekitError, match="values 0 and 1"):
        codec.compress(np.full((3, 1, 28, 28), 7, np.uint8))


def test_a_model_that_computes_differently_gives_an_error_never_wrong_pixels(models, test_images, monkeypatch):
    model = models["vae"]
    data = Codec(model).compress(test_images[:100])
    sha = container.weights_sha256(model.module_)
    other = vaekit.VAE(latent_dim=16, hidden=(256,), epochs=1, binarize=True, random_state=5)
    other.fit(test_images[:200] * 255)
    monkeypatch.setattr(container, "weights_sha256", lambda module: sha)  # a model that claims to be the same
    with pytest.raises(vaekit.VaekitError, match="do not decode to a whole chain|do not match its checksum"):
        Codec(other).decompress(data)


def test_compress_and_decompress_on_the_command_line(models, test_images, tmp_path, capsys):
    run = models["vae"].save(tmp_path / "run")
    np.save(tmp_path / "x.npy", test_images[:80] * 255)
    assert main(["compress", str(run), str(tmp_path / "x.npy"), "--out", str(tmp_path / "x.vkz")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == 80 and report["bytes"] == (tmp_path / "x.vkz").stat().st_size
    assert report["bits_per_dim"] < 0.5  # an uncompressed binary image is 1 bit per dimension
    assert main(["decompress", str(tmp_path / "x.vkz"), "--run", str(run), "--out", str(tmp_path / "y.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), test_images[:80])
    assert main(["decompress", str(tmp_path / "x.vkz"), "--run", str(run), "--out", str(tmp_path / "png")]) == 0
    assert len(list((tmp_path / "png").glob("*.png"))) == 80
    (tmp_path / "x.vkz").write_bytes((tmp_path / "x.vkz").read_bytes()[:-3])
    assert main(["decompress", str(tmp_path / "x.vkz"), "--run", str(run), "--out", str(tmp_path / "z.npy")]) == 2
    assert "truncated" in capsys.readouterr().err and not (tmp_path / "z.npy").exists()


def test_8_bit_images_decode_bit_for_bit_with_the_lossless_vae(mnist, test_images):
    model = vaekit.estimator_for("lossless-vae", latent_dim=8, hidden=(128,), stochastic_layers=(16,),
                                 inner_hidden=(32,), epochs=3, random_state=0).fit(mnist[0][:3000])
    x = mnist[2][:130]
    codec = Codec(model, block=100)
    data = codec.compress(x)
    assert np.array_equal(codec.decompress(data), x)
    c = container.from_bytes(data)
    assert c.settings["values"] == "8-bit"
    net = sum(len(b.data) for b in c.blocks) * 8 - 32 * codec.coder.initial_words * len(c.blocks)
    neg_elbo = evaluate(model, x, k=1, seed=0)["neg_elbo_nats"] / math.log(2)
    assert net / len(x) == pytest.approx(neg_elbo, rel=0.02), (net / len(x), neg_elbo)
    assert net / x.size < 8  # fewer bits than the raw pixels
    with pytest.raises(vaekit.VaekitError, match="8-bit"):
        codec.compress(x.astype(np.float32))
    with pytest.raises(vaekit.VaekitError, match="compressed with another model"):
        Codec(vaekit.estimator_for("lossless-vae", latent_dim=8, hidden=(128,), stochastic_layers=(16,),
                                   inner_hidden=(32,), epochs=1, random_state=1).fit(mnist[0][:300])).decompress(data)


def test_a_grey_image_model_is_refused_with_what_to_train(mnist_small):
    grey = vaekit.VAE(latent_dim=4, hidden=(32,), epochs=1, likelihood="gaussian", random_state=0)
    grey.fit(mnist_small[0][:200])
    with pytest.raises(vaekit.VaekitError, match="Bernoulli likelihood"):
        Codec(grey)


@pytest.fixture(scope="module")
def lossy(mnist):
    return vaekit.estimator_for("lossy-ae", latent_dim=16, hidden=(128,), epochs=8, rate_lambda=0.01,
                                random_state=0).fit(mnist[0][:6000])


def test_the_factorised_prior_is_a_distribution_over_the_integers_and_its_tables_are_its_masses():
    import torch

    from vaekit.models.entropy import FactorizedPrior

    torch.manual_seed(0)
    prior = FactorizedPrior(3, init_scale=4.0)
    for p in prior.parameters():  # away from the initial, symmetric density
        torch.nn.init.normal_(p, std=0.5)
    k = torch.arange(-300, 301).float()[:, None].expand(-1, 3)
    mass = prior.log_mass(k).exp()
    torch.testing.assert_close(mass.sum(0), torch.ones(3), atol=1e-4, rtol=0)
    prior.build_tables()
    for d in range(3):
        low, size = int(prior.table_low[d]), int(prior.table_size[d])
        inside = mass[low + 300:low + 300 + size, d]
        torch.testing.assert_close(prior.table_mass[d, 1:size - 1].double(), inside[1:-1].double(), atol=1e-6,
                                   rtol=1e-3)
        assert mass[:, d].sum() - inside.sum() < 1e-6  # the table covers all but a negligible tail
    assert prior.quantise(torch.full((1, 3), 1e4))[0].tolist() == (prior.table_low + prior.table_size - 1).tolist()


def test_lossy_files_decode_to_the_model_s_reconstructions_at_the_entropy_model_s_rate(lossy, mnist):
    x = mnist[2][:700]
    codec = Codec(lossy, block=500)
    data = codec.compress(x)
    back = codec.decompress(data)
    assert back.dtype == np.uint8 and back.shape[0] == len(x)
    np.testing.assert_array_equal(codec.decompress(data), back)  # deterministic
    assert codec.compress(x) == data
    recon = np.round(np.clip(lossy.reconstruct(x), 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(back.reshape(recon.shape), recon)  # the reconstructions reconstruct() shows
    c = container.from_bytes(data)
    coded = sum(len(b.data) for b in c.blocks) * 8
    estimate = codec.coder.bits_estimate(x.reshape(len(x), 1, 28, 28))
    assert coded == pytest.approx(estimate, rel=0.01), (coded, estimate)
    mse = ((back.reshape(x.shape).astype(float) - x) ** 2).mean()
    assert 10 * np.log10(255 ** 2 / mse) > 14 and 8 * len(data) / x.size < 1.0  # a real trade-off, not a copy
    with pytest.raises(vaekit.VaekitError, match="damaged|checksum|truncated"):
        codec.decompress(data[:-5])


def test_lossy_coding_on_the_command_line_needs_to_be_asked_for(lossy, mnist, tmp_path, capsys):
    run = lossy.save(tmp_path / "lossy")
    np.save(tmp_path / "x.npy", mnist[2][:50])
    assert main(["compress", str(run), str(tmp_path / "x.npy"), "--out", str(tmp_path / "x.vkz")]) == 2
    assert "say --lossy" in capsys.readouterr().err and not (tmp_path / "x.vkz").exists()
    assert main(["compress", str(run), str(tmp_path / "x.npy"), "--out", str(tmp_path / "x.vkz"), "--lossy"]) == 0
    capsys.readouterr()
    assert main(["decompress", str(tmp_path / "x.vkz"), "--run", str(run), "--out", str(tmp_path / "png")]) == 0
    from PIL import Image

    first = np.asarray(Image.open(tmp_path / "png" / "00.png"))
    np.testing.assert_array_equal(first, Codec(lossy).decompress((tmp_path / "x.vkz").read_bytes())[0].squeeze())
    binary = vaekit.VAE(latent_dim=4, hidden=(32,), epochs=1, binarize=True, random_state=0).fit(mnist[0][:200])
    other = binary.save(tmp_path / "binary")
    assert main(["compress", str(other), str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.vkz"), "--lossy"]) == 2
    assert "drop --lossy" in capsys.readouterr().err
