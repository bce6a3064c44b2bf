"""Codec: a trained model turned into a compressor of real bytes, `Codec(model).compress(x)` and
`decompress(data)`.

Lossless coding of images by bits-back ANS (bitsback.BitsBackCoder) with a VAE of the registry: binary images
with a Bernoulli model trained on binarised data, 8-bit ones with `lossless-vae` (a discretised Gaussian).
Lossy coding of 8-bit images by their quantised codes (lossy.LatentCoder) with a `lossy-ae`.
Examples are cut into blocks (independent chains, `block` examples each) inside one .vkz container
(container.py), whose header carries the model's weight hash, so a file only decodes with the model that
wrote it.
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import VaekitError
from . import container
from .bitsback import BitsBackCoder
from .lossy import LatentCoder


class Codec:
    """Compression of images with a fitted vaekit model: lossless for binary ones (values 0/1, or 0/255) with a
    Bernoulli VAE and for 8-bit ones (uint8) with `lossless-vae`; lossy for 8-bit ones with `lossy-ae` (the
    decoded images are its reconstructions)."""

    def __init__(self, model, block: int = 10000, **settings):
        if not hasattr(model, "module_") or not hasattr(model, "input_shape_"):
            raise VaekitError("Codec needs a fitted image model: vaekit.load(RUN) of a run trained with "
                              "'vaekit train --data mnist --binarize', or VAE(...).fit(X)")
        if not isinstance(block, int) or block < 1:
            raise VaekitError(f"block must be an int >= 1 (examples per independent chain); got {block!r}")
        self.model, self.block = model, block
        self.shape = tuple(getattr(model, "_user_shape", model.input_shape_))
        lossy = hasattr(model.module_, "entropy")
        self.coder = LatentCoder(model.module_, **settings) if lossy else BitsBackCoder(model.module_, **settings)
        self.lossy = lossy
        self.weights = container.weights_sha256(model.module_)

    def initial_bits(self, count: int) -> int:
        """The bits of the chains' initial words in a file of count examples: paid once per block, so they are
        the share that a longer input amortises."""
        return 32 * self.coder.initial_words * math.ceil(count / self.block)

    def compress(self, x) -> bytes:
        """The .vkz bytes of examples x (N, *shape)."""
        x = self._examples(x)
        blocks = []
        for i in range(0, len(x), self.block):
            chunk = x[i:i + self.block]
            examples = chunk.reshape(len(chunk), *self.model.input_shape_)
            if self.lossy:  # what decoding will give is the reconstruction
                words, decoded = self.coder.encode(examples)
                decoded = decoded.reshape(chunk.shape)
            else:
                words, decoded = self.coder.encode(examples), chunk
            blocks.append(container.Block(len(chunk), words.astype("<u4").tobytes(), container.examples_sha256(decoded)))
        return container.to_bytes(container.Container(self.coder.name, self.weights, self.shape,
                                                      {**self.coder.settings, "values": self.coder.values}, blocks))

    def decompress(self, data: bytes, what: str = "the compressed data") -> np.ndarray:
        """The examples (uint8, (N, *shape)) of .vkz bytes written by this model."""
        c = container.from_bytes(data, what)
        container.check_model(c, self.coder.name, self.weights, self.shape, what)
        s = c.settings
        try:
            coder = self.coder if self.lossy else BitsBackCoder(self.model.module_, s["bin_width"],
                                                                s["latent_bound"], s["lanes"])
        except (KeyError, TypeError) as e:
            raise VaekitError(f"{what} has codec settings this vaekit cannot read ({e})") from None
        if coder.initial_words != s.get("initial_words"):
            raise VaekitError(f"{what} has inconsistent codec settings (initial words)")
        out = []
        for i, b in enumerate(c.blocks):
            if len(b.data) % 4:
                raise VaekitError(f"{what} is damaged: block {i} is not a whole number of 32-bit words")
            try:
                x = coder.decode(np.frombuffer(b.data, "<u4"), b.count, self.model.input_shape_)
            except VaekitError:
                raise
            except Exception as e:  # the entropy coder's own complaint about data it cannot decode
                raise VaekitError(f"block {i} of {what} cannot be decoded ({e}): the file is damaged") from None
            x = x.reshape(b.count, *self.shape)
            if container.examples_sha256(x) != b.examples_sha256:
                raise VaekitError(f"block {i} of {what} decoded to examples that do not match its checksum: this "
                                  f"machine computes the model differently from the one that compressed it (other "
                                  f"hardware or library versions); decompress it there")
            out.append(x)
        return np.concatenate(out) if out else np.zeros((0, *self.shape), np.uint8)

    def _examples(self, x) -> np.ndarray:
        x = np.asarray(x)
        squeezed = tuple(d for d in self.shape if d != 1)  # (N, 28, 28) and (N, 1, 28, 28) are the same images
        if x.ndim < 2 or tuple(d for d in x.shape[1:] if d != 1) != squeezed:
            raise VaekitError(f"examples must have shape (N, {', '.join(map(str, self.shape))}); got {x.shape}")
        if self.coder.values == "8-bit":
            if x.dtype != np.uint8:
                raise VaekitError(f"this model codes 8-bit images: give uint8 pixels (0-255); got {x.dtype}")
            return np.ascontiguousarray(x.reshape(len(x), *self.shape))
        if x.dtype == bool:
            x = x.astype(np.uint8)
        values = np.unique(x)
        if set(values.tolist()) <= {0, 255} and 255 in values:
            x = x // 255
        elif not set(values.tolist()) <= {0, 1}:
            others = values[~np.isin(values, [0, 1, 255])][:3].tolist()
            raise VaekitError(f"lossless coding of binary images takes values 0 and 1 (or 0 and 255); these examples "
                              f"have others (e.g. {others}): binarise them first ('vaekit compress --binarize')")
        return np.ascontiguousarray(x.astype(np.uint8).reshape(len(x), *self.shape))
