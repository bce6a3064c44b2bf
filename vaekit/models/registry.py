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
        ModelSpec("ae", AutoencoderModule, "deterministic autoencoder"),
    )
}


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise unknown_name("model", name, MODELS)
    return MODELS[name]


def build_module(name: str, cfg: ModelConfig, shape: tuple[int, ...]) -> nn.Module:
    return get_spec(name).module(cfg.validate(), shape)
