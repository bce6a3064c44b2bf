"""The variational autoencoder: one module for the VAE, the beta-VAE and the IWAE.

Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (reparameterisation; KL in closed
form, Appendix B). Higgins et al., ICLR 2017 (beta weights the KL term). Burda et al., "Importance
Weighted Autoencoders", ICLR 2016 (the k-sample bound, k=1 is the ELBO).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ..config import ModelConfig
from .likelihoods import LIKELIHOODS
from .networks import Decoder, Encoder


def kl_to_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(log_var)) || N(0, I)) per example (Kingma & Welling 2014, Appendix B): (B, D) -> (B,)."""
    return 0.5 * (mu.square() + log_var.exp() - 1.0 - log_var).sum(-1)


class VAEModule(nn.Module):
    """q(z|x) = N(mu(x), diag sigma(x)^2), p(z) = N(0, I), p(x|z) from cfg.likelihood.

    Every loss is per example, shape (B,); the trainer reduces it.
    """

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]):
        super().__init__()
        self.cfg, self.shape = cfg, tuple(shape)
        self.likelihood = LIKELIHOODS[cfg.likelihood](self.shape)
        self.encoder = Encoder(cfg, self.shape, 2 * cfg.latent_dim)  # mu and log-variance from one layer
        self.decoder = Decoder(cfg, self.shape, self.likelihood.n_params)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters (mu, log_var), each (B, D)."""
        mu, log_var = self.encoder(x).chunk(2, dim=-1)
        return mu, log_var

    def inference(self, x: torch.Tensor) -> Distribution:
        mu, log_var = self.encode(x)
        return Independent(Normal(mu, (0.5 * log_var).exp(), validate_args=False), 1, validate_args=False)

    def generative(self, z: torch.Tensor) -> Distribution:
        return self.likelihood(self.decoder(z))  # batch shape z.shape[:-1]

    def prior(self, like: torch.Tensor | None = None) -> Distribution:
        zeros = torch.zeros(self.cfg.latent_dim, device=self._device()) if like is None else torch.zeros_like(like)
        return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1, validate_args=False)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{'loss', 'rec', 'kl'}, each (B,): negative training bound, -log p(x|z) and KL(q(z|x) || p(z))."""
        mu, log_var = self.encode(x)
        kl = kl_to_standard_normal(mu, log_var)  # (B,)
        if self.cfg.k == 1:
            z = torch.addcmul(mu, (0.5 * log_var).exp(), torch.randn_like(mu))  # reparameterised, (B, D)
            rec = self.likelihood.nll(self.decoder(z), x)
            return {"loss": rec + self.cfg.beta * kl if self.cfg.beta != 1 else rec + kl, "rec": rec, "kl": kl}
        nll, log_w = self._log_weights(x, mu, log_var, self.cfg.k, self.cfg.beta)
        bound = torch.logsumexp(log_w, dim=0) - math.log(self.cfg.k)
        return {"loss": -bound, "rec": nll.mean(0), "kl": kl}

    def iw_log_likelihood(self, x: torch.Tensor, k: int, max_elements: int = 2 ** 24) -> torch.Tensor:
        """log p(x) >= log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x): (B,). k=1 is a one-sample ELBO.

        Samples are drawn in chunks so chunk * B * features stays under max_elements, then combined by
        one logsumexp over all k, which is exact (not an average of chunk estimates).
        """
        mu, log_var = self.encode(x)
        chunk = max(1, min(k, max_elements // (len(x) * math.prod(self.shape))))
        log_w = [self._log_weights(x, mu, log_var, min(chunk, k - start), 1.0)[1] for start in range(0, k, chunk)]
        return torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k)  # cat: (k, B)

    def _log_weights(self, x, mu, log_var, k: int, beta: float):
        """(-log p(x|z_i), log p(x|z_i) + beta (log p(z_i) - log q(z_i|x))), each (k, B)."""
        eps = torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype)  # (k, B, D)
        z = mu + (0.5 * log_var).exp() * eps
        nll = self.likelihood.nll(self.decoder(z), x)  # (k, B)
        # (z - mu) / sigma is eps, so log q needs no division; the normalisers cancel against log p(z)
        log_q = -0.5 * (eps.square() + log_var).sum(-1)
        log_p = -0.5 * z.square().sum(-1)
        return nll, -nll + beta * (log_p - log_q)

    def _device(self) -> torch.device:
        return next(self.parameters()).device

