"""Observation models p(x|z): decoder outputs -> a torch distribution over one whole example.

A likelihood owns its parameter layout: `param_shape` is the shape of the decoder output it reads for one
example, so a decoder is built from it and never from the data's shape alone. Each likelihood has two
faces: calling it returns a `Distribution` (sampling, means, the public API), and `nll(params, x)` returns
-log p(x|z) per example, (...,), by the shortest arithmetic.
Training calls only `nll`; a test checks that both faces agree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal

from ..errors import VaekitError


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """bf16 / fp16 (from autocast) to float32; float32 and float64 pass through untouched."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


MIN_LOG_SCALE = math.log(1e-3)  # keeps a learned Gaussian from collapsing onto constant pixels
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class _BernoulliNLL(torch.autograd.Function):
    """sum_d softplus(l_d) - x_d l_d over the last axis, with the backward sigmoid(l) - x written out.

    Through autograd the same sum costs twice the element-wise passes (log-sigmoid, its buffer, the
    broadcast checks of torch.distributions), which at MNIST scale is a tenth of a training step.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # (..., D), (..., D) -> (...)
        ctx.save_for_backward(logits, x)
        return torch.addcmul(F.softplus(logits), x, logits, value=-1).sum(-1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logits, x = ctx.saved_tensors
        g = grad.unsqueeze(-1)
        d_logits = torch.sigmoid(logits).sub_(x).mul_(g) if ctx.needs_input_grad[0] else None
        d_x = -logits * g if ctx.needs_input_grad[1] else None
        return d_logits, d_x


LOG2_E = 1 / math.log(2.0)
MAX_GROUP = 64  # factors (1 + e^-|l|) <= 2 multiplied before one log: at most 2^64, far inside float32


def _bernoulli_nll_scoring(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The same sum as _BernoulliNLL with no backward, in ~half the time (scoring, the IS-NLL).

    softplus(l) = relu(l) + log(1 + e^-|l|), relu(l) = (l + |l|) / 2. The linear terms meet in one
    matrix-vector product; the log terms are multiplied in groups before one log per group, carried as
    P - 1 via (1 + a)(1 + b) - 1 = a + b + ab so that tiny e^-|l| are not rounded away against 1.
    exp2 is twice as fast as exp on the CPU, and exp (so softplus) slows ~10x where its results fall below
    float32's normal range (l < -87). Over MNIST's 784 pixels this runs in 45% of softplus's time.
    """
    a = logits.abs()
    if x.shape[:-1].numel() == 1:  # one example's k samples: a matrix-vector product
        out = logits @ (0.5 - x.reshape(-1)).to(logits.dtype)
    else:
        out = (logits * (0.5 - x)).sum(-1)
    out = out.add_(a.sum(-1), alpha=0.5)
    e = a.mul_(-LOG2_E).exp2_()  # e^-|l|, in the buffer of |l|
    n, group = e.shape[-1], 1
    while n % 2 == 0 and 2 * group <= MAX_GROUP:
        n, group = n // 2, 2 * group
        lo, hi = e[..., :n], e[..., n:2 * n]
        lo.addcmul_(lo, hi).add_(hi)
    return out.add_(e[..., :n].log1p().sum(-1))


class BernoulliLikelihood(nn.Module):
    """Pixels in [0, 1] read as probabilities; the decoder outputs logits."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.event_dims = len(shape)
        self.param_shape = tuple(shape)  # one output per element: the logit or the mean

    def forward(self, logits: torch.Tensor) -> Distribution:
        return Independent(Bernoulli(logits=logits, validate_args=False), self.event_dims, validate_args=False)

    def nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x|z), (...,): logits (..., *shape) against x (B, *shape), broadcast over leading dims."""
        logits = full_precision(logits).flatten(-self.event_dims)
        x = x.flatten(-self.event_dims)
        if not (torch.is_grad_enabled() and (logits.requires_grad or x.requires_grad)):
            return _bernoulli_nll_scoring(logits, x)
        return _BernoulliNLL.apply(logits, x.expand_as(logits))


