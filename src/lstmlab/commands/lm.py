"""`lstmlab lm ...`: language-model commands (train, sample, eval, inspect).

Each subcommand parses its flags and calls one function of ``lstmlab.experiments.lm_*``;
the training options and their defaults come from ``LMConfig``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console

from lstmlab.commands.options import (
    add_config_options,
    clear_file_errors,
    config_defaults,
    positive_float,
    positive_int,
)


@clear_file_errors
def train(args: argparse.Namespace) -> None:
    import torch

    from lstmlab.experiments.lm_train import LMConfig, train_language_model

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    console = Console(stderr=True, quiet=os.environ.get("RANK", "0") != "0")  # torchrun: rank 0
    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise ValueError(f"--json {args.json}: its folder does not exist")
    out = args.out
    if out is None:
        name = Path(args.file).stem if args.file else "tinyshakespeare"
        out = str(Path("runs") / f"lm-{name}")
    result = train_language_model(
        args.file, out=out, resume=args.resume, minutes=args.minutes, epochs=args.epochs,
        steps=args.steps, eval_every=args.eval_every, eval_tokens=args.eval_tokens,
        tensorboard=args.tensorboard, progress=not args.no_progress, console=console,
        device=args.device,
        **{name: getattr(args, name) for name in config_defaults(LMConfig) if hasattr(args, name)})
    console.print(result.summary())
    if result.stopped_by == "interrupt":
        raise KeyboardInterrupt  # exit 130, after the position was saved
    console.print(f"checkpoints in {out}/ (best.json, last.json); try: lstmlab lm sample {out}")
    if args.json and not console.quiet:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))


@clear_file_errors
def sample(args: argparse.Namespace) -> None:
    from lstmlab.experiments.lm_sample import sample as sample_text

    pieces = sample_text(args.checkpoint, args.prime, args.length,
                         temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                         seed=args.seed)
    if args.prime:
        sys.stdout.write(args.prime)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


@clear_file_errors
def evaluate(args: argparse.Namespace) -> None:
    from lstmlab.experiments.lm_eval import evaluate as evaluate_file

    result = evaluate_file(args.checkpoint, args.file, batch_size=args.batch,
                           seq_len=args.seq_len, skip_unknown=args.skip_unknown)
    print(f"{args.file}: {result.summary()}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))


@clear_file_errors
def inspect(args: argparse.Namespace) -> None:
    from lstmlab.experiments.lm_inspect import inspect as inspect_cells

    text = args.text
    if args.file is not None:
        if text is not None:
            raise ValueError("give TEXT or --file, not both")
        from lstmlab.tasks.text import read_text

        text = read_text(args.file, "inspect")
    inspect_cells(args.checkpoint, text, out=args.out, cell=args.cell, top=args.top,
                  max_tokens=args.max_tokens, console=Console(),
                  skip_unknown=args.skip_unknown)


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
    from lstmlab.experiments.lm_train import LMConfig

    add_config_options(p, LMConfig, {
        "level": "tokens: char or word",
        "cell": "the recurrent cell: lstm (= lstm:NP), lstm:VARIANT (V, CIFG, NFG, ...), gru, "
                 "rnn",
        "layers": "recurrent layers",
        "hidden": "units per layer",
        "embedding": "embedding size (none: the hidden size)",
        "tie": "tie embedding and decoder weights (embedding = hidden)",
        "seq_len": "BPTT window, tokens",
        "batch": "parallel rows (shared among torchrun's processes)",
        "dropout": "dropout on embeddings, between layers and before the decoder",
        "optimizer": "adam, adamw or sgd",
        "lr": "learning rate",
        "clip": "gradient-norm clip",
        "lr_decay": "lr factor per epoch after --decay-after (1: none)",
        "decay_after": "epochs before the lr decays",
        "decay_every": "epochs between lr decays",
        "init_range": "uniform init in [-r, r] (none: PyTorch's)",
        "seed": "random seed",
    }, types={"embedding": positive_int, "dropout": float, "lr": positive_float,
              "clip": positive_float, "lr_decay": positive_float, "decay_after": float,
              "decay_every": positive_float, "init_range": positive_float, "seed": int},
        choices={"level": ("char", "word"), "optimizer": ("adam", "adamw", "sgd")},
        unset=True, flags={"cell": ("--cell", "--model")})
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=positive_float, help="training time budget")
    budget.add_argument("--epochs", type=positive_float, help="epochs to train (default 1)")
    budget.add_argument("--steps", type=positive_int, help="optimiser steps to train")
    p.add_argument("--eval-every", type=positive_int,
                   help="steps between validations (default: an epoch, at most 200)")
    p.add_argument("--eval-tokens", type=positive_int,
                   help="validate on this many tokens (default: the whole split)")
    p.add_argument("--out", help="run directory (default runs/lm-NAME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    p.add_argument("--tensorboard", action="store_true",
                   help="write TensorBoard logs to OUT/tensorboard")
    p.add_argument("--threads", type=positive_int,
                   help="torch CPU threads per process (default: torch's; 1 can be faster when "
                        "other work shares the cores)")
    p.add_argument("--device", default=None,
                   help="cpu (default) or cuda; under torchrun each process takes its own GPU")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", help="also write the result as JSON here")
    p.set_defaults(run=train)

    p = sub.add_parser("sample", help="stream text generated by a trained model")
    p.add_argument("checkpoint", help="run directory (its best checkpoint) or checkpoint file")
    p.add_argument("--prime", default=None, help="text to start from")
    p.add_argument("--length", type=int, default=500, help="tokens to generate (default 500)")
    p.add_argument("--temperature", type=float, default=1.0, help="> 0 (default 1)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely")
    p.add_argument("--top-p", type=float, default=None,
                   help="sample among the fewest most likely tokens whose probability reaches p "
                        "(nucleus sampling, 0 < p <= 1)")
    p.add_argument("--seed", type=int, default=None, help="random seed (reproducible text)")
    p.set_defaults(run=sample)

    p = sub.add_parser("eval", help="nats, bits per token and perplexity on a text file")
    p.add_argument("checkpoint", help="run directory or checkpoint file")
    p.add_argument("file", help="UTF-8 text file")
    p.add_argument("--batch", type=positive_int, default=16,
                   help="spans evaluated at once (default 16): the speed, not the figure")
    p.add_argument("--seq-len", type=positive_int, default=100,
                   help="window (default 100): the memory used, not the figure")
    p.add_argument("--skip-unknown", action="store_true",
                   help="leave out symbols the model's vocabulary lacks (counted) instead of "
                        "refusing the file")
    p.add_argument("--json", help="also write the result as JSON here")
    p.set_defaults(run=evaluate)

    p = sub.add_parser("inspect", help="find interpretable cells; write an HTML page")
    p.add_argument("checkpoint", help="run directory or checkpoint file")
    p.add_argument("text", nargs="?", default=None,
                   help="text to read (default: the run's validation text)")
    p.add_argument("--file", help="read the text from this file")
    p.add_argument("--out", default="inspect.html", help="HTML page (default inspect.html)")
    p.add_argument("--cell", help="cell to colour by: N (layer-major) or LAYER:UNIT")
    p.add_argument("--top", type=positive_int, default=3, help="cells per feature (default 3)")
    p.add_argument("--max-tokens", type=positive_int, default=4000,
                   help="tokens of text to read (default 4000)")
    p.add_argument("--skip-unknown", action="store_true",
                   help="leave out symbols the model's vocabulary lacks (counted)")
    p.set_defaults(run=inspect)
