"""The maths of the VAE objective, checked on a model trained briefly on real MNIST."""
import math

import pytest
import torch
from torch.distributions import kl_divergence

import vaekit
from vaekit.evaluate import iw_log_likelihood


@pytest.fixture(scope="module")
def fitted(mnist_small):
    xtr, _, xte, _ = mnist_small
    model = vaekit.VAE(latent_dim=8, hidden=(200,), epochs=2, random_state=0, device="cpu").fit(xtr)
    x = torch.from_numpy(xte[:64]).float() / 255
    return model, x


def test_closed_form_kl_matches_monte_carlo(fitted):
    model, x = fitted
    with torch.no_grad():
        qz = model.module_.inference(x)
        pz = model.module_.prior(qz.mean)
        closed = model.module_.loss(x)["kl"]  # the closed form the objective uses, (B,)
        torch.testing.assert_close(closed, kl_divergence(qz, pz))  # and torch's registered KL agrees
        torch.manual_seed(0)
        z = qz.sample((20000,))
        mc = (qz.log_prob(z) - pz.log_prob(z)).mean(0)
    assert closed.shape == (64,)
    torch.testing.assert_close(mc, closed, rtol=0.03, atol=0.05)


def test_iw_bound_with_k1_equals_elbo_in_expectation(fitted):
    model, x = fitted
    m = model.module_
    torch.manual_seed(1)
    n = 400
    with torch.no_grad():
        elbo = torch.stack([-m.loss(x)["loss"] for _ in range(n)])  # closed-form KL estimator, (n, B)
        iw1 = torch.stack([m.iw_log_likelihood(x, k=1) for _ in range(n)])  # fully sampled estimator
    diff = iw1.mean(0) - elbo.mean(0)  # (B,)
    stderr = ((iw1.var(0) + elbo.var(0)) / n).sqrt()
    assert (diff.abs() < 4 * stderr + 1e-3).all(), (diff / stderr).abs().max()
    assert diff.mean().abs() < 4 * stderr.pow(2).mean().sqrt() / 8  # 64 examples average the noise away


def test_iw_bound_tightens_as_k_grows(fitted):
    model, x = fitted
    torch.manual_seed(2)
    means = [iw_log_likelihood(model.module_, x, k).mean().item() for k in (1, 5, 50, 500)]
    assert all(b > a for a, b in zip(means, means[1:])), means
    assert means[-1] - means[0] > 1.0  # a real gap, not noise


def test_chunked_iw_estimate_equals_one_shot(fitted):
    model, x = fitted
    m = model.module_
    with torch.no_grad():
        torch.manual_seed(3)
        one = m.iw_log_likelihood(x, 64, max_elements=2 ** 30)  # all 64 samples in one block
        torch.manual_seed(3)
        chunked = m.iw_log_likelihood(x, 64, max_elements=64 * 784 * 7)  # blocks of 7 samples
    torch.testing.assert_close(one, chunked, rtol=1e-5, atol=1e-4)


def test_beta_scales_only_the_kl(mnist_small):
    xtr = mnist_small[0][:256]
    a = vaekit.VAE(latent_dim=4, hidden=(64,), epochs=1, random_state=0, device="cpu").fit(xtr).module_
    b = vaekit.VAE(latent_dim=4, hidden=(64,), epochs=1, beta=3.0, random_state=0, device="cpu").fit(xtr).module_
    b.load_state_dict(a.state_dict())
    x = torch.from_numpy(xtr[:32]).float() / 255
    torch.manual_seed(0)
    la = a.loss(x)
    torch.manual_seed(0)
    lb = b.loss(x)
    torch.testing.assert_close(lb["loss"], la["rec"] + 3.0 * la["kl"])


def test_bits_per_dim_conversion(fitted):
    model, x = fitted
    from vaekit.evaluate import evaluate

    out = evaluate(model, (x[:32] * 255).round().to(torch.uint8).numpy(), k=10)
    assert out["neg_elbo_bits_per_dim"] == pytest.approx(out["neg_elbo_nats"] / (784 * math.log(2)))
    assert out["nll_nats"] <= out["neg_elbo_nats"] + 1.0  # the IS estimate is at least about as tight


@pytest.mark.parametrize("name", ["bernoulli", "gaussian"])
def test_fast_nll_matches_the_distribution_and_its_gradient(name):
    from vaekit.models.likelihoods import LIKELIHOODS

    torch.manual_seed(0)
    lik = LIKELIHOODS[name]((1, 4, 4)).double()
    if name == "gaussian":
        with torch.no_grad():
            lik.log_scale.fill_(-0.7)
    params = torch.randn(3, 5, 1, 4, 4, dtype=torch.double, requires_grad=True)  # (k, B, *shape)
    x = torch.rand(5, 1, 4, 4, dtype=torch.double)
    torch.testing.assert_close(lik.nll(params, x), -lik(params).log_prob(x))
    assert torch.autograd.gradcheck(lambda p: lik.nll(p, x), (params,))
    xg = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda p, xx: lik.nll(p, xx), (params[0], xg))


