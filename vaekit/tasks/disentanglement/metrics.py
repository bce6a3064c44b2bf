"""Disentanglement metrics from ground-truth factors, on dSprites-like images rendered on demand.

- MIG (Chen et al., "Isolating Sources of Disentanglement in VAEs", 2018): each latent's posterior mean is
  binned (20 bins), its mutual information with each factor estimated (scikit-learn's mutual_info_score);
  per factor, the gap between the two latents most informative about it, over the factor's entropy,
  averaged over the factors that vary.
- FactorVAE metric (Kim & Mnih, "Disentangling by Factorising", 2018): hold one factor fixed, draw a batch of
  images that share it, and take the latent (scaled by its spread over the data; latents that barely move
  pruned) whose variance is smallest: a vote for that factor. A majority-vote classifier from latent to
  factor is fitted on training votes; the metric is its accuracy on other votes.
"""
from __future__ import annotations

import numpy as np

from ...data.scenes import sprites

VARYING = [1, 2, 3, 4, 5]  # shape, scale, orientation, posX, posY (colour has one value)


def _codes(model, factors: np.ndarray) -> np.ndarray:
    z = model.transform(sprites.render_dsprites(factors)[:, None])
    return z.reshape(len(z), -1)


def mig(model, n: int = 10_000, bins: int = 20, seed: int = 0) -> dict:
    """{'mig', 'per_factor'} from n grid images drawn with the seed."""
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(seed)
    factors = sprites.factor_grid(rng.choice(sprites.GRID_SIZE, n, replace=False))
    z = _codes(model, factors)
    binned = [np.digitize(col, np.histogram_bin_edges(col, bins)[1:-1]) for col in z.T]
    gaps = {}
    for k in VARYING:
        v = factors[:, k]
        mi = np.sort([mutual_info_score(v, b) for b in binned])[::-1]
        entropy = mutual_info_score(v, v)
        gaps[sprites.FACTORS[k]] = float((mi[0] - (mi[1] if len(mi) > 1 else 0.0)) / entropy)
    return {"mig": float(np.mean(list(gaps.values()))), "per_factor": gaps}


def factor_vae_metric(model, votes: int = 800, batch: int = 64, seed: int = 0, prune: float = 0.05) -> dict:
    """{'accuracy', 'active_latents', 'votes'}: the majority-vote classifier's accuracy on `votes` held-out
    votes after `votes` training ones, each from `batch` images sharing one factor's value."""
    rng = np.random.default_rng(seed)
    spread = _codes(model, sprites.factor_grid(rng.choice(sprites.GRID_SIZE, 10_000, replace=False))).std(0)
    active = spread > prune
    if not active.any():
        return {"accuracy": float("nan"), "active_latents": 0, "votes": 0}

    def vote_set(n):
        k = rng.choice(VARYING, n)
        rows = rng.choice(sprites.GRID_SIZE, (n, batch))
        factors = sprites.factor_grid(rows.reshape(-1)).reshape(n, batch, 6)
        fixed = factors[np.arange(n), 0, k]  # each batch takes its first image's value of the held factor
        factors[np.arange(n)[:, None], np.arange(batch)[None, :], k[:, None]] = fixed[:, None]
        z = _codes(model, factors.reshape(-1, 6)).reshape(n, batch, -1)[:, :, active] / spread[active]
        return z.var(1).argmin(1), k

    train_dim, train_k = vote_set(votes)
    test_dim, test_k = vote_set(votes)
    table = np.zeros((int(active.sum()), 6), np.int64)
    np.add.at(table, (train_dim, train_k), 1)
    predicted = table.argmax(1)
    return {"accuracy": float(np.mean(predicted[test_dim] == test_k)), "active_latents": int(active.sum()),
            "votes": votes}


def factors_of_run(doc: dict) -> bool:
    """Whether a run was trained on a data set with known factors (the metrics apply)."""
    return doc.get("data", {}).get("source") == "dsprites"
