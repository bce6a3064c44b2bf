"""scikit-learn-shaped estimators over the registry's modules: fit / transform / inverse_transform / ...

Constructors only store their arguments; fit validates them (one message shape) and learns the
attributes ending in '_'.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from .config import ModelConfig, TrainConfig
from .data import DiskRows, to_model_layout
from .data.images.files import refuse_sparse
from .errors import VaekitError, check_count
from .latent import interpolate_codes
from .models import get_spec, noise
from .io import replacing_folder
from .runs import (CONFIG_FILE, encode_means, fit_module, load_module, read_config, repeatable_kernels,
                   write_config)
from .train import WEIGHTS_FILE, to_unit_float
from .train import checkpoint as ckpt
_MODEL_FIELDS = [f for f in ModelConfig.__dataclass_fields__]
_TRAIN_FIELDS = [f for f in TrainConfig.__dataclass_fields__ if f != "seed"]


class LatentModel(TransformerMixin, BaseEstimator):
    """Shared behaviour of every autoencoder-family estimator; subclasses only declare parameters.

    `model` names the registry entry (a constructor parameter, so sklearn.base.clone and GridSearchCV keep
    the variant); the other parameters override that entry's defaults.
    """

    # -- configuration ------------------------------------------------------------------------
    def spec(self):
        """The registry entry this estimator trains, checked to be one this class wraps."""
        return entry_trained_by(self.model, type(self).__name__)

    def model_config(self) -> ModelConfig:
        p = self.get_params()
        values = {k: p[k] for k in _MODEL_FIELDS if k in p}
        for key in ("hidden", "conv_channels", "stochastic_layers", "inner_hidden"):
            if key in values:
                values[key] = tuple(values[key])
        return self.spec().config(**values).validate(type(self).__name__)

    def train_config(self) -> TrainConfig:
        p = self.get_params()
        values = {k: p[k] for k in _TRAIN_FIELDS if k in p}
        seed = 0 if p.get("random_state") is None else int(p["random_state"])
        return TrainConfig(**values, seed=seed).validate(type(self).__name__)

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X, y=None, *, X_val=None, run_dir=None, resume: bool = False):
        """Train on X (N, D), (N, H, W) or (N, C, H, W); uint8 is read as pixels in [0, 255]."""
        x = self._as_tensor(X, fitting=True)
        xv = None if X_val is None else self._as_tensor(X_val)
        self.module_, self.history_ = fit_module(
            self.spec().name, self.model_config(), self.train_config(), x, xv, run_dir=run_dir, resume=resume,
            verbose=getattr(self, "verbose", False), user_shape=self._user_shape)
        return self

    # -- latent-space verbs ---------------------------------------------------------------------
    def transform(self, X) -> np.ndarray:
        """Posterior means E[z|x], (N, *code_shape): deterministic. The code shape is (latent_dim,), or the
        module's own (the Multi-Entity VAE's: (objects, latent_dim + 2))."""
        return self._encode_mean(self._as_tensor(X)).cpu().numpy()

    @property
    def code_shape_(self) -> tuple[int, ...]:
        self._check_fitted()
        return tuple(getattr(self.module_, "code_shape", (self.module_.cfg.latent_dim,)))

    def inverse_transform(self, Z) -> np.ndarray:
        """Decoder means E[x|z] for codes Z (N, *code_shape), in the input's shape."""
        self._check_fitted()
        z = torch.as_tensor(np.asarray(Z, dtype=np.float32), device=self._device())
        if tuple(z.shape[1:]) != self.code_shape_:
            shown = ", ".join(map(str, self.code_shape_))
            raise VaekitError(f"codes must have shape (N, {shown}); got {tuple(z.shape)}")
        return self._decode_mean(z).cpu().numpy().reshape(len(z), *self._user_shape)

    def reconstruct(self, X) -> np.ndarray:
        """Decoder means at the posterior means: x -> E[z|x] -> E[x|z]."""
        return self.inverse_transform(self.transform(X))

    def sample(self, n: int = 1, random_state: int | None = None) -> np.ndarray:
        """n new examples: z from the prior, decoded to their means."""
        check_count("n (samples)", n)
        self._check_fitted()
        with noise.seeded(seed_of(random_state), self._device()):  # the draws are on the model's device
            z = self.module_.prior().sample((int(n),))
        return self.inverse_transform(z.cpu().numpy())

    def interpolate(self, x0, x1, steps: int = 10, method: str = "linear") -> np.ndarray:
        """Decoded points on the path between the codes of x0 and x1: 'linear' or 'slerp' (spherical)."""
        z = self.transform(np.stack([np.asarray(x0), np.asarray(x1)]))
        return self.inverse_transform(interpolate_codes(z[0], z[1], steps, method))

    @torch.no_grad()
    def score_samples(self, X, n_samples: int = 16) -> np.ndarray:
        """Per-example ELBO (VAE; the mean of n_samples one-sample estimates, closed-form KL where there is one)
        or log p(x|f(x)) (autoencoder), in nats: higher is more typical. Each example's noise is its own, so
        its score does not depend on the batch, order or subset it comes in."""
        x = self._as_tensor(X)
        module, dev = self.module_, self._device()
        module.eval()
        seed = seed_of(self.random_state)
        out = []
        for i in range(0, len(x), 1000):
            xb = to_unit_float(x[i:i + 1000].to(dev))
            with repeatable_kernels():
                if module.variational:
                    with noise.per_example(noise.example_seeds(xb, seed)):
                        out.append(-module.neg_elbo(xb, n_samples))
                else:
                    out.append(-module.loss(xb)["rec"])
        return torch.cat(out).cpu().numpy()

    def score(self, X, y=None) -> float:
        return float(np.mean(self.score_samples(X)))

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory) -> Path:
        """Write config.json and model.safetensors into directory (no pickle: safe to share)."""
        self._check_fitted()
        with replacing_folder(directory, start_from=(CONFIG_FILE,)) as folder:  # a crash leaves the old folder
            write_config(folder, self.spec().name, self.input_shape_, self._user_shape, self.module_.cfg,
                         self.train_config())
            ckpt.save_tensors(folder / WEIGHTS_FILE, self.module_.state_dict())
        return Path(directory)

    # -- helpers ------------------------------------------------------------------------------
    def _as_tensor(self, X, fitting: bool = False) -> torch.Tensor:
        if isinstance(X, DiskRows) and fitting:  # read batch by batch from disk while training
            self.input_shape_ = self._user_shape = tuple(X.shape[1:])
            self.n_features_in_ = math.prod(self.input_shape_)
            return X
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        name = type(self).__name__
        refuse_sparse(X)
        raw = np.asarray(X)
        if raw.ndim == 1:
            raise VaekitError(f"{name} expects a 2-D array (n_samples, n_features) or images; got a 1-D array "
                              f"of shape {raw.shape}. Reshape your data: X.reshape(-1, 1) for one feature, "
                              f"X.reshape(1, -1) for one example")
        x = to_model_layout(raw, "X")
        if fitting:
            self.input_shape_ = tuple(x.shape[1:])
            self._user_shape = tuple(raw.shape[1:])
            self.n_features_in_ = math.prod(self.input_shape_)
        else:
            self._check_fitted()
            if x.ndim == 2 and len(self.input_shape_) == 1 and x.shape[1] != self.input_shape_[0]:
                raise VaekitError(  # scikit-learn's own wording
                    f"X has {x.shape[1]} features, but {name} is expecting {self.input_shape_[0]} features as input."
                )
            if tuple(x.shape[1:]) != self.input_shape_:
                raise VaekitError(
                    f"X has examples of shape {tuple(x.shape[1:])}, but {name} was fitted on {self.input_shape_}; "
                    f"pass data shaped like the training data"
                )
        return torch.from_numpy(np.ascontiguousarray(x))

    def _encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return encode_means(self.module_, x)

    def traverse(self, x, dims=None, values=(-3, -2.25, -1.5, -0.75, 0, 0.75, 1.5, 2.25, 3)) -> np.ndarray:
        """A latent traversal of one example x: its code with one dimension at a time set to each of values,
        decoded, (len(dims), len(values), *shape). dims: dimensions of the flat code (default: all)."""
        z = self.transform(np.asarray(x)[None])[0].reshape(-1)
        dims = list(range(len(z))) if dims is None else [int(d) for d in dims]
        bad = [d for d in dims if not 0 <= d < len(z)]
        if bad:
            raise VaekitError(f"traversal dimensions {bad} are outside the code's {len(z)} dimensions")
        values = np.asarray(values, dtype=np.float32)
        codes = np.repeat(z[None, None], len(dims), 0).repeat(len(values), 1)  # (dims, steps, code)
        for i, d in enumerate(dims):
            codes[i, :, d] = values
        out = self.inverse_transform(codes.reshape(-1, *self.code_shape_))
        return out.reshape(len(dims), len(values), *out.shape[1:])

    @torch.no_grad()
    def _decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        self.module_.eval()
        with repeatable_kernels():
            return torch.cat([self.module_.generative(z[i:i + 1000]).mean for i in range(0, len(z), 1000)])

    def _device(self) -> torch.device:
        return next(self.module_.parameters()).device

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False  # every random draw takes random_state
        tags.transformer_tags.preserves_dtype = ["float32"]  # codes and reconstructions are float32
        return tags


