"""Typed configuration: one dataclass per concern, each field documented.

The same fields drive the CLI flags, the estimators' parameters and the run folder's config.json,
so a run is fully described by JSON and unknown keys are refused with a suggestion.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

from .errors import VaekitError, did_you_mean


def _check(cond: bool, owner: str, name: str, expected: str, got: Any) -> None:
    if not cond:
        raise VaekitError(f"the '{name}' parameter of {owner} must be {expected}; got {got!r}")


@dataclass
class ModelConfig:
    """Architecture and objective of an autoencoder-family model."""

    latent_dim: int = 20
    """Size of the latent code z."""
    architecture: str = "mlp"
    """'mlp' (any input) or 'conv' (images)."""
    hidden: tuple[int, ...] = (400,)
    """Widths of the dense hidden layers of the encoder (the decoder mirrors them)."""
    conv_channels: tuple[int, ...] = (32, 64)
    """Channels of the stride-2 convolutions when architecture='conv'."""
    likelihood: str = "bernoulli"
    """p(x|z): 'bernoulli' for data in [0, 1], 'gaussian' (learned scale) for any real data."""
    beta: float = 1.0
    """Weight of the KL term (beta-VAE, Higgins et al. 2017); 1 is the plain VAE."""
    k: int = 1
    """Importance samples in the training bound (IWAE, Burda et al. 2016); 1 is the ELBO."""
    stochastic_layers: tuple[int, ...] = ()
    """Sizes of stochastic layers below the top latent, next to x first: (100,) with latent_dim=50 is Burda et al.'s two-layer model."""
    inner_hidden: tuple[int, ...] = (100, 100)
    """Widths of the dense layers between two stochastic layers."""
    prior: str = "standard"
    """p(z): 'standard' N(0, I), 'mog' (a learned mixture of Gaussians) or 'vamp' (VampPrior, Tomczak & Welling 2018)."""
    prior_components: int = 500
    """Mixture components (pseudo-inputs for 'vamp') of a learned prior."""
    activation: str = "relu"
    """Hidden activation: relu, elu, tanh, gelu, leaky_relu."""
    dropout: float = 0.0
    """Dropout probability after each hidden layer."""
    batch_norm: bool = False
    """Batch normalisation after each hidden layer."""
    init: str = "default"
    """Weight initialisation: 'default' (PyTorch's), 'xavier', 'kaiming' or 'orthogonal'; biases start at 0."""
    latent_activation: str = "linear"
    """Autoencoders: activation of the code, 'linear', 'sigmoid' (for the sparsity penalty), 'relu' or 'tanh'."""
    corruption: str = "none"
    """Denoising: corrupt inputs while training, 'mask' (zero a fraction), 'gaussian' (add noise) or 'salt_pepper'."""
    corruption_level: float = 0.3
    """The fraction masked or flipped, or the Gaussian noise's standard deviation."""
    sparsity_weight: float = 0.0
    """Autoencoders: weight of sum_u KL(rho || mean activation of code unit u) over each batch (sparse AE)."""
    sparsity_target: float = 0.05
    """rho, the target mean activation of a code unit (the codes must lie in (0, 1): latent_activation='sigmoid')."""
    k_sparse: int = 0
    """Autoencoders: keep only the k largest code units of each example (Makhzani & Frey 2014); 0 is off."""
    contractive_weight: float = 0.0
    """Autoencoders: weight of ||d code / d x||_F^2, the contractive penalty (Rifai et al. 2011)."""
    embedding: str = "none"
    """Autoencoders: keep codes faithful to the data's geometry within each batch (Yu et al. 2013), 'laplacian' or 'mds'."""
    embedding_weight: float = 0.0
    """Weight of the embedding term."""
    neighbours: int = 0
    """Generalised autoencoder (Wang et al. 2014): reconstruct the heat-kernel weighted k nearest neighbours; 0 is off."""
    adversarial_weight: float = 1.0
    """Adversarial autoencoder: the weight of matching the codes to N(0, I) through the discriminator."""
    objects: int = 3
    """Multi-Entity VAE: the objects kept per image, the candidates of largest KL."""
    aggregation: str = "max"
    """Multi-Entity VAE: how decoded objects merge into one image, element-wise: 'max', 'sum' or 'logsumexp'."""
    context_convs: int = 0
    """Multi-Entity VAE: 3 x 3 stride-1 convolutions after the stride-2 ones, so a fine grid's candidates see a whole object."""
    object_patch: int = 0
    """Multi-Entity VAE: the side in pixels of each object's decoded patch; 0 is four cells of the grid."""
    rate_lambda: float = 0.01
    """Lossy autoencoders: distortion's weight against rate, loss = bits + lambda * 255^2 * squared error (CompressAI's convention); larger is sharper and bigger."""

    def validate(self, owner: str = "the model") -> ModelConfig:
        from .models.networks import ACTIVATIONS  # late import: models import config
        from .models.likelihoods import LIKELIHOODS
        from .models.priors import PRIORS

        _check(isinstance(self.latent_dim, int) and self.latent_dim >= 1, owner, "latent_dim",
               "an int >= 1", self.latent_dim)
        _check(self.architecture in ("mlp", "conv"), owner, "architecture", "'mlp' or 'conv'",
               self.architecture)
        _check(all(isinstance(h, int) and h >= 1 for h in self.hidden), owner, "hidden",
               "a list of ints >= 1", self.hidden)
        _check(len(self.conv_channels) >= 1 and all(isinstance(c, int) and c >= 1 for c in self.conv_channels),
               owner, "conv_channels", "a non-empty list of ints >= 1", self.conv_channels)
        _check(self.likelihood in LIKELIHOODS, owner, "likelihood", f"one of {sorted(LIKELIHOODS)}",
               self.likelihood)
        _check(_is_real(self.beta) and self.beta >= 0, owner, "beta", "a float in [0, inf)", self.beta)
        _check(isinstance(self.k, int) and self.k >= 1, owner, "k", "an int >= 1", self.k)
        _check(all(isinstance(h, int) and h >= 1 for h in self.stochastic_layers), owner, "stochastic_layers",
               "a list of ints >= 1", self.stochastic_layers)
        _check(all(isinstance(h, int) and h >= 1 for h in self.inner_hidden), owner, "inner_hidden",
               "a list of ints >= 1", self.inner_hidden)
        _check(self.prior in PRIORS, owner, "prior", f"one of {list(PRIORS)}", self.prior)
        _check(isinstance(self.prior_components, int) and self.prior_components >= 1, owner, "prior_components",
               "an int >= 1", self.prior_components)
        _check(self.activation in ACTIVATIONS, owner, "activation", f"one of {sorted(ACTIVATIONS)}",
               self.activation)
        _check(_is_real(self.dropout) and 0 <= self.dropout < 1, owner, "dropout", "a float in [0, 1)",
               self.dropout)
        for name, choices in (("init", INITS), ("latent_activation", LATENT_ACTIVATIONS),
                              ("corruption", CORRUPTIONS), ("embedding", EMBEDDINGS)):
            _check(getattr(self, name) in choices, owner, name, f"one of {list(choices)}", getattr(self, name))
        _check(_is_real(self.corruption_level) and self.corruption_level >= 0, owner, "corruption_level",
               "a float >= 0", self.corruption_level)
        for name in ("sparsity_weight", "contractive_weight", "embedding_weight"):
            _check(_is_real(getattr(self, name)) and getattr(self, name) >= 0, owner, name, "a float >= 0",
                   getattr(self, name))
        _check(_is_real(self.sparsity_target) and 0 < self.sparsity_target < 1, owner, "sparsity_target",
               "a float in (0, 1)", self.sparsity_target)
        _check(isinstance(self.k_sparse, int) and 0 <= self.k_sparse <= self.latent_dim, owner, "k_sparse",
               f"an int in [0, latent_dim={self.latent_dim}]", self.k_sparse)
        _check(isinstance(self.neighbours, int) and self.neighbours >= 0, owner, "neighbours", "an int >= 0",
               self.neighbours)
        _check(_is_real(self.adversarial_weight) and self.adversarial_weight >= 0, owner, "adversarial_weight",
               "a float >= 0", self.adversarial_weight)
        _check(isinstance(self.objects, int) and self.objects >= 1, owner, "objects", "an int >= 1", self.objects)
        _check(self.aggregation in ("max", "sum", "logsumexp"), owner, "aggregation",
               "one of ['max', 'sum', 'logsumexp']", self.aggregation)
        for name in ("context_convs", "object_patch"):
            _check(isinstance(getattr(self, name), int) and getattr(self, name) >= 0, owner, name, "an int >= 0",
                   getattr(self, name))
        _check(_is_real(self.rate_lambda) and self.rate_lambda > 0, owner, "rate_lambda", "a float > 0",
               self.rate_lambda)
        if self.sparsity_weight > 0 and self.latent_activation != "sigmoid":
            raise VaekitError(f"the sparsity penalty of {owner} compares mean code activations with a probability "
                              f"rho, so the codes must lie in (0, 1): set latent_activation='sigmoid'")
        if self.contractive_weight > 0 and self.batch_norm:
            raise VaekitError(f"the contractive penalty of {owner} differentiates each example's code by its own "
                              f"input, which batch_norm mixes across the batch: drop batch_norm")
        return self


