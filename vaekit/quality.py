"""Sample quality without downloaded weights: distances in the feature space of a classifier that
vaekit trains on the same data set.

- FD-classifier: the Fréchet distance between Gaussians fitted to the features of two sets
  (the formula of FID, Heusel et al. 2017, but not Inception features, so not comparable with FID).
- precision / recall: Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing
  Generative Models", NeurIPS 2019: the share of generated points inside the k-NN balls of the
  real set, and the share of real points inside the balls of the generated set.

The feature net is an MLP (512-256, ReLU, dropout) trained with labels on the training split; its
256-d penultimate layer is the feature space. It is cached by a hash of the training data.
"""
from __future__ import annotations

import hashlib
import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import VaekitError
from .io import atomic_write_json, read_json
from .train import checkpoint as ckpt
from .train import to_unit_float

FEATURE_WIDTHS = (512, 256)


class FeatureNet(nn.Module):
    def __init__(self, n_in: int, n_classes: int):
        super().__init__()
        a, b = FEATURE_WIDTHS
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(n_in, a), nn.ReLU(), nn.Dropout(0.2),
                                      nn.Linear(a, b), nn.ReLU())
        self.classify = nn.Sequential(nn.Dropout(0.2), nn.Linear(b, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


def _data_key(x: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str((x.shape, x.dtype.str)).encode())
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()[:16]


def feature_net(x_train: np.ndarray, y_train: np.ndarray, cache_dir: str | Path | None, epochs: int = 8,
                seed: int = 0, verbose: bool = False) -> tuple[FeatureNet, dict]:
    """The feature classifier for this training set: loaded from cache_dir or trained (and cached there)."""
    if y_train is None:
        raise VaekitError("sample-quality metrics need labels to train their feature classifier; "
                          "this data set has none (skip them with --no-quality)")
    classes = int(y_train.max()) + 1
    key = _data_key(x_train, y_train)
    path = Path(cache_dir) / f"featurenet-{key}" if cache_dir is not None else None
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the caller's random stream stays as it was
        torch.manual_seed(seed)
        net = FeatureNet(math.prod(x_train.shape[1:]), classes)
        if path is not None and (path / "model.safetensors").is_file():
            tensors, _ = ckpt.load_tensors(path / "model.safetensors")
            ckpt.load_module_weights(net, tensors, str(path))
            return net.eval(), read_json(path / "info.json")
        x, y = torch.from_numpy(np.ascontiguousarray(x_train)), torch.from_numpy(y_train.astype(np.int64))
        n_val = max(1, len(x) // 10)
        order = torch.randperm(len(x), generator=gen)
        val, tr = order[:n_val], order[n_val:]
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(epochs):
            net.train()
            perm = tr[torch.randperm(len(tr), generator=gen)]
            for i in range(0, len(perm), 128):
                idx = perm[i:i + 128]
                loss = F.cross_entropy(net(to_unit_float(x[idx])), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            acc = float((net(to_unit_float(x[val])).argmax(1) == y[val]).float().mean())
    info = {"kind": "FeatureNet", "widths": list(FEATURE_WIDTHS), "epochs": epochs, "val_accuracy": acc,
            "n_train": len(tr), "data_key": key}
    if path is not None:
        ckpt.save_tensors(path / "model.safetensors", net.state_dict())
        atomic_write_json(path / "info.json", info)
    return net, info


@torch.no_grad()
def features(net: FeatureNet, x, batch_size: int = 2000) -> np.ndarray:
    """(N, 256) features of x (uint8 pixels or floats in [0, 1])."""
    x = torch.as_tensor(np.ascontiguousarray(x))
    return torch.cat([net.features(to_unit_float(x[i:i + batch_size]).float())
                      for i in range(0, len(x), batch_size)]).double().numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussians fitted to feature sets."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # a collapsed generator has a singular covariance: handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s_a @ s_b)
        if not np.isfinite(covmean).all():  # regularise both, as FID implementations do
            eps = 1e-6 * np.eye(len(s_a))
            covmean = linalg.sqrtm((s_a + eps) @ (s_b + eps))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean.real))


def _kth_nn_radius(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    return torch.cat([torch.cdist(x[i:i + chunk], x).kthvalue(k + 1, dim=1).values  # +1: itself at 0
                      for i in range(0, len(x), chunk)])


def _inside_any_ball(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 2048) -> float:
    inside = [(torch.cdist(points[i:i + chunk], centres) <= radii).any(1) for i in range(0, len(points), chunk)]
    return float(torch.cat(inside).double().mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of fake against real features (Kynkäänniemi et al. 2019, k nearest neighbours)."""
    r, f = torch.from_numpy(real).float(), torch.from_numpy(fake).float()
    precision = _inside_any_ball(f, r, _kth_nn_radius(r, k))
    recall = _inside_any_ball(r, f, _kth_nn_radius(f, k))
    return precision, recall


def sample_quality(net: FeatureNet, real, fake) -> dict:
    fr, ff = features(net, real), features(net, fake)
    precision, recall = precision_recall(fr, ff)
    return {"fd_classifier": frechet_distance(fr, ff), "precision": precision, "recall": recall}
