"""`lstmlab memory` and `lstmlab gradients`: the memory suite's commands."""

import argparse


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Not yet built: the memory-suite commands land here."""
