"""Command-line options read from the configuration dataclasses, so each default is defined once
(in the dataclass) and the help text shows it; and the one parser of positive numbers.

    >>> add_config_options(parser, LearnerConfig, {"hidden": "hidden units", ...})
    >>> config = config_from_args(LearnerConfig, args)
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 ("--hidden abc" -> "must be a positive integer")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def config_defaults(config_class: type) -> dict[str, Any]:
    """{field: default} of a configuration dataclass."""
    out = {}
    for f in dataclasses.fields(config_class):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def add_config_options(parser: argparse.ArgumentParser, config_class: type,
                       helps: dict[str, str], *, types: dict[str, Any] | None = None,
                       choices: dict[str, tuple[str, ...]] | None = None,
                       flags: dict[str, str | tuple[str, ...]] | None = None,
                       unset: bool = False) -> None:
    """Add ``--field-name`` for each field named in ``helps``, its default and type taken from
    ``config_class``; the help text ends with "(default X)".

    ``unset=True`` leaves the parsed value None when the flag is not given (e.g. a resumed run
    keeps its own settings); ``config_from_args`` then uses the class's default. A bool field
    becomes a switch (--tie). ``types`` overrides the inferred type (positive_int for ints,
    float for floats), ``flags`` a flag's name (or names: the first is shown, the others are
    accepted too).
    """
    defaults = config_defaults(config_class)
    types, choices, flags = types or {}, choices or {}, flags or {}
    for name, text in helps.items():
        if name not in defaults:
            raise KeyError(f"{config_class.__name__} has no field {name!r}")
        default = defaults[name]
        given = flags.get(name, "--" + name.replace("_", "-"))
        names = (given,) if isinstance(given, str) else tuple(given)
        shown = f"{text} (default {_shown(default)})"
        if isinstance(default, bool):
            parser.add_argument(*names, dest=name, action="store_true",
                                default=None if unset else default, help=shown)
            continue
        kind = types.get(name)
        if kind is None:
            kind = (positive_int if isinstance(default, int)
                    else float if isinstance(default, float) else str)
        parser.add_argument(*names, dest=name, type=kind, choices=choices.get(name),
                            default=None if unset else default, help=shown)


def config_from_args(config_class: type, args: argparse.Namespace, **extra: Any) -> Any:
    """The configuration from parsed options: fields present in ``args`` (None: the class's
    default) plus ``extra``."""
    values = {}
    for f in dataclasses.fields(config_class):
        value = getattr(args, f.name, None)
        if value is not None:
            values[f.name] = value
    values.update(extra)
    return config_class(**values)
