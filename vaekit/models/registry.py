"""The one registry of models: names -> (module class, config defaults). CLI, load() and tests read it."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from torch import nn

from ..config import ModelConfig, TextModelConfig
from ..errors import unknown_name
from .adversarial import AdversarialAutoencoderModule
from .autoencoder import AutoencoderModule, SplitBrainModule
from .lossy import LossyAutoencoderModule
from .mevae import MultiEntityVAEModule
from .text import LanguageModelModule, SentenceVAEModule
from .vae import VAEModule


IMAGES_AND_ARRAYS = "images and arrays (any (N, D) or (N, C, H, W) data)"
TABLES = "tables (pandas DataFrames, CSV, Parquet: mixed column types, missing values)"
TEXT = "text (sentences, one per line: words or BPE tokens)"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    module: type[nn.Module]
    summary: str
    defaults: dict[str, Any] = field(default_factory=dict)
    # defaults that follow other options unless given: name -> f(the options so far) -> value
    derived: dict[str, Callable[[dict], Any]] = field(default_factory=dict)
    modality: str = IMAGES_AND_ARRAYS  # the data the model takes: `vaekit models` groups by it
    trained_by: str = ""  # the estimator class, where it is not the one the module declares
    config_class: type = ModelConfig  # the dataclass of its options (text models have their own)

    @property
    def variational(self) -> bool:
        return self.module.variational

    @property
    def estimator(self) -> str:
        """The name of the vaekit estimator class that trains this entry (its module declares it, unless the
        entry names another: the VAE module trained on tables by TabularVAE)."""
        return self.trained_by or self.module.estimator

    def values(self, **overrides) -> dict[str, Any]:
        """The options of this model: its defaults, the overrides, then the derived defaults not overridden."""
        values = {**self.defaults, **overrides}
        for name, rule in self.derived.items():
            if name not in overrides:
                values[name] = rule({**vars(self.config_class()), **values})
        return values

    def config(self, **overrides):
        """The entry's options as its config_class, with overrides."""
        return replace(self.config_class(), **self.values(**overrides))


