"""`lstmlab tag ...`: many-to-many sequence tagging (train, eval, predict).

Each subcommand parses its flags and calls one function of ``lstmlab.experiments.tag``; the
training options and their defaults come from ``TagConfig``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from lstmlab.commands.classify import add_budget_options, default_out, set_threads
from lstmlab.commands.options import (
    add_config_options,
    clear_file_errors,
    config_from_args,
    input_texts,
    positive_float,
)

FORMAT_HELP = ("file format: conllu (CoNLL-U), conll (token<TAB>tag, blank line between "
               "sentences) or auto: CoNLL-U for a .conllu name or 10 tab-separated columns "
               "(default auto); gzip is read as is")
COLUMN_HELP = ("the tag column: a CoNLL-U column name or number (default upos), or for CoNLL "
               "a number from 2 (default: the last column)")


@clear_file_errors
def train(args: argparse.Namespace) -> None:
    from lstmlab.experiments.tag import TagConfig, train_tagger

    set_threads(args)
    console = Console(stderr=True)
    config = config_from_args(TagConfig, args)
    out = default_out(args, "tag")
    result = train_tagger(args.file, valid=args.valid, test=args.test, format=args.format,
                          column=args.column, out=out, minutes=args.minutes, epochs=args.epochs,
                          steps=args.steps, eval_every=args.eval_every,
                          progress=not args.no_progress, console=console, device=args.device,
                          **vars(config))
    console.print(result.summary())
    console.print(f"best model in {out}/; try: lstmlab tag predict {out} \"Time flies .\"")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))


@clear_file_errors
def evaluate(args: argparse.Namespace) -> None:
    from lstmlab.experiments.tag import evaluate_tagger

    scores = evaluate_tagger(args.checkpoint, args.file, args.format, args.column)
    print(f"{args.file}: {scores.summary()}")
    if args.json:
        Path(args.json).write_text(json.dumps(scores.to_dict(), indent=1))


@clear_file_errors
def predict(args: argparse.Namespace) -> None:
    from lstmlab.experiments.tag import predict_tags

    texts, where = input_texts(args.text)
    for text, tags in zip(texts, predict_tags(args.checkpoint, texts, where), strict=True):
        print(" ".join(f"{word}/{tag}" for word, tag in zip(text.split(), tags, strict=True)))


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``lstmlab tag train|eval|predict``."""
    from lstmlab.experiments.tag import TagConfig

    tag = commands.add_parser(
        "tag", help="many-to-many: tag every word (part of speech, entities): train, eval, "
                    "predict",
        description="Sequence tagging with a recurrent network: word embedding + character "
                    "BiLSTM of each word -> BiLSTM (any variant) -> a softmax per word.")
    sub = tag.add_subparsers(dest="tag_command", required=True)

    p = sub.add_parser("train", help="train a tagger on a CoNLL-U or CoNLL file",
                       description="Train on FILE: CoNLL-U (UPOS by default; multi-word token "
                                   "and empty-node lines are skipped and counted) or "
                                   "token<TAB>tag lines with blank lines between sentences "
                                   "(-DOCSTART- lines skipped and counted). Without --valid a "
                                   "fixed random --valid-fraction of the sentences validates. "
                                   "The run directory keeps the model of the best validation "
                                   "token accuracy.")
    p.add_argument("file", help="training file (.conllu, .conllu.gz, or CoNLL)")
    p.add_argument("--valid", help="validation file (default: held out of FILE)")
    p.add_argument("--test", help="test file, scored with the best weights at the end")
    p.add_argument("--format", choices=("auto", "conllu", "conll"), default="auto",
                   help=FORMAT_HELP)
    p.add_argument("--column", help=COLUMN_HELP)
    add_config_options(p, TagConfig, {
        "cell": "the recurrent cell: lstm (= lstm:NP), lstm:VARIANT (V, CIFG, NFG, ...), gru, "
                 "rnn",
        "layers": "recurrent layers",
        "hidden": "units per direction",
        "embedding": "word vector size",
        "dropout": "dropout on word vectors, between layers and before the output",
        "word_dropout": "probability that a training word becomes <unk>",
        "rare_dropout": "alpha: besides, a training word seen n times becomes <unk> with "
                        "probability alpha / (alpha + n)",
        "char_embedding": "character vector size",
        "char_hidden": "units per direction of the character layer",
        "min_freq": "words seen fewer times become <unk>",
        "lowercase": "lowercase words (characters keep their case)",
        "batch": "sentences per step",
        "optimizer": "adam, adamw or sgd",
        "lr": "learning rate",
        "weight_decay": "weight decay",
        "clip": "gradient-norm clip",
        "lr_decay": "multiply the learning rate by this after a validation with no new best",
        "average": "validate and save a moving average of the weights with this decay per "
                   "step, e.g. 0.999 (0: none)",
        "valid_fraction": "part of FILE held out without --valid",
        "seed": "random seed",
    }, types={"average": float, "dropout": float, "word_dropout": float, "rare_dropout": float,
              "lr": positive_float,
              "weight_decay": float, "clip": positive_float, "lr_decay": positive_float,
              "valid_fraction": float,
              "seed": int},
        choices={"optimizer": ("adam", "adamw", "sgd")},
        unset=True, flags={"cell": ("--cell", "--model")})
    p.add_argument("--no-chars", dest="chars", action="store_false", default=None,
                   help="no character features (default: a character BiLSTM per word)")
    p.add_argument("--no-bidirectional", dest="bidirectional", action="store_false",
                   default=None, help="read sentences left to right only (default: both ways)")
    add_budget_options(p)
    p.set_defaults(run=train)

    p = sub.add_parser("eval", help="token accuracy (and entity P/R/F1 for BIO tags)")
    p.add_argument("checkpoint", help="run directory (or its best.json)")
    p.add_argument("file", help="tagged file (tags the model knows)")
    p.add_argument("--format", choices=("auto", "conllu", "conll"), default="auto",
                   help=FORMAT_HELP)
    p.add_argument("--column", help=COLUMN_HELP.replace("(default upos)",
                                                        "(default: as in training)"))
    p.add_argument("--json", help="also write the scores as JSON here")
    p.set_defaults(run=evaluate)

    p = sub.add_parser("predict", help="tag whitespace-separated tokens; prints token/TAG",
                       description="Tag each TEXT, or each line of standard input (blank lines "
                                   "skipped and counted), split on whitespace.")
    p.add_argument("checkpoint", help="run directory (or its best.json)")
    p.add_argument("text", nargs="*", help="sentences to tag (default: lines of stdin)")
    p.set_defaults(run=predict)
