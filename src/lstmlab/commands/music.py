"""`lstmlab music ...`: polyphonic music, next-frame prediction (train, eval, generate).

Each subcommand parses its flags and calls one function of ``lstmlab.experiments.music``; the
training options and their defaults come from ``MusicConfig``.
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
    positive_float,
    positive_int,
)

DATA_HELP = ('JSON {"train": [[[60, 64, 67], ...], ...], "valid": ..., "test": ...} (pieces -> '
             "steps -> MIDI pitches 21..108), the JSB Chorales pickle, or a plain list of "
             "pieces")


@clear_file_errors
def train(args: argparse.Namespace) -> None:
    from lstmlab.experiments.music import MusicConfig, train_music

    set_threads(args)
    console = Console(stderr=True)
    config = config_from_args(MusicConfig, args)
    out = default_out(args, "music")
    result = train_music(args.file, valid=args.valid, test=args.test, out=out,
                         minutes=args.minutes, epochs=args.epochs, steps=args.steps,
                         eval_every=args.eval_every, progress=not args.no_progress,
                         console=console, device=args.device, **vars(config))
    console.print(result.summary())
    console.print(f"best model in {out}/; try: lstmlab music generate {out} --out piece.mid")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))


@clear_file_errors
def evaluate(args: argparse.Namespace) -> None:
    from lstmlab.experiments.music import evaluate_music

    scores = evaluate_music(args.checkpoint, args.file, args.split)
    print(f"{args.file} {scores.summary()}")
    if args.json:
        Path(args.json).write_text(json.dumps(scores.__dict__, indent=1))


@clear_file_errors
def generate(args: argparse.Namespace) -> None:
    from lstmlab.experiments.music import generate_music

    made = generate_music(args.checkpoint, args.out, steps=args.steps,
                          temperature=args.temperature, seed=args.seed, prime=args.prime,
                          split=args.split, piece=args.piece, prime_steps=args.prime_steps,
                          step_seconds=args.step_seconds, png=not args.no_png)
    start = f"primed with {made.primed} steps" if made.primed else "from silence"
    print(f"{made.midi}: {made.roll.shape[0]} steps ({start}, {args.steps} generated)"
          + (f"; piano roll {made.png}" if made.png else ""))


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``lstmlab music train|eval|generate``."""
    from lstmlab.experiments.music import MusicConfig

    music = commands.add_parser(
        "music", help="many-to-many, multi-label: polyphonic music (JSB Chorales): train, "
                      "eval, generate",
        description="Next-frame prediction on 88-key piano rolls with a recurrent network "
                    "(any LSTM variant, GRU, RNN) and 88 independent sigmoids.")
    sub = music.add_subparsers(dest="music_command", required=True)

    p = sub.add_parser("train", help="train on the train split of a music file",
                       description=f"Train on FILE: {DATA_HELP}. Validation: its valid split, "
                                   "--valid, or held-out pieces; test: its test split or "
                                   "--test. The run directory keeps the model of the best "
                                   "validation frame NLL.")
    p.add_argument("file", help="music file (.json or .pickle)")
    p.add_argument("--valid", help="validation pieces (its valid split, or all its pieces)")
    p.add_argument("--test", help="test pieces (its test split, or all its pieces)")
    add_config_options(p, MusicConfig, {
        "cell": "the recurrent cell: lstm (= lstm:NP), lstm:VARIANT (V, CIFG, NFG, ...), gru, "
                 "rnn",
        "layers": "recurrent layers",
        "hidden": "units per layer",
        "dropout": "dropout between layers and before the output",
        "batch": "pieces per step",
        "optimizer": "adam, adamw or sgd",
        "lr": "learning rate",
        "weight_decay": "weight decay",
        "clip": "gradient-norm clip",
        "lr_decay": "multiply the learning rate by this after a validation with no new best",
        "average": "validate and save a moving average of the weights with this decay per "
                   "step, e.g. 0.999 (0: none)",
        "valid_fraction": "training pieces held out when there is no valid split",
        "seed": "random seed",
    }, types={"average": float, "dropout": float, "lr": positive_float, "weight_decay": float,
              "clip": positive_float, "lr_decay": positive_float, "valid_fraction": float,
              "seed": int},
        choices={"optimizer": ("adam", "adamw", "sgd")},
        unset=True, flags={"cell": ("--cell", "--model")})
    add_budget_options(p)
    p.set_defaults(run=train)

    p = sub.add_parser("eval", help="frame negative log-likelihood (nats) on a split",
                       description="The frame NLL of the published tables: per predicted "
                                   "frame the sum over the 88 keys of the binary cross-entropy "
                                   "in nats, averaged over every predicted frame of every "
                                   "piece (a piece's first frame is input only).")
    p.add_argument("checkpoint", help="run directory (or its best.json)")
    p.add_argument("file", help="music file")
    p.add_argument("--split", default="test", help="split to score (default test)")
    p.add_argument("--json", help="also write the score as JSON here")
    p.set_defaults(run=evaluate)

    p = sub.add_parser("generate", help="sample a piece; write MIDI and a piano-roll PNG")
    p.add_argument("checkpoint", help="run directory (or its best.json)")
    p.add_argument("--out", default="piece.mid", help="MIDI file to write (default piece.mid; "
                                                      "the PNG goes beside it)")
    p.add_argument("--steps", type=positive_int, default=64,
                   help="steps to generate (default 64)")
    p.add_argument("--temperature", type=positive_float, default=1.0,
                   help="> 0; below 1 fewer surprises (default 1)")
    p.add_argument("--seed", type=int, default=None, help="random seed (the same piece again)")
    p.add_argument("--prime", help="music file or .mid to start from (default: silence)")
    p.add_argument("--split", default="test", help="the prime file's split (default test)")
    p.add_argument("--piece", type=int, default=0, help="the prime piece's index (default 0)")
    p.add_argument("--prime-steps", type=positive_int,
                   help="use only the prime's first N steps (default all)")
    p.add_argument("--step-seconds", type=positive_float, default=0.5,
                   help="seconds per step in the MIDI file (default 0.5: quarter notes at 120 "
                        "bpm)")
    p.add_argument("--no-png", action="store_true", help="write no piano-roll picture")
    p.set_defaults(run=generate)
