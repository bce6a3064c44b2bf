"""The one registry of models: names -> (module class, config defaults). CLI, load() and tests read it."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from ..config import ModelConfig
from ..errors import unknown_name
from .autoencoder import AutoencoderModule
from .vae import VAEModule


@dataclass(frozen=True)
class ModelSpec:
    name: str
    module: type[nn.Module]
    summary: str
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def variational(self) -> bool:
        return self.module is VAEModule

    def config(self, **overrides) -> ModelConfig:
        return replace(ModelConfig(), **{**self.defaults, **overrides})


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("vae", VAEModule, "variational autoencoder (Kingma & Welling 2014)"),
        ModelSpec("beta-vae", VAEModule, "VAE with the KL weighted by beta=4 (Higgins et al. 2017)", {"beta": 4.0}),
        ModelSpec("iwae", VAEModule, "VAE trained on the k=5 importance-weighted bound (Burda et al. 2016)",
                  {"k": 5}),
        ModelSpec("conv-vae", VAEModule, "VAE with convolutional encoder and decoder", {"architecture": "conv"}),
        ModelSpec("hvae", VAEModule, "VAE with two stochastic layers, 784-200-200-100-100-50 (Burda et al. 2016)",
                  {"stochastic_layers": (100,), "latent_dim": 50, "hidden": (200, 200), "inner_hidden": (100, 100)}),
        ModelSpec("vamp-vae", VAEModule, "VAE with a VampPrior of 500 pseudo-inputs (Tomczak & Welling 2018)",
                  {"prior": "vamp", "prior_components": 500}),
        ModelSpec("ae", AutoencoderModule, "deterministic autoencoder"),
    )
}


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise unknown_name("model", name, MODELS)
    return MODELS[name]


def build_module(name: str, cfg: ModelConfig, shape: tuple[int, ...]) -> nn.Module:
    return get_spec(name).module(cfg.validate(), shape)