@dataclass
class TrainConfig:
    """How a model is fitted."""

    epochs: int = 10
    """Passes over the training split."""
    batch_size: int = 128
    """Examples per gradient step."""
    optimizer: str = "adam"
    """'adam', 'adamw' or 'sgd' (with momentum)."""
    lr: float = 1e-3
    """Learning rate."""
    weight_decay: float = 0.0
    """L2 penalty (decoupled for adamw)."""
    momentum: float = 0.9
    """Momentum for sgd."""
    schedule: str = "constant"
    """Learning-rate schedule: 'constant', 'cosine' (to 0 over the run) or 'step' (x0.1 at 50% and 75%)."""
    clip_norm: float | None = None
    """Clip the global gradient norm to this value."""
    clip_value: float | None = None
    """Clip each gradient element to [-v, v]."""
    patience: int | None = None
    """Early stopping: stop after this many epochs without a better validation loss, then restore the best weights."""
    layerwise_epochs: int = 0
    """Stacked autoencoders: greedy layer-wise pretraining, this many epochs per layer, before training the whole network."""
    kl_warmup_epochs: int = 0
    """Raise the KL weight linearly from 0 to beta over this many epochs (Bowman et al. 2016; Sønderby et al. 2016)."""
    kl_cycles: int = 0
    """Cyclical KL annealing (Fu et al. 2019): this many cycles over the run, each raising the KL weight from 0 to beta over its first half, then holding it; 0 is off."""
    binarize: bool = False
    """Dynamic binarisation: train on x ~ Bernoulli(pixel intensity), drawn afresh for every minibatch."""
    seed: int = 0
    """Seeds weight initialisation, shuffling and sampling: equal seeds give equal runs."""
    device: str = "auto"
    """'auto' (a GPU when there is one), 'cpu', 'cuda' or 'cuda:N'."""
    precision: str = "fp32"
    """'fp32', 'bf16' (autocast, CPU or GPU) or 'fp16' (autocast with loss scaling, GPU only)."""

    def validate(self, owner: str = "the trainer") -> TrainConfig:
        _check(isinstance(self.epochs, int) and self.epochs >= 1, owner, "epochs", "an int >= 1", self.epochs)
        _check(isinstance(self.batch_size, int) and self.batch_size >= 1, owner, "batch_size", "an int >= 1",
               self.batch_size)
        _check(self.optimizer in ("adam", "adamw", "sgd"), owner, "optimizer", "'adam', 'adamw' or 'sgd'",
               self.optimizer)
        _check(_is_real(self.lr) and self.lr > 0, owner, "lr", "a float > 0", self.lr)
        _check(_is_real(self.weight_decay) and self.weight_decay >= 0, owner, "weight_decay", "a float >= 0",
               self.weight_decay)
        _check(self.schedule in ("constant", "cosine", "step"), owner, "schedule",
               "'constant', 'cosine' or 'step'", self.schedule)
        for name in ("clip_norm", "clip_value"):
            v = getattr(self, name)
            _check(v is None or (_is_real(v) and v > 0), owner, name, "None or a float > 0", v)
        _check(self.patience is None or (isinstance(self.patience, int) and self.patience >= 1), owner,
               "patience", "None or an int >= 1", self.patience)
        _check(isinstance(self.layerwise_epochs, int) and self.layerwise_epochs >= 0, owner, "layerwise_epochs",
               "an int >= 0", self.layerwise_epochs)
        _check(isinstance(self.kl_warmup_epochs, int) and self.kl_warmup_epochs >= 0, owner, "kl_warmup_epochs",
               "an int >= 0", self.kl_warmup_epochs)
        _check(isinstance(self.kl_cycles, int) and self.kl_cycles >= 0, owner, "kl_cycles", "an int >= 0",
               self.kl_cycles)
        if self.kl_cycles and self.kl_warmup_epochs:
            raise VaekitError(f"{owner} got both kl_warmup_epochs and kl_cycles: choose one KL schedule")
        _check(isinstance(self.seed, int), owner, "seed", "an int", self.seed)
        _check(self.precision in ("fp32", "bf16", "fp16"), owner, "precision", "'fp32', 'bf16' or 'fp16'",
               self.precision)
        return self


