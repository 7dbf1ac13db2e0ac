"""ONNX export: ``to_onnx(module, path)`` writes an lstmlab model or layer as an ONNX graph that
onnxruntime (or any ONNX runtime) runs without lstmlab or torch.

    >>> lstmlab.export.to_onnx(lstmlab.LSTM(8, 32, 2, variant="CIFG"), "lstm.onnx")
    >>> lstmlab.export.to_onnx(lstmlab.load("runs/shakespeare"), "lm.onnx", initial_state=True)

What can be exported (``EXPORTABLE``): a bare ``lstmlab.LSTM`` (any variant, proj_size too),
``GRU`` or ``RNN`` (torch.nn's three are converted first), and the model kinds sequence,
language_model, music, classifier, tagger and lstm1997 (built here), translator, captioner
and detector (built by ``lstmlab.export.onnx_decoders``: a translator or captioner is a start
graph and a one-step graph in two files). Each graph takes what the model's forward takes and
returns its outputs first; batch and sequence length are dynamic. The graph computes the model
in eval mode (no dropout), in float32. How each recurrent layer maps to ONNX operators is
told in ``lstmlab.export.onnx_graph`` (and in the README's mapping table).

Graph inputs and outputs, by kind (T steps, B sequences; D = 2 for a bidirectional layer;
``?`` marks what the options add):

    layer           input (T, B, I) f32 [lengths (B,) i64]? [h0, c0]? -> output (T, B, D*Hy),
                    h_n (L*D, B, Hy), c_n (L*D, B, H) (LSTM only); (B, T, I) with batch_first
    sequence        inputs (T, B, I) f32 [lengths]? -> outputs (T, B, O)
    language_model  inputs (T, B) i64 [h0, c0]? -> logits (T, B, V), h_n, c_n
    music           frames (T, B, K) f32 [lengths]? [h0, c0]? -> logits (T, B, K),
                    probabilities (T, B, K) (sigmoid of the logits), h_n, c_n
    classifier      words (T, B) i64, lengths (B,) i64 [chars (B, T', W) i64,
                    char_lengths (B, T') i64 when the model reads characters] -> logits (B, K)
    tagger          as classifier -> logits (T, B, K)
    lstm1997        inputs (T, B, I) f32 -> outputs (T, B, O)

h0 / c0 are (L*D, B, Hy) / (L*D, B, H) and c0 / c_n exist for LSTMs only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from lstmlab.io import atomic_write_bytes
from lstmlab.layers import GRU, LSTM, RNN, RecurrentLayer
from lstmlab.models.classifier import TextClassifier
from lstmlab.models.language import LanguageModel
from lstmlab.models.lstm1997 import LSTM1997, SIGMOID_SQUASHES
from lstmlab.models.music import MusicModel
from lstmlab.models.registry import kind_of, unwrap
from lstmlab.models.sequence import SequenceModel
from lstmlab.models.tagger import SequenceTagger
from lstmlab.models.words import WordEncoder

if TYPE_CHECKING:
    from lstmlab.export.onnx_graph import Graph, Recurrent

og = None  # lstmlab.export.onnx_graph, imported by to_onnx: onnx (the "export" extra) is
#            imported only when a model is exported, not when the command line starts

OPSET = 17
"""The default ONNX opset (onnxruntime >= 1.11 runs it)."""
OPSETS = range(17, 22)
"""The opsets ``to_onnx`` writes (17 to 21; the tests run 17 and 21)."""
EXTRA = "pip install 'lstmlab[export]'"


class MissingExtraError(ImportError, ValueError):
    """An optional package the export needs is not installed (an ImportError, and a ValueError
    so that the command line reports it in one line)."""


def require(package: str) -> None:
    """Raise ``MissingExtraError`` naming the extra to install unless ``package`` imports."""
    try:
        __import__(package)
    except ImportError:
        raise MissingExtraError(f"ONNX export needs the {package} package, which is not "
                                f"installed: {EXTRA}") from None


@dataclass(frozen=True)
class _Kind:
    """How a kind is exported: its builder, and whether its forward takes lengths
    ("required", "optional", "no") and an initial state (True / False)."""

    build: Callable
    lengths: str
    state: bool
    step: Callable | None = None  # the one-step graph of a decoding kind (a second file)


def to_onnx(module: nn.Module, path: str | Path, *, force: bool = False, opset: int = OPSET,
            lengths: bool | None = None, initial_state: bool = False,
            extra: dict[str, Any] | None = None) -> Path:
    """Write ``module`` as an ONNX model file.

    Args:
        module: a bare lstmlab (or torch.nn) LSTM / GRU / RNN, or a model of an exportable kind
            (``EXPORTABLE``; wrappers such as DDP or torch.compile are looked through).
        path: the .onnx file to write (its folder is created); replaced atomically.
        force: replace ``path`` if it exists (otherwise that is an error).
        opset: the ONNX opset, in ``OPSETS`` (default ``OPSET``).
        lengths: give the graph a ``lengths`` (B,) int64 input. None: where the model's forward
            needs them (classifier, tagger); True also for a layer, sequence or music model.
        initial_state: give the graph ``h0`` (and ``c0`` for an LSTM) inputs for the initial
            recurrent state (a layer, language_model or music model), e.g. to carry the state
            from one call to the next.
        extra: JSON-able data to carry in the file's metadata as ``lstmlab.extra`` - a saved
            model's extra (``load_saved(dir).extra``: vocabularies, labels, tokenizers), so
            that a runtime without lstmlab can map text to ids and back.

    Returns:
        The path written. The file's metadata holds the kind, its configuration and the ONNX
        operator of each recurrent layer (``lstmlab.kind``, ``lstmlab.config``,
        ``lstmlab.recurrent``). For a translator or captioner ``path`` is the start graph and
        the step graph is written first, beside it (``onnx_decoders.step_path``: t.onnx ->
        t.step.onnx; ``lstmlab.step_graph`` names it).

    Raises:
        ValueError: a module that cannot be exported (the message lists those that can), an
            existing ``path`` without ``force``, an option the kind does not take.
        MissingExtraError: the onnx package is missing.
    """
    require("onnx")
    from lstmlab.export import onnx_graph

    global og
    og = onnx_graph

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the .onnx file to write")
    if path.exists() and not force:
        raise ValueError(f"{path} exists; pass force=True (--force) to replace it")
    if isinstance(opset, bool) or opset not in OPSETS:
        raise ValueError(f"opset must be one of {OPSETS.start}..{OPSETS.stop - 1}, got {opset!r}")
    model = _exportable(module)
    kind = "layer" if isinstance(model, RecurrentLayer) else kind_of(model)
    how = KINDS[kind]
    if lengths is None:
        lengths = how.lengths == "required"
    if lengths and how.lengths == "no":
        raise ValueError(f"a {kind} model takes no lengths; export it without them")
    if not lengths and how.lengths == "required":
        raise ValueError(f"a {kind} model needs its lengths input; export it with them")
    if initial_state and not how.state:
        raise ValueError(f"a {kind} model takes no initial state; export it without one "
                         "(the kinds that do: layer, language_model, music)")

    steps = None
    if how.step is not None:
        from lstmlab.export.onnx_decoders import describe_state, step_path

        steps = step_path(path)
        if steps.exists() and not force:
            raise ValueError(f"{steps} (the step graph of {path.name}) exists; pass force=True "
                             "(--force) to replace it")
    common = {"lstmlab.kind": kind,
              "lstmlab.config": json.dumps(model.config() if hasattr(model, "config")
                                           else _layer_config(model))}
    if extra:
        try:
            common["lstmlab.extra"] = json.dumps(extra, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as error:
            raise ValueError(f"extra must be plain JSON data to go into {path.name}'s "
                             f"metadata: {error}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    if steps is not None:  # the step graph first: a start graph names a file that exists
        state = describe_state(model)
        _write(how.step, model, opset, f"lstmlab_{kind}_step", steps,
               {**common, "lstmlab.graph": "step", "lstmlab.state": state})
        common.update({"lstmlab.graph": "start", "lstmlab.step_graph": steps.name,
                       "lstmlab.state": state})
    return _write(lambda g, m: how.build(g, m, bool(lengths), bool(initial_state)), model, opset,
                  f"lstmlab_{kind}", path, common)


def _write(build: Callable, model: nn.Module, opset: int, name: str, path: Path,
           props: dict[str, str]) -> Path:
    """Build one graph of ``model``, check it and write it atomically to ``path``."""
    import onnx
    from onnx import helper

    from lstmlab import __version__

    g = og.Graph(opset)
    signature = build(g, model)
    layers = [m for m in model.modules() if isinstance(m, RecurrentLayer)]
    graph = helper.make_graph(
        g.nodes, name,
        [og.value_info(*i) for i in signature.inputs],
        [og.value_info(*o) for o in signature.outputs], g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="lstmlab", producer_version=__version__)
    helper.set_model_props(proto, {
        **props, "lstmlab.recurrent": json.dumps([og.onnx_op(m) for m in layers])})
    onnx.checker.check_model(proto, full_check=True)
    return atomic_write_bytes(path, proto.SerializeToString())


def _exportable(module: nn.Module) -> nn.Module:
    """The module to export (wrappers looked through, torch.nn layers converted), or a
    ValueError that lists what can be exported."""
    model = unwrap(module)
    converters = {nn.LSTM: LSTM, nn.GRU: GRU, nn.RNN: RNN}
    if type(model) in converters:
        return converters[type(model)].from_torch(model)
    if isinstance(model, RecurrentLayer):
        return model
    try:
        kind = kind_of(model)
    except ValueError:
        kind = None
    if kind not in KINDS:
        what = f"a {kind!r} model" if kind else f"a {type(model).__qualname__}"
        raise ValueError(f"cannot export {what} to ONNX; exportable: {EXPORTABLE}")
    return model


def _layer_config(layer: RecurrentLayer) -> dict:
    config = {"type": type(layer).__name__, "input_size": layer.input_size,
              "hidden_size": layer.hidden_size, "num_layers": layer.num_layers,
              "bidirectional": layer.bidirectional, "batch_first": layer.batch_first}
    if isinstance(layer, LSTM):
        config.update(variant=layer.variant, proj_size=layer.proj_size)
    if isinstance(layer, RNN):
        config["nonlinearity"] = layer.nonlinearity
    return config


# --- the kinds ---------------------------------------------------------------------------------
# Each builder adds its inputs, nodes and outputs to the graph and returns the signature.

def _state_inputs(g: Graph, sig: og.Signature, layer: RecurrentLayer,
                  initial_state: bool) -> tuple[str | None, str | None]:
    if not initial_state:
        return None, None
    rows = layer.num_layers * layer.num_directions
    h0 = og.declare_inputs(g, sig, og.float_spec("h0", rows, "B", layer.output_size))[0]
    c0 = og.declare_inputs(g, sig, og.float_spec("c0", rows, "B", layer.hidden_size))[0] \
        if isinstance(layer, LSTM) else None
    return h0, c0


def _state_outputs(g: Graph, sig: og.Signature, layer: RecurrentLayer,
                   result: Recurrent) -> None:
    rows = layer.num_layers * layer.num_directions
    og.set_output(g, sig, result.h_n, og.float_spec("h_n", rows, "B", layer.output_size))
    if result.c_n is not None:
        og.set_output(g, sig, result.c_n, og.float_spec("c_n", rows, "B", layer.hidden_size))


def _build_layer(g: Graph, layer: RecurrentLayer, lengths: bool,
                 initial_state: bool) -> og.Signature:
    sig = og.Signature()
    og.reserve(g, "output", "h_n", "c_n")
    steps = ["B", "T"] if layer.batch_first else ["T", "B"]
    x = og.declare_inputs(g, sig, og.float_spec("input", *steps, layer.input_size))[0]
    lens = og.declare_inputs(g, sig, og.int64_spec("lengths", "B"))[0] if lengths else None
    h0, c0 = _state_inputs(g, sig, layer, initial_state)
    if layer.batch_first:
        x = g.node("Transpose", [x], perm=[1, 0, 2])
    result = og.recurrent(g, layer, x, lens, h0, c0)
    output = result.output
    if layer.batch_first:
        output = g.node("Transpose", [output], perm=[1, 0, 2])
    width = layer.num_directions * layer.output_size
    og.set_output(g, sig, output, og.float_spec("output", *steps, width))
    _state_outputs(g, sig, layer, result)
    return sig


def _build_sequence(g: Graph, model: SequenceModel, lengths: bool,
                    initial_state: bool) -> og.Signature:
    sig = og.Signature()
    og.reserve(g, "outputs")
    x = og.declare_inputs(g, sig, og.float_spec("inputs", "T", "B", model.input_size))[0]
    lens = og.declare_inputs(g, sig, og.int64_spec("lengths", "B"))[0] if lengths else None
    result = og.recurrent(g, model.recurrent, x, lens)
    out = g.linear(result.output, model.head.weight, model.head.bias, "head")
    if model.direct is not None:  # the inputs read by the outputs too
        out = g.node("Add", [out, g.linear(x, model.direct.weight, None, "direct")], "outputs")
    og.set_output(g, sig, out, og.float_spec("outputs", "T", "B", model.output_size))
    return sig


def _build_language_model(g: Graph, model: LanguageModel, lengths: bool,
                          initial_state: bool) -> og.Signature:
    sig = og.Signature()
    og.reserve(g, "logits", "h_n", "c_n")
    ids = og.declare_inputs(g, sig, og.int64_spec("inputs", "T", "B"))[0]
    h0, c0 = _state_inputs(g, sig, model.recurrent, initial_state)
    x = g.node("Gather", [g.constant(og.array(model.embedding.weight), "embedding"), ids],
               "embedded", axis=0)
    result = og.recurrent(g, model.recurrent, x, None, h0, c0)
    logits = g.linear(result.output, model.decoder.weight, model.decoder.bias, "decoder")
    og.set_output(g, sig, logits, og.float_spec("logits", "T", "B", model.vocab_size))
    _state_outputs(g, sig, model.recurrent, result)
    return sig


def _build_music(g: Graph, model: MusicModel, lengths: bool, initial_state: bool) -> og.Signature:
    sig = og.Signature()
    og.reserve(g, "logits", "probabilities", "h_n", "c_n")
    frames = og.declare_inputs(g, sig, og.float_spec("frames", "T", "B", model.keys))[0]
    lens = og.declare_inputs(g, sig, og.int64_spec("lengths", "B"))[0] if lengths else None
    h0, c0 = _state_inputs(g, sig, model.recurrent, initial_state)
    result = og.recurrent(g, model.recurrent, frames, lens, h0, c0)
    logits = g.linear(result.output, model.head.weight, model.head.bias, "head")
    og.set_output(g, sig, logits, og.float_spec("logits", "T", "B", model.keys))
    og.set_output(g, sig, g.node("Sigmoid", [logits]),
            og.float_spec("probabilities", "T", "B", model.keys))
    _state_outputs(g, sig, model.recurrent, result)
    return sig


def _build_lstm1997(g: Graph, model: LSTM1997, lengths: bool,
                    initial_state: bool) -> og.Signature:
    """``LSTM1997.steps``: a Scan over time whose body is ``LSTM1997.step`` (memory blocks
    sharing gates, the paper's g and h), then the output units over every step."""
    from onnx import helper

    sig = og.Signature()
    og.reserve(g, "outputs")
    x = og.declare_inputs(g, sig, og.float_spec("inputs", "T", "B", model.input_size))[0]
    C, G, S = model.blocks * model.cells, model.blocks, model.cells
    rows = g.dim(x, 1)
    widths = [C, C, G] + ([G] if model.output_gate is not None else [])
    names = ["s", "y_c", "y_in", "y_out"][:len(widths)]
    states = [g.zeros(rows, w, f"{n}0") for n, w in zip(names, widths, strict=True)]
    spread = g.constant(np.kron(np.eye(G), np.ones((1, S))), "per_cell")  # (G, C): repeats

    def squash(b: Graph, name: str, value: str) -> str:
        if name == "identity":
            return value
        scale, shift = SIGMOID_SQUASHES[name]
        y = b.node("Sigmoid", [value])
        return y if scale == 1.0 else b.node("Sub", [b.node("Mul", [y, b.scalar(scale)]),
                                                     b.scalar(shift)])

    body = g.subgraph()
    previous = [body.fresh(f"{n}_prev") for n in names]
    x_t = body.fresh("x_t")
    u = body.concat([x_t, *previous[1:]], axis=1, hint="sources") if model.recurrent else x_t
    y_in = body.node("Sigmoid", [body.linear(u, model.input_gate.weight, model.input_gate.bias,
                                             "input_gate")], "y_in")
    net_c = body.linear(u, model.cell_input.weight, model.cell_input.bias, "cell_input")
    write = body.node("Mul", [body.node("MatMul", [y_in, spread]),
                              squash(body, model.g_name, net_c)])
    s_new = body.node("Add", [previous[0], write], "s")
    y_c = squash(body, model.h_name, s_new)
    new = [s_new, None, y_in]
    if model.output_gate is not None:
        y_out = body.node("Sigmoid", [body.linear(u, model.output_gate.weight,
                                                  model.output_gate.bias, "output_gate")],
                          "y_out")
        y_c = body.node("Mul", [body.node("MatMul", [y_out, spread]), y_c])
        new.append(y_out)
    new[1] = y_c
    outputs = [body.node("Identity", [v], f"{n}_next") for v, n in zip(new, names, strict=True)]
    y_seq = body.node("Identity", [y_c], "y_c_out")
    graph = helper.make_graph(
        body.nodes, "lstm1997_step",
        [og.value_info(p, og.FLOAT, ["B", w]) for p, w in zip(previous, widths, strict=True)]
        + [og.value_info(x_t, og.FLOAT, ["B", model.input_size])],
        [og.value_info(o, og.FLOAT, ["B", w]) for o, w in zip(outputs, widths, strict=True)]
        + [og.value_info(y_seq, og.FLOAT, ["B", C])])
    scanned = g.node("Scan", [*states, x], "lstm1997", outputs=len(states) + 1, body=graph,
                     num_scan_inputs=1)
    cells = scanned[-1]  # (T, B, C)
    if not bool(model.connected):  # 2a/2b before the cell is added: the outputs read zeros
        cells = g.node("Mul", [cells, g.scalar(0.0)])
    read = g.concat([cells, x], axis=2) if model.input_to_output else cells
    out = g.linear(read, model.head.weight, model.head.bias, "head")
    og.set_output(g, sig, out, og.float_spec("outputs", "T", "B", model.output_size))
    return sig


def _word_inputs(g: Graph, sig: og.Signature, words: WordEncoder) -> tuple[str, str, str | None,
                                                                    str | None]:
    names = og.declare_inputs(g, sig, og.int64_spec("words", "T", "B"),
                              og.int64_spec("lengths", "B"))
    if words.char_vocab_size:
        names += og.declare_inputs(g, sig, og.int64_spec("chars", "B", "T_chars", "W"),
                         og.int64_spec("char_lengths", "B", "T_chars"))
    else:
        names += [None, None]
    return tuple(names)


def _word_vectors(g: Graph, encoder: WordEncoder, words: str, chars: str | None,
                  char_lengths: str | None) -> str:
    """``WordEncoder.forward``: word embeddings (T, B, E), joined by the last states of the
    bidirectional character layer over each word's characters (T, B, E + 2C). Every word's
    characters are read (lstmlab reads only the words that have characters); a word without
    any is read with length 1 and its features zeroed, which is what lstmlab gives it."""

    table = g.constant(og.array(encoder.embedding.weight), "word_embedding")
    x = g.node("Gather", [table, words], "word_vectors", axis=0)
    if not encoder.char_vocab_size:
        return x
    steps = g.dim(words, 0)
    first = [g.ints([0]), steps, g.ints([1])]  # [:, :T]
    chars = g.node("Slice", [chars, *first], "chars_t")  # (B, T, W)
    chars = g.node("Flatten", [g.node("Transpose", [chars], perm=[1, 0, 2])], axis=2)  # (N, W)
    counts = g.node("Slice", [char_lengths, *first])  # (B, T)
    counts = g.node("Reshape", [g.node("Transpose", [counts], perm=[1, 0]), g.ints([-1])],
                    "char_counts")  # (N,) time-major, like the words
    present = g.node("Greater", [counts, g.ints(0)], "has_chars")
    counts = g.node("Max", [counts, g.ints(1)])
    spelled = g.node("Gather", [g.constant(og.array(encoder.char_embedding.weight),
                                           "char_embedding"),
                                g.node("Transpose", [chars], perm=[1, 0])],
                     "spelled", axis=0)  # (W, N, Ec)
    result = og.recurrent(g, encoder.char_layer, spelled, counts, hint="chars")
    h = g.node("Flatten", [g.node("Transpose", [result.h_n], perm=[1, 0, 2])], axis=1)
    features = g.node("Where", [g.unsqueeze(present, [1]), h, g.scalar(0.0)])  # (N, 2C)
    shape = g.node("Concat", [g.node("Shape", [words]), g.ints([-1])], axis=0)
    features = g.node("Reshape", [features, shape], "char_features")  # (T, B, 2C)
    return g.node("Concat", [x, features], "word_features", axis=2)


def _pool(g: Graph, model: TextClassifier, outputs: str, lengths: str, h_n: str) -> str:
    """``models.classifier.pool``: (T, B, D*H) over each text's words -> (B, D*H)."""
    layer = model.recurrent
    valid = g.step_mask(lengths, outputs)  # (T, B)
    if model.pooling == "last":  # the last layer's final states, directions side by side
        rows = layer.num_layers * layer.num_directions
        last = g.node("Slice", [h_n, g.ints([rows - layer.num_directions]), g.ints([rows]),
                                g.ints([0])])
        return g.node("Flatten", [g.node("Transpose", [last], perm=[1, 0, 2])], "pooled",
                      axis=1)
    if model.pooling == "max":
        masked = g.node("Where", [g.unsqueeze(valid, [2]), outputs, g.scalar(float("-inf"))])
        return g.reduce("ReduceMax", masked, [0], "pooled")
    if model.pooling == "mean":
        weight = g.node("Cast", [g.unsqueeze(valid, [2])], to=1)  # FLOAT
        total = g.reduce("ReduceSum", g.node("Mul", [outputs, weight]), [0])
        count = g.node("Cast", [g.unsqueeze(lengths, [1])], to=1)
        return g.node("Div", [total, count], "pooled")
    first, _, second = model.attention  # attention: a = softmax_t(v . tanh(W o_t + b))
    hidden = g.node("Tanh", [g.linear(outputs, first.weight, first.bias, "attention")])
    scores = g.squeeze(g.linear(hidden, second.weight, None, "scores"), [2])  # (T, B)
    scores = g.node("Where", [valid, scores, g.scalar(float("-inf"))])
    weights = g.node("Softmax", [scores], "attention_weights", axis=0)
    return g.reduce("ReduceSum", g.node("Mul", [g.unsqueeze(weights, [2]), outputs]), [0],
                    "pooled")


def _build_text(g: Graph, model: TextClassifier | SequenceTagger, lengths: bool,
                initial_state: bool) -> og.Signature:
    """classifier (logits (B, K)) and tagger (logits (T, B, K))."""

    sig = og.Signature()
    og.reserve(g, "logits")
    words, lens, chars, char_lengths = _word_inputs(g, sig, model.words)
    x = _word_vectors(g, model.words, words, chars, char_lengths)
    result = og.recurrent(g, model.recurrent, x, lens)
    if isinstance(model, TextClassifier):
        pooled = _pool(g, model, result.output, lens, result.h_n)
        logits = g.linear(pooled, model.head.weight, model.head.bias, "head")
        og.set_output(g, sig, logits, og.float_spec("logits", "B", model.num_classes))
    else:
        logits = g.linear(result.output, model.head.weight, model.head.bias, "head")
        og.set_output(g, sig, logits, og.float_spec("logits", "T", "B", model.num_tags))
    return sig


DECODING_KINDS = ("translator", "captioner", "detector")
"""The kinds whose graphs ``lstmlab.export.onnx_decoders`` builds (and checks)."""


def _decoding(name: str) -> Callable:
    """A builder of ``lstmlab.export.onnx_decoders``, imported when a graph is built."""

    def build(g: Graph, model: nn.Module, *options: bool) -> og.Signature:
        from lstmlab.export import onnx_decoders

        return getattr(onnx_decoders, name)(g, model)

    return build


KINDS: dict[str, _Kind] = {
    "layer": _Kind(_build_layer, "optional", True),
    "sequence": _Kind(_build_sequence, "optional", False),
    "language_model": _Kind(_build_language_model, "no", True),
    "music": _Kind(_build_music, "optional", True),
    "classifier": _Kind(_build_text, "required", False),
    "tagger": _Kind(_build_text, "required", False),
    "lstm1997": _Kind(_build_lstm1997, "no", False),
    "translator": _Kind(_decoding("translator_start"), "required", False,
                        _decoding("translator_step")),
    "captioner": _Kind(_decoding("captioner_start"), "no", False, _decoding("captioner_step")),
    "detector": _Kind(_decoding("detector"), "no", False),
}
"""What ``to_onnx`` exports: "layer" is a bare LSTM / GRU / RNN, the others are model kinds."""

EXPORTABLE = ("lstmlab.LSTM, GRU and RNN layers (and torch.nn's) and the model kinds "
              + ", ".join(sorted(k for k in KINDS if k != "layer")))


# --- checking an exported file against lstmlab --------------------------------------------------


def example_inputs(model: nn.Module, names: list[str], steps: int = 7, batch: int = 3,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the graph exported from ``model``, by input name (``names``, as the
    file declares them): T = ``steps``, B = ``batch``, lengths from 1 to T (one sequence of
    length T), token ids in range, words of 0 to 4 characters."""
    rng = np.random.default_rng(seed)
    model = _exportable(model)
    if isinstance(model, LSTM1997):
        return {"inputs": rng.standard_normal((steps, batch, model.input_size))
                .astype(np.float32)}
    layer = model if isinstance(model, RecurrentLayer) else model.recurrent
    lengths = np.concatenate([[steps], rng.integers(1, steps + 1, batch - 1)]).astype(np.int64)
    rows = layer.num_layers * layer.num_directions
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name in ("input", "inputs") and isinstance(model, RecurrentLayer | SequenceModel):
            shape = (batch, steps) if getattr(model, "batch_first", False) else (steps, batch)
            out[name] = rng.standard_normal((*shape, model.input_size)).astype(np.float32)
        elif name == "inputs":
            out[name] = rng.integers(0, model.vocab_size, (steps, batch))
        elif name == "frames":
            out[name] = (rng.random((steps, batch, model.keys)) < 0.2).astype(np.float32)
        elif name == "words":
            out[name] = rng.integers(0, model.words.embedding.num_embeddings, (steps, batch))
        elif name == "lengths":
            out[name] = lengths
        elif name == "chars":
            out[name] = rng.integers(0, model.words.char_vocab_size, (batch, steps, 4))
        elif name == "char_lengths":
            counts = rng.integers(0, 5, (batch, steps))
            out[name] = np.where(np.arange(steps) < lengths[:, None], counts, 0)
        elif name in ("h0", "c0"):
            width = layer.output_size if name == "h0" else layer.hidden_size
            out[name] = rng.standard_normal((rows, batch, width)).astype(np.float32)
        else:
            raise ValueError(f"no example for the graph input {name!r}")
    return out


def reference_outputs(model: nn.Module, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """What lstmlab computes (eval mode, float32) for the graph inputs ``inputs``, in the
    order of the graph's outputs."""
    import torch

    model = _exportable(model)
    t = {name: torch.from_numpy(value) for name, value in inputs.items()}
    state = (t["h0"], t["c0"]) if "c0" in t else t.get("h0")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if isinstance(model, RecurrentLayer):
                out, final = model(t["input"].to(_dtype(model)),
                                   None if state is None else _cast(state, model),
                                   lengths=t.get("lengths"))
                results = [out, *(final if isinstance(final, tuple) else (final,))]
            elif isinstance(model, LSTM1997):
                results = [model.steps(t["inputs"].to(_dtype(model))).outputs]
            elif isinstance(model, SequenceModel):
                results = [model(t["inputs"].to(_dtype(model)), t.get("lengths"))]
            elif isinstance(model, LanguageModel):
                logits, final = model(t["inputs"], None if state is None else _cast(state, model))
                results = [logits, *(final if isinstance(final, tuple) else (final,))]
            elif isinstance(model, MusicModel):
                logits, final = model(t["frames"].to(_dtype(model)), t.get("lengths"),
                                      None if state is None else _cast(state, model))
                results = [logits, torch.sigmoid(logits),
                           *(final if isinstance(final, tuple) else (final,))]
            else:  # classifier, tagger
                results = [model(t["words"], t["lengths"], t.get("chars"), t.get("char_lengths"))]
    finally:
        model.train(was_training)
    return [r.float().numpy() for r in results]


def _dtype(model: nn.Module):
    return next(model.parameters()).dtype


def _cast(state, model: nn.Module):
    dtype = _dtype(model)
    return tuple(s.to(dtype) for s in state) if isinstance(state, tuple) else state.to(dtype)


def compare(module: nn.Module, path: str | Path, *, steps: int = 7, batch: int = 3,
            seed: int = 0) -> float:
    """The largest absolute difference between onnxruntime running the exported file ``path``
    and lstmlab running ``module``, over every output, on ``example_inputs``. Needs
    onnxruntime (the "export" extra)."""
    require("onnxruntime")
    import onnxruntime

    model = _exportable(module)
    if not isinstance(model, RecurrentLayer) and kind_of(model) in DECODING_KINDS:
        from lstmlab.export import onnx_decoders

        return onnx_decoders.compare(model, path, batch=batch, seed=seed)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = example_inputs(module, [i.name for i in session.get_inputs()], steps, batch, seed)
    got = session.run(None, inputs)
    expected = reference_outputs(module, inputs)
    if len(got) != len(expected):
        raise ValueError(f"{path} has {len(got)} outputs; lstmlab's model gives "
                         f"{len(expected)}: was it exported from this model?")
    worst = 0.0
    for name, a, b in zip([o.name for o in session.get_outputs()], got, expected, strict=True):
        if a.shape != b.shape:
            raise ValueError(f"{path}: output {name} is {a.shape}, lstmlab's {b.shape}")
        worst = max(worst, float(np.abs(a - b).max(initial=0.0)))
    return worst
