"""The autoencoder family's maths, on real MNIST: PCA subspace, k-sparse codes, the contractive and
sparse penalties, denoising, neighbour targets, split-brain halves and layer-wise pretraining."""
import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles

import vaekit
from vaekit.models import MODELS
from vaekit.models.regularizers import bernoulli_kl, corrupt, neighbour_targets


@pytest.fixture(scope="module")
def x_train(mnist_small):
    return mnist_small[0][:2000]


def _unit(x):
    return torch.from_numpy(x).float() / 255


def test_linear_autoencoder_spans_the_pca_subspace(x_train):
    x = x_train.reshape(len(x_train), -1).astype(np.float32) / 255
    model = vaekit.estimator_for("linear-ae", latent_dim=4, epochs=100, lr=1e-2, schedule="cosine", batch_size=64,
                                 random_state=0, device="cpu").fit(x)
    decoder = model.module_.decoder.head.weight.detach().double().numpy()  # (784, 4): its column space
    centred = x - x.mean(0)
    pcs = np.linalg.svd(centred, full_matrices=False)[2][:4].T  # (784, 4)
    angles = np.degrees(subspace_angles(decoder, pcs))
    assert angles.max() < 5, angles  # Baldi & Hornik 1989: the same subspace, not the same basis


def test_k_sparse_codes_have_exactly_k_active_units(x_train):
    model = vaekit.estimator_for("k-sparse-ae", latent_dim=64, k_sparse=7, epochs=2, random_state=0).fit(x_train)
    codes = model.transform(x_train[:300])
    assert ((codes != 0).sum(1) == 7).all()


@pytest.mark.parametrize("hidden", [(), (32,)])
def test_contractive_penalty_is_the_jacobian_norm(x_train, hidden):
    """The closed form (one layer) and the general path (deeper encoders) both equal autograd's Jacobian."""
    model = vaekit.estimator_for("contractive-ae", latent_dim=16, hidden=hidden, epochs=1, random_state=0,
                                   device="cpu")
    module = model.fit(x_train[:256]).module_.double()
    x = _unit(x_train[:5]).double()
    got = module.contractive_penalty(x)
    for i in range(5):
        jac = torch.autograd.functional.jacobian(lambda xi: module.code(xi.unsqueeze(0))[1][0], x[i])
        torch.testing.assert_close(got[i], jac.square().sum())


def test_sparsity_penalty_is_the_kl_to_rho_of_mean_activations(x_train):
    model = vaekit.estimator_for("sparse-ae", latent_dim=32, epochs=1, random_state=0, device="cpu").fit(x_train[:256])
    m = model.module_
    x = _unit(x_train[:100])
    with torch.no_grad():
        out = m.loss(x)
        z = m.code(x)[1].double()
    rho, rho_hat = 0.05, z.mean(0)
    kl = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
    torch.testing.assert_close(out["sparsity"].double(), kl.expand(100), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["loss"], out["rec"] + 1.0 * out["sparsity"])
    assert bernoulli_kl(0.05, torch.tensor([0.05])).abs().item() < 1e-9


def test_denoising_improves_psnr_on_real_test_images(mnist):
    xtr, _, xte, _ = mnist
    model = vaekit.estimator_for("denoising-ae", epochs=4, random_state=0).fit(xtr[:30000])
    clean = _unit(xte[:500])
    torch.manual_seed(123)
    noisy = corrupt(clean, "mask", 0.3)
    denoised = torch.from_numpy(model.reconstruct(noisy.numpy()))

    def psnr(a):
        return float(10 * torch.log10(1 / (a - clean).square().mean()))
    assert psnr(denoised) > psnr(noisy) + 2, (psnr(denoised), psnr(noisy))


def test_neighbour_targets_are_the_weighted_neighbour_mean(x_train):
    x = _unit(x_train[:200])
    got = neighbour_targets(x, k=3)
    flat = x.flatten(1)
    d2 = torch.cdist(flat, flat).square()
    near = d2.topk(4, largest=False)
    t = near.values[:, 1:].mean()
    w = torch.exp(-near.values / t)
    expected = (w[:, :, None] * flat[near.indices]).sum(1) / w.sum(1, keepdim=True)
    torch.testing.assert_close(got.flatten(1), expected, rtol=1e-4, atol=1e-4)


def test_split_brain_predicts_each_half_from_the_other(x_train):
    model = vaekit.estimator_for("split-brain-ae", latent_dim=16, epochs=2, random_state=0, device="cpu").fit(x_train)
    m = model.module_
    x = _unit(x_train[:8])
    top = x.clone()
    top[..., 14:, :] = 0  # the top half alone decides the first 8 code units
    with torch.no_grad():
        torch.testing.assert_close(m.code(top)[:, :8], m.code(x)[:, :8])
    assert model.reconstruct(x_train[:8]).shape == (8, 1, 28, 28)
    assert {"train_rec_part1", "train_rec_part2"} <= set(model.history_[-1])


def test_layerwise_pretraining_trains_every_layer_then_the_whole(x_train, tmp_path):
    est = vaekit.estimator_for("stacked-ae", hidden=(64,), latent_dim=32, layerwise_epochs=2, epochs=1,
                               random_state=0)
    est.fit(x_train, run_dir=tmp_path / "run")
    import json
    layers = json.loads((tmp_path / "run" / "layerwise.json").read_text())
    assert [r["layer"] for r in layers] == [1, 2]
    assert all(r["train_rec"] < 1e9 for r in layers)
    scratch = vaekit.estimator_for("stacked-ae", hidden=(64,), latent_dim=32, epochs=1, random_state=0).fit(x_train)
    x = x_train[:500]
    err = [float(np.mean((m.reconstruct(x) - x / 255.0) ** 2)) for m in (est, scratch)]
    assert err[0] < err[1], err  # one epoch after pretraining beats one epoch from scratch


@pytest.mark.parametrize("name", [n for n, s in MODELS.items() if not s.variational and s.estimator == "Autoencoder"])
def test_every_autoencoder_learns(name, x_train):
    small = {"latent_dim": 16, "hidden": (32,), "epochs": 2, "random_state": 0}
    if name in ("k-sparse-ae",):
        small["k_sparse"] = 4
    if name == "stacked-ae":
        small["layerwise_epochs"] = 1
    model = vaekit.estimator_for(name, **small).fit(x_train[:600])
    losses = [r["train_loss"] for r in model.history_]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_the_adversarial_autoencoder_matches_its_codes_to_the_prior_better_than_a_plain_one(mnist_small):
    """Both 8-unit autoencoders, the same training: the Gaussian fitted to the AAE's codes is much closer
    to N(0, I) (KL), and its training history records the discriminator's loss."""
    import torch

    xtr = mnist_small[0][:2000]
    kl = {}
    for name in ("aae", "ae"):
        model = vaekit.estimator_for(name, latent_dim=8, hidden=(128,), epochs=8, random_state=0).fit(xtr)
        z = torch.as_tensor(model.transform(xtr), dtype=torch.float64)
        fitted = torch.distributions.MultivariateNormal(z.mean(0), torch.cov(z.T) + 1e-6 * torch.eye(8))
        kl[name] = float(torch.distributions.kl_divergence(
            fitted, torch.distributions.MultivariateNormal(torch.zeros(8, dtype=torch.float64),
                                                           torch.eye(8, dtype=torch.float64))))
        if name == "aae":
            assert "train_adversarial" in model.history_[-1]
            assert model.sample(3, random_state=0).shape == (3, *xtr.shape[1:])
    assert kl["aae"] < 0.5 * kl["ae"], kl
