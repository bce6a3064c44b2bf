"""Compression with trained models: real, verified bitstreams in .vkz files (container), lossless by bits-back
ANS over a VAE (bitsback), behind one Codec (codec)."""
from .codec import Codec

__all__ = ["Codec"]