@pytest.mark.parametrize("name", ["discretized-logistic", "discretized-gaussian"])
def test_a_discretised_likelihood_is_a_distribution_over_256_values_that_nll_and_pmf_agree_on(name):
    from vaekit.models.likelihoods import LIKELIHOODS

    lik = LIKELIHOODS[name]((2, 3, 3))
    assert lik.param_shape == (4, 3, 3)  # a mean and a log-scale per pixel, on the channels
    g = torch.Generator().manual_seed(0)
    params = torch.randn(3, 5, 4, 3, 3, generator=g, dtype=torch.double)
    params[:, :, 2:] -= torch.rand(3, 5, 2, 3, 3, generator=g, dtype=torch.double) * 6  # sharp and broad scales
    v = torch.randint(0, 256, (5, 2, 3, 3), generator=g)
    v.view(-1)[:4] = torch.tensor([0, 255, 0, 255])  # the tail bins
    pmf = lik.pmf(params)
    torch.testing.assert_close(pmf.sum(-1), torch.ones(pmf.shape[:-1], dtype=torch.double))
    mass = pmf.gather(-1, v.expand(3, 5, 2, 3, 3)[..., None]).squeeze(-1)
    resolved = mass > 1e-5  # where float64 differences of sigmoids are exact enough to compare
    assert resolved.float().mean() > 0.3
    # rtol: the pmf differences CDFs near 1 at the upper tail, losing a few digits there
    torch.testing.assert_close(lik.log_mass(params, v / 255.0)[resolved], mass.log()[resolved], rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(lik.nll(params, v / 255.0), -lik(params).log_prob(v / 255.0))
    p = params.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda q: lik.nll(q, v / 255.0), (p[0],))
    draws = lik(params[0, :1]).sample((4000,), generator=torch.Generator().manual_seed(1))  # (4000, 1, 2, 3, 3)
    assert torch.equal(draws, (draws * 255).round() / 255)
    torch.testing.assert_close(draws.mean(0), lik(params[0, :1]).mean, atol=0.02, rtol=0)


@pytest.mark.parametrize("shape, batch", [((1, 28, 28), 1), ((1, 28, 28), 3), ((3, 5, 7), 2), ((1, 1, 1), 4)])
def test_scoring_bernoulli_nll_matches_the_distribution(shape, batch):
    """Without gradients the Bernoulli nll takes its grouped-log path: exact for any logits, even sizes
    (grouped pairwise) and odd ones, one example or several, tiny e^-|l| and logits far past overflow."""
    from vaekit.models.likelihoods import LIKELIHOODS

    lik = LIKELIHOODS["bernoulli"](shape)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, batch, *shape, generator=g, dtype=torch.double) * 12 - 4
    logits.view(-1)[:7] = torch.tensor([-200.0, -30.0, -17.0, 0.0, 17.0, 30.0, 200.0], dtype=torch.double)
    x = (torch.rand(batch, *shape, generator=g) < 0.3).double()
    expected = -lik(logits).log_prob(x)
    with torch.no_grad():
        torch.testing.assert_close(lik.nll(logits, x), expected, rtol=1e-12, atol=1e-9)
        # float32 keeps float32's accuracy: within 1e-6 of the scale of the sum
        got = lik.nll(logits.float(), x.float()).double()
    assert ((got - expected).abs() <= 1e-6 * logits.abs().sum((-3, -2, -1)) + 1e-4).all()
    assert torch.equal(logits.view(-1)[:7], torch.tensor([-200.0, -30.0, -17.0, 0.0, 17.0, 30.0, 200.0],
                                                          dtype=torch.double))  # the input is left as it was


def test_importance_weights_equal_the_distributions_formula(fitted):
    model, x = fitted
    m = model.module_
    with torch.no_grad():
        mu, log_var = m.encode(x)
        torch.manual_seed(5)
        nll, log_ratio = m.bound_terms(x, 7)
        log_w = log_ratio - nll  # (7, B)
        torch.manual_seed(5)
        z = mu + (0.5 * log_var).exp() * torch.randn(7, *mu.shape)
        qz, pz = m.inference(x), m.prior(mu)
        expected = m.generative(z).log_prob(x) + pz.log_prob(z) - qz.log_prob(z)
    torch.testing.assert_close(log_w, expected, rtol=1e-5, atol=1e-3)
