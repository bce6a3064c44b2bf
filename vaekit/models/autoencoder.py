"""The deterministic autoencoder, with the VAE's interface so every tool works on both."""
from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution, MultivariateNormal

from ..config import ModelConfig
from .likelihoods import LIKELIHOODS
from .networks import Decoder, Encoder


class PointMass(Distribution):
    """q(z|x) of a deterministic encoder: all mass on one code."""

    arg_constraints: dict = {}
    has_rsample = True

    def __init__(self, z: torch.Tensor):
        self.z = z
        super().__init__(z.shape[:-1], z.shape[-1:], validate_args=False)

    @property
    def mean(self) -> torch.Tensor:
        return self.z

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        return self.z.expand(*sample_shape, *self.z.shape)


class AutoencoderModule(nn.Module):
    """z = f(x), x_hat ~ p(x|z); the loss is -log p(x|z) (cross-entropy or, for Gaussian, scaled squared error).

    It has no prior of its own: to sample, a Gaussian is fitted to the training codes (fit_prior).
    """

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]):
        super().__init__()
        self.cfg, self.shape = cfg, tuple(shape)
        self.likelihood = LIKELIHOODS[cfg.likelihood](self.shape)
        self.encoder = Encoder(cfg, self.shape, cfg.latent_dim)
        self.decoder = Decoder(cfg, self.shape, self.likelihood.n_params)
        self.register_buffer("code_mean", torch.zeros(cfg.latent_dim))
        self.register_buffer("code_scale_tril", torch.eye(cfg.latent_dim))

    def inference(self, x: torch.Tensor) -> Distribution:
        return PointMass(self.encoder(x))

    def generative(self, z: torch.Tensor) -> Distribution:
        return self.likelihood(self.decoder(z))

    def prior(self, like: torch.Tensor | None = None) -> Distribution:
        return MultivariateNormal(self.code_mean, scale_tril=self.code_scale_tril)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        rec = self.likelihood.nll(self.decoder(self.encoder(x)), x)  # (B,)
        return {"loss": rec, "rec": rec}

    @torch.no_grad()
    def fit_prior(self, codes: torch.Tensor) -> None:
        """Fit N(mean, cov) to training codes (B, D) so sample() draws from where the data lie."""
        mean = codes.mean(0)
        centred = codes - mean
        cov = centred.T @ centred / max(len(codes) - 1, 1)
        cov += 1e-5 * cov.diagonal().mean().clamp_min(1e-8) * torch.eye(len(mean), device=codes.device)
        self.code_mean.copy_(mean)
        self.code_scale_tril.copy_(torch.linalg.cholesky(cov))
