"""`lstmlab lm ...`: language-model commands (train, sample, eval, inspect)."""

import argparse


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Not yet built: the language-model commands land here."""
