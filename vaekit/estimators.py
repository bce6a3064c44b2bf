"""scikit-learn-shaped estimators over the registry's modules: fit / transform / inverse_transform / ...

Constructors only store their arguments; fit validates them (one message shape) and learns the
attributes ending in '_'.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from .config import ModelConfig, TrainConfig, from_dict, to_dict
from .data import to_model_layout
from .diagnostics import collapse_warning, posterior_summary
from .errors import VaekitError
from .io import atomic_write_json, read_json
from .models import AutoencoderModule, VAEModule, build_module, get_spec
from .train import Trainer, WEIGHTS_FILE, resolve_device, to_unit_float
from .train import checkpoint as ckpt
from .train.distributed import Distributed

CONFIG_FILE = "config.json"
FORMAT_VERSION = 1
_MODEL_FIELDS = [f for f in ModelConfig.__dataclass_fields__]
_TRAIN_FIELDS = [f for f in TrainConfig.__dataclass_fields__ if f != "seed"]


class LatentModel(TransformerMixin, BaseEstimator):
    """Shared behaviour of every autoencoder-family estimator; subclasses only declare parameters."""

    _model_name = "vae"

    # -- configuration ------------------------------------------------------------------------
    def model_config(self) -> ModelConfig:
        p = self.get_params()
        values = {k: p[k] for k in _MODEL_FIELDS if k in p}
        for key in ("hidden", "conv_channels", "stochastic_layers", "inner_hidden"):
            if key in values:
                values[key] = tuple(values[key])
        return get_spec(self._model_name).config(**values).validate(type(self).__name__)

    def train_config(self) -> TrainConfig:
        p = self.get_params()
        values = {k: p[k] for k in _TRAIN_FIELDS if k in p}
        seed = 0 if p.get("random_state") is None else int(p["random_state"])
        return TrainConfig(**values, seed=seed).validate(type(self).__name__)

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X, y=None, *, X_val=None, run_dir=None, resume: bool = False):
        """Train on X (N, D), (N, H, W) or (N, C, H, W); uint8 is read as pixels in [0, 255]."""
        x = self._as_tensor(X, fitting=True)
        tcfg = self.train_config()
        mcfg = self.model_config()
        if mcfg.likelihood == "bernoulli":
            _require_unit_interval(x, type(self).__name__)
        torch.manual_seed(tcfg.seed)
        self.module_ = build_module(self._model_name, mcfg, self.input_shape_)
        if hasattr(self.module_, "init_from_data"):
            self.module_.init_from_data(to_unit_float(x), torch.Generator().manual_seed(tcfg.seed))
        is_main = Distributed.from_env().is_main  # under torchrun only rank 0 writes files
        if run_dir is not None and is_main:
            self._write_config(Path(run_dir), mcfg, tcfg)
        monitor = posterior_summary if isinstance(self.module_, VAEModule) else None
        trainer = Trainer(self.module_, tcfg, run_dir=run_dir, verbose=getattr(self, "verbose", False),
                          monitor=monitor)
        xv = None if X_val is None else self._as_tensor(X_val)
        self.history_ = trainer.fit(x, xv, resume=resume)
        self._after_fit(x)
        last = self.history_[-1] if self.history_ else {}
        if "active_units" in last and (msg := collapse_warning(last["active_units"], mcfg.latent_dim)):
            warnings.warn(msg, stacklevel=2)
        if run_dir is not None and is_main:
            ckpt.save_tensors(Path(run_dir) / WEIGHTS_FILE, self.module_.state_dict(),
                              {"epoch": trainer.state.epoch})
        return self

    def _after_fit(self, x: torch.Tensor) -> None:
        if hasattr(self.module_, "fit_prior"):
            self.module_.fit_prior(self._encode_mean(x))

    # -- latent-space verbs ---------------------------------------------------------------------
    def transform(self, X) -> np.ndarray:
        """Posterior means E[z|x], (N, latent_dim): deterministic."""
        return self._encode_mean(self._as_tensor(X)).cpu().numpy()

    def inverse_transform(self, Z) -> np.ndarray:
        """Decoder means E[x|z] for codes Z (N, latent_dim), in the input's shape."""
        self._check_fitted()
        z = torch.as_tensor(np.asarray(Z, dtype=np.float32), device=self._device())
        if z.ndim != 2 or z.shape[1] != self.module_.cfg.latent_dim:
            raise VaekitError(f"codes must have shape (N, {self.module_.cfg.latent_dim}); got {tuple(z.shape)}")
        return self._decode_mean(z).cpu().numpy().reshape(len(z), *self._user_shape)

    def reconstruct(self, X) -> np.ndarray:
        """Decoder means at the posterior means: x -> E[z|x] -> E[x|z]."""
        return self.inverse_transform(self.transform(X))

    def sample(self, n: int = 1, random_state: int | None = None) -> np.ndarray:
        """n new examples: z from the prior, decoded to their means."""
        self._check_fitted()
        gen = torch.Generator().manual_seed(0 if random_state is None else int(random_state))
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(gen.get_state())
            z = self.module_.prior().sample((int(n),))
        return self.inverse_transform(z.cpu().numpy())

    def interpolate(self, x0, x1, steps: int = 10, method: str = "linear") -> np.ndarray:
        """Decoded points on the path between the codes of x0 and x1: 'linear' or 'slerp' (spherical)."""
        z = self.transform(np.stack([np.asarray(x0), np.asarray(x1)]))
        return self.inverse_transform(interpolate_codes(z[0], z[1], steps, method))

    @torch.no_grad()
    def score_samples(self, X) -> np.ndarray:
        """Per-example ELBO (VAE) or log p(x|f(x)) (autoencoder), in nats: higher is more typical."""
        x = self._as_tensor(X)
        self.module_.eval()
        out = []
        for i in range(0, len(x), 1000):
            losses = self.module_.loss(to_unit_float(x[i:i + 1000]))
            elbo = -(losses["rec"] + losses["kl"]) if "kl" in losses else -losses["rec"]
            out.append(elbo)
        return torch.cat(out).cpu().numpy()

    def score(self, X, y=None) -> float:
        return float(np.mean(self.score_samples(X)))

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory) -> Path:
        """Write config.json and model.safetensors into directory (no pickle: safe to share)."""
        self._check_fitted()
        directory = Path(directory)
        self._write_config(directory, self.module_.cfg, self.train_config())
        ckpt.save_tensors(directory / WEIGHTS_FILE, self.module_.state_dict())
        return directory

    def _write_config(self, directory: Path, mcfg: ModelConfig, tcfg: TrainConfig, extra=None) -> None:
        existing = directory / CONFIG_FILE
        doc = read_json(existing) if existing.is_file() else {}
        doc.update({"format": FORMAT_VERSION, "model": self._model_name, "input_shape": list(self.input_shape_),
                    "user_shape": list(self._user_shape), "model_config": to_dict(mcfg),
                    "train_config": to_dict(tcfg), "estimator_params": _jsonable(self.get_params())})
        atomic_write_json(existing, doc)

    # -- helpers ------------------------------------------------------------------------------
    def _as_tensor(self, X, fitting: bool = False) -> torch.Tensor:
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        name = type(self).__name__
        raw = np.asarray(X)
        if raw.ndim == 1:
            raise VaekitError(f"{name} expects a 2-D array (n_samples, n_features) or images; got a 1-D array "
                              f"of shape {raw.shape}. Reshape with X.reshape(-1, 1) or X.reshape(1, -1)")
        x = to_model_layout(raw, "X")
        if fitting:
            self.input_shape_ = tuple(x.shape[1:])
            self._user_shape = tuple(raw.shape[1:])
            self.n_features_in_ = math.prod(self.input_shape_)
        else:
            self._check_fitted()
            if tuple(x.shape[1:]) != self.input_shape_:
                raise VaekitError(
                    f"X has examples of shape {tuple(x.shape[1:])}, but {name} was fitted on {self.input_shape_}; "
                    f"pass data shaped like the training data"
                )
        return torch.from_numpy(np.ascontiguousarray(x))

    @torch.no_grad()
    def _encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        self.module_.eval()
        dev = self._device()
        return torch.cat([self.module_.inference(to_unit_float(x[i:i + 1000].to(dev))).mean
                          for i in range(0, len(x), 1000)])

    @torch.no_grad()
    def _decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        self.module_.eval()
        return torch.cat([self.module_.generative(z[i:i + 1000]).mean for i in range(0, len(z), 1000)])

    def _device(self) -> torch.device:
        return next(self.module_.parameters()).device

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def interpolate_codes(z0: np.ndarray, z1: np.ndarray, steps: int, method: str = "linear") -> np.ndarray:
    """(steps, D) codes from z0 to z1; 'slerp' follows the great circle (White 2016), suited to a Gaussian prior."""
    if steps < 2:
        raise VaekitError(f"steps must be >= 2 to include both ends; got {steps}")
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if method == "linear":
        return (1 - t) * z0 + t * z1
    if method != "slerp":
        raise VaekitError(f"unknown interpolation '{method}'; use 'linear' or 'slerp'")
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1) + 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:  # parallel codes: the arc is a line
        return (1 - t) * z0 + t * z1
    return (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)


