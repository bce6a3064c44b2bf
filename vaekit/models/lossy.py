"""The lossy autoencoder of compression: quantised latents, a learned entropy model, and the rate-distortion
objective (Ballé, Laparra & Simoncelli 2017; Ballé et al. 2018's factorised prior).

An image x is coded as the integers k = round(f(x)) of its code, at -log2 p(k) bits under the entropy model
(entropy.FactorizedPrior); the decoder's reconstruction is sigmoid(g(k)). Training replaces rounding by
uniform noise, so the loss per image, bits + lambda * 255^2 * (squared error in [0, 1]), is CompressAI's
bpp + lambda * 255^2 * MSE multiplied by the pixel count: one lambda means the same trade-off as theirs.
"""
from __future__ import annotations

import math

import torch

from ..config import ModelConfig
from .autoencoder import AutoencoderModule
from .entropy import FactorizedPrior


class LossyAutoencoderModule(AutoencoderModule):
    """An autoencoder whose code is integers coded by a learned factorised prior (see the module docstring).
    In eval mode its code is the quantised one, so reconstruct, evaluate and the codec all see what is coded."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]):
        super().__init__(cfg, shape)
        self.entropy = FactorizedPrior(cfg.latent_dim)

    def code(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.encoder(x)
        if self.training:  # the noise whose density is the quantised latents' mass
            return a, a + torch.rand_like(a) - 0.5
        return a, self.entropy.quantise(a)

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{'loss', 'rec', 'rate_bits', 'sse'}, each (B,): the loss is the code's bits plus lambda * 255^2 * squared
        error; 'rec' is the same cost (an autoencoder's score_samples negates it), 'sse' the squared error."""
        _, k = self.code(x)
        bits = -self.entropy.log_mass(k).sum(-1) / math.log(2)
        sse = (self.generative(k).mean - x).square().flatten(1).sum(-1)
        cost = bits + self.cfg.rate_lambda * 255.0 ** 2 * sse
        return {"loss": cost, "rec": cost, "rate_bits": bits, "sse": sse}

    @torch.no_grad()
    def fit_prior(self, codes: torch.Tensor) -> None:
        """After training: the Gaussian that sample() draws codes from, and the entropy model's coding tables
        (they must be frozen from the trained weights before anything is coded)."""
        super().fit_prior(codes)
        self.entropy.build_tables()
