"""Observation models p(x|z): map decoder outputs to a torch distribution over one whole example."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal

MIN_LOG_SCALE = math.log(1e-3)  # keeps a learned Gaussian from collapsing onto constant pixels


class BernoulliLikelihood(nn.Module):
    """Pixels in [0, 1] read as probabilities; the decoder outputs logits."""

    n_params = 1

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.event_dims = len(shape)

    def forward(self, logits: torch.Tensor) -> Distribution:
        return Independent(Bernoulli(logits=logits, validate_args=False), self.event_dims, validate_args=False)


class GaussianLikelihood(nn.Module):
    """Real-valued data: the decoder outputs the mean; a learned scale per channel (images) or feature."""

    n_params = 1

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.event_dims = len(shape)
        scale_shape = (shape[0], *([1] * (len(shape) - 1))) if len(shape) == 3 else shape
        self.log_scale = nn.Parameter(torch.zeros(scale_shape))

    def forward(self, mean: torch.Tensor) -> Distribution:
        scale = self.log_scale.clamp(min=MIN_LOG_SCALE).exp().expand_as(mean)
        return Independent(Normal(mean, scale, validate_args=False), self.event_dims, validate_args=False)


LIKELIHOODS = {"bernoulli": BernoulliLikelihood, "gaussian": GaussianLikelihood}