def _require_unit_interval(x: torch.Tensor, name: str) -> None:
    if x.dtype == torch.uint8:
        return
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise VaekitError(
            f"{name} with likelihood='bernoulli' needs data in [0, 1]; got values in [{lo:.3g}, {hi:.3g}]. "
            f"Scale the data to [0, 1], or use likelihood='gaussian'"
        )


def _jsonable(params: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


class VAE(LatentModel):
    """Variational autoencoder (Kingma & Welling 2014); beta weights the KL (Higgins et al. 2017), k > 1
    trains on the importance-weighted bound (Burda et al. 2016). Parameters are documented in
    vaekit.config.ModelConfig and TrainConfig."""

    _model_name = "vae"

    def __init__(self, latent_dim=20, *, architecture="mlp", hidden=(400,), conv_channels=(32, 64),
                 likelihood="bernoulli", beta=1.0, k=1, stochastic_layers=(), inner_hidden=(100, 100),
                 prior="standard", prior_components=500, activation="relu", dropout=0.0, batch_norm=False,
                 epochs=10, batch_size=128, optimizer="adam", lr=1e-3, weight_decay=0.0, momentum=0.9,
                 schedule="constant", clip_norm=None, clip_value=None, patience=None, kl_warmup_epochs=0,
                 binarize=False, device="auto", precision="fp32", random_state=None, verbose=False):
        for name, value in list(locals().items()):
            if name not in ("self", "__class__"):
                setattr(self, name, value)


class Autoencoder(LatentModel):
    """Deterministic autoencoder with the same interface; sample() draws from a Gaussian fitted to the
    training codes."""

    _model_name = "ae"

    def __init__(self, latent_dim=20, *, architecture="mlp", hidden=(400,), conv_channels=(32, 64),
                 likelihood="bernoulli", activation="relu", dropout=0.0, batch_norm=False,
                 epochs=10, batch_size=128, optimizer="adam", lr=1e-3, weight_decay=0.0, momentum=0.9,
                 schedule="constant", clip_norm=None, clip_value=None, patience=None, binarize=False,
                 device="auto", precision="fp32", random_state=None, verbose=False):
        for name, value in list(locals().items()):
            if name not in ("self", "__class__"):
                setattr(self, name, value)


ESTIMATOR_OF_MODULE = {VAEModule: VAE, AutoencoderModule: Autoencoder}  # the registry names the module


def estimator_for(model_name: str, **params) -> LatentModel:
    """The estimator of a registry model, with that model's defaults (e.g. beta=4 for beta-vae)."""
    spec = get_spec(model_name)
    est = ESTIMATOR_OF_MODULE[spec.module](**{**spec.defaults, **params})
    est._model_name = spec.name
    return est


def load(directory, device: str = "cpu") -> LatentModel:
    """Load a saved model or run folder. Reads JSON and safetensors only: no code runs."""
    directory = Path(directory)
    cfg_path = directory / CONFIG_FILE
    if not cfg_path.is_file():
        raise VaekitError(f"{directory} is not a vaekit model folder: it has no {CONFIG_FILE}")
    doc = read_json(cfg_path)
    if not (directory / WEIGHTS_FILE).is_file():
        raise VaekitError(f"{directory} has no {WEIGHTS_FILE} yet: the run saved no epoch; train it (or --resume)")
    name = doc.get("model")
    spec = get_spec(name)
    mcfg = from_dict(ModelConfig, doc["model_config"], f"{cfg_path} (model_config)")
    est = estimator_for(spec.name, **{k: v for k, v in doc.get("estimator_params", {}).items()
                                      if k in ESTIMATOR_OF_MODULE[spec.module]().get_params()})
    est.input_shape_ = tuple(doc["input_shape"])
    est._user_shape = tuple(doc.get("user_shape", doc["input_shape"]))
    est.n_features_in_ = math.prod(est.input_shape_)
    est.module_ = build_module(spec.name, mcfg, est.input_shape_).to(resolve_device(device))
    tensors, _ = ckpt.load_tensors(directory / WEIGHTS_FILE)
    ckpt.load_module_weights(est.module_, tensors, str(directory / WEIGHTS_FILE))
    est.module_.eval()
    hist = directory / "history.json"
    est.history_ = read_json(hist) if hist.is_file() else []
    return est
