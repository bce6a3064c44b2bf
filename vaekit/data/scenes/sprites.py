"""dSprites-like sprites, rendered from ../shared/data/dsprites/SPEC.md (the original files cannot be fetched
here, so results say "dSprites-like"): a white square, ellipse or heart on a 64 x 64 black image, at one of
6 scales, 40 orientations and 32 x 32 positions. The factor grid is every combination once, in the spec's
row-major order (posY fastest), generated on demand, never stored.

A pixel is on when its centre falls inside the shape, mapped back by the sprite's rotation and scale, so the
images are binary with no noise, as the originals are.
"""
from __future__ import annotations

import math

import numpy as np

SIZE = 64
FACTORS = ("color", "shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (1, 3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * math.pi, 40)  # 0 and 2 pi both present, as in the spec
POSITIONS = np.linspace(0.0, 1.0, 32)
HALF_SIZE = 0.12  # a sprite's half-size at scale 1, as a fraction of the image
MARGIN = 0.2  # positions 0 and 1 put the sprite's centre this far from the edges, so no sprite is cut off
GRID_SIZE = math.prod(FACTOR_SIZES)  # 737,280
EXTENT = 1.3  # the farthest any unit shape reaches from its centre (a square's corner: 0.9 * sqrt 2)


def factor_grid(indices: np.ndarray | None = None) -> np.ndarray:
    """The factor indices (N, 6) of grid rows `indices` (default: all 737,280, in the spec's order)."""
    rows = np.arange(GRID_SIZE) if indices is None else np.asarray(indices, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= GRID_SIZE):
        raise ValueError(f"dSprites grid rows lie in [0, {GRID_SIZE})")
    return np.stack(np.unravel_index(rows, FACTOR_SIZES), axis=1)


def factor_values(factors: np.ndarray) -> dict[str, np.ndarray]:
    """The values of factor indices (N, 6): shape index, scale, orientation (radians), position x and y."""
    f = np.asarray(factors)
    return {"shape": f[:, 1], "scale": SCALES[f[:, 2]], "orientation": ORIENTATIONS[f[:, 3]],
            "x": POSITIONS[f[:, 4]], "y": POSITIONS[f[:, 5]]}


def inside(shape: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether sprite coordinates (u right, v up; the sprite's half-size is 1) fall inside each shape."""
    square = (np.abs(u) <= 0.9) & (np.abs(v) <= 0.9)
    ellipse = (u / 1.1) ** 2 + (v / 0.55) ** 2 <= 1
    x, y = u / 1.05, v / 1.05 + 0.15  # the heart curve (x^2 + y^2 - 1)^3 <= x^2 y^3, centred
    heart = (x * x + y * y - 1) ** 3 <= x * x * y ** 3
    return np.where(shape == 0, square, np.where(shape == 1, ellipse, heart))


def render(shape, scale, orientation, x, y, size: int = SIZE) -> np.ndarray:
    """Masks (N, size, size) bool of sprites given per sprite: shape index, scale, orientation in radians,
    position x (left to right) and y (top to bottom) in [0, 1]. Each sprite is evaluated only in the square
    window its largest extent fits in."""
    shape, scale, orientation, x, y = (np.asarray(a, dtype=np.float64).reshape(-1) for a in
                                       (shape, scale, orientation, x, y))
    n = len(shape)
    cx = (MARGIN + (1 - 2 * MARGIN) * x) * size  # centres in pixels
    cy = (MARGIN + (1 - 2 * MARGIN) * y) * size
    w = min(size, int(math.ceil(2 * EXTENT * HALF_SIZE * size * (scale.max() if n else 1))) + 2)
    c0 = np.clip(np.floor(cx - w / 2), 0, size - w).astype(np.int64)
    r0 = np.clip(np.floor(cy - w / 2), 0, size - w).astype(np.int64)
    cols, rows = c0[:, None] + np.arange(w), r0[:, None] + np.arange(w)  # (n, w)
    dx = ((cols + 0.5 - cx[:, None]) / size)[:, None, :]
    dy = ((cy[:, None] - rows - 0.5) / size)[:, :, None]  # up is positive
    c, s = np.cos(orientation)[:, None, None], np.sin(orientation)[:, None, None]
    r = (HALF_SIZE * scale)[:, None, None]
    u, v = (c * dx + s * dy) / r, (-s * dx + c * dy) / r  # rotated back by the sprite's orientation
    out = np.zeros((n, size, size), bool)
    out[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]] = inside(shape[:, None, None], u, v)
    return out


def render_dsprites(factors: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """uint8 images (N, 64, 64), 0 or 255, of factor indices (N, 6)."""
    factors = np.asarray(factors)
    out = np.empty((len(factors), SIZE, SIZE), np.uint8)
    for i in range(0, len(factors), chunk):
        v = factor_values(factors[i:i + chunk])
        out[i:i + chunk] = render(v["shape"], v["scale"], v["orientation"], v["x"], v["y"]) * np.uint8(255)
    return out