class VAE(LatentModel):
    """Variational autoencoder (Kingma & Welling 2014); beta weights the KL (Higgins et al. 2017), k > 1
    trains on the importance-weighted bound (Burda et al. 2016). Parameters are documented in
    vaekit.config.ModelConfig and TrainConfig."""

    def __init__(self, latent_dim=20, *, model="vae", architecture="mlp", hidden=(400,), conv_channels=(32, 64),
                 likelihood="bernoulli", beta=1.0, k=1, stochastic_layers=(), inner_hidden=(100, 100),
                 prior="standard", prior_components=500, objects=3, aggregation="max", context_convs=0, object_patch=0,
                 activation="relu",
                 dropout=0.0, batch_norm=False, init="default", corruption="none", corruption_level=0.3,
                 epochs=10, batch_size=128, optimizer="adam", lr=1e-3, weight_decay=0.0, momentum=0.9,
                 schedule="constant", clip_norm=None, clip_value=None, patience=None, kl_warmup_epochs=0, kl_cycles=0,
                 binarize=False, device="auto", precision="fp32", random_state=None, verbose=False):
        for name, value in list(locals().items()):
            if name not in ("self", "__class__"):
                setattr(self, name, value)


class Autoencoder(LatentModel):
    """Deterministic autoencoder with the same interface; sample() draws from a Gaussian fitted to the
    training codes."""

    def __init__(self, latent_dim=20, *, model="ae", architecture="mlp", hidden=(400,), conv_channels=(32, 64),
                 likelihood="bernoulli", activation="relu", dropout=0.0, batch_norm=False, init="default",
                 latent_activation="linear", corruption="none", corruption_level=0.3, sparsity_weight=0.0,
                 sparsity_target=0.05, k_sparse=0, contractive_weight=0.0, embedding="none", embedding_weight=0.0,
                 neighbours=0, adversarial_weight=1.0, rate_lambda=0.01, epochs=10, batch_size=128, optimizer="adam", lr=1e-3,
                 weight_decay=0.0, momentum=0.9, schedule="constant", clip_norm=None, clip_value=None, patience=None,
                 layerwise_epochs=0,
                 binarize=False, device="auto", precision="fp32", random_state=None, verbose=False):
        for name, value in list(locals().items()):
            if name not in ("self", "__class__"):
                setattr(self, name, value)


