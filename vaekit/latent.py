"""Paths through a latent space."""
from __future__ import annotations

import numpy as np

from .errors import VaekitError


def interpolate_codes(z0: np.ndarray, z1: np.ndarray, steps: int, method: str = "linear") -> np.ndarray:
    """(steps, *z0.shape) codes from z0 to z1; 'slerp' follows the great circle (White 2016), suited to a
    Gaussian prior, through the codes as flat vectors (codes of any shape, such as (objects, D))."""
    if steps < 2:
        raise VaekitError(f"steps must be >= 2 to include both ends; got {steps}")
    shape = np.shape(z0)
    z0, z1 = np.ravel(z0), np.ravel(z1)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if method == "linear":
        return ((1 - t) * z0 + t * z1).reshape(steps, *shape)
    if method != "slerp":
        raise VaekitError(f"unknown interpolation '{method}'; use 'linear' or 'slerp'")
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1) + 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:  # parallel codes: the arc is a line
        return ((1 - t) * z0 + t * z1).reshape(steps, *shape)
    return ((np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)).reshape(steps, *shape)
