"""`lstmlab caption ...`: one-to-many image captioning (train, eval, describe).

Each subcommand parses its flags and calls one function of ``lstmlab.experiments.caption``;
the training options and their defaults come from ``CaptionConfig``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from lstmlab.commands.classify import add_budget_options, set_threads
from lstmlab.commands.options import (
    add_config_options,
    clear_file_errors,
    config_from_args,
    positive_float,
    positive_int,
)

DATA_HELP = ("a COCO-style captions file (annotations with image_id and caption) and its image "
             "folder; without them, the generated shapes scenes")


def data_arguments(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if (args.annotations is None) != (args.images is None):
        raise ValueError("give a captions file AND its image folder, or neither")
    return args.annotations, args.images


@clear_file_errors
def train(args: argparse.Namespace) -> None:
    from lstmlab.experiments.caption import CaptionConfig, train_captioner

    set_threads(args)
    console = Console(stderr=True)
    annotations, images = data_arguments(args)
    config = config_from_args(CaptionConfig, args)
    out = args.out or f"runs/caption-{config.attention}"
    result = train_captioner(annotations, images, out=out, minutes=args.minutes,
                             epochs=args.epochs, steps=args.steps, eval_every=args.eval_every,
                             progress=not args.no_progress, console=console,
                             device=args.device, **vars(config))
    console.print(result.summary())
    console.print(f"best model in {out}/; try: lstmlab caption eval {out}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))


@clear_file_errors
def evaluate(args: argparse.Namespace) -> None:
    from lstmlab.experiments.caption import evaluate_captioner

    annotations, images = data_arguments(args)
    out = args.out or str(Path(args.checkpoint) / "eval")
    report = evaluate_captioner(args.checkpoint, annotations, images, scenes=args.scenes,
                                beam=args.beam, out=out)
    print(f"{report.data}, beam {report.beam}: {report.scores.summary()}")
    for example in report.examples[:5]:
        mark = "" if example["truthful"] is None else (
            "  [truthful]" if example["truthful"] else "  [NOT truthful]")
        print(f"  {example['image']}: {example['caption']}{mark}")
    print(f"gallery: {report.gallery}")
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1))


@clear_file_errors
def describe(args: argparse.Namespace) -> None:
    from lstmlab.experiments.caption import describe_image

    print(describe_image(args.checkpoint, args.image, args.beam, args.show_attention))
    if args.show_attention:
        print(f"attention maps: {args.show_attention}")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``lstmlab caption train|eval|describe``."""
    from lstmlab.experiments.caption import CaptionConfig
    from lstmlab.train.loop import BUDGET_SCHEDULES

    caption = commands.add_parser(
        "caption", help="one-to-many: caption images (Show and Tell, Show Attend and Tell)",
        description="Image captioning: a small convolutional encoder and a recurrent decoder "
                    "(any cell), the image as the first input (--attention none) or soft "
                    "attention over the feature grid (--attention soft).")
    sub = caption.add_subparsers(dest="caption_command", required=True)

    p = sub.add_parser("train", help="train a captioner (generated shapes scenes by default)",
                       description="Train on the generated shapes scenes (seeds 0.. for "
                                   "training, 1,000,000,000.. for validation), or on a "
                                   "COCO-style captions file with its image folder. Images "
                                   "without captions are skipped and counted. The run "
                                   "directory keeps the model of the best validation.")
    p.add_argument("annotations", nargs="?", help=DATA_HELP)
    p.add_argument("images", nargs="?", help="the image folder of ANNOTATIONS")
    add_config_options(p, CaptionConfig, {
        "cell": "the decoder's cell: lstm (= lstm:NP), lstm:VARIANT, gru, rnn",
        "attention": "soft (Show, Attend and Tell; the default) or none (Show and Tell)",
        "embedding": "word vector size",
        "hidden": "decoder units",
        "attention_size": "attention width",
        "attention_reg": "weight of the doubly stochastic attention penalty",
        "dropout": "dropout before the output layer",
        "image_size": "pixels per side the model reads",
        "beam": "beam width of eval and describe (1: greedy)",
        "max_length": "most words per caption",
        "train_scenes": "generated training scenes",
        "valid_scenes": "generated validation scenes",
        "max_objects": "most objects per scene",
        "valid_fraction": "part of a captions file held out for validation",
        "batch": "images per step",
        "optimizer": "adam, adamw or sgd",
        "lr": "learning rate",
        "weight_decay": "weight decay",
        "clip": "gradient-norm clip",
        "schedule": "learning rate: constant, or cosine to 0 over the budget (steps, else "
                    "the clock of --minutes)",
        "seed": "random seed",
    }, types={"attention_reg": float, "dropout": float, "lr": positive_float,
              "weight_decay": float, "clip": positive_float, "valid_fraction": float,
              "seed": int},
        choices={"attention": ("none", "soft"), "optimizer": ("adam", "adamw", "sgd"),
                 "schedule": BUDGET_SCHEDULES},
        unset=True)
    add_budget_options(p)
    p.set_defaults(run=train)

    p = sub.add_parser("eval", help="BLEU-4, exact match and truthfulness; an HTML gallery",
                       description="Caption fresh shapes scenes (seeds from 2,000,000,000, "
                                   "never trained on) or the images of a COCO-style file, "
                                   "and score the captions: BLEU-4 (sacreBLEU), exact match, "
                                   "truthfulness (scenes: every stated fact holds). Writes "
                                   "gallery.html (with attention maps) and report.json.")
    p.add_argument("checkpoint", help="run directory (or its best.json)")
    p.add_argument("annotations", nargs="?", help=DATA_HELP)
    p.add_argument("images", nargs="?", help="the image folder of ANNOTATIONS")
    p.add_argument("--scenes", type=positive_int, default=1000,
                   help="fresh scenes to caption (default 1,000)")
    p.add_argument("--beam", type=positive_int, help="beam width (default: the run's)")
    p.add_argument("--out", help="folder for gallery.html and report.json (default "
                                 "CHECKPOINT/eval)")
    p.add_argument("--json", help="also write the report as JSON here")
    p.set_defaults(run=evaluate)

    p = sub.add_parser("describe", help="caption an image file",
                       description="Print the caption of IMAGE (any format Pillow reads, "
                                   "resized to the model's size).")
    p.add_argument("checkpoint", help="run directory (or its best.json)")
    p.add_argument("image", help="the image file")
    p.add_argument("--beam", type=positive_int, help="beam width (default: the run's)")
    p.add_argument("--show-attention", metavar="OUT.png",
                   help="write the attention map of each word over the image (soft "
                        "attention models)")
    p.set_defaults(run=describe)
