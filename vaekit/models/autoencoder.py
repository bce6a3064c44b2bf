"""Deterministic autoencoders, with the VAE's interface so every tool works on both.

One module covers the family of the lectures: undercomplete, overcomplete, deep and linear
autoencoders are sizes; denoising, sparse, k-sparse, contractive, embedding-regularised and
generalised autoencoders are options of cfg (see regularizers). The split-brain autoencoder
(Zhang et al. 2017) predicts each half of the input from the other; it has its own module below.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.distributions import Distribution, MultivariateNormal

from ..config import ModelConfig
from ..errors import VaekitError
from .likelihoods import build_likelihood
from .networks import Decoder, Encoder
from .regularizers import (LATENT_ACTIVATIONS, contractive_closed_form, contractive_exact, corrupt,
                           embedding_penalty, init_weights, keep_top_k, neighbour_targets, sparsity_penalty)


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


class CodePrior(nn.Module):
    """A deterministic model's stand-in prior: N(mean, cov) fitted to its training codes (fit_prior)."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.register_buffer("code_mean", torch.zeros(latent_dim))
        self.register_buffer("code_scale_tril", torch.eye(latent_dim))

    def prior(self, like: torch.Tensor | None = None) -> Distribution:
        return MultivariateNormal(self.code_mean, scale_tril=self.code_scale_tril)

    @torch.no_grad()
    def fit_prior(self, codes: torch.Tensor) -> None:
        """Fit N(mean, cov) to training codes (B, D) so sample() draws from where the data lie."""
        mean = codes.mean(0)
        centred = codes - mean
        cov = centred.T @ centred / max(len(codes) - 1, 1)
        cov += 1e-5 * cov.diagonal().mean().clamp_min(1e-8) * torch.eye(len(mean), device=codes.device)
        self.code_mean.copy_(mean)
        self.code_scale_tril.copy_(torch.linalg.cholesky(cov))


class AutoencoderModule(CodePrior):
    """z = s(f(x)) (top-k units only when k_sparse), x_hat ~ p(x|z); the loss is -log p(x|z) of the clean
    input (or of a target, for the generalised autoencoder) plus the weighted penalties of cfg."""

    estimator = "Autoencoder"  # the vaekit estimator class that trains it (registry entries read it)
    variational = False

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]):
        super().__init__(cfg.latent_dim)
        self.cfg, self.shape = cfg, tuple(shape)
        self.likelihood = build_likelihood(cfg.likelihood, self.shape)
        self.encoder = Encoder(cfg, self.shape, cfg.latent_dim)
        self.decoder = Decoder(cfg, self.shape, self.likelihood.param_shape)
        init_weights(self, cfg.init)

    def code(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre-activation a, code z), each (B, latent_dim)."""
        a = self.encoder(x)
        z = LATENT_ACTIVATIONS[self.cfg.latent_activation](a)
        return a, keep_top_k(z, self.cfg.k_sparse) if self.cfg.k_sparse else z

    def inference(self, x: torch.Tensor) -> Distribution:
        return PointMass(self.code(x)[1])

    def generative(self, z: torch.Tensor) -> Distribution:
        return self.likelihood(self.decoder(z))

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{'loss', 'rec', and each active penalty}, every one (B,)."""
        c = self.cfg
        x_in = corrupt(x, c.corruption, c.corruption_level) if self.training else x
        a, z = self.code(x_in)
        rec = self.likelihood.nll(self.decoder(z), x if target is None else target)  # (B,)
        terms, loss = {"rec": rec}, rec
        for name, weight, fn in (("sparsity", c.sparsity_weight, lambda: sparsity_penalty(z, c.sparsity_target)),
                                 ("contractive", c.contractive_weight, lambda: self._contractive(x_in, a, z)),
                                 ("embedding", c.embedding_weight if c.embedding != "none" else 0.0,
                                  lambda: embedding_penalty(x, z, c.embedding))):
            if weight:
                terms[name] = fn()
                loss = loss + weight * terms[name]
        return {"loss": loss, **terms}

    def contractive_penalty(self, x: torch.Tensor) -> torch.Tensor:
        """||d code / d x||_F^2 per example, (B,)."""
        a, z = self.code(x)
        return self._contractive(x, a, z)

    def _contractive(self, x, a, z) -> torch.Tensor:
        c = self.cfg
        if c.architecture == "mlp" and not c.hidden and not c.k_sparse:  # one dense layer: closed form
            return contractive_closed_form(a, z, self.encoder.head.weight, c.latent_activation)
        return contractive_exact(lambda xi: self.code(xi)[1], x)

    def training_targets(self, x) -> torch.Tensor | None:
        """What each training example reconstructs, when it is not itself (the generalised autoencoder).
        x: a tensor or on-disk rows (read whole: neighbours need every example)."""
        if not self.cfg.neighbours:
            return None
        return neighbour_targets(torch.as_tensor(np.asarray(x)), self.cfg.neighbours)


