"""The autoencoder family: modules that return distributions and per-example losses."""
from .autoencoder import AutoencoderModule, PointMass, SplitBrainModule
from .registry import MODELS, ModelSpec, build_module, get_spec
from .vae import VAEModule

__all__ = ["AutoencoderModule", "PointMass", "SplitBrainModule", "MODELS", "ModelSpec", "build_module", "get_spec", "VAEModule"]
