"""Training: the loop, checkpoints and resume."""
from ..data.batches import to_unit_float
from .trainer import HISTORY_FILE, STATE_FILE, WEIGHTS_FILE, Trainer, resolve_device

__all__ = ["HISTORY_FILE", "STATE_FILE", "WEIGHTS_FILE", "Trainer", "resolve_device", "to_unit_float"]
