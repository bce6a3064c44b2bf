"""User-facing errors: each names the problem, what was expected, and the fix."""
from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable


class VaekitError(ValueError):
    """A problem with the user's input or files (a ValueError, as scikit-learn expects). The CLI prints it
    without a traceback."""


class VaekitWarning(UserWarning):
    """Something the user should know about a result (e.g. posterior collapse); the CLI prints it plainly."""


def check_count(name: str, value, minimum: int = 1) -> None:
    """A count the user picks (samples, examples, steps, epochs) must be an int >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise VaekitError(f"{name} must be an int >= {minimum}; got {value!r}")


def listed(items, limit: int) -> str:
    """The first limit items, comma-separated, and how many more there are: 'a, b, c and 7 more'."""
    items = [str(i) for i in items]
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> VaekitError:
    choices = sorted(choices)
    return VaekitError(
        f"unknown {kind} '{name}'.{did_you_mean(name, choices)} Known {kind}s: {', '.join(choices)}."
    )
