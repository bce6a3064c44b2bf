"""Densities of the latent space: diagonal Gaussians, N(0, I), and learned mixture priors.

Mixture priors (their parameters live in `LearnedPrior`):
- 'mog': K Gaussians with free means and log-variances, equal weights.
- 'vamp': the VampPrior (Tomczak & Welling, "VAE with a VampPrior", AISTATS 2018): the mixture of
  the model's own posteriors at K learned pseudo-inputs, p(z) = 1/K sum_k q(z | u_k).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(log_var)), summed over the last axis (broadcasting the rest)."""
    return -0.5 * ((z - mu).square() * torch.exp(-log_var) + log_var + LOG_2PI).sum(-1)


def gaussian_log_prob_from_eps(eps: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(mu + sigma * eps; mu, sigma^2): the reparameterised sample's density needs no division."""
    return -0.5 * (eps.square() + log_var + LOG_2PI).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z.square() + LOG_2PI).sum(-1)


def kl_to_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(log_var)) || N(0, I)) summed over the last axis (Kingma & Welling 2014, App. B)."""
    return 0.5 * (mu.square() + log_var.exp() - 1.0 - log_var).sum(-1)


def mixture_log_prob(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k N(z; mu_k, diag exp(log_var_k)): z (..., D), mu and log_var (K, D) -> (...).

    The K squared distances come from two matrix products, so k * B points against 500 components
    never build a (k, B, K, D) tensor.
    """
    lead, d = z.shape[:-1], z.shape[-1]
    z2 = z.reshape(-1, d)  # (N, D)
    precision = torch.exp(-log_var)  # (K, D)
    quad = z2.square() @ precision.T - 2 * z2 @ (mu * precision).T  # (N, K)
    const = (mu.square() * precision + log_var).sum(-1) + d * LOG_2PI  # (K,)
    log_comp = -0.5 * (quad + const)
    return (torch.logsumexp(log_comp, dim=-1) - math.log(len(mu))).view(lead)


class LearnedPrior(nn.Module):
    """Parameters of a mixture prior over the top latent; the VAE turns them into components."""

    def __init__(self, kind: str, n_components: int, latent_dim: int, shape: tuple[int, ...], unit_interval: bool):
        super().__init__()
        self.kind, self.unit_interval = kind, unit_interval
        if kind == "mog":
            self.means = nn.Parameter(torch.randn(n_components, latent_dim))
            self.log_vars = nn.Parameter(torch.zeros(n_components, latent_dim))
        else:  # vamp; pseudo-inputs start as noise around grey and are usually reset from data by init_from_data
            self.pseudo_inputs = nn.Parameter(0.5 + 0.05 * torch.randn(n_components, *shape))

    def inputs(self) -> torch.Tensor:
        """The pseudo-inputs, clipped to [0, 1] where the likelihood reads data as probabilities."""
        return F.hardtanh(self.pseudo_inputs, 0.0, 1.0) if self.unit_interval else self.pseudo_inputs

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """VampPrior: start the pseudo-inputs at K random training examples (plus a little noise).
        x: the training data as given (uint8 pixels are scaled here, K rows only)."""
        if self.kind != "vamp":
            return
        k = len(self.pseudo_inputs)
        idx = torch.randint(len(x), (k,), generator=generator)  # drawn on the CPU, like the noise
        noise = 0.01 * torch.randn(self.pseudo_inputs.shape, generator=generator)
        u = x[idx.to(x.device)] if isinstance(x, torch.Tensor) else torch.as_tensor(x[idx.numpy()])
        u = (u.float() / 255 if u.dtype == torch.uint8 else u).to(self.pseudo_inputs) + noise.to(self.pseudo_inputs)
        self.pseudo_inputs.copy_(u.clamp(0, 1) if self.unit_interval else u)


PRIORS = ("standard", "mog", "vamp")
