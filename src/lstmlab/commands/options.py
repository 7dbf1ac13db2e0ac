"""Command-line options read from the configuration dataclasses, so each default is defined once
(in the dataclass) and the help text shows it; the one parser of positive numbers; and what
every command group shares (file errors in one line, texts from arguments or standard input).

    >>> add_config_options(parser, LearnerConfig, {"hidden": "hidden units", ...})
    >>> config = config_from_args(LearnerConfig, args)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from collections.abc import Callable
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


def _finite_float(text: str, zero_allowed: bool, wanted: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
    if not (0 <= value if zero_allowed else 0 < value) or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _finite_float(text, False, "a positive number")


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _finite_float(text, True, "a number >= 0")


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
        if isinstance(default, bool):  # a switch; one on by default can be turned off (--no-X)
            action = argparse.BooleanOptionalAction if default else "store_true"
            parser.add_argument(*names, dest=name, action=action,
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


def clear_file_errors(run: Callable[[argparse.Namespace], None]) -> Callable:
    """Turn a missing or unreadable file into a ValueError, which ``lstmlab`` reports in one
    line (exit code 2) instead of a traceback."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> None:
        try:
            run(args)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError,
                PermissionError) as error:
            raise ValueError(str(error) if error.filename is None or str(error.filename) in
                             str(error) else f"{error.strerror}: {error.filename}") from None

    return wrapper


def input_texts(texts: list[str] | None) -> tuple[list[str], str]:
    """The texts a ``predict`` command reads: its TEXT arguments, else the non-blank lines of
    standard input (the blank ones counted on stderr); and what to call one in messages."""
    if texts:
        return list(texts), "text"
    lines = sys.stdin.read().splitlines()
    kept = [line for line in lines if line.strip()]
    if len(kept) < len(lines):
        print(f"({len(lines) - len(kept)} blank lines skipped)", file=sys.stderr)
    return kept, "non-blank line of standard input"
