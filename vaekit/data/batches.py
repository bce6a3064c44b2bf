"""The batch protocol: how a modality hands its training data to the trainer, which never looks inside a batch.

A `Batches` is a set of N examples that can move to a device and give, for any rows (an index tensor or a
slice), the arguments of the module's loss: `module.loss(*data.batch(idx))`. `inputs(idx)` gives the model's
input for those rows without training-time randomness (for monitors such as active units). Each modality
supplies one: `ImageBatches` here (uint8 rows scaled to [0, 1] per batch, binarised if asked, with optional
per-example targets), `data.tables.encoding.TableBatches` for tables (mode codes and scalars).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..models import noise


@runtime_checkable
class Batches(Protocol):
    def __len__(self) -> int: ...

    def to(self, device: torch.device) -> Batches: ...

    def batch(self, idx) -> tuple: ...

    def inputs(self, idx): ...


def to_unit_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] become float32 in [0, 1]; float data pass through."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x


def binarize_once(x_unit: torch.Tensor, seed: int) -> torch.Tensor:
    """One Bernoulli draw of pixel intensities in [0, 1], fixed by seed: the test protocol of dynamically
    binarised data, shared by 'vaekit evaluate --binarize' and 'vaekit compress', so one seed is one test set."""
    return torch.bernoulli(x_unit, generator=torch.Generator().manual_seed(seed))


class ImageBatches:
    """Rows of images or flat arrays (a tensor, or data.DiskRows read batch by batch): uint8 pixels are scaled
    to [0, 1] a batch at a time, so the data stay a quarter of float32's size wherever they live.

    binarize: each batch is one Bernoulli draw of its pixel intensities (a fresh draw every epoch).
    targets: what each example is reconstructed as (or its label): the loss is then loss(x, target).
    """

    def __init__(self, x, targets=None, binarize: bool = False, device: torch.device | None = None):
        self.x, self.targets, self.binarize = x, targets, binarize
        self.device = device or (x.device if isinstance(x, torch.Tensor) else torch.device("cpu"))

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device: torch.device) -> ImageBatches:
        """Tensors move to the device once; on-disk rows are read onto it batch by batch."""
        move = (lambda t: t.to(device) if isinstance(t, torch.Tensor) else t)
        return ImageBatches(move(self.x), None if self.targets is None else move(self.targets), self.binarize,
                            device)

    def batch(self, idx) -> tuple:
        xb = to_unit_float(self._rows(self.x, idx))
        if self.binarize:
            xb = (noise.rand(xb.shape, 0, xb) < xb).to(xb.dtype)
        return (xb,) if self.targets is None else (xb, to_unit_float(self._rows(self.targets, idx)))

    def inputs(self, idx) -> torch.Tensor:
        return to_unit_float(self._rows(self.x, idx))

    def _rows(self, x, idx) -> torch.Tensor:
        """Rows idx (a slice or an index tensor) of x, as a tensor on the device."""
        if isinstance(x, torch.Tensor):
            return x[idx] if isinstance(idx, slice) else x.index_select(0, idx)
        rows = x[idx if isinstance(idx, slice) else idx.cpu().numpy()]
        return torch.from_numpy(rows).to(self.device, non_blocking=True)


def as_batches(data, targets=None, binarize: bool = False) -> Batches:
    """A modality's Batches as is; a tensor or on-disk rows as ImageBatches."""
    if isinstance(data, Batches) and not isinstance(data, torch.Tensor):
        return data
    return ImageBatches(data, targets, binarize)