class GaussianLikelihood(nn.Module):
    """Real-valued data: the decoder outputs the mean; a learned scale per channel (images) or feature."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.event_dims = len(shape)
        self.param_shape = tuple(shape)  # one output per element: the logit or the mean
        scale_shape = (shape[0], *([1] * (len(shape) - 1))) if len(shape) == 3 else shape
        self.log_scale = nn.Parameter(torch.zeros(scale_shape))

    def forward(self, mean: torch.Tensor) -> Distribution:
        scale = self._log_scale().exp().expand_as(mean)
        return Independent(Normal(mean, scale, validate_args=False), self.event_dims, validate_args=False)

    def nll(self, mean: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, log_scale = full_precision(mean), self._log_scale()
        per_dim = 0.5 * ((x - mean) * torch.exp(-log_scale)).square() + log_scale + HALF_LOG_2PI
        return per_dim.flatten(-self.event_dims).sum(-1)

    def _log_scale(self) -> torch.Tensor:
        return self.log_scale.clamp(min=MIN_LOG_SCALE)


class SquaredErrorLikelihood(nn.Module):
    """A unit-variance Gaussian: -log p(x|z) is half the squared error plus a constant. Minimising it is
    least squares, whose linear autoencoder spans PCA's subspace (Baldi & Hornik 1989)."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.event_dims = len(shape)
        self.param_shape = tuple(shape)  # one output per element: the logit or the mean

    def forward(self, mean: torch.Tensor) -> Distribution:
        return Independent(Normal(mean, torch.ones_like(mean), validate_args=False), self.event_dims,
                           validate_args=False)

    def nll(self, mean: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (0.5 * (x - full_precision(mean)).square() + HALF_LOG_2PI).flatten(-self.event_dims).sum(-1)


class _DiscretizedPixelLikelihood(nn.Module):
    """What the discretised likelihoods share: 256 values per pixel, read in [0, 1] (v / 255) as the image
    batches give them; a mean and a log-scale per pixel on the decoder's channels (means first); -log p(x) the
    sum of the pixels' log_mass, an exact discrete likelihood, so in bits a real lossless code length."""

    bins = 256

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.event_dims = len(shape)
        self.param_shape = (2 * shape[0], *shape[1:])  # means, then log-scales, on the channels

    def log_mass(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -self.log_mass(params, x).flatten(-self.event_dims).sum(-1)

    def forward(self, params: torch.Tensor) -> DiscretizedPixels:
        return DiscretizedPixels(self, params)


class DiscretizedLogisticLikelihood(_DiscretizedPixelLikelihood):
    """8-bit pixels: each of the 256 values v gets the mass of a logistic between its bin's edges
    (v -+ 0.5) / 255, the end bins taking the tails (Salimans et al. 2017, PixelCNN++). The compression task
    codes it with `pmf`, a table of 256 masses per pixel."""

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_scale = full_precision(params).chunk(2, dim=-self.event_dims)
        return mean, log_scale.clamp(min=MIN_LOG_SCALE_PIXEL)

    def log_mass(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log P(x) of each pixel, (..., *shape); the middle bins by a difference of sigmoids, or by the
        density at the bin's centre where that difference is too small for float arithmetic."""
        mean, log_scale = self.split(params)
        v = (x * (self.bins - 1)).round()
        centred = v / (self.bins - 1) - mean
        inv = torch.exp(-log_scale)
        half = 0.5 / (self.bins - 1)
        plus, minus = inv * (centred + half), inv * (centred - half)
        log_cdf_plus = plus - F.softplus(plus)  # log sigmoid(plus): the lowest bin
        log_sf_minus = -F.softplus(minus)  # log (1 - sigmoid(minus)): the highest bin
        delta = torch.sigmoid(plus) - torch.sigmoid(minus)
        mid = inv * centred
        log_density = mid - log_scale - 2 * F.softplus(mid) - math.log(self.bins - 1)
        middle = torch.where(delta > 1e-5, delta.clamp(min=1e-12).log(), log_density)
        return torch.where(v <= 0, log_cdf_plus, torch.where(v >= self.bins - 1, log_sf_minus, middle))

    def pmf(self, params: torch.Tensor) -> torch.Tensor:
        """The mass of all 256 values of each pixel, (..., *shape, 256), from the logistic's CDF at the bins'
        edges; what an entropy coder codes a pixel with."""
        mean, log_scale = self.split(params)
        edges = (torch.arange(1, self.bins, dtype=mean.dtype, device=mean.device) - 0.5) / (self.bins - 1)
        cdf = torch.sigmoid((edges - mean[..., None]) * torch.exp(-log_scale)[..., None])
        zeros, ones = torch.zeros_like(cdf[..., :1]), torch.ones_like(cdf[..., :1])
        return torch.diff(torch.cat([zeros, cdf, ones], -1), dim=-1).clamp(min=0)


MIN_LOG_SCALE_PIXEL = math.log(1e-3) - 2  # a scale well under one bin (1/255) still trains and codes
LOG_FLOOR = -24 * math.log(2)


class DiscretizedGaussianLikelihood(_DiscretizedPixelLikelihood):
    """8-bit pixels: a Gaussian over pixel values integrated over each value's bin [v - 0.5, v + 0.5], the
    tails in the end bins (0 takes all below 0.5, 255 all above 254.5). It is the model constriction's
    QuantizedGaussian codes with, so bits-back coding of it is fast and its rate is its -log p. Like the
    coder's, every value keeps a mass of at least 2^-24, which also bounds a pixel's loss at 24 bits. The
    means are in units of 255."""

    def pixel_params(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, standard deviation) of each pixel, in pixel values (0-255)."""
        mean, log_scale = full_precision(params).chunk(2, dim=-self.event_dims)
        top = self.bins - 1
        return top * mean, top * torch.exp(log_scale.clamp(min=MIN_LOG_SCALE_PIXEL, max=2.0))

    def log_mass(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.pixel_params(params)
        v = (x * (self.bins - 1)).round()
        a, b = (v - 0.5 - mean) / std, (v + 0.5 - mean) / std
        lowest = torch.special.log_ndtr(b.double()).to(a.dtype)  # float64: see _log_gaussian_mass
        highest = torch.special.log_ndtr(-a.double()).to(a.dtype)
        log_p = torch.where(v <= 0, lowest, torch.where(v >= self.bins - 1, highest, _log_gaussian_mass(a, b)))
        # every value keeps at least the coder's smallest probability, 2^-24, as constriction's quantiser does
        return torch.logaddexp(log_p, torch.full_like(log_p, LOG_FLOOR)) - math.log1p(self.bins * 2.0 ** -24)

    def pmf(self, params: torch.Tensor) -> torch.Tensor:
        """The mass of all 256 values of each pixel, (..., *shape, 256)."""
        values = torch.linspace(0, 1, self.bins, dtype=params.dtype, device=params.device)
        x = values.view(-1, *([1] * (params.dim())))  # (256, 1, ..., 1): each value against every pixel
        return torch.movedim(self.log_mass(params[None], x).exp(), 0, -1)


def _log_gaussian_mass(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(Phi(b) - Phi(a)) for a < b, accurate in both tails (an interval above 0 is mirrored below it).
    In float64: float32's log_ndtr has no usable gradient a few hundred standard deviations out."""
    dtype = a.dtype
    a, b = a.double(), b.double()
    upper = a > 0
    lo, hi = torch.where(upper, -b, a), torch.where(upper, -a, b)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    gap = (log_lo - log_hi).clamp(max=-1e-300)  # an interval too narrow for float64: a tiny mass, not log 0
    return (log_hi + torch.log(-torch.expm1(gap))).to(dtype)


class DiscretizedPixels:
    """p(x | z) of a discretised likelihood (logistic or Gaussian) over whole examples: log_prob, mean and
    sample, all through the likelihood's nll and pmf."""

    def __init__(self, likelihood: nn.Module, params: torch.Tensor):
        self.likelihood, self.params = likelihood, params

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return -self.likelihood.nll(self.params, x)

    @property
    def mean(self) -> torch.Tensor:
        """E[x] in [0, 1], each pixel's expected value over its 256 bins."""
        values = torch.linspace(0, 1, self.likelihood.bins, dtype=self.params.dtype, device=self.params.device)
        return (self.likelihood.pmf(self.params) * values).sum(-1)

    def sample(self, sample_shape=torch.Size(), generator: torch.Generator | None = None) -> torch.Tensor:
        pmf = self.likelihood.pmf(self.params)
        flat = pmf.reshape(-1, pmf.shape[-1])
        n = int(torch.Size(sample_shape).numel())
        v = torch.multinomial(flat.repeat(n, 1), 1, generator=generator).view(*sample_shape, *pmf.shape[:-1])
        return v.to(self.params.dtype) / (self.likelihood.bins - 1)


class TableDistribution:
    """p(row | z) of the table likelihood: one categorical per block, one Gaussian per scalar (its value counts
    where the block's code is a mode with an offset). With an autoregressive likelihood each column also depends
    on the columns before it, so rows are drawn column by column. sample() is in the model's feature layout."""

    def __init__(self, likelihood: TableLikelihood, params: torch.Tensor):
        self.lik, self.params = likelihood, full_precision(params)

    @property
    def mean(self) -> torch.Tensor:
        """Each block's probabilities, then each scalar's mean (with an autoregressive likelihood: given no
        earlier columns, i.e. each column's conditional at the all-zero row; use sample() for rows)."""
        c = self.lik.n_codes
        out = self.lik.conditionals(self.params, torch.zeros(*self.params.shape[:-1], self.lik.n_features,
                                                             device=self.params.device))
        logits = out[..., :c]
        lse = self.lik.block_logsumexp(logits)
        probs = (logits - lse.gather(-1, self.lik.block_of.expand(logits.shape))).exp()
        return torch.cat([probs, out[..., c:]], -1)

    @torch.no_grad()
    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One row per parameter set: a code drawn in each block (one-hot), and each scalar drawn."""
        return self.sample_given((), generator)[0]

    @torch.no_grad()
    def sample_given(self, fixed, generator: torch.Generator | None = None, plan: _SamplingPlan | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows, log p(the fixed codes | z, the columns drawn before them)), (..., features) and (...,): rows
        drawn with fixed = [(block, code), ...] held. The log-probability is what importance resampling of z
        for a condition weighs by. plan: the likelihood's sampling_plan(), when a caller draws many chunks."""
        lik, p = self.lik, self.params
        fixed = dict(fixed)
        log_p = p.new_zeros(p.shape[:-1])
        if lik.width == 0:
            out = p.clone()
            for block, code in fixed.items():
                log_p += _hold(out[..., slice(*lik.slices[block])], code)
            return lik.draw(out, range(lik.n_features), generator), log_p
        # Rows are drawn block by block. The hidden units of degree b read only the codes of the blocks before b
        # (a prefix of the codes) and their scalars (a prefix of the scalars), and block b's parameters read
        # only the units of degree <= b: kept in order of degree, a prefix too. So each block costs small
        # products over what it depends on, and each unit is computed once, when its block is reached.
        shape, p = p.shape[:-1], p.reshape(-1, p.shape[-1])
        plan, c, n_blocks = plan or lik.sampling_plan(), lik.n_codes, len(lik.slices)
        out = p[:, :lik.n_params] + lik.made_out.bias
        x = p.new_empty(len(p), lik.n_features)  # each block is written before a later one reads it
        hidden = p.new_empty(len(p), lik.width)  # in order of degree
        log_p = log_p.reshape(-1)
        for block, feats in enumerate(lik.block_features):
            (a, b), (u0, u1), scalar = lik.slices[block], plan.unit_span[block], plan.scalar[block]
            k = plan.scalars_before[block]
            if u1 > u0:
                h = torch.addmm(p[:, lik.n_params + block::n_blocks], x[:, :a], plan.w_codes[block])
                if k:
                    h.addmm_(x[:, c:c + k], plan.w_scalars[block])
                hidden[:, u0:u1] = h.relu_()
            base = out[:, a:b] if scalar is None else out[:, feats]
            params = torch.addmm(base, hidden[:, :u1], plan.w_out[block])
            if block in fixed:
                log_p += _hold(params[:, :b - a], fixed[block])
            x[:, a:b] = _gumbel_one_hot(params[:, :b - a], generator)
            if scalar is not None:
                x[:, c + scalar] = lik.draw_scalars(params[:, -1:], [scalar], generator)[:, 0]
        return x.reshape(*shape, -1), log_p.reshape(shape)


@dataclass
class _SamplingPlan:
    """The autoregressive layer's weights cut for drawing block by block (TableDistribution.sample_given), with
    the hidden units in order of degree. For block b: unit_span[b], where the units of degree b lie in that order;
    scalar[b], the scalar its codes carry (or None); scalars_before[b], how many scalars the blocks before it
    carry; w_codes[b] / w_scalars[b], (earlier codes / earlier scalars, units of degree b); w_out[b], (units of
    degree <= b, block b's features): each transposed for x @ w."""

    unit_span: list[tuple[int, int]]
    scalar: list[int | None]
    scalars_before: list[int]
    w_codes: list[torch.Tensor]
    w_scalars: list[torch.Tensor]
    w_out: list[torch.Tensor]


def _gumbel(logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """logits plus Gumbel noise: their argmax over a categorical's codes is a draw from it (Gumbel-max)."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device).clamp_(1e-12, 1 - 1e-7)
    return logits - u.log_().neg_().log_()


def _gumbel_one_hot(logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One code drawn from each row's categorical (logits (N, codes)), one-hot."""
    return torch.zeros_like(logits).scatter_(-1, _gumbel(logits, generator).argmax(-1, keepdim=True), 1.0)


def _hold(logits: torch.Tensor, code: int) -> torch.Tensor:
    """Fix one block's draw to code, in place on its logits (..., codes); returns the code's log-probability."""
    log_p = logits.log_softmax(-1)[..., code]
    logits.fill_(-math.inf)[..., code] = 0.0
    return log_p


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (MADE's connectivity)."""

    def __init__(self, mask: torch.Tensor, bias: bool = True):
        super().__init__(mask.shape[1], mask.shape[0], bias=bias)
        self.register_buffer("mask", mask, persistent=False)

    @property
    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.masked_weight, self.bias)


class TableLikelihood(nn.Module):
    """A table's mixed likelihood, assembled from its encoding's column groups (data.tables.encoding): a
    categorical over each column's codes (categories, point values, modes, 'missing') and a Gaussian with a
    learned scale over each numeric column's offset inside its mode, counted only where the code is a mode.

    width=0: the columns are independent given z; param_shape is one logit per code, then one mean per scalar.
    width>0: autoregressive over the columns in table order (MADE, Germain et al., ICML 2015): the decoder
    also gives a context of `width` units, the input of a masked hidden layer of `width` units that adds to
    each column's parameters a term that reads z's context and only the columns before it. Columns independent given a short
    code lose how they depend on each other beyond what the code holds (a classifier trained on such rows
    predicts income worse); the masked layer keeps it at the cost of drawing rows column by column. Its output
    starts at zero, so training starts from the independent model.

    Data are in the feature layout (one-hot blocks, then scalars), so -log p(x|z) is a sum of cross-entropies
    and masked Gaussian terms.
    """

    def __init__(self, blocks: list[int] | tuple[int, ...], scalar_codes: list[list[int]], width: int = 0):
        super().__init__()
        bounds = [0, *torch.tensor(list(blocks)).cumsum(0).tolist()]
        self.slices = list(zip(bounds[:-1], bounds[1:]))
        self.n_codes = bounds[-1]
        n_scalars = len(scalar_codes)
        self.n_params = self.n_features = self.n_codes + n_scalars
        self.width = int(width)
        self.param_shape = (self.n_params + self.width,)
        mask = torch.zeros(self.n_codes, n_scalars)  # code -> the scalar it carries
        for s, codes in enumerate(scalar_codes):
            mask[codes, s] = 1.0
        self.register_buffer("scalar_mask", mask, persistent=False)
        block_of = torch.repeat_interleave(torch.arange(len(self.slices)), torch.tensor(list(blocks), dtype=torch.long))
        self.register_buffer("block_of", block_of, persistent=False)  # code -> its block
        self.register_buffer("block_sum", F.one_hot(block_of, len(self.slices)).float(), persistent=False)
        self.log_scale = nn.Parameter(torch.full((n_scalars,), math.log(0.1)))
        # each feature's block: its codes', then each scalar's (that of the codes carrying it)
        feature_block = torch.cat([block_of, block_of[[codes[0] for codes in scalar_codes]].reshape(-1)])
        self.block_features = [torch.nonzero(feature_block == b)[:, 0] for b in range(len(self.slices))]
        if self.width:
            # a unit of degree d reads blocks < d; the units of degree d are every n_blocks-th from d (sampling
            # slices them so)
            hidden_block = torch.arange(self.width) % len(self.slices)
            self.register_buffer("hidden_block", hidden_block, persistent=False)
            self.made_in = MaskedLinear((feature_block[None] < hidden_block[:, None]).float(), bias=False)
            self.made_out = MaskedLinear((hidden_block[None] <= feature_block[:, None]).float())
            nn.init.zeros_(self.made_out.weight)
            nn.init.zeros_(self.made_out.bias)

    @torch.no_grad()
    def sampling_plan(self) -> _SamplingPlan:
        """The masked layer's weights as sample_given draws by them (see _SamplingPlan), from the current weights."""
        units = torch.argsort(self.hidden_block, stable=True)
        n_blocks, c = len(self.slices), self.n_codes
        unit_ends = torch.bincount(self.hidden_block, minlength=n_blocks)[:n_blocks].cumsum(0).tolist()
        unit_span = list(zip([0, *unit_ends[:-1]], unit_ends))
        scalar = [int(f[-1]) - c if int(f[-1]) >= c else None for f in self.block_features]
        scalars_before = [sum(s is not None for s in scalar[:b]) for b in range(n_blocks)]
        w_in = self.made_in.masked_weight.detach()[units]
        w_out = self.made_out.masked_weight.detach()[:, units]
        return _SamplingPlan(
            unit_span, scalar, scalars_before,
            [w_in[u0:u1, :a].T for (a, _), (u0, u1) in zip(self.slices, unit_span)],
            [w_in[u0:u1, c:c + k].T for k, (u0, u1) in zip(scalars_before, unit_span)],
            [w_out[f, :u1].T for f, (_, u1) in zip(self.block_features, unit_span)])

    def conditionals(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Each block's logits and each scalar's mean given z's decoder output and (autoregressive) the row x's
        earlier columns, (..., n_params)."""
        params = full_precision(params)
        if not self.width:
            return params
        hidden = (self.made_in(x) + params[..., self.n_params:]).relu()
        return params[..., :self.n_params] + self.made_out(hidden)

    def draw(self, out: torch.Tensor, feats, generator: torch.Generator | None) -> torch.Tensor:
        """Rows of the features feats (whole blocks, codes first) from their parameters out: a code per block by
        Gumbel-max, one-hot, then each scalar."""
        feats = torch.as_tensor(feats)
        codes = feats[feats < self.n_codes]
        c = len(codes)
        gumbel = _gumbel(out[..., :c], generator)
        onehot = (gumbel == self.block_max(gumbel, self.block_of[codes])[1]).to(out.dtype)
        return torch.cat([onehot, self.draw_scalars(out[..., c:], feats[c:] - self.n_codes, generator)], -1)

    def draw_scalars(self, means: torch.Tensor, scalars, generator: torch.Generator | None) -> torch.Tensor:
        """Draws of the scalars `scalars` (their indices) around means (..., len(scalars)), each with its scale."""
        eps = torch.randn(means.shape, generator=generator, device=means.device)
        return means + eps * self.log_scale[scalars].clamp(min=MIN_LOG_SCALE).exp()

    def block_max(self, values: torch.Tensor, block_of: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each block's largest value, (..., blocks), and the same spread over the block's codes, (..., codes).
        block_of: the block of each of values' codes (default: all codes, in order)."""
        index = (self.block_of if block_of is None else block_of).expand(values.shape)
        top = values.new_full((*values.shape[:-1], len(self.slices)), -math.inf)
        top = top.scatter_reduce(-1, index, values, "amax")
        return top, top.gather(-1, index)

    def block_logsumexp(self, logits: torch.Tensor) -> torch.Tensor:
        """Each block's log-sum-exp, (..., blocks), at once: shifted by the block's max, each block summed by one
        matrix product."""
        shift, shift_per_code = self.block_max(logits.detach())
        return ((logits - shift_per_code).exp() @ self.block_sum).log() + shift

    @classmethod
    def of(cls, encoding, width: int = 0) -> TableLikelihood:
        return cls(encoding.blocks, encoding.scalar_codes, width)

    def forward(self, params: torch.Tensor) -> TableDistribution:
        return TableDistribution(self, params)

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x|z), (...,): params (..., param_shape) against rows x (B, n_features) in the feature layout."""
        params, c = self.conditionals(params, x), self.n_codes
        onehot, logits = x[..., :c], params[..., :c]
        out = self.block_logsumexp(logits).sum(-1) - (logits * onehot).sum(-1)
        if c < x.shape[-1]:
            log_scale = self.log_scale.clamp(min=MIN_LOG_SCALE)
            per = 0.5 * ((x[..., c:] - params[..., c:]) * torch.exp(-log_scale)).square() + log_scale + HALF_LOG_2PI
            out = out + (per * (onehot @ self.scalar_mask)).sum(-1)
        return out


# name -> likelihood built from the data's shape; "table" is built by the tables modality from its fitted
# encoding (TableLikelihood.of) and handed to the model
LIKELIHOODS = {"bernoulli": BernoulliLikelihood, "gaussian": GaussianLikelihood, "mse": SquaredErrorLikelihood,
               "discretized-logistic": DiscretizedLogisticLikelihood,
               "discretized-gaussian": DiscretizedGaussianLikelihood, "table": TableLikelihood}


def build_likelihood(name: str, shape: tuple[int, ...], given: nn.Module | None = None) -> nn.Module:
    """The likelihood a model of data of this shape uses: given (one a modality assembled), or LIKELIHOODS[name]
    built from the shape."""
    if given is not None:
        return given
    if name == "table":
        raise VaekitError("the 'table' likelihood is assembled from a fitted table encoding, not from a shape: "
                          "train tables with vaekit.TabularVAE or 'vaekit tabular fit'")
    return LIKELIHOODS[name](shape)
