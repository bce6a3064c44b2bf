"""The Multi-Entity VAE (Nash, Eslami, Burgess, Higgins, Zoran, Weber & Battaglia 2017): a scene's objects as
separate latents, found where the posterior stores the most information.

A convolutional encoder maps the image to a grid of candidate objects, each with its own Gaussian posterior
over a latent_dim code. The KL of each candidate from N(0, I) is the KL map: the K candidates with the
largest KL are the objects (the network must put information where objects are and none on background).
Each chosen code is decoded alone into a patch of image parameters, pasted where its candidate sits (so the
decoder knows each object's location, and the same decoder serves every location); the K object images and
a learned background are merged by an element-wise operator (`aggregation`: max by default, or sum or
logsumexp) into the parameters of p(x | objects). The ELBO counts the KL of every candidate: an unchosen one
explains nothing, so training drives it to the prior.

A scene's code is (K, latent_dim + 2): each object's posterior mean and its cell (row, column) on the grid.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Distribution

from ..config import ModelConfig
from ..errors import VaekitError
from . import noise
from .autoencoder import PointMass
from .likelihoods import build_likelihood, full_precision
from .networks import ACTIVATIONS
from .priors import gaussian_log_prob_from_eps, kl_to_standard_normal, standard_normal_log_prob
from .vae import VAEModule

OUTSIDE = -1e4  # an object's logit where its patch does not reach, under max / logsumexp (never the max)


class ObjectPrior(Distribution):
    """p(objects): K codes from N(0, I) at K distinct cells of the grid, uniformly."""

    arg_constraints: dict = {}

    def __init__(self, objects: int, latent_dim: int, grid: tuple[int, int], device):
        self.k, self.d, self.grid, self.device = objects, latent_dim, grid, device
        super().__init__(torch.Size(), torch.Size((objects, latent_dim + 2)), validate_args=False)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        n = math.prod(sample_shape)
        z = torch.randn(n, self.k, self.d, device=self.device)
        cells = torch.rand(n, self.grid[0] * self.grid[1], device=self.device).argsort(1)[:, :self.k]
        return torch.cat([z, _rows_cols(cells, self.grid)], -1).reshape(*sample_shape, self.k, self.d + 2)


class MultiEntityVAEModule(nn.Module):
    """The MEVAE of images (C, H, W); see the module docstring."""

    estimator = "VAE"
    variational = True
    learned_prior = None

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], likelihood: nn.Module | None = None):
        super().__init__()
        if len(shape) != 3:
            raise VaekitError(f"the Multi-Entity VAE reads images (C, H, W); got examples of shape {shape}")
        c, h, w = shape
        n = len(cfg.conv_channels)
        if h % 2 ** n or w % 2 ** n:
            raise VaekitError(f"the MEVAE's {n} stride-2 convolutions need H and W divisible by {2 ** n}; got "
                              f"{h} x {w}: use fewer conv_channels or resize the images")
        self.cfg, self.shape, self.kl_scale = cfg, tuple(shape), 1.0
        self.sizes = (cfg.latent_dim,)
        self.grid = (h >> n, w >> n)
        self.cell = 2 ** n
        # by default an object reaches up to 2 cells from its own
        self.patch = min(max(h, w), cfg.object_patch or 4 * self.cell)
        if cfg.objects > self.grid[0] * self.grid[1]:
            raise VaekitError(f"objects={cfg.objects} is more than the {self.grid[0] * self.grid[1]} candidates "
                              f"of the encoder's {self.grid[0]} x {self.grid[1]} grid")
        act = ACTIVATIONS[cfg.activation]
        chans = [c, *cfg.conv_channels]
        convs: list[nn.Module] = []
        for c_in, c_out in zip(chans, chans[1:]):
            convs += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), act()]
        for _ in range(cfg.context_convs):
            convs += [nn.Conv2d(chans[-1], chans[-1], 3, padding=1), act()]
        self.encoder = nn.Sequential(*convs, nn.Conv2d(chans[-1], 2 * cfg.latent_dim, 1))
        self.likelihood = likelihood if likelihood is not None else build_likelihood(cfg.likelihood, self.shape)
        self.params_per_pixel = self.likelihood.param_shape[0]
        widths = [cfg.latent_dim, *cfg.hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), act()]
        self.decoder = nn.Sequential(*layers, nn.Linear(widths[-1], self.params_per_pixel * self.patch ** 2))
        self.background = nn.Parameter(torch.full((self.params_per_pixel,), -4.0))

    @property
    def code_shape(self) -> tuple[int, int]:
        return (self.cfg.objects, self.cfg.latent_dim + 2)

    # -- inference ----------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of every candidate, each (B, cells, latent_dim), the cells in row-major order."""
        out = full_precision(self.encoder(x)).flatten(2).transpose(1, 2)  # (B, cells, 2D)
        mu, log_var = out.chunk(2, dim=-1)
        return mu, log_var.clamp(-12, 8)

    def kl_map(self, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """KL(q || N(0, I)) of each candidate, (..., cells)."""
        return kl_to_standard_normal(mu, log_var)

    def select(self, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """The K cells of largest KL, (B, K), largest first."""
        return self.kl_map(mu, log_var).topk(self.cfg.objects, dim=-1).indices

    def objects(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The chosen objects of x: their (mean, log-variance), each (B, K, latent_dim), and their cells (B, K),
        largest KL first."""
        mu, log_var = self.encode(x)
        cells = self.select(mu, log_var)
        idx = cells[..., None].expand(-1, -1, mu.shape[-1])
        return mu.gather(1, idx), log_var.gather(1, idx), cells

    def inference(self, x: torch.Tensor) -> Distribution:
        """q(objects | x) summarised for the latent-space verbs: all mass on the code (B, K, latent_dim + 2)."""
        mu, _, cells = self.objects(x)
        return PointMass(torch.cat([mu, _rows_cols(cells, self.grid)], -1))

    def posterior_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The chosen objects' (mean, log-variance), each flattened to (B, K * latent_dim)."""
        mu, log_var, _ = self.objects(x)
        return mu.flatten(1), log_var.flatten(1)

    # -- generation ---------------------------------------------------------------------------
    def prior(self, like: torch.Tensor | None = None) -> Distribution:
        return ObjectPrior(self.cfg.objects, self.cfg.latent_dim, self.grid, self.background.device)

    def generative(self, codes: torch.Tensor) -> Distribution:
        """p(x | objects) of codes (B, K, latent_dim + 2), each object at its (rounded) cell."""
        return self.likelihood(self.decode(*self._split(codes)))

    def object_images(self, codes: torch.Tensor) -> torch.Tensor:
        """Each object of codes (B, K, latent_dim + 2) decoded alone over the background: means (B, K, C, H, W)."""
        params = self.object_params(*self._split(codes))  # (B, K, P, H, W)
        k = params.shape[1]
        return torch.stack([self.likelihood(self.aggregate(params[:, i:i + 1])).mean for i in range(k)], 1)

    def _split(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the objects' latents (B, K, D), their cells (B, K)) of codes, the cells rounded onto the grid."""
        d = self.cfg.latent_dim
        rows = codes[..., d].round().clamp(0, self.grid[0] - 1)
        cols = codes[..., d + 1].round().clamp(0, self.grid[1] - 1)
        return codes[..., :d], (rows * self.grid[1] + cols).long()

    def decode(self, z: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """The merged image parameters (..., P, H, W) of objects z (..., K, D) at cells (B, K)."""
        return self.aggregate(self.object_params(z, cells))

    def object_params(self, z: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """Each object's image parameters (..., K, P, H, W): its decoded patch where it sits, the operator's
        identity elsewhere."""
        lead, k = z.shape[:-2], z.shape[-2]
        p, (h, w), s = self.params_per_pixel, self.shape[1:], self.patch
        patches = full_precision(self.decoder(z)).reshape(-1, p, s * s)  # (N, P, s*s)
        cells = cells.expand(*lead, k).reshape(-1)
        # the patch is centred on its cell's centre, on a canvas padded by half a patch on each side
        top = (cells // self.grid[1]) * self.cell + self.cell // 2
        left = (cells % self.grid[1]) * self.cell + self.cell // 2
        width = w + s
        offsets = torch.arange(s, device=z.device)
        flat = ((top[:, None, None] + offsets[None, :, None]) * width + left[:, None, None] + offsets[None, None, :])
        canvas = torch.full((len(cells), p, (h + s) * width), self._identity(), device=z.device,
                            dtype=patches.dtype)
        canvas = canvas.scatter(2, flat.reshape(len(cells), 1, -1).expand(-1, p, -1), patches)
        canvas = canvas.view(len(cells), p, h + s, width)[:, :, s // 2:s // 2 + h, s // 2:s // 2 + w]
        return canvas.reshape(*lead, k, p, h, w)

    def aggregate(self, objects: torch.Tensor) -> torch.Tensor:
        """Objects' parameters (..., K, P, H, W) and the background merged element-wise: (..., P, H, W)."""
        bg = self.background.view(-1, 1, 1).expand(objects.shape[-3:])
        both = torch.cat([objects, bg.expand(*objects.shape[:-4], 1, *bg.shape)], dim=-4)
        op = self.cfg.aggregation
        if op == "max":
            return both.max(dim=-4).values
        if op == "logsumexp":
            return both.logsumexp(dim=-4)
        return both.sum(dim=-4)

    def _identity(self) -> float:
        return 0.0 if self.cfg.aggregation == "sum" else OUTSIDE

    # -- objectives ---------------------------------------------------------------------------
    def bound_terms(self, x: torch.Tensor, k: int, analytic_top: bool = False, q1=None):
        """k samples of every candidate: (-log p(x | the chosen objects), log p(z) - log q(z|x) summed over all
        candidates), each (k, B); analytic_top: the latter as -KL in closed form, (B,)."""
        mu, log_var = self.encode(x) if q1 is None else q1
        eps = noise.randn((k, *mu.shape), 1, mu)  # (k, B, cells, D)
        z = torch.addcmul(mu, (0.5 * log_var).exp(), eps)
        cells = self.select(mu, log_var)  # (B, K)
        chosen = z.gather(2, cells[None, ..., None].expand(k, -1, -1, z.shape[-1]))
        nll = self.likelihood.nll(self.decode(chosen, cells), x)
        if analytic_top:
            return nll, -self.kl_map(mu, log_var).sum(-1)
        log_ratio = standard_normal_log_prob(z).sum(-1) - gaussian_log_prob_from_eps(eps, log_var).sum(-1)
        return nll, log_ratio

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{'loss', 'rec', 'kl'}, each (B,): -ELBO with the KL weighted by beta (and the trainer's schedule)."""
        nll, neg_kl = self.bound_terms(x, 1, analytic_top=True)
        rec, kl = nll[0], -neg_kl
        return {"loss": rec + self.cfg.beta * self.kl_scale * kl, "rec": rec, "kl": kl}

    neg_elbo = VAEModule.neg_elbo
    iw_log_likelihood = VAEModule.iw_log_likelihood

    def _device(self) -> torch.device:
        return self.background.device


def _rows_cols(cells: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Each cell's (row, column) on the grid, as the floats a code carries, (..., 2)."""
    return torch.stack([cells // grid[1], cells % grid[1]], -1).float()