def split_shapes(shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """(shape of part 1, shape of part 2, axis): channels when there are several, else rows, else features."""
    if len(shape) == 3:
        axis = 0 if shape[0] > 1 else 1
    else:
        axis = 0
    n = shape[axis]
    if n < 2:
        raise VaekitError(f"data of shape {shape} cannot be split in two parts for a split-brain autoencoder")
    first = list(shape)
    first[axis] = n // 2
    second = list(shape)
    second[axis] = n - n // 2
    return tuple(first), tuple(second), axis + 1  # +1: the batch axis


class SplitBrainModule(CodePrior):
    """Split-brain autoencoder (Zhang, Isola & Efros 2017): the input is split in two parts (channels, else
    rows, else features); one network predicts part 2 from part 1, another part 1 from part 2, and the
    representation is both codes side by side (latent_dim // 2 each)."""

    estimator = "Autoencoder"  # the vaekit estimator class that trains it (registry entries read it)
    variational = False

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]):
        if cfg.latent_dim < 2:
            raise VaekitError("a split-brain autoencoder needs latent_dim >= 2: half its code comes from each part")
        super().__init__(cfg.latent_dim)
        self.cfg, self.shape = cfg, tuple(shape)
        s1, s2, self.axis = split_shapes(self.shape)
        self.cut = s1[self.axis - 1]
        half, rest = cfg.latent_dim // 2, cfg.latent_dim - cfg.latent_dim // 2
        self.lik1, self.lik2 = build_likelihood(cfg.likelihood, s1), build_likelihood(cfg.likelihood, s2)
        self.enc1, self.dec1 = Encoder(cfg, s1, half), Decoder(cfg, s2, self.lik2.param_shape, in_features=half)
        self.enc2, self.dec2 = Encoder(cfg, s2, rest), Decoder(cfg, s1, self.lik1.param_shape, in_features=rest)
        self.half = half
        init_weights(self, cfg.init)

    def _parts(self, x: torch.Tensor):
        return x.narrow(self.axis, 0, self.cut), x.narrow(self.axis, self.cut, x.shape[self.axis] - self.cut)

    def code(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self._parts(x)
        act = LATENT_ACTIVATIONS[self.cfg.latent_activation]
        return torch.cat([act(self.enc1(x1)), act(self.enc2(x2))], dim=-1)

    def inference(self, x: torch.Tensor) -> Distribution:
        return PointMass(self.code(x))

    def generative(self, z: torch.Tensor) -> Distribution:
        """Each half of the code decodes the part the other network does not see; together, the whole input."""
        x2 = self.lik2(self.dec1(z[..., :self.half])).mean
        x1 = self.lik1(self.dec2(z[..., self.half:])).mean
        return PointMass(torch.cat([x1, x2], dim=self.axis + z.dim() - 2))

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.cfg
        x_in = corrupt(x, c.corruption, c.corruption_level) if self.training else x
        x1, x2 = self._parts(x)
        z = self.code(x_in)
        rec2 = self.lik2.nll(self.dec1(z[:, :self.half]), x2)  # part 2 predicted from part 1
        rec1 = self.lik1.nll(self.dec2(z[:, self.half:]), x1)
        return {"loss": rec1 + rec2, "rec": rec1 + rec2, "rec_part1": rec1, "rec_part2": rec2}