@dataclass
class DataConfig:
    """Where the data come from and how they are split; stored so later commands reload the same test split."""

    source: str = "digits"
    """A named set (digits, mnist, fashion-mnist) or a path (image folder, .npy, .npz)."""
    data_dir: str | None = None
    """Folder holding named sets (else $VAEKIT_DATA, else the per-user cache)."""
    image_size: tuple[int, int] | None = None
    """Resize folder images to (height, width)."""
    val_fraction: float = 0.1
    """Share of the training split held out for validation (0 for none)."""
    test_fraction: float = 0.2
    """Share held out for testing where a data set has no test split of its own."""
    limit: int | None = None
    """Use only the first N training and N test examples (quick experiments)."""
    memmap: bool = False
    """Read a .npy file from disk batch by batch instead of loading it: for data larger than memory."""

    def validate(self, owner: str = "the data") -> DataConfig:
        _check(0 <= self.val_fraction < 1, owner, "val_fraction", "a float in [0, 1)", self.val_fraction)
        _check(self.image_size is None or (isinstance(self.image_size, (tuple, list)) and len(self.image_size) == 2
                                            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                                    for v in self.image_size)),
               owner, "image_size", "None or two ints >= 1 (height, width)", self.image_size)
        _check(0 < self.test_fraction < 1, owner, "test_fraction", "a float in (0, 1)", self.test_fraction)
        _check(self.limit is None or (isinstance(self.limit, int) and self.limit >= 1), owner, "limit",
               "None or an int >= 1", self.limit)
        return self


