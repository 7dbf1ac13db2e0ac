"""`lstmlab export ...`: a saved model for other runtimes (onnx, web).

    lstmlab export onnx runs/shakespeare lm.onnx [--force] [--opset 17] [--state] [--check]
    lstmlab export onnx runs/de-en translator.onnx    # and translator.step.onnx
    lstmlab export web runs/shakespeare site/model/ [--force]

Each subcommand loads the checkpoint with ``lstmlab.load`` and calls one function of
``lstmlab.export``.
"""

from __future__ import annotations

import argparse
import json

from lstmlab.commands.options import clear_file_errors


def _load(checkpoint: str):
    """The saved model and its extra data (vocabularies, labels, tokenizers)."""
    from lstmlab.models.registry import load_saved

    return load_saved(checkpoint)


@clear_file_errors
def onnx(args: argparse.Namespace) -> None:
    from lstmlab.export.onnx import compare, to_onnx

    saved = _load(args.checkpoint)
    model = saved.model
    path = to_onnx(model, args.out, force=args.force, opset=args.opset,
                   lengths=True if args.lengths else None, initial_state=args.state,
                   extra=saved.extra)
    import onnx as onnx_package  # present: to_onnx needs it

    proto = onnx_package.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    print(f"{path}: {meta['lstmlab.kind']}, opset {args.opset}, recurrent layers as "
          f"{meta['lstmlab.recurrent']}, {path.stat().st_size:,} bytes")
    if "lstmlab.extra" in meta:
        keys = ", ".join(json.loads(meta["lstmlab.extra"]))
        print(f"  metadata lstmlab.extra: the saved model's {keys}")
    _print_signature(proto)
    if "lstmlab.step_graph" in meta:  # a decoding kind: the start graph and the step graph
        step = path.with_name(meta["lstmlab.step_graph"])
        print(f"{step}: one decoder step, {step.stat().st_size:,} bytes")
        _print_signature(onnx_package.load(str(step), load_external_data=False))
    if args.check:
        worst = compare(model, path)
        print(f"  onnxruntime vs lstmlab on a random batch: max abs difference {worst:.2e}")


def _print_signature(proto) -> None:
    for label, values in (("inputs", proto.graph.input), ("outputs", proto.graph.output)):
        print(f"  {label}: " + "; ".join(f"{v.name} {_shape(v)}" for v in values))


def _shape(value) -> str:
    from onnx import helper

    tensor = value.type.tensor_type
    dims = [d.dim_param or str(d.dim_value) for d in tensor.shape.dim]
    return f"({', '.join(dims)}{',' if len(dims) == 1 else ''}) " \
           f"{helper.tensor_dtype_to_np_dtype(tensor.elem_type)}"


@clear_file_errors
def web(args: argparse.Namespace) -> None:
    try:
        from lstmlab.export.web import to_web
    except ModuleNotFoundError as error:
        if error.name != "lstmlab.export.web":
            raise
        raise ValueError("this lstmlab has no web export (lstmlab.export.web is missing)"
                         ) from None
    saved = _load(args.checkpoint)
    out = to_web(saved.model, args.out, force=args.force, extra=saved.extra)
    print(f"{out}: web export of {args.checkpoint}")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``lstmlab export onnx|web``."""
    from lstmlab.export.onnx import EXPORTABLE, OPSET, OPSETS

    export = commands.add_parser(
        "export", help="a saved model for other runtimes: onnx, web",
        description="Write a saved model (a run directory or checkpoint) in a format that "
                    "runs without lstmlab.")
    sub = export.add_subparsers(dest="export_command", required=True)

    p = sub.add_parser("onnx", help="an ONNX model file (onnxruntime and other runtimes)",
                       description=f"Write the model saved in CHECKPOINT as an ONNX graph: "
                                   f"dynamic batch and sequence length, eval mode, float32. "
                                   f"A translator or captioner becomes two files: OUT (reads "
                                   f"the input, gives the decoder's first state) and "
                                   f"beside it one decoder step (t.onnx: t.step.onnx). "
                                   f"Exportable: {EXPORTABLE}. Needs the export extra "
                                   "(pip install 'lstmlab[export]').")
    p.add_argument("checkpoint", help="run directory (or its best.json / model.json)")
    p.add_argument("out", help="the .onnx file to write")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--opset", type=int, default=OPSET, choices=list(OPSETS),
                   help=f"ONNX opset (default {OPSET})")
    p.add_argument("--lengths", action="store_true",
                   help="a lengths (B,) input for sequence and music models (classifiers and "
                        "taggers always have one)")
    p.add_argument("--state", action="store_true",
                   help="h0 / c0 inputs for the initial state (language_model, music)")
    p.add_argument("--check", action="store_true",
                   help="run the file in onnxruntime on a random batch and print the largest "
                        "difference from lstmlab")
    p.set_defaults(run=onnx)

    p = sub.add_parser("web", help="a manifest and weights for the plain-JS runtime",
                       description="Write the model saved in CHECKPOINT for lstmlab's "
                                   "JavaScript runtime (lstmlab.export.web).")
    p.add_argument("checkpoint", help="run directory (or its best.json / model.json)")
    p.add_argument("out", help="the folder to write")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(run=web)
