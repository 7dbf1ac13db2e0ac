"""lstmlab's command line: a thin face over library functions."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from lstmlab.commands import lm, memory


def demo(args: argparse.Namespace) -> None:
    from lstmlab.experiments.remember import remember_first_symbol

    console = Console()
    console.print(f"Remember the first of {args.symbols} symbols across {args.lag} noisy steps "
                  f"(chance {1 / args.symbols:.0%}); {args.steps} Adam steps of {args.batch} "
                  "sequences each.")
    with console.status("training rnn, lstm, gru ..."):
        results = remember_first_symbol(lag=args.lag, symbols=args.symbols, steps=args.steps,
                                        batch=args.batch, seed=args.seed)
    table = Table(title="Who remembers?")
    for column in ["model", "test accuracy", "final loss (nats)", "seconds"]:
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(r.model, f"{r.accuracy:.1%}", f"{r.loss:.3f}", f"{r.seconds:.1f}")
    console.print(table)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lstmlab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("demo", help="train an RNN, an LSTM and a GRU to remember a symbol")
    p.add_argument("--lag", type=int, default=50)
    p.add_argument("--symbols", type=int, default=4)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=demo)
    lm.add_commands(commands)
    memory.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ValueError as error:  # bad arguments: say what was wrong, no traceback
        print(f"lstmlab {args.command}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
