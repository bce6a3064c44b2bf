"""Objects in scenes: what a Multi-Entity VAE found, scored against the true segmentation (metrics)."""
from .metrics import count_accuracy, foreground_ari, object_segmentation

__all__ = ["count_accuracy", "foreground_ari", "object_segmentation"]
