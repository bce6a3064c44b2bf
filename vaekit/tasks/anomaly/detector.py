"""Anomaly detection with the autoencoder family, in PyOD's shape.

Train on (mostly) normal data; score what the model finds unlikely. `AnomalyDetector.fit(X)`, then
`decision_function(X)` (higher = more anomalous), `predict(X)` (1 = anomaly, by `threshold_`),
`decision_scores_` and `labels_` on the training data. Scores:
- 'nll': -log p(x), importance-sampled with k samples (VAEs);
- 'elbo': the negative ELBO, averaged over samples (VAEs);
- 'reconstruction': -log p(x | z = E[z|x]), the reconstruction error at the posterior mean (any model).
Images (uint8, or arrays of 3 or more axes) use a Bernoulli likelihood on pixels; tables (2-D arrays, a
vaekit.data.tables.reader.Table or a pandas DataFrame) a unit-variance Gaussian on robustly scaled features
(data.tables.reader.TableSchema), and per-column contributions name the columns behind a score. The variance
stays fixed because a learned per-feature scale lets the columns that are nearly constant in the training data
dominate every score.

On tables the default detector is a bagged ensemble (n_members=6): each VAE trains on its own random
max_samples=512 rows. Small row samples hold few anomalies in absolute number, so a member has less room
to learn them as normal (the reason Isolation Forest grows its trees on 256 rows), and averaging members
cuts the variance of any one fit. An ensemble's score is the mean of its members' scores, each divided by
the inter-quartile range of that member's scores on the whole training set, so that no member's units
dominate; a single member keeps nats.

Trimmed refits (trim=0.2 on tables): each member is fitted, scores its own rows, and is fitted again from
scratch without the highest-scoring fifth. Unsupervised training data holds anomalies, and a model fitted to
them learns them as normal; the first fit ranks many of them highest. Images keep one fit (trim=0): the
one-class protocol's training data is one clean class.

On grey pixels a Bernoulli likelihood's -log p(x|z) can not go below the pixels' own binary entropy
sum_d H(x_d), which is large for images with much grey and small for nearly binary ones: raw scores call
simple images normal whatever they show (the complexity bias of likelihood-based detectors, Serra et al.
2020). With entropy_correction (the default) that floor is subtracted: the reconstruction score becomes
sum_d KL(Bernoulli(x_d) || Bernoulli(p_d)).

The measurements behind each of these choices, and the variants tried and rejected, are in
docs/anomaly-design.md.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ... import estimators
from ...errors import VaekitError, VaekitWarning, check_count
from ...models import noise
from ...runs import repeatable_kernels
from ...io import atomic_write_json, read_json, replacing_folder
from ...manifest import check_manifest, write_manifest
from ...data.tables.reader import Table, TableSchema
from ...train import checkpoint as ckpt
from ...train import to_unit_float
from ...train.progress import shared_bar
from . import SCORES

DETECTOR_FILE = "detector.json"
TRAINING_FILE = "training.safetensors"  # the training rows' scores and each member's trimmed rows
COLLAPSE = "posterior collapse"  # how diagnostics.collapse_warning's messages begin


class AnomalyDetector(BaseEstimator):
    """An autoencoder-family model turned anomaly detector (parameters: see the module docstring).

    model: a registry name; latent_dim / hidden / epochs: None picks sizes from the data (tables: a code of
    a quarter of the features, 2 to 16 units; images: 16 units and 60 epochs, which fit one class's ~6,000
    images better than 30); params:
    further model or training options (for every member). n_members / max_samples: the ensemble's size and
    each member's rows (None: 6 members of 512 rows on tables, one model of all rows on images). trim: the
    share of each member's rows left out of its refit (None: 0.2 on tables, 0 on images; 0: no refit);
    trimmed_ holds, per member, the indices of the training rows left out; column_errors_ (tables), each
    column's mean reconstruction error on the training rows, the unit of feature_contributions.
    """

    def __init__(self, model="vae", score="nll", contamination=0.1, k=64, entropy_correction=True, latent_dim=None,
                 hidden=None, epochs=None, batch_size=128, lr=1e-3, params=None, n_members=None, max_samples=None,
                 trim=None, random_state=None, verbose=False):
        self.model, self.score, self.contamination, self.k = model, score, contamination, k
        self.entropy_correction, self.n_members, self.max_samples = entropy_correction, n_members, max_samples
        self.trim = trim
        self.latent_dim, self.hidden, self.epochs, self.batch_size, self.lr = latent_dim, hidden, epochs, batch_size, lr
        self.params, self.random_state, self.verbose = params, random_state, verbose

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, X, y=None):
        if self.score not in SCORES:
            raise VaekitError(f"the 'score' parameter of AnomalyDetector must be one of {list(SCORES)}; got {self.score!r}")
        if not 0 < self.contamination < 0.5:
            raise VaekitError(f"the 'contamination' parameter of AnomalyDetector must be a float in (0, 0.5); "
                              f"got {self.contamination!r}")
        if self.trim is not None and not 0 <= self.trim < 0.5:
            raise VaekitError(f"the 'trim' parameter of AnomalyDetector must be a float in [0, 0.5) (0: no refit); "
                              f"got {self.trim!r}")
        for name in ("epochs", "latent_dim", "n_members", "max_samples"):
            if getattr(self, name) is not None:  # None sizes it from the data; 0 must not mean the same
                check_count(f"the '{name}' parameter of AnomalyDetector", getattr(self, name))
        x = self._features(X, fitting=True)
        table = self.kind_ == "table"
        n_members = self.n_members or (6 if table else 1)
        max_samples = self.max_samples or (512 if table else len(x))
        trim = self.trim if self.trim is not None else (0.2 if table else 0.0)
        seed = estimators.seed_of(self.random_state)
        rng = np.random.default_rng(seed)
        sampled = max_samples < len(x)
        self.estimators_, self.trimmed_ = [], []
        n_fits = n_members * (2 if trim else 1)
        with warnings.catch_warnings(record=True) as caught, \
                shared_bar(n_fits, "anomaly fit", enabled=bool(self.verbose)):
            warnings.simplefilter("always")
            for m in range(n_members):
                rows = np.sort(rng.choice(len(x), size=max_samples, replace=False)) if sampled else np.arange(len(x))
                xm = x[rows] if sampled else x  # no copy of a whole image set
                est = self._fit_member(xm, seed + m)
                worst = np.zeros(len(rows), bool)
                if trim:  # refit from scratch without the rows this fit finds most anomalous
                    s = self._member_scores(est, _model_input(est, xm))
                    worst = s > np.quantile(s, 1 - trim)
                    est = self._fit_member(xm[~worst], seed + m)
                self.trimmed_.append(rows[worst])
                self.estimators_.append(est)
        _warn_once_per_kind([w for w in caught if not str(w.message).startswith(COLLAPSE)], n_fits)
        self._warn_collapse()
        x_in = self._input(X)
        raw = [self._member_scores(est, x_in) for est in self.estimators_]
        # an ensemble's members in units of their score's spread on the whole training set; one model keeps nats
        self.member_scales_ = [1.0] if n_members == 1 else \
            [float(np.subtract(*np.percentile(r, [75, 25]))) or 1.0 for r in raw]
        self.decision_scores_ = self._combine(raw)
        if table:  # each column's typical error, the unit of its relative contributions
            errors = self._feature_errors(x_in)
            self.column_errors_ = [float(errors[:, s].sum(1).mean()) for _, s in self.schema_.feature_groups()]
        return self.set_threshold(contamination=self.contamination)

    def _warn_collapse(self) -> None:
        """The members' collapse warnings, said once in the detector's terms, with what to change.

        A code smaller than the one given costs the scores nothing (the detector's code size is an upper
        bound), so only unused codes are reported. A member whose code is unused still scores: its decoder's
        mean is then the typical row, and a score is the row's distance from it. Under a unit-variance
        likelihood a latent direction pays for its KL only where the features vary by more than that unit
        noise, which one-hot columns (variance <= 1/4) rarely do; a lower KL weight (beta) lets the codes
        model how the columns relate (docs/anomaly-design.md)."""
        active = [e.history_[-1].get("active_units") for e in self.estimators_ if e.history_]
        unused = sum(a == 0 for a in active)
        if not unused:
            return
        beta = (self.params or {}).get("beta", 1.0)
        warnings.warn(f"{COLLAPSE} in {unused} of the {len(active)} models: their codes are unused (0 of "
                      f"{self.estimators_[0].module_.cfg.latent_dim} latent units active), so each of their "
                      f"scores is the row's distance from a typical row. To let the codes model how the columns "
                      f"relate, lower the KL weight (now {beta:g}): --beta {beta / 10:g} (params={{'beta': "
                      f"{beta / 10:g}}})", VaekitWarning, stacklevel=3)

    def _fit_member(self, x: np.ndarray, seed: int):
        est = estimators.estimator_for(self.model, **self._model_params(x, seed))
        if self.score != "reconstruction" and not est.spec().variational:
            raise VaekitError(f"score='{self.score}' needs a VAE; '{self.model}' is deterministic: use "
                              f"score='reconstruction', or a VAE model")
        return est.fit(x)

    def _model_params(self, x: np.ndarray, seed: int) -> dict:
        # clip_norm: a few extreme rows must not blow a step up
        params = {"random_state": seed, "batch_size": self.batch_size, "lr": self.lr, "verbose": self.verbose,
                  "clip_norm": 10.0}
        if self.kind_ == "table":
            d = x.shape[1]
            params.update(likelihood="mse", latent_dim=self.latent_dim or int(np.clip(d // 4, 2, 16)),
                          hidden=self.hidden or (max(32, 2 * d),) * 2,
                          epochs=self.epochs or int(np.clip(6000 * self.batch_size // max(len(x), 1), 20, 400)))
        else:
            params.update(latent_dim=self.latent_dim or 16, hidden=self.hidden or (400,), epochs=self.epochs or 60)
        return {**params, **(self.params or {})}

    def _features(self, X, fitting: bool = False) -> np.ndarray:
        """Model input: pixels as they are for images; schema-scaled features for tables (a vaekit Table, a
        pandas DataFrame, or a 2-D float array)."""
        if _is_frame(X):
            X = Table.from_frame(X)
        if fitting:
            raw = X if isinstance(X, Table) else np.asarray(X)
            self.kind_ = "table" if isinstance(X, Table) or (raw.ndim == 2 and raw.dtype != np.uint8) else "image"
            if self.kind_ == "table":
                self.schema_ = TableSchema.fit(X if isinstance(X, Table) else Table.from_array(X))
        if self.kind_ == "image":
            if isinstance(X, Table):
                raise VaekitError("this detector was fitted on images; score images with it, not a table")
            return np.asarray(X)
        return self.schema_.transform(X if isinstance(X, Table) else Table.from_array(X))

    def _input(self, X) -> torch.Tensor:
        """The model's input for X: unit-scaled float32 on the CPU."""
        return _model_input(self.estimators_[0], self._features(X))

    # -- scoring --------------------------------------------------------------------------------
    @torch.no_grad()
    def decision_function(self, X) -> np.ndarray:
        """Anomaly scores, higher = more anomalous: deterministic for a fixed random_state, and the same for
        an example whatever else is scored with it."""
        self._check_fitted()
        x = self._input(X)
        return self._combine([self._member_scores(est, x) for est in self.estimators_])

    def _combine(self, per_member: list[np.ndarray]) -> np.ndarray:
        """The mean of the members' arrays, each in units of its member's scale (x / 1.0 / 1 is x exactly)."""
        return sum(a / scale for a, scale in zip(per_member, self.member_scales_)) / len(per_member)

    @torch.no_grad()
    def _member_scores(self, est, x: torch.Tensor) -> np.ndarray:
        module = est.module_
        module.eval()
        dev = est._device()
        seed = est.random_state
        # all k samples of a batch in one block, so each example's noise is drawn in one piece: its own
        batch = max(1, min(256, 2 ** 24 // (self.k * math.prod(x.shape[1:]))))
        out = []
        for i in range(0, len(x), batch):
            xb = x[i:i + batch].to(dev)
            with noise.per_example(noise.example_seeds(xb, seed)), repeatable_kernels():  # never depends on its batch
                if self.score == "nll":
                    s = -module.iw_log_likelihood(xb, self.k, max_elements=self.k * xb[0].numel() * len(xb))
                elif self.score == "elbo":
                    s = module.neg_elbo(xb, self.k)
                else:
                    s = self._reconstruction_terms(module, xb).flatten(1).sum(1)
            if self.score != "reconstruction" and self._bernoulli_floor(module):  # reconstruction terms subtract their own
                s = s - bernoulli_entropy(xb).flatten(1).sum(1)
            out.append(s.cpu())
        return torch.cat(out).double().numpy()

    def _bernoulli_floor(self, module) -> bool:
        return self.entropy_correction and module.cfg.likelihood == "bernoulli"

    def _reconstruction_terms(self, module, x: torch.Tensor) -> torch.Tensor:
        """-log p(x_d | z = E[z|x]) for every input dimension d under one member: (B, *shape)."""
        _, nll = _reconstruction_nll(module, x)
        return nll - bernoulli_entropy(x) if self._bernoulli_floor(module) else nll

    def predict(self, X) -> np.ndarray:
        """1 for anomalies (score above threshold_), 0 for inliers."""
        return (self.decision_function(X) > self.threshold_).astype(int)

    def set_threshold(self, X_normal=None, *, fpr: float | None = None, contamination: float | None = None):
        """Re-place threshold_: at a false-positive rate on normal validation data X_normal, or at a
        contamination rate of the training data."""
        self._check_fitted()
        if fpr is not None:
            if X_normal is None or not 0 < fpr < 1:
                raise VaekitError("set_threshold(X_normal, fpr=...) needs normal validation data and 0 < fpr < 1")
            self.threshold_ = float(np.quantile(self.decision_function(X_normal), 1 - fpr))
        elif contamination is not None:
            if getattr(self, "decision_scores_", None) is None:
                raise VaekitError("this detector was saved without its training scores (by an earlier vaekit), so a "
                                  "contamination rate has nothing to be a share of: fit it again, or pass "
                                  "set_threshold(X_normal, fpr=...)")
            self.threshold_ = float(np.quantile(self.decision_scores_, 1 - contamination))
        if getattr(self, "decision_scores_", None) is not None:
            self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    @torch.no_grad()
    def feature_contributions(self, X, relative: bool = True) -> tuple[list[str], np.ndarray]:
        """(names, (N, n) array): how much each table column (a one-hot block counted as its column) or pixel
        adds to an example's reconstruction error, -log p(x_d | z = E[z|x]) above its floor (the error of a
        perfect reconstruction: the likelihood's constant for Gaussians, the pixel's own entropy for Bernoulli).

        relative (tables): each column's error as a multiple of its mean error on the training rows (1 = as
        usual), so that columns of different widths and scales compare, and the column that makes a row
        unusual comes first. A wide one-hot block adds more raw error to every row than a number does; with
        relative=False the raw errors (nats; an ensemble's in its score's units) are returned, which add up
        to the reconstruction score less the floor.
        """
        self._check_fitted()
        terms = self._feature_errors(self._input(X))
        if self.kind_ == "image":
            return [f"pixel{j}" for j in range(terms.shape[1])], terms
        groups = self.schema_.feature_groups()
        per_column = np.stack([terms[:, s].sum(1) for _, s in groups], axis=1)
        if relative:
            if getattr(self, "column_errors_", None) is None:
                raise VaekitError("this detector was saved without its columns' training errors (by an earlier "
                                  "vaekit): fit it again, or pass relative=False for raw errors")
            per_column = per_column / np.maximum(np.asarray(self.column_errors_), 1e-12)
        return [g for g, _ in groups], per_column

    @torch.no_grad()
    def _feature_errors(self, x: torch.Tensor) -> np.ndarray:
        """(N, features) reconstruction errors above their floor, combined over the members."""
        per_member = []
        for est in self.estimators_:
            module = est.module_.eval()
            dev = est._device()
            per_member.append(torch.cat([_excess_error(module, x[i:i + 512].to(dev)).flatten(1).cpu()
                                         for i in range(0, len(x), 512)]).double().numpy())
        return self._combine(per_member)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, directory) -> Path:
        self._check_fitted()
        with replacing_folder(directory) as folder:  # a crash leaves the old folder
            for m, est in enumerate(self.estimators_):
                est.save(folder / f"member-{m}")
            atomic_write_json(folder / DETECTOR_FILE, {
                "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()},
                "kind": self.kind_, "threshold": self.threshold_, "members": len(self.estimators_),
                "member_scales": self.member_scales_, "column_errors": getattr(self, "column_errors_", None),
                "schema": self.schema_.to_dict() if self.kind_ == "table" else None})
            # the training scores, so that a loaded detector can place its threshold again (set_threshold)
            ckpt.save_tensors(folder / TRAINING_FILE, {
                "decision_scores": torch.from_numpy(np.asarray(self.decision_scores_, dtype=np.float64)),
                **{f"trimmed.{m}": torch.from_numpy(np.asarray(t, dtype=np.int64)) for m, t in enumerate(self.trimmed_)}})
            artefacts = {"detector": DETECTOR_FILE, "training_scores": TRAINING_FILE,
                         "members": [f"member-{m}" for m in range(len(self.estimators_))]}
            if self.kind_ == "table":
                artefacts["schema"] = f"{DETECTOR_FILE} (schema)"
            write_manifest(folder, "anomaly-detector", "table" if self.kind_ == "table" else "images and arrays",
                           artefacts)
        return Path(directory)

    def _check_fitted(self) -> None:
        if not hasattr(self, "estimators_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this AnomalyDetector is not fitted yet; call fit(X) first")


def _is_frame(X) -> bool:
    """A pandas DataFrame (told by its shape, so that pandas is imported only by those who pass one)."""
    return type(X).__name__ == "DataFrame" and hasattr(X, "dtypes") and hasattr(X, "columns")


def _reconstruction_nll(module, x: torch.Tensor):
    """(p(x | z = E[z|x]) per dimension, -log p(x_d | z) per dimension (B, *shape)) under one member."""
    dist = module.generative(module.inference(x).mean).base_dist
    return dist, -dist.log_prob(x)


def _excess_error(module, x: torch.Tensor) -> torch.Tensor:
    """-log p(x_d | z = E[z|x]) less its floor, per input dimension: (B, *shape). The floor is the error of
    the best reconstruction: for a Gaussian its value at the mean (so a unit-variance Gaussian leaves half the
    squared error), for a Bernoulli the pixel's own entropy (so the KL divergence from x_d is left)."""
    dist, nll = _reconstruction_nll(module, x)
    if module.cfg.likelihood == "bernoulli":
        return nll - bernoulli_entropy(x)
    return nll + dist.log_prob(dist.mean)


def _model_input(est, features: np.ndarray) -> torch.Tensor:
    """Features (from _features) as a member's input: unit-scaled float32 on the CPU."""
    return to_unit_float(est._as_tensor(features)).float()


def _warn_once_per_kind(caught, n_fits: int) -> None:
    """Members warn alike (e.g. about collapsed latent units): the first of each kind, with how many said it."""
    by_kind = {}
    for w in caught:  # the same warning about different numbers is one kind
        by_kind.setdefault((w.category, "".join(c for c in str(w.message) if not c.isdigit())), []).append(w)
    for (category, _), ws in by_kind.items():
        suffix = f" (from {len(ws)} of the ensemble's {n_fits} fits)" if n_fits > 1 else ""
        warnings.warn(f"{ws[0].message}{suffix}", category, stacklevel=3)


def load_detector(directory, device: str | None = None) -> AnomalyDetector:
    """A saved detector: JSON and safetensors only, no code runs.

    device: where its models go (default: the device its params asked for at fit time, else 'auto').
    """
    directory = Path(directory)
    check_manifest(directory, "anomaly-detector")
    if not (directory / DETECTOR_FILE).is_file():
        raise VaekitError(f"{directory} is not a saved anomaly detector: it has no {DETECTOR_FILE}")
    doc = read_json(directory / DETECTOR_FILE, "replace it with a good copy, or fit the detector again")
    det = AnomalyDetector(**{k: tuple(v) if k == "hidden" and v is not None else v for k, v in doc["params"].items()})
    device = device or (det.params or {}).get("device", "auto")
    det.estimators_ = [estimators.load(directory / f"member-{m}", device) for m in range(doc["members"])]
    det.member_scales_ = doc["member_scales"]
    det.column_errors_ = doc.get("column_errors")
    det.kind_, det.threshold_ = doc["kind"], doc["threshold"]
    if doc["schema"] is not None:
        det.schema_ = TableSchema.from_dict(doc["schema"])
    det.decision_scores_, det.labels_ = None, None
    if (directory / TRAINING_FILE).is_file():  # absent from detectors saved before it was written
        tensors, _ = ckpt.load_tensors(directory / TRAINING_FILE)
        det.decision_scores_ = tensors["decision_scores"].numpy()
        det.trimmed_ = [tensors[f"trimmed.{m}"].numpy() for m in range(doc["members"])]
        det.labels_ = (det.decision_scores_ > det.threshold_).astype(int)
    return det


def bernoulli_entropy(x: torch.Tensor) -> torch.Tensor:
    """H(Bernoulli(x)) per element: the floor of the cross-entropy -x log p - (1 - x) log(1 - p)."""
    p = x.clamp(1e-7, 1 - 1e-7)
    return -(p * p.log() + (1 - p) * (-p).log1p())


__all__ = ["AnomalyDetector", "load_detector"]
