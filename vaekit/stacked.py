"""Stacked autoencoders: greedy layer-wise pretraining, then fine-tuning with a softmax classifier.

Bengio et al. 2007, "Greedy layer-wise training of deep networks"; Vincent et al. 2010, "Stacked
denoising autoencoders". Layer l of the encoder and its mirror in the decoder are trained as a
shallow (denoising) autoencoder of the codes of layers < l, which stay fixed; the whole network is
then trained end to end, for reconstruction (train) or for classification (finetune).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig
from .errors import VaekitError
from .models.autoencoder import AutoencoderModule
from .models.likelihoods import SquaredErrorLikelihood
from .models.regularizers import LATENT_ACTIVATIONS, corrupt
from .train import Trainer, to_unit_float


class _Act(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.fn = LATENT_ACTIVATIONS[name]

    def forward(self, a):
        return self.fn(a)


def encoder_blocks(module: AutoencoderModule) -> list[nn.Sequential]:
    """The encoder as blocks, each starting at a Linear (with its batch norm, activation, dropout)."""
    if not isinstance(module, AutoencoderModule):
        raise VaekitError("layer-wise pretraining stacks autoencoders, and a VAE's encoder outputs a distribution: "
                          "use an autoencoder model (e.g. --model stacked-ae) or drop layerwise_epochs")
    if module.cfg.architecture != "mlp":
        raise VaekitError("layer-wise pretraining stacks dense layers: use architecture='mlp'")
    blocks: list[list[nn.Module]] = []
    for m in module.encoder.body:
        if isinstance(m, nn.Linear):
            blocks.append([m])
        else:
            blocks[-1].append(m)
    blocks.append([module.encoder.head, _Act(module.cfg.latent_activation)])
    return [nn.Sequential(*b) for b in blocks]


def decoder_mirrors(module: AutoencoderModule) -> list[nn.Linear]:
    """The decoder's Linear layers, the mirror of encoder block l first for l = 0."""
    return [module.decoder.head, *reversed([m for m in module.decoder.body if isinstance(m, nn.Linear)])]


class _ShallowAE(nn.Module):
    """Block l and its mirror, trained to reconstruct the block's input (shares their parameters)."""

    def __init__(self, block: nn.Sequential, mirror: nn.Linear, likelihood, shape, corruption, level):
        super().__init__()
        self.block, self.mirror, self.likelihood = block, mirror, likelihood
        self.shape, self.corruption, self.level = shape, corruption, level

    def loss(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        h_in = corrupt(h, self.corruption, self.level) if self.training else h
        params = self.mirror(self.block(h_in.flatten(1))).view(len(h), *self.shape)
        rec = self.likelihood.nll(params, h)
        return {"loss": rec, "rec": rec}


def greedy_pretrain(module: AutoencoderModule, x: torch.Tensor, tcfg: TrainConfig, verbose: bool = False) -> list[dict]:
    """Pretrain module's encoder and decoder layer by layer on x for tcfg.layerwise_epochs each; returns
    one row per layer (its last epoch's losses)."""
    blocks, mirrors = encoder_blocks(module), decoder_mirrors(module)
    cfg = module.cfg
    layer_cfg = TrainConfig(**{**tcfg.__dict__, "epochs": tcfg.layerwise_epochs, "patience": None,
                               "kl_warmup_epochs": 0, "schedule": "constant"})
    h = x  # layer 0 reads the data (uint8 pixels scaled per batch); later layers read codes
    rows = []
    for l, (block, mirror) in enumerate(zip(blocks, mirrors)):
        first = l == 0
        shallow = _ShallowAE(block, mirror, module.likelihood if first else SquaredErrorLikelihood((h.shape[1],)),
                             module.shape if first else (h.shape[1],), cfg.corruption, cfg.corruption_level)
        cfg_l = layer_cfg if first else TrainConfig(**{**layer_cfg.__dict__, "binarize": False})
        history = Trainer(shallow, cfg_l, verbose=verbose).fit(h)
        rows.append({"layer": l + 1, **history[-1]})
        with torch.no_grad():  # the codes the next layer learns to reconstruct (kept on the CPU, like the data)
            block.eval()
            dev = next(block.parameters()).device
            h = torch.cat([block(to_unit_float(h[i:i + 2000].to(dev)).flatten(1)).cpu() for i in range(0, len(h), 2000)])
    return rows


class EncoderClassifier(nn.Module):
    """An autoencoder's encoder with a softmax layer on its code: per-example cross-entropy and error."""

    def __init__(self, autoencoder: AutoencoderModule, n_classes: int):
        super().__init__()
        self.encoder = autoencoder.encoder
        self.act = _Act(autoencoder.cfg.latent_activation)
        self.classify = nn.Linear(autoencoder.cfg.latent_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.act(self.encoder(x)))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self(x)
        return {"loss": F.cross_entropy(logits, y, reduction="none"), "error": (logits.argmax(1) != y).float()}


def balanced_subset(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of n labelled examples, as equal a share of every class as n allows."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per = [n // len(classes) + (i < n % len(classes)) for i in range(len(classes))]
    idx = [rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c, k in zip(classes, per)]
    return rng.permutation(np.concatenate(idx))


def finetune(autoencoder: AutoencoderModule, x: torch.Tensor, y: np.ndarray, x_test, y_test: np.ndarray,
             tcfg: TrainConfig, verbose: bool = False) -> dict:
    """Train encoder + softmax on (x, y) end to end; returns test accuracy and the history."""
    n_classes = int(max(y.max(), y_test.max())) + 1
    torch.manual_seed(tcfg.seed)
    clf = EncoderClassifier(autoencoder, n_classes)
    history = Trainer(clf, TrainConfig(**{**tcfg.__dict__, "binarize": False}), verbose=verbose).fit(
        x, targets=torch.from_numpy(y.astype(np.int64)))
    clf.eval()
    xt, dev = torch.as_tensor(np.asarray(x_test)), next(clf.parameters()).device
    with torch.no_grad():
        pred = torch.cat([clf(to_unit_float(xt[i:i + 2000].to(dev))).argmax(1).cpu() for i in range(0, len(xt), 2000)])
    acc = float((pred.numpy() == y_test).mean())
    return {"test_accuracy": acc, "n_labels": len(y), "epochs": len(history), "history": history,
            "train_error": history[-1]["train_error"] if history else math.nan}
