"""Posterior-collapse diagnostics of a VAE's top latent, from its posterior parameters (mu, log_var).

- active units (Burda et al. 2016): dimensions whose posterior mean varies across the data,
  Cov_x(E[z_u|x]) > 0.01;
- KL(q(z_u|x) || N(0, 1)) per dimension, averaged over the data: a collapsed unit carries ~0 nats;
- I(x; z) under q (Hoffman & Johnson 2016; the estimator of He et al. 2019, "Lagging inference
  networks"): E_x E_q(z|x) [log q(z|x) - log q(z)], with the aggregate posterior q(z) taken as the
  mixture of the N posteriors at hand, so the estimate can not exceed log N.
"""
from __future__ import annotations

import torch

from .models.priors import gaussian_log_prob_from_eps, mixture_log_prob

ACTIVE_THRESHOLD = 0.01


def active_units(mu: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> int:
    return int((mu.double().var(0) > threshold).sum())


def kl_per_dim(mu: torch.Tensor, log_var: torch.Tensor) -> list[float]:
    """Mean over examples of KL(q(z_u|x) || N(0, 1)) for each latent dimension u, in nats."""
    kl = 0.5 * (mu.double().square() + log_var.double().exp() - 1.0 - log_var.double())
    return kl.mean(0).tolist()


@torch.no_grad()
def mutual_information(mu: torch.Tensor, log_var: torch.Tensor, generator: torch.Generator | None = None,
                       max_examples: int = 2000) -> float:
    """I(x; z) in nats from the posteriors of (at most max_examples) data points; one z per point."""
    mu, log_var = mu[:max_examples].float(), log_var[:max_examples].float()
    eps = torch.randn(mu.shape, generator=generator).to(mu.device)
    z = mu + (0.5 * log_var).exp() * eps
    log_q_given_x = gaussian_log_prob_from_eps(eps, log_var)  # (N,)
    # the aggregate posterior of the N points at each z; row chunks keep the (rows, N) matrices small
    log_q = torch.cat([mixture_log_prob(z[i:i + 128], mu, log_var) for i in range(0, len(z), 128)])
    return float((log_q_given_x - log_q).double().mean())


def collapse_warning(active: int, latent_dim: int) -> str | None:
    """A message when most latent units carry no information, else None."""
    if active * 2 >= latent_dim:
        return None
    return (f"posterior collapse: only {active} of {latent_dim} latent units are active (Cov_x E[z|x] > "
            f"{ACTIVE_THRESHOLD}); the decoder ignores the rest. Try a smaller latent_dim, beta < 1, KL "
            f"warm-up, or a weaker decoder")


def summary(mu: torch.Tensor, log_var: torch.Tensor, generator: torch.Generator | None = None) -> dict:
    """The scalar diagnostics a training history records each epoch."""
    return {"active_units": active_units(mu), "mutual_info": mutual_information(mu, log_var, generator)}


@torch.no_grad()
def posterior_summary(module, x: torch.Tensor, batch_size: int = 1000) -> dict:
    """summary() of a VAE module's posteriors over x (unit-scaled), with a fixed seed: no global RNG is used."""
    mu, log_var = (torch.cat(t) for t in zip(*(module.posterior_params(x[i:i + batch_size])
                                                for i in range(0, len(x), batch_size))))
    return summary(mu, log_var, torch.Generator().manual_seed(0))
