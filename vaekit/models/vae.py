"""The variational autoencoder: one module for the VAE, beta-VAE, IWAE, hierarchical VAE and learned priors.

Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (reparameterisation; KL in closed
form, Appendix B). Higgins et al., ICLR 2017 (beta weights the KL term). Burda et al., "Importance
Weighted Autoencoders", ICLR 2016 (the k-sample bound, k=1 is the ELBO; stochastic layers stacked
bottom-up in q and top-down in p). Tomczak & Welling, AISTATS 2018 (the VampPrior).

Latents z_1 (next to x) ... z_L (top, `latent_dim` wide, with the prior). With L = 1, a N(0, I)
prior and k = 1 the loss is the textbook one and runs on its own short path.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from ..config import ModelConfig
from . import noise
from .fused import textbook_layers, textbook_loss, textbook_loss_and_grads
from ..errors import VaekitError
from .likelihoods import build_likelihood, full_precision
from .networks import DenseNet, Decoder, Encoder
from .regularizers import corrupt, init_weights
from .priors import (LearnedPrior, gaussian_log_prob, gaussian_log_prob_from_eps, kl_to_standard_normal,
                     mixture_log_prob, standard_normal_log_prob)


class VAEModule(nn.Module):
    """q(z_1|x) q(z_2|z_1) ... q(z_L|z_{L-1}) and p(z_L) p(z_{L-1}|z_L) ... p(x|z_1), all diagonal Gaussian
    but p(x|z_1) (cfg.likelihood) and p(z_L) (cfg.prior).

    Every loss is per example, shape (B,); the trainer reduces it.
    """

    estimator = "VAE"  # the vaekit estimator class that trains it (registry entries read it)
    variational = True

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], likelihood: nn.Module | None = None):
        super().__init__()
        self.cfg, self.shape = cfg, tuple(shape)
        self.sizes = (*cfg.stochastic_layers, cfg.latent_dim)  # z_1 ... z_L
        self.likelihood = build_likelihood(cfg.likelihood, self.shape, likelihood)  # given by a modality, or built
        self.encoder = Encoder(cfg, self.shape, 2 * self.sizes[0])  # mu and log-variance from one layer
        self.decoder = Decoder(cfg, self.shape, self.likelihood.param_shape, in_features=self.sizes[0])
        pairs = list(zip(self.sizes, self.sizes[1:]))
        self.up = nn.ModuleList(DenseNet(a, cfg.inner_hidden, 2 * b, cfg) for a, b in pairs)  # q(z_l+1 | z_l)
        self.down = nn.ModuleList(DenseNet(b, cfg.inner_hidden[::-1], 2 * a, cfg) for a, b in pairs)  # p(z_l | z_l+1)
        _refuse_autoencoder_options(cfg)
        self.kl_scale = 1.0  # set by the trainer during KL warm-up; the loss weighs latent terms by beta * kl_scale
        self.learned_prior = None if cfg.prior == "standard" else LearnedPrior(
            cfg.prior, cfg.prior_components, cfg.latent_dim, self.shape, unit_interval=cfg.likelihood == "bernoulli")
        init_weights(self, cfg.init)
        # the plain MLP VAE with a Bernoulli likelihood trains through one hand-differentiated node
        textbook = cfg.likelihood == "bernoulli" and len(self.sizes) == 1 and self.learned_prior is None
        self._textbook = textbook_layers(self.encoder, self.decoder) if textbook else None

    # -- the distributions of the public API (top latent; layers between follow their means) -----------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters (mu, log_var) of q(z_1|x), each (B, D_1)."""
        mu, log_var = full_precision(self.encoder(x)).chunk(2, dim=-1)
        return mu, log_var

    def posterior_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_var) of q(z_L | x), passing means through the layers below the top."""
        mu, log_var = self.encode(x)
        for net in self.up:
            mu, log_var = full_precision(net(mu)).chunk(2, dim=-1)
        return mu, log_var

    def inference(self, x: torch.Tensor) -> Distribution:
        mu, log_var = self.posterior_params(x)
        return Independent(Normal(mu, (0.5 * log_var).exp(), validate_args=False), 1, validate_args=False)

    def generative(self, z: torch.Tensor) -> Distribution:
        """p(x | z_L) for top codes z (..., D_L), following the means of the layers below."""
        for net in reversed(self.down):
            z = net(z).chunk(2, dim=-1)[0]
        return self.likelihood(self.decoder(z))  # batch shape z.shape[:-1]

    def prior(self, like: torch.Tensor | None = None) -> Distribution:
        if self.learned_prior is not None:
            mu, log_var = self.prior_components()
            mix = Categorical(logits=torch.zeros(len(mu), device=mu.device), validate_args=False)
            comp = Independent(Normal(mu, (0.5 * log_var).exp(), validate_args=False), 1, validate_args=False)
            return MixtureSameFamily(mix, comp, validate_args=False)
        zeros = torch.zeros(self.cfg.latent_dim, device=self._device()) if like is None else torch.zeros_like(like)
        return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1, validate_args=False)

    def prior_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_var), each (K, D_L), of a mixture prior's components."""
        p = self.learned_prior
        if p.kind == "mog":
            return p.means, p.log_vars
        return self.posterior_params(p.inputs())

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z_L), (...,)."""
        if self.learned_prior is None:
            return standard_normal_log_prob(z)
        return mixture_log_prob(z, *self.prior_components())

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Called once before training with the training data: VampPrior pseudo-inputs start at real examples."""
        if self.learned_prior is not None:
            self.learned_prior.init_from_data(x, generator)

    # -- objectives ------------------------------------------------------------------------------
    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{'loss', 'rec', 'kl'}, each (B,): negative training bound, -log p(x|z_1) and the latent terms
        (KL(q(z|x) || p(z)); a one-sample estimate where it has no closed form)."""
        cfg, weight = self.cfg, self.cfg.beta * self.kl_scale
        x_in = corrupt(x, cfg.corruption, cfg.corruption_level) if self.training else x
        if cfg.k == 1 and len(self.sizes) == 1 and self.learned_prior is None:
            if self._textbook_applies(x):
                rec, kl = textbook_loss(*self._textbook, x_in, x, self._eps(x))
            else:
                mu, log_var = self.encode(x_in)
                kl = kl_to_standard_normal(mu, log_var)  # (B,)
                z = torch.addcmul(mu, (0.5 * log_var).exp(), noise.randn(mu.shape, 0, mu))  # reparameterised, (B, D)
                rec = self.likelihood.nll(self.decoder(z), x)
            return _elbo_terms(rec, kl, weight)
        q1 = self.encode(x_in) if x_in is not x else None  # a denoising VAE encodes the corrupted input
        nll, log_ratio = self.bound_terms(x, cfg.k, analytic_top=cfg.k == 1, q1=q1)  # (k, B), (k, B) or (B,)
        if cfg.k == 1:
            return _elbo_terms(nll[0], -log_ratio.expand_as(nll)[0], weight)
        log_w = -nll + weight * log_ratio
        bound = torch.logsumexp(log_w, dim=0) - math.log(cfg.k)
        return {"loss": -bound, "rec": nll.mean(0), "kl": -log_ratio.mean(0)}

    def loss_with_grads(self, x: torch.Tensor, scale: float) -> dict[str, torch.Tensor] | None:
        """loss(x), detached, with each parameter's .grad set to the gradient of scale * loss.sum() (not
        added to it, as backward would) by the hand-written backward, not autograd. None where this model
        has no such path: the caller then runs loss and backward itself."""
        if self.cfg.k != 1 or not self._textbook_applies(x):
            return None
        cfg, weight = self.cfg, self.cfg.beta * self.kl_scale
        x_in = corrupt(x, cfg.corruption, cfg.corruption_level) if self.training else x
        rec, kl = textbook_loss_and_grads(*self._textbook, x_in, x, self._eps(x), scale, scale * weight)
        return _elbo_terms(rec, kl, weight)

    def _textbook_applies(self, x: torch.Tensor) -> bool:
        return self._textbook is not None and not x.requires_grad and not torch.is_autocast_enabled(x.device.type)

    def _eps(self, x: torch.Tensor) -> torch.Tensor:
        """The reparameterisation's noise for the textbook path, (B, latent_dim)."""
        return noise.randn((len(x), self.cfg.latent_dim), 0, x)

    def bound_terms(self, x: torch.Tensor, k: int, analytic_top: bool = False, q1=None):
        """k samples of the whole latent path: (-log p(x|z_1), sum over layers of log p(z) - log q(z|.)),
        each (k, B). analytic_top swaps the top layer's sampled terms for -KL(q || N(0, I)) in closed
        form: same expectation, less noise, but not an importance weight (only for k = 1 training).
        q1: encode(x), when the caller draws several chunks of samples for the same x."""
        analytic_top = analytic_top and self.learned_prior is None
        zs, log_ratio = [], 0.0
        for layer in range(len(self.sizes)):
            if layer == 0:
                mu, log_var = self.encode(x) if q1 is None else q1
                eps = noise.randn((k, *mu.shape), 1, mu)
            else:
                mu, log_var = full_precision(self.up[layer - 1](zs[-1])).chunk(2, dim=-1)
                eps = noise.randn(mu.shape, 1, mu)
            zs.append(torch.addcmul(mu, (0.5 * log_var).exp(), eps))  # (k, B, D_layer)
            if analytic_top and layer == len(self.sizes) - 1:
                log_ratio = log_ratio - kl_to_standard_normal(mu, log_var)
            else:
                log_ratio = log_ratio - gaussian_log_prob_from_eps(eps, log_var)
        for layer, net in enumerate(self.down):
            mu_p, log_var_p = full_precision(net(zs[layer + 1])).chunk(2, dim=-1)
            log_ratio = log_ratio + gaussian_log_prob(zs[layer], mu_p, log_var_p)
        if not analytic_top:
            log_ratio = log_ratio + self.log_prior(zs[-1])
        return self.likelihood.nll(self.decoder(zs[0]), x), log_ratio

    def neg_elbo(self, x: torch.Tensor, n_samples: int) -> torch.Tensor:
        """-ELBO per example (B,): the mean of n_samples one-sample estimates, the top KL in closed form
        where it has one."""
        nll, log_ratio = self.bound_terms(x, n_samples, analytic_top=True)
        return (nll - log_ratio.expand_as(nll)).mean(0)

    def iw_log_likelihood(self, x: torch.Tensor, k: int, max_elements: int = 2 ** 24) -> torch.Tensor:
        """log p(x) >= log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x): (B,). k=1 is a one-sample ELBO.

        Samples are drawn in chunks so chunk * B * features stays under max_elements, then combined by
        one logsumexp over all k, which is exact (not an average of chunk estimates).
        """
        chunk = max(1, min(k, max_elements // (len(x) * math.prod(self.shape))))
        q1 = self.encode(x)
        log_w = []
        for start in range(0, k, chunk):
            nll, log_ratio = self.bound_terms(x, min(chunk, k - start), q1=q1)
            log_w.append(log_ratio - nll)  # (chunk, B)
        return torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k)

    def _device(self) -> torch.device:
        return next(self.parameters()).device


def _elbo_terms(rec: torch.Tensor, kl: torch.Tensor, weight: float) -> dict[str, torch.Tensor]:
    """The one-sample bound's terms with the KL weighed by beta (and warm-up)."""
    return {"loss": rec + weight * kl if weight != 1 else rec + kl, "rec": rec, "kl": kl}


def _refuse_autoencoder_options(cfg: ModelConfig) -> None:
    used = [name for name, off in (("latent_activation", "linear"), ("sparsity_weight", 0.0), ("k_sparse", 0),
                                   ("contractive_weight", 0.0), ("embedding", "none"), ("neighbours", 0))
            if getattr(cfg, name) != off]
    if used:
        raise VaekitError(f"{', '.join(used)} shape(s) a deterministic autoencoder's code; a VAE's code is a "
                          f"Gaussian posterior. Use an autoencoder model (e.g. --model sparse-ae), or drop them")