def entry_trained_by(model: str, estimator: str):
    """The registry entry named model, refused unless the estimator class named estimator trains it."""
    spec = get_spec(model)
    if spec.estimator != estimator:
        raise VaekitError(f"model '{spec.name}' is trained by vaekit.{spec.estimator}, not {estimator}: "
                          f"use vaekit.{spec.estimator}(model='{spec.name}') or vaekit.estimator_for('{spec.name}')")
    return spec


def seed_of(random_state) -> int:
    """The seed a random_state stands for: None means 0, so unseeded runs are reproducible too."""
    return 0 if random_state is None else int(random_state)


def estimator_class(spec) -> type:
    """The estimator class a registry entry names (vaekit.VAE, vaekit.TabularVAE, ...)."""
    import vaekit

    return getattr(vaekit, spec.estimator)


def estimator_for(model_name: str, **params) -> LatentModel:
    """The estimator of a registry model, with that model's defaults (e.g. beta=4 for beta-vae)."""
    spec = get_spec(model_name)
    return estimator_class(spec)(model=spec.name, **spec.values(**params))


def load(directory, device: str = "auto") -> LatentModel:
    """Load a saved model or run folder. Reads JSON and safetensors only: no code runs.

    device: 'auto' puts it where fit() would train it (a GPU when there is one), 'cpu', 'cuda' or 'cuda:N'.
    A model of another modality comes back as its own estimator (a table's as vaekit.TabularVAE).
    """
    try:
        return _load(directory, device)
    except VaekitError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError, RecursionError,
            RuntimeError) as e:  # RuntimeError: torch refusing a shape the config asked for
        # the folder's JSON parses but does not hold what vaekit writes (a key missing, a value of another type)
        raise VaekitError(f"{directory} is damaged: its files do not hold what vaekit writes ({type(e).__name__}: "
                          f"{e}); replace the folder with a good copy, or train the run again") from None


def _load(directory, device: str) -> LatentModel:
    name = read_config(directory).get("model")
    if not isinstance(name, str):
        raise VaekitError(f"{directory}/config.json names no model (its 'model' is {name!r}); replace the folder "
                          f"with a good copy, or train the run again")
    cls = estimator_class(get_spec(name))
    if hasattr(cls, "load_folder"):
        return cls.load_folder(directory, device)
    doc, module, history = load_module(directory, device)
    spec = get_spec(doc["model"])
    saved = {**doc["model_config"], **doc.get("train_config", {})}
    params = {k: v for k, v in saved.items() if k in cls().get_params() and k != "model"}
    if "seed" in saved:
        params["random_state"] = saved["seed"]
    est = estimator_for(spec.name, **params)
    est.input_shape_ = tuple(doc["input_shape"])
    est._user_shape = tuple(doc.get("user_shape", doc["input_shape"]))
    est.n_features_in_ = math.prod(est.input_shape_)
    est.module_, est.history_ = module, history
    return est
