"""Scenes of objects, generated: dSprites-like sprites with their six factors (sprites), Multi-dSprites-like
scenes with their segmentation (multi), and both as named data sets (named)."""
from .multi import Scenes, generate
from .named import SCENE_SETS, load_scene_split
from .sprites import factor_grid, render_dsprites

__all__ = ["Scenes", "generate", "SCENE_SETS", "load_scene_split", "factor_grid", "render_dsprites"]
