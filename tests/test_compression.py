"""Lossless compression of binary images by bits-back ANS: real bytes that decode bit for bit, at the model's
-ELBO, in a file that refuses damage and the wrong model."""
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
