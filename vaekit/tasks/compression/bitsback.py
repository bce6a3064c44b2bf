"""Bits-back coding with asymmetric numeral systems (BB-ANS, Townsend et al. 2019) over a trained VAE.

Each example costs about -ELBO bits: its latents are first *decoded* from the stack with q(z|x) (taking bits
back), then x is encoded with p(x|z) and the latents with the generative model p(z_1|z_2) ... p(z_L). Latents
are discretised onto one grid of width bin_width (symbols k, z = bin_width * k, |z| <= latent_bound); every
Gaussian of the model becomes a quantised Gaussian on that grid, so coding is exact and the grid's width cancels
out of the rate. The stack coder is constriction's AnsCoder: nothing here is a hand-written coder.

Examples are coded `lanes` at a time: one network call serves a batch on both sides, and the decoder calls the
networks on exactly the inputs, in exactly the batches, that the encoder did (same arithmetic, same result).
A chain starts from `initial_words` seeded words so the first batch has bits to take back; they are paid once
per chain and come back out at the end, where decoding checks them.
"""
from __future__ import annotations

import math

import constriction
import numpy as np
import torch

from ...errors import VaekitError
from ...models.likelihoods import full_precision

_ANS = constriction.stream.stack.AnsCoder
_MODEL = constriction.stream.model
INITIAL_SEED = 0xB17B4C  # the initial words are these seeded draws, so a decoder can check them


PIXEL_VALUES = {"bernoulli": "binary", "discretized-gaussian": "8-bit", "discretized-logistic": "8-bit"}