@dataclass
class TextModelConfig:
    """Architecture and objective of a sentence model: the sentence VAE, or the same network as a language model."""

    latent_dim: int = 32
    """Size of the latent code z (the language model has none)."""
    embed_dim: int = 256
    """Size of the word embeddings."""
    hidden_dim: int = 256
    """Units of the encoder's and the decoder's recurrent layer."""
    cell: str = "lstm"
    """Recurrent cell: 'lstm' or 'gru'."""
    beta: float = 1.0
    """Weight of the KL term."""
    word_dropout: float = 0.0
    """Share of the decoder's input words replaced by <unk> while training, so it must lean on z (Bowman et al. 2016)."""
    free_bits: float = 0.0
    """Free bits (Kingma et al. 2016): a latent unit's mean KL over the batch below this many nats is not penalised."""
    dropout: float = 0.0
    """Dropout on the embeddings and on the decoder's outputs."""
    posterior_bn: float = 0.0
    """Batch-normalised posterior means (BN-VAE, Zhu et al. 2020): the fixed scale gamma of each unit's mean after
    batch normalisation, so that its expected KL stays at least gamma^2 / 2 nats; 0 turns it off."""

    def validate(self, owner: str = "the model") -> TextModelConfig:
        for name in ("latent_dim", "embed_dim", "hidden_dim"):
            v = getattr(self, name)
            _check(isinstance(v, int) and not isinstance(v, bool) and v >= 1, owner, name, "an int >= 1", v)
        _check(self.cell in ("lstm", "gru"), owner, "cell", "'lstm' or 'gru'", self.cell)
        _check(_is_real(self.beta) and self.beta >= 0, owner, "beta", "a float >= 0", self.beta)
        for name in ("word_dropout", "dropout"):
            v = getattr(self, name)
            _check(_is_real(v) and 0 <= v < 1, owner, name, "a float in [0, 1)", v)
        for name in ("free_bits", "posterior_bn"):
            v = getattr(self, name)
            _check(_is_real(v) and v >= 0, owner, name, "a float >= 0", v)
        return self


