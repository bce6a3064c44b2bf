"""The adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow & Frey 2016): an autoencoder whose codes
are made to look like draws from the prior N(0, I) by a discriminator, instead of by a KL term.

The discriminator learns to tell prior draws from codes; the encoder learns to fool it. Both are trained
by one optimizer in the shared trainer, each term reaching only its own side: the discriminator's
cross-entropy sees the codes detached, and the encoder's term, -log D(code) (the non-saturating form of
the minimax: a confident discriminator still gives the encoder a gradient), sees the discriminator's
weights detached. Sampling decodes draws from N(0, I), the distribution the codes were matched to.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, MultivariateNormal

from ..config import ModelConfig
from .autoencoder import AutoencoderModule
from .networks import ACTIVATIONS

DISCRIMINATOR = (256, 256)  # the discriminator's hidden widths


class AdversarialAutoencoderModule(AutoencoderModule):
    """loss = -log p(x | z) + adversarial_weight * (the discriminator's cross-entropy on a prior draw and on
    the code, the code's gradient reversed); 'adversarial' is that cross-entropy, 'rec' the reconstruction."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]):
        super().__init__(cfg, shape)
        widths = [cfg.latent_dim, *DISCRIMINATOR]
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), ACTIVATIONS[cfg.activation]()]
        self.discriminator = nn.Sequential(*layers, nn.Linear(widths[-1], 1))

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{'loss', 'rec', 'discriminator', 'adversarial'}, each (B,): the reconstruction, plus the weighted sum of
        the discriminator's cross-entropy (prior draws against codes) and the encoder's -log D(code)."""
        out = super().loss(x, target)
        _, z = self.code(x)
        real = torch.randn_like(z)
        bce = F.binary_cross_entropy_with_logits
        on_real, on_code = self.discriminator(real)[:, 0], self.discriminator(z.detach())[:, 0]
        disc = bce(on_real, torch.ones_like(on_real), reduction="none") + bce(on_code, torch.zeros_like(on_code),
                                                                               reduction="none")
        frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        fooled = torch.func.functional_call(self.discriminator, frozen, (z,))[:, 0]
        adversarial = bce(fooled, torch.ones_like(fooled), reduction="none")
        loss = out["loss"] + self.cfg.adversarial_weight * (disc + adversarial)
        return {**out, "loss": loss, "discriminator": disc, "adversarial": adversarial}

    def prior(self, like: torch.Tensor | None = None) -> Distribution:
        d = self.code_mean.shape[0]
        return MultivariateNormal(torch.zeros(d, device=self.code_mean.device),
                                  scale_tril=torch.eye(d, device=self.code_mean.device))
