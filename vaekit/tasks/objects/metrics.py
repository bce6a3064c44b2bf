"""How well a model's objects match a scene's: the foreground adjusted Rand index (ARI) between predicted and
true object masks, as object-centric work scores Multi-dSprites (scikit-learn's adjusted_rand_score over
the pixels that belong to some true object), and how often the count of objects is right."""
from __future__ import annotations

import numpy as np
import torch

from ...train import to_unit_float


def foreground_ari(true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per scene (N,): the ARI of predicted labels against true ones (both (N, H, W) ints, 0 = background in
    `true`) over the true foreground pixels; NaN for a scene with no foreground."""
    from sklearn.metrics import adjusted_rand_score

    out = np.full(len(true), np.nan)
    for i, (t, p) in enumerate(zip(true, predicted)):
        fg = t > 0
        if fg.any():
            out[i] = adjusted_rand_score(t[fg], p[fg])
    return out


@torch.no_grad()
def object_segmentation(module, x, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N, H, W): 1 + the object whose decoded image is largest at each pixel, each object's KL (N, K))
    of a Multi-Entity VAE module on images x (N, C, H, W), from the posterior means."""
    module.eval()
    dev = next(module.parameters()).device
    labels, kls = [], []
    for i in range(0, len(x), batch_size):
        xb = to_unit_float(torch.as_tensor(np.asarray(x[i:i + batch_size])).to(dev))
        mu, log_var, cells = module.objects(xb)
        objects = module.object_params(mu, cells)  # (B, K, P, H, W)
        labels.append((objects.amax(2).argmax(1) + 1).cpu().numpy())
        kls.append(module.kl_map(mu, log_var).cpu().numpy())
    return np.concatenate(labels), np.concatenate(kls)


def count_accuracy(kl: np.ndarray, true_counts: np.ndarray, threshold: float) -> float:
    """The share of scenes whose objects with KL above threshold (nats) number as many as the true count."""
    return float(np.mean((kl > threshold).sum(1) == np.asarray(true_counts)))
