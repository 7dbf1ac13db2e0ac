"""`lstmlab lm ...`: language-model commands (train, sample, eval, inspect).

Each subcommand parses its flags and calls one function of ``lstmlab.experiments.language``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console


def _clear_errors(run: Callable[[argparse.Namespace], None]) -> Callable:
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


@_clear_errors
def train(args: argparse.Namespace) -> None:
    import torch

    from lstmlab.experiments.language import train_language_model

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    console = Console(stderr=True)
    out = args.out
    if out is None:
        name = Path(args.file).stem if args.file else "tinyshakespeare"
        out = str(Path("runs") / f"lm-{name}")
    result = train_language_model(
        args.file, out=out, resume=args.resume, minutes=args.minutes, epochs=args.epochs,
        steps=args.steps, eval_every=args.eval_every, eval_tokens=args.eval_tokens,
        tensorboard=args.tensorboard, progress=not args.no_progress, console=console,
        level=args.level, model=args.model, layers=args.layers, hidden=args.hidden,
        embedding=args.embedding, tie=args.tie, dropout=args.dropout, seq_len=args.seq_len,
        batch=args.batch, optimizer=args.optimizer, lr=args.lr, clip=args.clip,
        lr_decay=args.lr_decay, decay_after=args.decay_after,
        decay_every=args.decay_every, init_range=args.init_range,
        seed=args.seed)
    console.print(result.summary())
    console.print(f"checkpoints in {out}/ (best.json, last.json); try: lstmlab lm sample {out}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))


@_clear_errors
def sample(args: argparse.Namespace) -> None:
    from lstmlab.experiments.language import sample as sample_text

    pieces = sample_text(args.checkpoint, args.prime, args.length,
                         temperature=args.temperature, top_k=args.top_k, seed=args.seed)
    if args.prime:
        sys.stdout.write(args.prime)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


@_clear_errors
def evaluate(args: argparse.Namespace) -> None:
    from lstmlab.experiments.language import evaluate as evaluate_file

    result = evaluate_file(args.checkpoint, args.file, batch_size=args.batch,
                           seq_len=args.seq_len)
    print(f"{args.file}: {result.summary()}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))


@_clear_errors
def inspect(args: argparse.Namespace) -> None:
    from lstmlab.experiments.language import inspect as inspect_cells

    text = args.text
    if args.file is not None:
        if text is not None:
            raise ValueError("give TEXT or --file, not both")
        from lstmlab.tasks.text import read_text

        text = read_text(args.file, "inspect")
    inspect_cells(args.checkpoint, text, out=args.out, cell=args.cell, top=args.top,
                  max_tokens=args.max_tokens, console=Console())


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``lstmlab lm train|sample|eval|inspect``."""
    lm = commands.add_parser("lm", help="language models: train on any text, sample, evaluate, "
                                        "inspect cells",
                             description="Character- and word-level language models "
                                         "(char-rnn, Zaremba et al. 2014).")
    sub = lm.add_subparsers(dest="lm_command", required=True)

    p = sub.add_parser("train", help="train a language model on a text file",
                       description="Train on FILE (a UTF-8 text, its last 10% validating; a "
                                   "directory of *train/valid/test.txt files; or a "
                                   "...train.txt beside its ...valid.txt). Without FILE: Tiny "
                                   "Shakespeare, shipped with lstmlab. Settings left out take "
                                   "their defaults, or on --resume the run's own.")
    p.add_argument("file", nargs="?", help="text file or split directory (default: Tiny "
                                           "Shakespeare)")
    p.add_argument("--level", choices=["char", "word"], help="tokens (default char)")
    p.add_argument("--model", help="lstm (default, = lstm:NP), lstm:VARIANT (V, CIFG, NFG, ...)"
                                   ", gru, rnn")
    p.add_argument("--layers", type=_positive_int, help="recurrent layers (default 2)")
    p.add_argument("--hidden", type=_positive_int, help="units per layer (default 512)")
    p.add_argument("--embedding", type=_positive_int, help="embedding size (default: hidden)")
    p.add_argument("--tie", action="store_true", default=None,
                   help="tie embedding and decoder weights (embedding = hidden)")
    p.add_argument("--seq-len", type=_positive_int, help="BPTT window, tokens (default 100)")
    p.add_argument("--batch", type=_positive_int, help="parallel rows (default 64)")
    p.add_argument("--dropout", type=float, help="dropout (default 0)")
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], help="default adam")
    p.add_argument("--lr", type=float, help="learning rate (default 0.002)")
    p.add_argument("--clip", type=float, help="gradient-norm clip (default 5)")
    p.add_argument("--lr-decay", type=float, help="lr factor per epoch after --decay-after "
                                                  "(default 1: none)")
    p.add_argument("--decay-after", type=float, help="epochs before the lr decays (default 0)")
    p.add_argument("--decay-every", type=float, help="epochs between lr decays (default 1)")
    p.add_argument("--init-range", type=float, help="uniform init in [-r, r] (default: "
                                                    "PyTorch's)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="training time budget")
    budget.add_argument("--epochs", type=float, help="epochs to train (default 1)")
    budget.add_argument("--steps", type=_positive_int, help="optimiser steps to train")
    p.add_argument("--eval-every", type=_positive_int,
                   help="steps between validations (default: an epoch, at most 200)")
    p.add_argument("--eval-tokens", type=_positive_int,
                   help="validate on this many tokens (default: the whole split)")
    p.add_argument("--out", help="run directory (default runs/lm-NAME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    p.add_argument("--tensorboard", action="store_true",
                   help="write TensorBoard logs to OUT/tensorboard")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 can be "
                                                "faster when other work shares the cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", help="also write the result as JSON here")
    p.set_defaults(run=train)

    p = sub.add_parser("sample", help="stream text generated by a trained model")
    p.add_argument("checkpoint", help="run directory (its best checkpoint) or checkpoint file")
    p.add_argument("--prime", default=None, help="text to start from")
    p.add_argument("--length", type=int, default=500, help="tokens to generate (default 500)")
    p.add_argument("--temperature", type=float, default=1.0, help="> 0 (default 1)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely")
    p.add_argument("--seed", type=int, default=None, help="random seed (reproducible text)")
    p.set_defaults(run=sample)

    p = sub.add_parser("eval", help="nats, bits per token and perplexity on a text file")
    p.add_argument("checkpoint", help="run directory or checkpoint file")
    p.add_argument("file", help="UTF-8 text file")
    p.add_argument("--batch", type=_positive_int, default=16, help="rows (default 16)")
    p.add_argument("--seq-len", type=_positive_int, default=100, help="window (default 100)")
    p.add_argument("--json", help="also write the result as JSON here")
    p.set_defaults(run=evaluate)

    p = sub.add_parser("inspect", help="find interpretable cells; write an HTML page")
    p.add_argument("checkpoint", help="run directory or checkpoint file")
    p.add_argument("text", nargs="?", default=None,
                   help="text to read (default: the run's validation text)")
    p.add_argument("--file", help="read the text from this file")
    p.add_argument("--out", default="inspect.html", help="HTML page (default inspect.html)")
    p.add_argument("--cell", help="cell to colour by: N (layer-major) or LAYER:UNIT")
    p.add_argument("--top", type=_positive_int, default=3, help="cells per feature (default 3)")
    p.add_argument("--max-tokens", type=_positive_int, default=4000,
                   help="tokens of text to read (default 4000)")
    p.set_defaults(run=inspect)
