"""Two stochastic layers and learned priors: their densities and bounds, checked on real MNIST."""
import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

import vaekit
from vaekit.models.priors import mixture_log_prob


def test_mixture_log_prob_equals_torch_mixture():
    torch.manual_seed(0)
    mu, log_var = torch.randn(7, 3, dtype=torch.double), 0.5 * torch.randn(7, 3, dtype=torch.double)
    z = 2 * torch.randn(4, 5, 3, dtype=torch.double)
    mix = MixtureSameFamily(Categorical(logits=torch.zeros(7, dtype=torch.double)),
                            Independent(Normal(mu, (0.5 * log_var).exp()), 1))
    torch.testing.assert_close(mixture_log_prob(z, mu, log_var), mix.log_prob(z))


@pytest.fixture(scope="module")
def models(mnist_small):
    xtr = mnist_small[0][:1000]
    common = dict(hidden=(64,), epochs=2, random_state=0, device="cpu")  # module math on CPU tensors
    return {
        "hvae": vaekit.estimator_for("hvae", **common, latent_dim=4, stochastic_layers=(8,), inner_hidden=(16,)).fit(xtr),
        "vamp": vaekit.estimator_for("vamp-vae", **common, latent_dim=4, prior_components=20).fit(xtr),
        "mog": vaekit.VAE(**common, latent_dim=4, prior="mog", prior_components=6).fit(xtr),
    }


@pytest.fixture(scope="module")
def x(mnist_small):
    return torch.from_numpy(mnist_small[2][:48]).float() / 255


@pytest.mark.parametrize("name", ["hvae", "vamp", "mog"])
def test_training_loss_is_the_k1_bound_in_expectation(models, x, name):
    """The training loss (closed-form top KL where it exists) and the fully sampled k=1 bound agree on average."""
    m = models[name].module_
    torch.manual_seed(1)
    n = 300
    with torch.no_grad():
        train = torch.stack([-m.loss(x)["loss"] for _ in range(n)])  # (n, B)
        sampled = torch.stack([m.iw_log_likelihood(x, k=1) for _ in range(n)])
    diff = sampled.mean(0) - train.mean(0)
    stderr = ((sampled.var(0) + train.var(0)) / n).sqrt()
    assert (diff.abs() < 4.5 * stderr + 1e-3).all(), (diff / stderr).abs().max()


@pytest.mark.parametrize("name", ["hvae", "vamp"])
def test_bound_tightens_with_k(models, x, name):
    m = models[name].module_
    torch.manual_seed(2)
    with torch.no_grad():
        means = [m.iw_log_likelihood(x, k).mean().item() for k in (1, 10, 100)]
    assert means[0] < means[1] < means[2], means


def test_vamp_prior_is_the_posterior_mixture_at_its_pseudo_inputs(models, mnist_small):
    m = models["vamp"].module_
    u = m.learned_prior.inputs()
    assert u.shape == (20, 1, 28, 28) and 0 <= u.min() and u.max() <= 1
    with torch.no_grad():
        mu, log_var = m.prior_components()
        torch.testing.assert_close((mu, log_var), m.encode(u))
        z = torch.randn(9, 4)
        torch.testing.assert_close(m.log_prior(z), m.prior().log_prob(z))
    # pseudo-inputs started at real training digits, not noise: they still look like ink on a dark page
    assert (u.flatten(1) > 0.5).float().mean(1).median() < 0.3


def test_hierarchical_model_samples_and_encodes_the_top_layer(models, mnist_small):
    model = models["hvae"]
    assert model.transform(mnist_small[2][:5]).shape == (5, 4)
    s = model.sample(6, random_state=0)
    assert s.shape == (6, 1, 28, 28) and 0 <= s.min() and s.max() <= 1
    assert set(model.module_.state_dict()) >= {"up.0.head.weight", "down.0.head.weight"}
