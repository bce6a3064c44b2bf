"""The scene data sets by name (`--data dsprites`, `--data multi-dsprites-binarized`, ...): generated
deterministically from a fixed seed whenever they are asked for, nothing downloaded or stored.

- dsprites: a seeded sample of the dSprites-like factor grid, 60,000 training and 10,000 test images (no
  image in both), labelled by shape; the factors of every image come with it (for the disentanglement
  metrics);
- multi-dsprites-<variant>: 20,000 training and 2,000 test scenes of a Multi-dSprites-like variant, labelled by
  how many objects are visible; the segmentation masks come with them (for the ARI).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import multi, sprites

SEED = 0
DSPRITES_SIZES = (60_000, 10_000)
MULTI_SIZES = (20_000, 2_000)
MULTI_TEST_FIRST = 10_000_000  # the test scenes' place in each variant's sequence, far from the training ones
SCENE_SETS = ("dsprites", *(f"multi-dsprites-{v}" for v in multi.VARIANTS))


@dataclass
class SceneSplit:
    """images (N, C, 64, 64) uint8 and labels (N,); factors (N, 6) of dSprites-like images, or the scenes
    (segmentation masks, objects) of Multi-dSprites-like ones."""

    images: np.ndarray
    labels: np.ndarray
    factors: np.ndarray | None = None
    scenes: multi.Scenes | None = None


def classes(name: str) -> list[str]:
    if name == "dsprites":
        return list(sprites.SHAPES)
    lo, hi, _ = multi.VARIANTS[name.removeprefix("multi-dsprites-")]
    return [f"{k} objects" for k in range(hi + 1)]


def load_scene_split(name: str, split: str, limit: int | None = None) -> SceneSplit:
    """The 'train' or 'test' split of a scene set (its first `limit` examples)."""
    if name == "dsprites":
        n_train, n_test = DSPRITES_SIZES
        order = np.random.default_rng(SEED).permutation(sprites.GRID_SIZE)[:n_train + n_test]
        rows = order[:n_train] if split == "train" else order[n_train:]
        factors = sprites.factor_grid(rows[:limit])  # in the permutation's order: any prefix mixes the factors
        return SceneSplit(sprites.render_dsprites(factors)[:, None], factors[:, 1].astype(np.int64), factors)
    variant = name.removeprefix("multi-dsprites-")
    n = MULTI_SIZES[0 if split == "train" else 1]
    n = min(n, limit) if limit else n
    scenes = multi.generate(variant, n, SEED, 0 if split == "train" else MULTI_TEST_FIRST)
    return SceneSplit(scenes.images, scenes.visible, scenes=scenes)
