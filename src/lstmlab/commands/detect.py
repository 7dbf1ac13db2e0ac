"""`lstmlab detect ...`: people detection, ReInspect against NMS (train, eval, show).

Each subcommand parses its flags and calls one function of ``lstmlab.experiments.detect``;
the training options and their defaults come from ``DetectConfig``.
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

DATA_HELP = ("a COCO-style boxes file (annotations with image_id and bbox [x, y, w, h]) and "
             "its image folder; without them, generated crowds")


def data_arguments(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if (args.annotations is None) != (args.images is None):
        raise ValueError("give a boxes file AND its image folder, or neither")
    return args.annotations, args.images


@clear_file_errors
def train(args: argparse.Namespace) -> None:
    from lstmlab.experiments.detect import DetectConfig, train_detector

    set_threads(args)
    console = Console(stderr=True)
    annotations, images = data_arguments(args)
    config = config_from_args(DetectConfig, args)
    out = args.out or f"runs/detect-{config.model}"
    result = train_detector(annotations, images, out=out, minutes=args.minutes,
                            epochs=args.epochs, steps=args.steps, eval_every=args.eval_every,
                            progress=not args.no_progress, console=console,
                            device=args.device, **vars(config))
    console.print(result.summary())
    console.print(f"best model in {out}/; try: lstmlab detect eval {out}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))


@clear_file_errors
def evaluate(args: argparse.Namespace) -> None:
    from lstmlab.experiments.detect import evaluate_detectors

    annotations, images = data_arguments(args)
    paths = [args.checkpoint] + ([args.baseline] if args.baseline else [])
    out = args.out or str(Path(args.checkpoint) / "eval")
    report = evaluate_detectors(paths, annotations, images, scenes_count=args.scenes, out=out)
    print(f"AP at IoU 0.5 on {report.data}\n")
    print(report.table())
    print(f"\ngallery: {report.files['gallery']}\nPR curves: {report.files['pr_curves']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1))


@clear_file_errors
def show(args: argparse.Namespace) -> None:
    from lstmlab.experiments.detect import show_detections

    paths = [args.checkpoint] + ([args.baseline] if args.baseline else [])
    for name, count in show_detections(paths, args.image, args.out, args.min_score):
        print(f"{name}: {count} boxes")
    print(f"wrote {args.out}")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``lstmlab detect train|eval|show``."""
    from lstmlab.experiments.detect import DetectConfig

    detect = commands.add_parser(
        "detect", help="people detection in crowds: ReInspect (LSTM per cell) or NMS",
        description="ReInspect (Stewart et al. 2016): a feature grid and in each cell a "
                    "recurrent decoder that emits one box after another, trained with a "
                    "Hungarian loss, stitched without NMS; or the baseline: one box per cell, "
                    "then non-maximum suppression.")
    sub = detect.add_subparsers(dest="detect_command", required=True)

    p = sub.add_parser("train", help="train a detector (generated crowds by default)",
                       description="Train on generated crowds (seeds 0.. for training, "
                                   "1,000,000,000.. for validation), or on a COCO-style boxes "
                                   "file with its image folder. The run directory keeps the "
                                   "model of the best validation AP.")
    p.add_argument("annotations", nargs="?", help=DATA_HELP)
    p.add_argument("images", nargs="?", help="the image folder of ANNOTATIONS")
    add_config_options(p, DetectConfig, {
        "model": "lstm (ReInspect) or nms (one box per cell, then NMS)",
        "cell": "the decoder's cell: lstm (= lstm:NP), lstm:VARIANT, gru, rnn",
        "max_boxes": "boxes per cell (lstm)",
        "hidden": "decoder units",
        "image_size": "pixels per side the model reads",
        "region": "cell widths beyond its square that a cell answers for (lstm)",
        "box_weight": "weight of the L1 box loss",
        "nms_iou": "NMS threshold (nms)",
        "stitch_iou": "stitching threshold (lstm)",
        "train_scenes": "generated training scenes",
        "valid_scenes": "generated validation scenes",
        "max_people": "most people per generated scene",
        "valid_fraction": "part of a boxes file held out for validation",
        "batch": "images per step",
        "optimizer": "adam, adamw or sgd",
        "lr": "learning rate",
        "weight_decay": "weight decay",
        "clip": "gradient-norm clip",
        "seed": "random seed",
    }, types={"region": float, "box_weight": positive_float, "nms_iou": float,
              "stitch_iou": float, "lr": positive_float, "weight_decay": float,
              "clip": positive_float, "valid_fraction": float, "seed": int},
        choices={"model": ("lstm", "nms"), "optimizer": ("adam", "adamw", "sgd")},
        unset=True)
    add_budget_options(p)
    p.set_defaults(run=train)

    p = sub.add_parser("eval", help="AP at IoU 0.5 and PR curves, by density and overlap",
                       description="Detect people in fresh crowds (seeds from "
                                   "2,000,000,000, never trained on) or in the images of a "
                                   "COCO-style file; print AP at IoU 0.5 (VOC all-point) "
                                   "overall and per bucket of people per image and of overlap, "
                                   "for the model and --baseline side by side; write "
                                   "pr_curves.png, gallery.html and report.json.")
    p.add_argument("checkpoint", help="run directory (or its best.json)")
    p.add_argument("annotations", nargs="?", help=DATA_HELP)
    p.add_argument("images", nargs="?", help="the image folder of ANNOTATIONS")
    p.add_argument("--baseline", help="a second run directory to compare with")
    p.add_argument("--scenes", type=positive_int, default=500,
                   help="fresh crowds to evaluate on (default 500)")
    p.add_argument("--out", help="folder for the report (default CHECKPOINT/eval)")
    p.add_argument("--json", help="also write the report as JSON here")
    p.set_defaults(run=evaluate)

    p = sub.add_parser("show", help="draw the detected boxes on an image file")
    p.add_argument("checkpoint", help="run directory (or its best.json)")
    p.add_argument("image", help="the image file")
    p.add_argument("--baseline", help="a second run directory: its boxes too, in another "
                                      "colour")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--min-score", type=positive_float, default=0.5,
                   help="draw boxes with at least this confidence (default 0.5)")
    p.set_defaults(run=show)