def _k_sparse_share(values: dict) -> Any:
    """k for a k-sparse code of any size: 25 of 256 units, the same share of other sizes (at least 1)."""
    d = values["latent_dim"]
    return max(1, round(d * 25 / 256)) if isinstance(d, int) and not isinstance(d, bool) else 25


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
        ModelSpec("lossless-vae", VAEModule,
                  "VAE of 8-bit images with a discretised Gaussian likelihood over the 256 pixel values and two "
                  "stochastic layers: the model of 'vaekit compress' for grey or colour images",
                  {"likelihood": "discretized-gaussian", "stochastic_layers": (64,), "latent_dim": 32,
                   "hidden": (512, 256), "inner_hidden": (128,)}),
        ModelSpec("lossy-ae", LossyAutoencoderModule,
                  "lossy compression autoencoder: quantised 64-unit code, a learned factorised entropy model, "
                  "trained on bits + lambda * 255^2 * squared error (Balle et al. 2017, 2018): 'vaekit compress' "
                  "codes with it; choose the trade-off with --lambda",
                  {"latent_dim": 64, "hidden": (512, 256)}),
        ModelSpec("mevae", MultiEntityVAEModule,
                  "Multi-Entity VAE (Nash et al. 2017): a grid of candidate objects, the K of largest KL decoded "
                  "each alone where it sits and merged by max; codes (K, latent_dim + 2) with each object's cell",
                  {"latent_dim": 8, "conv_channels": (32, 64, 64), "hidden": (256, 512), "objects": 3}),
        ModelSpec("vamp-vae", VAEModule, "VAE with a VampPrior of 500 pseudo-inputs (Tomczak & Welling 2018)",
                  {"prior": "vamp", "prior_components": 500}),
        ModelSpec("ae", AutoencoderModule, "undercomplete autoencoder: a 20-unit code for the input"),
        ModelSpec("overcomplete-ae", AutoencoderModule,
                  "overcomplete autoencoder: 1024 sigmoid code units, kept from copying the input by masking noise",
                  {"latent_dim": 1024, "hidden": (), "latent_activation": "sigmoid", "corruption": "mask",
                   "corruption_level": 0.25}),
        ModelSpec("deep-ae", AutoencoderModule, "deep autoencoder 784-1000-500-250-30 (Hinton & Salakhutdinov 2006)",
                  {"latent_dim": 30, "hidden": (1000, 500, 250)}),
        ModelSpec("stacked-ae", AutoencoderModule,
                  "stacked denoising autoencoder 784-500-500, pretrained greedily layer by layer (Vincent et al. 2010)",
                  {"latent_dim": 500, "hidden": (500,), "latent_activation": "sigmoid", "corruption": "mask",
                   "corruption_level": 0.2}),
        ModelSpec("linear-ae", AutoencoderModule, "linear autoencoder with squared error: spans PCA's subspace",
                  {"hidden": (), "likelihood": "mse"}),
        ModelSpec("sparse-ae", AutoencoderModule, "sparse autoencoder: 256 sigmoid units, KL to rho=0.05 (Ng 2011)",
                  {"latent_dim": 256, "hidden": (), "latent_activation": "sigmoid", "sparsity_weight": 1.0,
                   "sparsity_target": 0.05}),
        ModelSpec("k-sparse-ae", AutoencoderModule, "k-sparse autoencoder: 256 units, 25 active (Makhzani & Frey 2014)",
                  {"latent_dim": 256, "hidden": (), "k_sparse": 25},
                  derived={"k_sparse": _k_sparse_share}),
        ModelSpec("denoising-ae", AutoencoderModule, "denoising autoencoder: 30% masking noise (Vincent et al. 2008)",
                  {"latent_dim": 64, "corruption": "mask", "corruption_level": 0.3}),
        ModelSpec("contractive-ae", AutoencoderModule, "contractive autoencoder: 256 sigmoid units (Rifai et al. 2011)",
                  {"latent_dim": 256, "hidden": (), "latent_activation": "sigmoid", "contractive_weight": 0.1}),
        ModelSpec("embedding-ae", AutoencoderModule,
                  "autoencoder with Laplacian-eigenmap embedding regularisation (Yu et al. 2013)",
                  {"embedding": "laplacian", "embedding_weight": 1.0}),
        ModelSpec("gae", AutoencoderModule, "generalised autoencoder: reconstructs its 10 nearest neighbours (Wang et al. 2014)",
                  {"neighbours": 10}),
        ModelSpec("aae", AdversarialAutoencoderModule,
                  "adversarial autoencoder: codes matched to N(0, I) by a discriminator (Makhzani et al. 2016), "
                  "trained by the one trainer, its matching weighted 10 against the reconstruction",
                  {"latent_dim": 8, "adversarial_weight": 10.0}),
        ModelSpec("split-brain-ae", SplitBrainModule,
                  "split-brain autoencoder: each half of the input predicts the other (Zhang et al. 2017)"),
        ModelSpec("tabular-vae", VAEModule,
                  "VAE for synthetic tables: mode-specific normalisation, a mixed-type likelihood, a latent mixture "
                  "for (conditional) sampling",
                  {"likelihood": "table", "latent_dim": 16, "hidden": (128, 128), "beta": 1.0}, modality=TABLES,
                  trained_by="TabularVAE"),
        ModelSpec("sentence-vae", SentenceVAEModule,
                  "sentence VAE: LSTM encoder and decoder, the code fed at every step (Bowman et al. 2016), with "
                  "cyclical KL annealing and batch-normalised posterior means (BN-VAE) against posterior collapse",
                  {"posterior_bn": 0.6}, modality=TEXT, config_class=TextModelConfig),
        ModelSpec("lstm-lm", LanguageModelModule,
                  "LSTM language model: the sentence VAE's decoder with no latent (the bar its NLL is held to)",
                  modality=TEXT, config_class=TextModelConfig),
    )
}


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise unknown_name("model", name, MODELS)
    return MODELS[name]


def build_module(name: str, cfg: ModelConfig, shape: tuple[int, ...], likelihood: nn.Module | None = None) -> nn.Module:
    """The module of a registry entry for data of this shape; likelihood: one the data's modality assembled
    (a table's, from its fitted encoding) instead of cfg.likelihood built from the shape."""
    if likelihood is None:
        return get_spec(name).module(cfg.validate(), shape)
    return get_spec(name).module(cfg.validate(), shape, likelihood=likelihood)
