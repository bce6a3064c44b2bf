"""Training: the loop, checkpoints and resume."""
from .trainer import HISTORY_FILE, STATE_FILE, WEIGHTS_FILE, Trainer, resolve_device, to_unit_float

__all__ = ["HISTORY_FILE", "STATE_FILE", "WEIGHTS_FILE", "Trainer", "resolve_device", "to_unit_float"]
