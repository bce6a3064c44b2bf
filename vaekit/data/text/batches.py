"""Sentences as the trainer sees them (data.batches protocol): token ids padded per batch, with lengths, and an
epoch order that puts sentences of similar length in one batch (less padding, the same gradient in expectation)."""
from __future__ import annotations

import warnings

import torch

from ...errors import VaekitError, VaekitWarning
from .tokens import EOS, PAD, UNK

BUCKET_BATCHES = 50  # an epoch is cut into spans of this many batches; each span is sorted by length


class TokenBatch:
    """Sentences (B, T) of token ids, each ending in </s> and padded with <pad>, and their lengths (B,)."""

    def __init__(self, ids: torch.Tensor, lengths: torch.Tensor):
        self.ids, self.lengths = ids, lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, idx) -> TokenBatch:
        lengths = self.lengths[idx]
        longest = int(lengths.max()) if len(lengths) else 0
        return TokenBatch(self.ids[idx][:, :longest], lengths)

    def to(self, device) -> TokenBatch:
        return TokenBatch(self.ids.to(device), self.lengths.to(device))


def encode_sentences(tokenizer, sentences: list[str], max_length: int, what: str | None = "sentences",
                     require_known: bool = False) -> list[list[int]]:
    """Token ids of each sentence, with </s> at the end; a sentence longer than max_length tokens is cut to it
    (one warning says how many were, unless what is None). require_known: a sentence a user typed is refused
    when it has no word the model knows (check_known)."""
    out, cut = [], 0
    for s in sentences:
        ids = check_known(tokenizer, s) if require_known else tokenizer.encode(s)
        if len(ids) > max_length:
            ids, cut = ids[:max_length], cut + 1
        out.append([*ids, EOS])
    if cut and what is not None:
        warnings.warn(f"{cut} of {len(sentences)} {what} are longer than max_length={max_length} tokens and were "
                      f"cut to it; raise max_length to keep them whole", VaekitWarning, stacklevel=2)
    return out


def check_known(tokenizer, sentence: str) -> list[int]:
    """The ids of one sentence a user typed, refused if it has no word the model knows."""
    ids = tokenizer.encode(sentence)
    if not ids:
        raise VaekitError("the sentence is empty; give at least one word")
    if all(i == UNK for i in ids):
        raise VaekitError(f"every word of {sentence!r} is unknown to the model's vocabulary (all <unk>): give a "
                          f"sentence with words of the training text")
    return ids


class TextBatches:
    """N sentences of token ids, kept flat (one id tensor and offsets); batch(idx) pads the chosen ones."""

    def __init__(self, sentences: list[list[int]], vocab_size: int, device=None):
        if not sentences:
            raise VaekitError("no sentences to train on")
        self.lengths = torch.tensor([len(s) for s in sentences], dtype=torch.long)
        self.flat = torch.tensor([t for s in sentences for t in s], dtype=torch.long)
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), self.lengths.cumsum(0)[:-1]])
        self.vocab_size = vocab_size
        self.device = device or torch.device("cpu")

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.lengths), self.vocab_size)

    def __len__(self) -> int:
        return len(self.lengths)

    def to(self, device) -> TextBatches:
        out = TextBatches.__new__(TextBatches)
        out.lengths, out.flat, out.offsets = self.lengths.to(device), self.flat.to(device), self.offsets.to(device)
        out.vocab_size, out.device = self.vocab_size, torch.device(device)
        return out

    def inputs(self, idx) -> TokenBatch:
        """The padded sentences idx (a slice or an index tensor), in that order."""
        if isinstance(idx, slice):
            idx = torch.arange(len(self), device=self.lengths.device)[idx]
        lengths = self.lengths.index_select(0, idx)
        longest = int(lengths.max()) if len(idx) else 0
        pos = torch.arange(longest, device=lengths.device)
        mask = pos[None] < lengths[:, None]
        gather = (self.offsets.index_select(0, idx)[:, None] + pos[None]).clamp(max=max(len(self.flat) - 1, 0))
        ids = torch.where(mask, self.flat[gather], torch.full_like(gather, PAD))
        return TokenBatch(ids, lengths)

    def batch(self, idx) -> tuple:
        return (self.inputs(idx),)

    def epoch_order(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """A shuffled order of all sentences whose consecutive batch_size runs hold similar lengths: shuffle,
        sort each span of BUCKET_BATCHES batches by length, then shuffle the batches."""
        n = len(self)
        perm = torch.randperm(n, generator=generator)
        span = batch_size * BUCKET_BATCHES
        lengths = self.lengths.cpu()
        pieces = []
        for i in range(0, n, span):
            part = perm[i:i + span]
            pieces.append(part[torch.sort(lengths[part], stable=True).indices])
        ordered = torch.cat(pieces)
        batches = list(torch.split(ordered, batch_size))
        last = batches.pop() if len(batches[-1]) < batch_size else None  # a short batch stays last
        order = torch.randperm(len(batches), generator=generator).tolist()
        return torch.cat([batches[i] for i in order] + ([last] if last is not None else []))
