"""`lstmlab classify ...`: many-to-one text classification (train, eval, predict).

Each subcommand parses its flags and calls one function of ``lstmlab.experiments.classify``;
the training options and their defaults come from ``ClassifyConfig``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from lstmlab.commands.options import (
    add_config_options,
    clear_file_errors,
    config_from_args,
    input_texts,
    positive_float,
    positive_int,
)

FORMAT_HELP = ("file format: sst (<label> <text>), tsv (<label><TAB><text>), or auto: TSV when "
               "the first line has a tab (default auto)")


def add_budget_options(p: argparse.ArgumentParser) -> None:
    """--minutes / --epochs / --steps (as ``lm train``), --eval-every, and the run's plumbing:
    --out, --threads, --device, --no-progress, --json."""
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=positive_float, help="training time budget")
    budget.add_argument("--epochs", type=positive_float, help="epochs to train (default 10)")
    budget.add_argument("--steps", type=positive_int, help="optimiser steps to train")
    p.add_argument("--eval-every", type=positive_int,
                   help="steps between validations (default: one epoch)")
    p.add_argument("--out", help="run directory for the best model (default runs/KIND-NAME)")
    p.add_argument("--threads", type=positive_int,
                   help="torch CPU threads (default: torch's; 1 can be faster on a busy "
                        "machine)")
    p.add_argument("--device", default=None, help="cpu (default) or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", help="also write the result as JSON here")


def set_threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)


def default_out(args: argparse.Namespace, kind: str) -> str:
    return args.out or str(Path("runs") / f"{kind}-{Path(args.file).name.split('.')[0]}")


@clear_file_errors
def train(args: argparse.Namespace) -> None:
    from lstmlab.experiments.classify import ClassifyConfig, train_classifier

    set_threads(args)
    console = Console(stderr=True)
    config = config_from_args(ClassifyConfig, args)
    out = default_out(args, "classify")
    result = train_classifier(args.file, valid=args.valid, test=args.test, format=args.format,
                              out=out, minutes=args.minutes, epochs=args.epochs,
                              steps=args.steps, eval_every=args.eval_every,
                              progress=not args.no_progress, console=console,
                              device=args.device, **vars(config))
    console.print(result.summary())
    console.print(f"best model in {out}/; try: lstmlab classify predict {out} \"some text\"")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))


@clear_file_errors
def evaluate(args: argparse.Namespace) -> None:
    from lstmlab.experiments.classify import evaluate_classifier

    report = evaluate_classifier(args.checkpoint, args.file, args.format)
    print(f"{args.file}: accuracy {100 * report.accuracy:.2f}% "
          f"({sum(report.support):,} texts)\n")
    print(report.table())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1))


@clear_file_errors
def predict(args: argparse.Namespace) -> None:
    from lstmlab.experiments.classify import predict_texts

    texts, where = input_texts(args.text)
    for text, (label, probability) in zip(texts, predict_texts(args.checkpoint, texts, where),
                                          strict=True):
        print(f"{label}\t{probability:.4f}\t{text}")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``lstmlab classify train|eval|predict``."""
    from lstmlab.experiments.classify import ClassifyConfig

    classify = commands.add_parser(
        "classify", help="many-to-one: classify texts (sentiment...): train, eval, predict",
        description="Text classification with a recurrent network: word embedding (+ "
                    "character features) -> RNN / LSTM (any variant) / GRU -> pooling -> "
                    "softmax.")
    sub = classify.add_subparsers(dest="classify_command", required=True)

    p = sub.add_parser("train", help="train a classifier on a labelled file",
                       description="Train on FILE: one labelled text a line, '<label> <text>' "
                                   "(SST) or '<label><TAB><text>' (TSV); labels are any strings; "
                                   "blank lines are skipped (and counted). Without --valid a "
                                   "fixed random --valid-fraction of FILE validates. The run "
                                   "directory keeps the model of the best validation accuracy.")
    p.add_argument("file", help="training file")
    p.add_argument("--valid", help="validation file (default: held out of FILE)")
    p.add_argument("--test", help="test file, scored with the best weights at the end")
    p.add_argument("--format", choices=("auto", "sst", "tsv"), default="auto", help=FORMAT_HELP)
    add_config_options(p, ClassifyConfig, {
        "cell": "the recurrent cell: lstm (= lstm:NP), lstm:VARIANT (V, CIFG, NFG, ...), gru, "
                 "rnn",
        "layers": "recurrent layers",
        "hidden": "units per direction",
        "embedding": "word vector size",
        "pooling": "last, max, mean or attention",
        "dropout": "dropout on word vectors, between layers and before the output",
        "word_dropout": "probability that a training word becomes <unk>",
        "rare_dropout": "alpha: besides, a training word seen n times becomes <unk> with "
                        "probability alpha / (alpha + n)",
        "chars": "add character features of each word (a character BiLSTM)",
        "char_embedding": "character vector size",
        "char_hidden": "units per direction of the character layer",
        "min_freq": "words seen fewer times become <unk>",
        "lowercase": "lowercase words (also when predicting)",
        "batch": "texts per step",
        "optimizer": "adam, adamw or sgd",
        "lr": "learning rate",
        "weight_decay": "weight decay",
        "clip": "gradient-norm clip",
        "lr_decay": "multiply the learning rate by this after a validation with no new best",
        "average": "validate and save a moving average of the weights with this decay per "
                   "step, e.g. 0.999 (0: none)",
        "valid_fraction": "part of FILE held out without --valid",
        "seed": "random seed (with --members K: seed*K, seed*K + 1, ...)",
        "members": "train this many classifiers, each for an equal share of --minutes (--epochs "
                   "and --steps are each member's), and keep their ensemble: probabilities "
                   "averaged",
    }, types={"average": float, "dropout": float, "word_dropout": float, "rare_dropout": float,
              "lr": positive_float,
              "weight_decay": float, "clip": positive_float, "lr_decay": positive_float,
              "valid_fraction": float,
              "seed": int},
        choices={"pooling": ("last", "max", "mean", "attention"),
                 "optimizer": ("adam", "adamw", "sgd")},
        unset=True, flags={"cell": ("--cell", "--model")})
    p.add_argument("--no-bidirectional", dest="bidirectional", action="store_false",
                   default=None, help="read texts left to right only (default: both ways)")
    add_budget_options(p)
    p.set_defaults(run=train)

    p = sub.add_parser("eval", help="accuracy, per-class precision/recall/F1, confusion matrix")
    p.add_argument("checkpoint", help="run directory (or its best.json)")
    p.add_argument("file", help="labelled file (labels the model knows)")
    p.add_argument("--format", choices=("auto", "sst", "tsv"), default="auto", help=FORMAT_HELP)
    p.add_argument("--json", help="also write the scores as JSON here")
    p.set_defaults(run=evaluate)

    p = sub.add_parser("predict", help="label and probability of each text",
                       description="Classify each TEXT (split on whitespace), or each line of "
                                   "standard input (blank lines skipped and counted). Prints "
                                   "label<TAB>probability<TAB>text per line.")
    p.add_argument("checkpoint", help="run directory (or its best.json)")
    p.add_argument("text", nargs="*", help="texts to classify (default: lines of stdin)")
    p.set_defaults(run=predict)
