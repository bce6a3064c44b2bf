"""Progress bars: one per training run, or one over several fits (an ensemble) that each run fills a share of.

Code that fits several models (the anomaly detector's members) opens `shared_bar(n_fits)`; every Trainer
inside it advances that bar by its own fraction of one fit instead of opening a bar of its own, so the user
sees one bar with one estimate of the time left.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from contextvars import ContextVar

from tqdm.auto import tqdm

_SHARED: ContextVar = ContextVar("vaekit_shared_bar", default=None)
_OPTIONS = dict(dynamic_ncols=True, mininterval=0.5)  # file: sys.stderr as it is when a bar opens


@contextmanager
def shared_bar(n_fits: int, desc: str, enabled: bool = True):
    """Inside: the Trainers of n_fits fits share one bar, counted in fits. Disabled, it changes nothing: each
    Trainer shows (or, not verbose, hides) its own bar."""
    bar = tqdm(total=n_fits, desc=desc, disable=not enabled, file=sys.stderr, **_OPTIONS,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} fits [{elapsed}<{remaining}{postfix}]")
    token = _SHARED.set(bar if enabled else None)
    try:
        yield bar
    finally:
        _SHARED.reset(token)
        bar.close()


class _Share:
    """One fit's part of a shared bar: its steps advance the bar by fractions of one fit."""

    def __init__(self, outer, total_steps: int, initial: int):
        self.outer, self.total, self.n = outer, max(total_steps, 1), initial
        self.outer.update(initial / self.total)

    def update(self, steps: int) -> None:
        self.n += steps
        self.outer.update(steps / self.total)

    def set_postfix_str(self, text: str) -> None:
        self.outer.set_postfix_str(text, refresh=False)

    def finish(self) -> None:
        """A run that ends before its last step (early stopping) still counts as one whole fit."""
        self.update(self.total - self.n)

    def write(self, text: str) -> None:
        self.outer.write(text, file=sys.stderr)

    def close(self) -> None:
        self.finish()


class _Own:
    """A run's own bar, counted in steps."""

    def __init__(self, total_steps: int, initial: int, enabled: bool):
        self.bar = tqdm(total=total_steps, initial=initial, disable=not enabled, unit="step", file=sys.stderr,
                        **_OPTIONS)
        self.enabled = enabled

    def update(self, steps: int) -> None:
        self.bar.update(steps)

    def set_postfix_str(self, text: str) -> None:
        self.bar.set_postfix_str(text)

    def finish(self) -> None:
        """An early stop ends the run: the bar says done, not '40%'."""
        self.bar.total = self.bar.n
        self.bar.refresh()

    def write(self, text: str) -> None:
        if self.enabled:
            self.bar.write(text, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def training_bar(total_steps: int, initial: int, enabled: bool):
    """The bar one training run reports its steps to: a share of the enclosing shared_bar, else its own."""
    outer = _SHARED.get()
    return _Share(outer, total_steps, initial) if outer is not None else _Own(total_steps, initial, enabled)
