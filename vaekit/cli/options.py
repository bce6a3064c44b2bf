"""CLI flags generated from the config dataclasses, so flags, docs and JSON keys never drift apart."""
from __future__ import annotations

import argparse
import difflib
import types
import typing
from dataclasses import fields
from pathlib import Path

from ..config import DataConfig, ModelConfig, TrainConfig, field_docs, from_dict
from ..errors import VaekitError
from ..io import read_json

GROUPS = {"model": ModelConfig, "train": TrainConfig, "data": DataConfig}
# DataConfig.source is --data on the command line; ModelConfig.rate_lambda is --lambda (a Python keyword)
_RENAMED = {("data", "source"): "data", ("model", "rate_lambda"): "lambda"}
_METAVARS = {"image_size": ("H", "W")}


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends each option's text with its default, where it has one and does not say it already."""

    def _get_help_string(self, action) -> str:
        text = action.help or ""
        default = action.default
        shown_already = "(default" in text or "default:" in text
        nothing = default is None or default is False or default is argparse.SUPPRESS or default == []
        version = isinstance(action, argparse._VersionAction)
        if action.option_strings and not shown_already and not nothing and not version:
            shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
            text += f" (default: {shown})".replace("%", "%%")
        return text


class Parser(argparse.ArgumentParser):
    """argparse that suggests the closest flag for a misspelt one, and whose sub-commands show defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        if "unrecognized arguments" in message:
            known = _option_strings(self)
            for token in message.split(":", 1)[1].split():
                close = difflib.get_close_matches(token.split("=")[0], known, n=1, cutoff=0.6)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        super().error(message)


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    # unknown flags surface at the top-level parser, so look inside the sub-commands too
    known = []
    for action in parser._actions:
        known += action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                known += _option_strings(sub)
    return known


def _flag(group: str, name: str) -> str:
    return "--" + _RENAMED.get((group, name), name).replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser, groups=("model", "train", "data")) -> None:
    for group in groups:
        cls = GROUPS[group]
        docs = field_docs(cls)
        hints = typing.get_type_hints(cls)
        g = parser.add_argument_group(f"{group} options")
        for f in fields(cls):
            hint = hints[f.name]
            text = f"{docs.get(f.name, '')} (default: {f.default})".replace("%", "%%")  # argparse %-formats help
            kwargs: dict = {"default": None, "dest": f"{group}.{f.name}", "help": text}
            base = hint
            if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None -> X
                base = next(a for a in typing.get_args(hint) if a is not type(None))
            kwargs["metavar"] = f.name.upper()
            if hint is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
                del kwargs["metavar"]
            elif typing.get_origin(base) is tuple:  # tuple[int, ...]: one or more; tuple[int, int]: exactly two
                items = typing.get_args(base)
                n = "+" if items[-1] is Ellipsis else len(items)
                kwargs.update(nargs=n, type=items[0])
                if n != "+":
                    kwargs["metavar"] = _METAVARS.get(f.name, (kwargs["metavar"],) * n)
            else:
                kwargs["type"] = base
            g.add_argument(_flag(group, f.name), **kwargs)


def configs_from_args(args, base: dict[str, dict] | None = None) -> dict[str, dict]:
    """{'model': {...}, 'train': {...}, 'data': {...}}: base values (a JSON config), overridden by given flags."""
    out = {g: dict((base or {}).get(g, {})) for g in GROUPS}
    for key, value in vars(args).items():
        if "." in key and value is not None:
            group, name = key.split(".", 1)
            out[group][name] = tuple(value) if isinstance(value, list) else value
    return out


def read_config_file(path: str) -> dict[str, dict]:
    """A JSON file {"model": {...}, "train": {...}, "data": {...}}; unknown sections or keys are refused."""
    p = Path(path)
    if not p.is_file():
        raise VaekitError(f"config file not found: {p}")
    doc = read_json(p, "fix the file (JSON: double quotes, no trailing commas)")
    if not isinstance(doc, dict):
        raise VaekitError(f"{p} holds a JSON {type(doc).__name__}; a config file is an object "
                          '{"model": {...}, "train": {...}, "data": {...}}')
    for section, values in doc.items():
        if section not in GROUPS:
            close = difflib.get_close_matches(section, GROUPS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise VaekitError(f"unknown section '{section}' in {p}.{hint} Sections: model, train, data.")
        from_dict(GROUPS[section], values, f"{p} [{section}]")  # validates key names
    return doc
