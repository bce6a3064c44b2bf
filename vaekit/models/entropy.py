"""A learned entropy model of quantised latents: one univariate density per latent dimension (the factorised
prior of Ballé et al., "Variational image compression with a scale hyperprior", 2018, its appendix 6.1),
what CompressAI calls the entropy bottleneck.

The cumulative c_d(y) = sigmoid(f_d(y)) of dimension d is a small network of y that is monotone by
construction (positive matrices, and gates tanh(a) that stay above -1), so any weights give a valid
distribution. An integer latent k has the mass c(k + 1/2) - c(k - 1/2) of its bin; in training the latents
carry uniform noise of width 1 instead of being rounded, whose density is that same mass, so the rate the
model learns is the rate it is coded at. After training `build_tables` freezes each dimension's masses
over the integers it can take into buffers saved with the weights: encoder and decoder then code with the
same numbers, whatever machine computes them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

FILTERS = (3, 3, 3)  # hidden widths of each dimension's cumulative network (Ballé et al.'s choice)
MAX_SYMBOLS = 256  # integers a dimension's table can hold; latents outside its range are clamped to it
TAIL_MASS = 1e-9  # a table covers the integers that hold all but this much of a dimension's mass
MIN_MASS = 1e-9  # the smallest mass the rate is computed with (a bound on one latent's bits, and its gradient)


class FactorizedPrior(nn.Module):
    """p(k) for each dimension of integer latents (B, dims): log_mass(y) is log c(y + 1/2) - c(y - 1/2)."""

    def __init__(self, dims: int, init_scale: float = 10.0):
        super().__init__()
        widths = (1, *FILTERS, 1)
        scale = init_scale ** (1 / (len(widths) - 1))  # the initial density spreads over about init_scale
        self.matrices, self.biases, self.gates = nn.ParameterList(), nn.ParameterList(), nn.ParameterList()
        for k, (w_in, w_out) in enumerate(zip(widths, widths[1:])):
            start = math.log(math.expm1(1 / scale / w_out))  # softplus(start) = 1 / (scale * w_out)
            self.matrices.append(nn.Parameter(torch.full((dims, w_out, w_in), start)))
            self.biases.append(nn.Parameter(torch.rand(dims, w_out, 1) - 0.5))
            if k < len(widths) - 2:
                self.gates.append(nn.Parameter(torch.zeros(dims, w_out, 1)))
        self.register_buffer("table_low", torch.zeros(dims))
        self.register_buffer("table_size", torch.zeros(dims))  # 0: no tables built yet
        self.register_buffer("table_mass", torch.zeros(dims, MAX_SYMBOLS))

    @property
    def dims(self) -> int:
        return self.table_low.shape[0]

    def cdf_logits(self, y: torch.Tensor) -> torch.Tensor:
        """f_d(y) for y (B, dims), (B, dims)."""
        h = y.T.unsqueeze(1)  # (dims, 1, B)
        for k, (m, b) in enumerate(zip(self.matrices, self.biases)):
            h = torch.matmul(F.softplus(m), h) + b
            if k < len(self.gates):
                h = h + torch.tanh(self.gates[k]) * torch.tanh(h)
        return h.squeeze(1).T

    def log_mass(self, y: torch.Tensor) -> torch.Tensor:
        """log of the mass of the unit bin centred on each y (B, dims): the rate of y in nats is its negative."""
        lower, upper = self.cdf_logits(y - 0.5), self.cdf_logits(y + 0.5)
        # in the upper tail both sigmoids are near 1 and their difference cancels: take it on the mirrored side
        flip = -torch.sign(lower + upper).detach()
        mass = (torch.sigmoid(flip * upper) - torch.sigmoid(flip * lower)).abs()
        return mass.clamp_min(MIN_MASS).log()

    # -- tables for coding ------------------------------------------------------------------------
    @property
    def has_tables(self) -> bool:
        return bool(self.table_size.min() > 0)

    @torch.no_grad()
    def build_tables(self) -> None:
        """Each dimension's masses over the integers that hold all but TAIL_MASS of it (at most MAX_SYMBOLS,
        from below its median), the tails folded into the end ones, in float32 buffers saved with the weights."""
        grid = torch.arange(-4 * MAX_SYMBOLS, 4 * MAX_SYMBOLS + 1, device=self.table_low.device).float()
        at = grid[:, None].expand(-1, self.dims)
        upper = torch.sigmoid(self.cdf_logits(at + 0.5)).double()  # c(k + 1/2), (grid, dims)
        lower = torch.sigmoid(self.cdf_logits(at - 0.5)).double()
        for d in range(self.dims):
            inside = torch.nonzero((upper[:, d] > TAIL_MASS / 2) & (1 - lower[:, d] > TAIL_MASS / 2))[:, 0]
            first, last = (int(inside[0]), int(inside[-1])) if len(inside) else (len(grid) // 2,) * 2
            median = int((upper[:, d] < 0.5).sum())
            first = max(first, median - MAX_SYMBOLS // 2)
            last = min(last, first + MAX_SYMBOLS - 1)
            mass = (upper[first:last + 1, d] - lower[first:last + 1, d]).clamp_min(0)
            mass[0], mass[-1] = upper[first, d], 1 - lower[last, d]  # the tails into the end symbols
            self.table_low[d], self.table_size[d] = grid[first], last - first + 1
            self.table_mass[d].zero_()
            self.table_mass[d, :len(mass)] = (mass / mass.sum()).float()

    def quantise(self, y: torch.Tensor) -> torch.Tensor:
        """y rounded to the integers, and into each dimension's table once it is built (what is coded)."""
        k = torch.round(y)
        if self.has_tables:
            k = torch.maximum(torch.minimum(k, self.table_low + self.table_size - 1), self.table_low)
        return k