class BitsBackCoder:
    """BB-ANS for a VAE module with Gaussian latents (one or more stochastic layers), a N(0, I) prior and a
    discrete likelihood: Bernoulli over binary examples, or a discretised Gaussian (constriction's own quantised
    Gaussian: fast) or logistic (a table of 256 masses per pixel: slower) over 8-bit pixels."""

    name = "bb-ans"

    def __init__(self, module: torch.nn.Module, bin_width: float = 2.0 ** -6, latent_bound: float = 8.0,
                 lanes: int = 25):
        cfg = getattr(module, "cfg", None)
        if not getattr(module, "variational", False) or not hasattr(module, "sizes"):
            raise VaekitError("bits-back coding needs a VAE of images (a model with latents and an encoder); this "
                              "run is not one: train one with 'vaekit train --model vae --binarize'")
        if cfg.likelihood not in PIXEL_VALUES or cfg.prior != "standard":
            raise VaekitError(f"lossless coding needs a discrete likelihood (a Bernoulli likelihood for binary "
                              f"images, 'discretized-logistic' for 8-bit ones: train --model lossless-vae) and the "
                              f"N(0, I) prior; this model has likelihood '{cfg.likelihood}' and prior '{cfg.prior}'")
        if not (0 < bin_width <= 1) or latent_bound <= 0 or lanes < 1:
            raise VaekitError("bin_width must be in (0, 1], latent_bound > 0 and lanes >= 1")
        self.module = module.eval()
        self.bin_width, self.lanes = float(bin_width), int(lanes)
        self.bound = int(math.ceil(latent_bound / bin_width))
        self.sizes = tuple(module.sizes)
        self.quantised = _MODEL.QuantizedGaussian(-self.bound, self.bound)
        self.likelihood, self.values = cfg.likelihood, PIXEL_VALUES[cfg.likelihood]
        self.pixel_model = {"bernoulli": lambda: _MODEL.Bernoulli(perfect=False),
                            "discretized-gaussian": lambda: _MODEL.QuantizedGaussian(0, 255),
                            "discretized-logistic": lambda: _MODEL.Categorical(perfect=False)}[cfg.likelihood]()
        self.initial_words = max(8, math.ceil(self.lanes * sum(self.sizes) * 12 / 32))  # ~12 bits per latent

    @property
    def settings(self) -> dict:
        return {"bin_width": self.bin_width, "latent_bound": self.bound * self.bin_width, "lanes": self.lanes,
                "initial_words": self.initial_words}

    # -- one chain ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: np.ndarray) -> np.ndarray:
        """The ANS words (uint32) of binary examples x (N, *shape), values 0/1, as one chain."""
        coder = _ANS(self._initial())
        for i in range(0, len(x), self.lanes):
            self._push(coder, x[i:i + self.lanes])
        return coder.get_compressed()

    @torch.no_grad()
    def decode(self, words: np.ndarray, count: int, shape: tuple[int, ...]) -> np.ndarray:
        """The count examples (uint8 0/1, shape (count, *shape)) of a chain, checked to end at its initial words."""
        coder = _ANS(np.asarray(words, dtype=np.uint32))
        starts = list(range(0, count, self.lanes))
        out = [None] * len(starts)
        for j in reversed(range(len(starts))):  # a stack: the last batch comes off first
            out[j] = self._pop(coder, min(self.lanes, count - starts[j]), shape)
        rest = coder.get_compressed()
        if len(rest) != self.initial_words or not np.array_equal(rest, self._initial()):
            raise VaekitError("the compressed data do not decode to a whole chain: the file is damaged, or was "
                              "made with other codec settings")
        return np.concatenate(out) if out else np.zeros((0, *shape), np.uint8)

    # -- one batch -------------------------------------------------------------------------------------
    def _push(self, coder, xb: np.ndarray) -> None:
        x = self._net_input(xb)
        ks, zs = [], []
        for layer in range(len(self.sizes)):  # take bits back: z_1 ~ q(z_1|x), z_2 ~ q(z_2|z_1), ...
            mean, std = self._posterior(layer, x if layer == 0 else zs[-1])
            ks.append(coder.decode(self.quantised, mean, std))
            zs.append(self._z(ks[-1], len(xb)))
        coder.encode_reverse(xb.reshape(-1).astype(np.int32), self.pixel_model, *self._pixel_params(zs[0]))
        for layer in range(len(self.sizes) - 1):  # z_l | z_l+1, bottom first, so the top comes off first
            coder.encode_reverse(ks[layer], self.quantised, *self._conditional(layer, zs[layer + 1]))
        coder.encode_reverse(ks[-1], self.quantised, *self._prior(len(ks[-1])))

    def _pop(self, coder, n: int, shape: tuple[int, ...]) -> np.ndarray:
        top = self.sizes[-1]
        ks = [None] * len(self.sizes)
        zs = [None] * len(self.sizes)
        ks[-1] = coder.decode(self.quantised, *self._prior(n * top))
        zs[-1] = self._z(ks[-1], n)
        for layer in reversed(range(len(self.sizes) - 1)):
            ks[layer] = coder.decode(self.quantised, *self._conditional(layer, zs[layer + 1]))
            zs[layer] = self._z(ks[layer], n)
        xb = coder.decode(self.pixel_model, *self._pixel_params(zs[0])).astype(np.uint8).reshape(n, *shape)
        x = self._net_input(xb)
        params = [self._posterior(layer, x if layer == 0 else zs[layer - 1]) for layer in range(len(self.sizes))]
        for layer in reversed(range(len(self.sizes))):  # give the bits back in the reverse of taking them
            coder.encode_reverse(ks[layer], self.quantised, *params[layer])
        return xb

    # -- the model's distributions on the grid ------------------------------------------------------------
    def _posterior(self, layer: int, inputs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if layer == 0:
            return self._grid(*self.module.encode(inputs))
        return self._grid(*full_precision(self.module.up[layer - 1](inputs)).chunk(2, -1))

    def _conditional(self, layer: int, above: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        return self._grid(*full_precision(self.module.down[layer](above)).chunk(2, -1))

    def _prior(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(n), np.full(n, 1.0 / self.bin_width)

    def _grid(self, mu: torch.Tensor, log_var: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation in units of the grid, float64, flattened (the order of the symbols)."""
        mean = (mu.double() / self.bin_width).reshape(-1).cpu().numpy()
        std = ((0.5 * log_var.double()).exp() / self.bin_width).clamp(min=1e-3).reshape(-1).cpu().numpy()
        return mean, std

    def _pixel_params(self, z: torch.Tensor) -> tuple[np.ndarray, ...]:
        """The pixel model's parameters, in the order of the pixels: P(1) of each (binary), each one's mean and
        standard deviation in pixel values (discretised Gaussian), or the (pixels, 256) table of masses."""
        params = self.module.decoder(z).double()
        if self.likelihood == "bernoulli":
            return (torch.sigmoid(params).reshape(-1).cpu().numpy(),)
        if self.likelihood == "discretized-gaussian":
            return tuple(t.reshape(-1).cpu().numpy() for t in self.module.likelihood.pixel_params(params))
        pmf = self.module.likelihood.pmf(params)
        return (pmf.reshape(-1, pmf.shape[-1]).cpu().numpy(),)

    def _net_input(self, xb: np.ndarray) -> torch.Tensor:
        """The examples as the networks read them: binary pixels as 0/1, 8-bit ones as v / 255 (the batches')."""
        x = torch.from_numpy(xb.astype(np.float32)).to(self._device())
        return x if self.values == "binary" else x / 255

    def _z(self, k: np.ndarray, n: int) -> torch.Tensor:
        return torch.from_numpy(k.astype(np.float32) * np.float32(self.bin_width)).view(n, -1).to(self._device())

    def _initial(self) -> np.ndarray:
        return np.random.default_rng(INITIAL_SEED).integers(1, 2 ** 32, self.initial_words, dtype=np.uint32)

    def _device(self) -> torch.device:
        return next(self.module.parameters()).device