@dataclass
class TextDataConfig:
    """How sentences become token ids."""

    tokenizer: str = "word"
    """'word' (split at spaces; a vocabulary cut by count and size) or 'bpe' (byte-pair encoding trained on the training split)."""
    lower: bool = True
    """Lower-case the text before tokenising."""
    vocab_size: int = 10000
    """Most tokens in the vocabulary, the special ones included (<pad>, <s>, </s>, <unk>)."""
    min_count: int = 2
    """Word tokenizer: a word seen fewer times in the training split becomes <unk>."""
    max_length: int = 50
    """Most tokens of a sentence; longer ones are cut (with a warning that says how many)."""

    def validate(self, owner: str = "the text data") -> TextDataConfig:
        _check(self.tokenizer in ("word", "bpe"), owner, "tokenizer", "'word' or 'bpe'", self.tokenizer)
        _check(isinstance(self.vocab_size, int) and self.vocab_size >= 5, owner, "vocab_size", "an int >= 5",
               self.vocab_size)
        _check(isinstance(self.min_count, int) and self.min_count >= 1, owner, "min_count", "an int >= 1",
               self.min_count)
        _check(isinstance(self.max_length, int) and self.max_length >= 1, owner, "max_length", "an int >= 1",
               self.max_length)
        return self


INITS = ("default", "xavier", "kaiming", "orthogonal")
LATENT_ACTIVATIONS = ("linear", "sigmoid", "relu", "tanh")
CORRUPTIONS = ("none", "mask", "gaussian", "salt_pepper")
EMBEDDINGS = ("none", "laplacian", "mds")


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def from_dict(cls, values: dict[str, Any], where: str):
    """Build a config dataclass from JSON-like values, refusing unknown keys with the closest known one."""
    known = {f.name: f for f in fields(cls)}
    for key in values:
        if key not in known:
            raise VaekitError(
                f"unknown key '{key}' in {where}.{did_you_mean(key, known)} "
                f"Known keys: {', '.join(known)}."
            )
    kwargs = {}
    for key, value in values.items():
        if isinstance(value, list):  # JSON has no tuples
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def to_dict(cfg) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def field_docs(cls) -> dict[str, str]:
    """The one-line doc under each field (read from the source), used for CLI help."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    docs, body = {}, tree.body[0].body
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = nxt.value.value
    return docs


__all__ = ["ModelConfig", "TrainConfig", "DataConfig", "TextModelConfig", "TextDataConfig", "from_dict", "to_dict", "field_docs"]
