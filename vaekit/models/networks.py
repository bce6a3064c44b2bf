"""Encoder and decoder bodies (MLP and convolutional) shared by every model of the family."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import VaekitError

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU}


def dense_stack(sizes: list[int], cfg: ModelConfig) -> nn.Sequential:
    """Linear -> [BatchNorm] -> activation -> [Dropout] for each consecutive pair of sizes."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers.append(nn.Linear(n_in, n_out))
        if cfg.batch_norm:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(ACTIVATIONS[cfg.activation]())
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
    return nn.Sequential(*layers)


def _conv_sizes(shape: tuple[int, ...], n_layers: int) -> list[tuple[int, int]]:
    """Spatial sizes after each stride-2 convolution (kernel 4, padding 1 halves, rounding down)."""
    h, w = shape[1], shape[2]
    sizes = [(h, w)]
    for _ in range(n_layers):
        h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise VaekitError(
                f"images of {shape[1]}x{shape[2]} are too small for {n_layers} stride-2 convolutions; "
                f"use fewer conv_channels or larger images"
            )
        sizes.append((h, w))
    return sizes


def _require_image(shape, cfg: ModelConfig) -> None:
    if cfg.architecture == "conv" and len(shape) != 3:
        raise VaekitError(
            f"architecture='conv' needs images (C, H, W), but the data have shape {shape}; "
            f"use architecture='mlp' for flat data"
        )


class Encoder(nn.Module):
    """x (B, *shape) -> features (B, out_features)."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], out_features: int):
        super().__init__()
        _require_image(shape, cfg)
        if cfg.architecture == "conv":
            chans = [shape[0], *cfg.conv_channels]
            convs: list[nn.Module] = []
            for c_in, c_out in zip(chans, chans[1:]):
                convs += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), ACTIVATIONS[cfg.activation]()]
            h, w = _conv_sizes(shape, len(cfg.conv_channels))[-1]
            self.features = nn.Sequential(*convs, nn.Flatten())
            n_flat = chans[-1] * h * w
        else:
            self.features = nn.Flatten()
            n_flat = math.prod(shape)
        self.body = dense_stack([n_flat, *cfg.hidden], cfg)
        self.head = nn.Linear(cfg.hidden[-1] if cfg.hidden else n_flat, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.features(x)))


class DenseNet(nn.Module):
    """(..., n_in) -> (..., n_out) through dense hidden layers: the maps between stochastic layers."""

    def __init__(self, n_in: int, hidden, n_out: int, cfg: ModelConfig):
        super().__init__()
        hidden = list(hidden)
        self.body = dense_stack([n_in, *hidden], cfg)
        self.head = nn.Linear(hidden[-1] if hidden else n_in, n_out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        lead = h.shape[:-1]
        return self.head(self.body(h.reshape(-1, h.shape[-1]))).view(*lead, -1)


class Decoder(nn.Module):
    """z (..., D) -> the likelihood's parameters (..., *param_shape) for data of shape shape; a convolutional
    decoder keeps the data's height and width and puts the parameters on its channels."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], param_shape: tuple[int, ...],
                 in_features: int | None = None):
        super().__init__()
        _require_image(shape, cfg)
        self.shape = tuple(shape)
        self.out_shape = tuple(param_shape)
        if cfg.architecture == "conv" and self.out_shape[1:] != self.shape[1:]:
            raise ValueError(f"a convolutional decoder makes (channels, {shape[1:]}) parameters; got {param_shape}")
        hidden = list(reversed(cfg.hidden))
        n_in = cfg.latent_dim if in_features is None else in_features
        self.body = dense_stack([n_in, *hidden], cfg)
        n_last = hidden[-1] if hidden else n_in
        if cfg.architecture == "conv":
            n = len(cfg.conv_channels)
            sizes = _conv_sizes(shape, n)  # [(H, W), (H/2, W/2), ...]
            chans = list(reversed(cfg.conv_channels))
            self.seed_shape = (chans[0], *sizes[-1])
            self.head = nn.Linear(n_last, math.prod(self.seed_shape))
            ups: list[nn.Module] = [ACTIVATIONS[cfg.activation]()]
            for i, (c_in, c_out) in enumerate(zip(chans, [*chans[1:], self.out_shape[0]])):
                (h_in, w_in), (h, w) = sizes[n - i], sizes[n - i - 1]
                # output_padding restores the odd sizes the encoder rounded down (7 -> 15 not 14)
                ups.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1,
                                              output_padding=(h - 2 * h_in, w - 2 * w_in)))
                if i < n - 1:
                    ups.append(ACTIVATIONS[cfg.activation]())
            self.upsample = nn.Sequential(*ups)
        else:
            self.head = nn.Linear(n_last, math.prod(self.out_shape))
            self.upsample = None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        h = self.head(self.body(z.reshape(-1, z.shape[-1])))
        if self.upsample is not None:
            h = self.upsample(h.view(-1, *self.seed_shape))
        return h.view(*lead, *self.out_shape)
