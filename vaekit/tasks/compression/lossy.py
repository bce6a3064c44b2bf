"""Lossy coding with a lossy autoencoder (models.lossy): each image's integer code, range-coded under the
entropy model's frozen tables (constriction's RangeEncoder over its Categorical model), and its
reconstruction, the decoder network's output rounded to 8-bit pixels.

The encoder computes the reconstruction as the decoder will (the same codes through the same network in the
same batches), so the container's checksum of the decoded examples holds the reconstruction: a decoder that
computes differently is caught, never silent.
"""
from __future__ import annotations

import constriction
import numpy as np
import torch

from ...data.batches import to_unit_float
from ...errors import VaekitError

CHUNK = 1000  # images coded per network call and per call of the coder (bounds the probability tables' size)


class LatentCoder:
    """Codes 8-bit images (N, *shape) as the integer codes of a trained `lossy-ae` module."""

    name = "factorized-latents"
    lossy = True
    values = "8-bit"
    initial_words = 0  # nothing to take bits back from
    settings = {"initial_words": 0}

    def __init__(self, module: torch.nn.Module):
        entropy = getattr(module, "entropy", None)
        if entropy is None:
            raise VaekitError("lossy coding needs a lossy autoencoder: train one with 'vaekit train --model "
                              "lossy-ae --lambda L'")
        if not entropy.has_tables:
            raise VaekitError("this lossy autoencoder has no coding tables: they are built when training ends; "
                              "train it to the end (or call module.entropy.build_tables()) before coding")
        self.module = module.eval()
        self.low = entropy.table_low.cpu().numpy().astype(np.int64)
        size = int(entropy.table_size.max())
        self.table = entropy.table_mass[:, :size].double().cpu().numpy()  # (dims, symbols)
        self.model = constriction.stream.model.Categorical(perfect=False)

    @torch.no_grad()
    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the words (uint32) of images x (N, *shape) uint8, their reconstructions as decoding gives them)."""
        coder = constriction.stream.queue.RangeEncoder()
        recon = []
        for i in range(0, len(x), CHUNK):
            k = self.module.code(self._net_input(x[i:i + CHUNK]))[1]
            symbols = (k.cpu().numpy().astype(np.int64) - self.low).astype(np.int32)
            coder.encode(symbols.reshape(-1), self.model, self._tables(len(k)))
            recon.append(self._reconstruct(k))
        return coder.get_compressed(), np.concatenate(recon) if recon else np.zeros((0, *x.shape[1:]), np.uint8)

    @torch.no_grad()
    def decode(self, words: np.ndarray, count: int, shape: tuple[int, ...]) -> np.ndarray:
        decoder = constriction.stream.queue.RangeDecoder(np.asarray(words, dtype=np.uint32))
        out = []
        for i in range(0, count, CHUNK):
            n = min(CHUNK, count - i)
            symbols = decoder.decode(self.model, self._tables(n)).reshape(n, -1)
            k = torch.from_numpy((symbols.astype(np.int64) + self.low).astype(np.float32)).to(self._device())
            out.append(self._reconstruct(k).reshape(n, *shape))
        return np.concatenate(out) if out else np.zeros((0, *shape), np.uint8)

    def bits_estimate(self, x: np.ndarray) -> float:
        """The entropy model's -log2 p of x's codes: what the coded words should come to."""
        with torch.no_grad():
            k = self.module.code(self._net_input(x))[1]
            return float(-self.module.entropy.log_mass(k).sum() / np.log(2))

    def _net_input(self, x: np.ndarray) -> torch.Tensor:
        """uint8 images as the network reads them, v / 255, on the model's device."""
        return to_unit_float(torch.from_numpy(np.ascontiguousarray(x)).to(self._device()))

    def _tables(self, n: int) -> np.ndarray:
        return np.tile(self.table, (n, 1))

    def _reconstruct(self, k: torch.Tensor) -> np.ndarray:
        mean = self.module.generative(k).mean
        return torch.round(mean.clamp(0, 1) * 255).to(torch.uint8).cpu().numpy()

    def _device(self) -> torch.device:
        return next(self.module.parameters()).device
