"""Multi-dSprites-like scenes (after Burgess et al. 2019 / Greff et al. 2019; ../shared/data/dsprites/SPEC.md):
several dSprites-like sprites, each later one occluding the earlier, on a uniform background, with the
ground-truth segmentation of every pixel. Three variants:

- binarized: 2-3 white sprites on black;
- colored-on-grayscale: 2-5 sprites of random HSV colours on a random grey;
- colored-on-colored: 1-4 sprites of random RGB colours on a random RGB background.

A scene is drawn from its own seed (the set's seed and its index), so any scene can be generated again
alone. Per object: shape, scale (the six dSprites scales), orientation and position (continuous), colour and
visibility (the share of its own pixels that no later sprite covers).
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from .sprites import SCALES, SIZE, render

VARIANTS = {  # name -> (fewest objects, most objects, channels)
    "binarized": (2, 3, 1),
    "colored-on-grayscale": (2, 5, 3),
    "colored-on-colored": (1, 4, 3),
}


@dataclass
class Scenes:
    """images (N, C, 64, 64) uint8; segmentation (N, 64, 64) int8: 0 background, k for the k-th object (the
    topmost sprite at that pixel); counts (N,) objects drawn; visible (N,) objects with at least one visible
    pixel; objects: per scene a list of dicts (shape, scale, orientation, x, y, colour, visibility)."""

    images: np.ndarray
    segmentation: np.ndarray
    counts: np.ndarray
    visible: np.ndarray
    objects: list[list[dict]]

    @property
    def max_objects(self) -> int:
        return int(self.counts.max()) if len(self.counts) else 0

    def masks(self, slots: int | None = None) -> np.ndarray:
        """One-hot masks (N, slots, 64, 64) bool: background first, then one per object (empty when the scene
        has fewer objects, or when it is hidden); every pixel in exactly one."""
        slots = slots or self.max_objects + 1
        return self.segmentation[:, None] == np.arange(slots)[None, :, None, None]


def generate(variant: str, n: int, seed: int = 0, first: int = 0, chunk: int = 1000) -> Scenes:
    """Scenes first .. first + n - 1 of a variant's sequence for seed."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown Multi-dSprites variant {variant!r}; choose from {sorted(VARIANTS)}")
    lo, hi, channels = VARIANTS[variant]
    tag = list(VARIANTS).index(variant)
    images = np.empty((n, channels, SIZE, SIZE), np.uint8)
    segmentation = np.zeros((n, SIZE, SIZE), np.int8)
    counts, visible, objects = np.zeros(n, np.int64), np.zeros(n, np.int64), []
    for start in range(0, n, chunk):
        drawn = [_draw(variant, lo, hi, np.random.default_rng([seed, tag, first + i]))
                 for i in range(start, min(n, start + chunk))]
        sprites = render(*(np.concatenate([d[key] for d in drawn]) for key in ("shape", "scale", "orientation",
                                                                              "x", "y")))
        at = 0
        for i, d in enumerate(drawn, start):
            k = len(d["shape"])
            own = sprites[at:at + k]
            at += k
            canvas = np.broadcast_to(d["background"][:, None, None], (channels, SIZE, SIZE)).copy()
            seg = segmentation[i]
            for j in range(k):  # later sprites cover earlier ones
                canvas[:, own[j]] = d["colours"][j][:, None]
                seg[own[j]] = j + 1
            images[i] = np.round(canvas * 255)
            area = own.reshape(k, -1).sum(1)
            shown = np.bincount(seg.reshape(-1), minlength=k + 1)[1:]
            counts[i], visible[i] = k, int((shown > 0).sum())
            objects.append([{"shape": int(d["shape"][j]), "scale": float(d["scale"][j]),
                             "orientation": float(d["orientation"][j]), "x": float(d["x"][j]),
                             "y": float(d["y"][j]), "colour": d["colours"][j].tolist(),
                             "visibility": float(shown[j] / area[j]) if area[j] else 0.0} for j in range(k)])
    return Scenes(images, segmentation, counts, visible, objects)


def _draw(variant: str, lo: int, hi: int, rng) -> dict:
    """One scene's objects: count, shapes, scales, orientations, positions and colours."""
    k = int(rng.integers(lo, hi + 1))
    out = {"shape": rng.integers(0, 3, k), "scale": SCALES[rng.integers(0, len(SCALES), k)],
           "orientation": rng.uniform(0, 2 * np.pi, k), "x": rng.uniform(0, 1, k), "y": rng.uniform(0, 1, k)}
    out["background"], out["colours"] = _colours(variant, k, rng)
    return out


def _colours(variant: str, k: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(background (C,), sprite colours (k, C)) in [0, 1]."""
    if variant == "binarized":
        return np.zeros(1), np.ones((k, 1))
    if variant == "colored-on-grayscale":
        hsv = np.stack([rng.uniform(0, 1, k), rng.uniform(0.5, 1, k), rng.uniform(0.5, 1, k)], 1)
        return np.full(3, rng.uniform(0, 1)), np.array([colorsys.hsv_to_rgb(*c) for c in hsv])
    return rng.uniform(0, 1, 3), rng.uniform(0, 1, (k, 3))
