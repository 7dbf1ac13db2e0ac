"""ONNX graphs of the models that read a whole input and then decode - the translator and the
captioner - and of the detector; and ``OnnxDecoder``, which runs an exported translator or
captioner in onnxruntime behind ``lstmlab.models.decoding``'s decoder face.

A decoding model is two graphs, as a decoder runs: ``OUT.onnx`` starts (reads the source
sentence or the image once and gives the decoder's first state) and ``OUT.step.onnx`` takes one
token and the state to the next token's logits and the next state. Greedy decoding, sampling and
beam search stay outside the graphs, where they can change without a new export; the state is
a set of batch-first tensors, so a beam search picks rows of each.

    translator start   source (S, B) i64, lengths (B,) i64 -> h, c[, gates] (B, Hd)
                       [, feed (B, A)] [, memory (B, S, 2H), keys (B, S, K), mask (B, S) bool]
    translator step    tokens (B,) i64 and that state -> logits (B, V), next_h, next_c
                       [, next_gates] [, next_feed] [, attention (B, S)]
    captioner start    images (B, 3, S, S) f32 -> h[, c, gates] (B, H) [, feats (B, L, C + 2),
                       keys (B, L, A)]
    captioner step     tokens (B,) i64 and that state -> logits (B, V), next_h[, next_c,
                       next_gates] [, attention (B, L)]
    detector           images (B, 3, S, S) f32 -> raw (B, Hg, Wg, K, 5), boxes (B, Hg, Wg, K, 4)
                       pixels [x0, y0, x1, y1], scores (B, Hg, Wg, K) in [0, 1]

The state a step reads and does not change (memory, keys, mask, feats) is not given back: the
caller keeps it. Which state the step reads is in each file's metadata (``lstmlab.state``). The
detector's stitching (or the single head's NMS) runs on its boxes and scores outside the graph,
as ``lstmlab.models.detector`` does it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lstmlab.export import onnx_graph as og
from lstmlab.export.onnx_graph import Graph, Signature, declare_inputs, float_spec, set_output
from lstmlab.models.captioner import Captioner
from lstmlab.models.detector import Detector
from lstmlab.models.seq2seq import Translator

STEP_SUFFIX = ".step.onnx"


def step_path(path: str | Path) -> Path:
    """The step graph's file beside the start graph ``path``: t.onnx -> t.step.onnx."""
    path = Path(path)
    return path.with_name(path.stem + STEP_SUFFIX)


# --- what a model's state is ---------------------------------------------------------------------


def _cell_specs(cell) -> list[tuple[str, int, list]]:
    return [float_spec(name, "B", width) for name, width in cell.state_widths.items()]


def state_specs(model: Translator | Captioner) -> tuple[list[tuple], list[tuple]]:
    """The state the step graph reads: (what changes every step, what stays as the start graph
    gave it), as (name, element type, shape)."""
    if isinstance(model, Translator):
        changing = _cell_specs(model.decoder)
        if model.input_feeding:
            changing.append(float_spec("feed", "B", model.attentional_size))
        fixed = []
        if model.attend is not None:
            memory = 2 * model.hidden_size
            keys = memory if model.attend.score == "dot" else model.attend.memory.out_features
            fixed = [float_spec("memory", "B", "S", memory), float_spec("keys", "B", "S", keys),
                     og.bool_spec("mask", "B", "S")]
        return changing, fixed
    changing = _cell_specs(model.cell)
    fixed = []
    if model.attention == "soft":
        width = model.encoder.out_channels + 2
        places = model.coords.shape[0]
        fixed = [float_spec("feats", "B", places, width),
                 float_spec("keys", "B", places, model.attention_size)]
    return changing, fixed


# --- the translator ------------------------------------------------------------------------------


def translator_start(g: Graph, model: Translator) -> Signature:
    """``Translator.encode`` (eval mode)."""
    sig = Signature()
    changing, fixed = state_specs(model)
    og.reserve(g, *(s[0] for s in changing + fixed))
    source, lengths = declare_inputs(g, sig, og.int64_spec("source", "S", "B"),
                                     og.int64_spec("lengths", "B"))
    x = g.node("Gather", [g.constant(og.array(model.source_embedding.weight),
                                     "source_embedding"), source], "source_vectors", axis=0)
    encoded = og.recurrent(g, model.encoder, x, lengths, hint="encoder")
    rows = model.encoder.num_layers * 2
    top = g.node("Slice", [encoded.h_n, g.ints([rows - 2]), g.ints([rows]), g.ints([0])])
    both = g.node("Flatten", [g.node("Transpose", [top], perm=[1, 0, 2])], "ends", axis=1)
    h0, c0 = g.split(g.linear(both, model.bridge.weight, model.bridge.bias, "bridge"),
                     [model.decoder_size] * 2, 1, "bridge")
    values = {"h": g.node("Tanh", [h0]), "c": c0}
    batch = g.dim(lengths, 0)
    if "gates" in model.decoder.state_widths:
        values["gates"] = g.zeros(batch, model.decoder.state_widths["gates"], "gates0")
    if model.input_feeding:
        values["feed"] = g.zeros(batch, model.attentional_size, "feed0")
    if model.attend is not None:
        memory = g.node("Transpose", [encoded.output], "memory_t", perm=[1, 0, 2])
        values["memory"] = memory
        values["keys"] = memory if model.attend.score == "dot" else g.linear(
            memory, model.attend.memory.weight, model.attend.memory.bias, "keys_")
        values["mask"] = g.node("Transpose", [g.step_mask(lengths, x)], perm=[1, 0])
    for spec in changing + fixed:
        set_output(g, sig, values[spec[0]], spec)
    return sig


def _attend(g: Graph, attention, query: str, keys: str, memory: str, mask: str
            ) -> tuple[str, str]:
    """``models.attention.Attention``: the context (B, M) and the weights (B, S)."""
    if attention.score == "additive":
        projected = g.unsqueeze(g.linear(query, attention.query.weight, None, "query"), [1])
        hidden = g.node("Tanh", [g.node("Add", [keys, projected])])
        scores = g.squeeze(g.linear(hidden, attention.v.weight, None, "scores"), [2])
    else:
        scores = g.squeeze(g.node("MatMul", [keys, g.unsqueeze(query, [2])]), [2], "scores")
    scores = g.node("Where", [mask, scores, g.scalar(float("-inf"))], "masked_scores")
    weights = g.node("Softmax", [scores], "weights", axis=1)
    context = g.squeeze(g.node("MatMul", [g.unsqueeze(weights, [1]), memory]), [1], "context")
    return context, weights


def _step_inputs(g: Graph, sig: Signature, model) -> dict[str, str]:
    changing, fixed = state_specs(model)
    og.reserve(g, "logits", "attention", *(f"next_{s[0]}" for s in changing))
    names = declare_inputs(g, sig, og.int64_spec("tokens", "B"), *changing, *fixed)
    return dict(zip(["tokens"] + [s[0] for s in changing + fixed], names, strict=True))


def _step_outputs(g: Graph, sig: Signature, model, logits: str, vocab: int,
                  new: dict[str, str], weights: str | None, places: int | str) -> Signature:
    set_output(g, sig, logits, float_spec("logits", "B", vocab))
    for name, _, shape in state_specs(model)[0]:
        set_output(g, sig, new[name], float_spec(f"next_{name}", *shape))
    if weights is not None:
        set_output(g, sig, weights, float_spec("attention", "B", places))
    return sig


def translator_step(g: Graph, model: Translator) -> Signature:
    """``TranslationDecoder.step`` (eval mode), with the attention weights."""
    sig = Signature()
    v = _step_inputs(g, sig, model)
    x = g.node("Gather", [g.constant(og.array(model.target_embedding.weight),
                                     "target_embedding"), v["tokens"]], "target_vector", axis=0)
    if model.input_feeding:
        x = g.concat([x, v["feed"]], axis=1, hint="decoder_input")
    state = [v[name] for name in model.decoder.state_widths]
    cell = og.cell_step(g, model.decoder, x, state, "decoder")
    h, weights = cell[0], None
    if model.attend is not None:
        context, weights = _attend(g, model.attend, h, v["keys"], v["memory"], v["mask"])
        h = g.concat([h, context], axis=1, hint="with_context")
    out = g.node("Tanh", [g.linear(h, model.combine.weight, model.combine.bias, "combine")],
                 "attentional")
    logits = g.linear(out, model.out.weight, model.out.bias, "out")
    new = dict(zip(model.decoder.state_widths, cell, strict=True))
    new["feed"] = out
    return _step_outputs(g, sig, model, logits, model.out.out_features, new, weights, "S")


# --- the captioner -------------------------------------------------------------------------------


def _image_input(g: Graph, sig: Signature, size: int) -> str:
    return declare_inputs(g, sig, float_spec("images", "B", 3, size, size))[0]


def captioner_start(g: Graph, model: Captioner) -> Signature:
    """``Captioner.start`` (eval mode)."""
    sig = Signature()
    changing, fixed = state_specs(model)
    og.reserve(g, *(s[0] for s in changing + fixed))
    images = _image_input(g, sig, model.image_size)
    grid = og.image_encoder(g, model.encoder, images)  # (B, C, Hg, Wg)
    feats = g.node("Transpose", [g.node("Reshape", [grid, g.ints([0, 0, -1])])],
                   perm=[0, 2, 1])  # (B, L, C)
    places = model.coords.shape[0]
    batch = g.dim(images, 0)
    coords = g.node("Expand", [g.constant(og.array(model.coords)[None], "coords"),
                               g.concat([batch, g.ints([places, 2])], axis=0)])
    feats = g.concat([feats, coords], axis=2, hint="features")  # (B, L, C + 2)
    values: dict[str, str] = {}
    names = list(model.cell.state_widths)
    if model.attention == "none":
        flat = g.node("Flatten", [feats], axis=1)
        x = g.linear(flat, model.image_in.weight, model.image_in.bias, "image_in")
        values.update(zip(names, og.cell_step(g, model.cell, x, None, "image_step"),
                          strict=True))
    else:
        mean = g.reduce("ReduceMean", feats, [1], "mean_feature")
        for name, layer in zip(names, model.init_state, strict=False):
            values[name] = g.node("Tanh", [g.linear(mean, layer.weight, layer.bias,
                                                    f"init_{name}")])
        for name in names[len(model.init_state):]:
            values[name] = g.zeros(batch, model.cell.state_widths[name], f"{name}0")
        values["feats"] = feats
        values["keys"] = g.linear(feats, model.att_feat.weight, model.att_feat.bias, "keys_")
    for spec in changing + fixed:
        set_output(g, sig, values[spec[0]], spec)
    return sig


def captioner_step(g: Graph, model: Captioner) -> Signature:
    """``Captioner.step`` (eval mode), with the attention weights."""
    sig = Signature()
    v = _step_inputs(g, sig, model)
    x = g.node("Gather", [g.constant(og.array(model.embed.weight), "embedding"), v["tokens"]],
               "word_vector", axis=0)
    state = [v[name] for name in model.cell.state_widths]
    weights = None
    if model.attention == "none":
        cell = og.cell_step(g, model.cell, x, state, "decoder")
        logits = g.linear(cell[0], model.out.weight, model.out.bias, "out")
    else:
        h = state[0]
        projected = g.unsqueeze(g.linear(h, model.att_hidden.weight, None, "att_hidden"), [1])
        hidden = g.node("Tanh", [g.node("Add", [v["keys"], projected])])
        scores = g.squeeze(g.linear(hidden, model.att_score.weight, None, "scores"), [2])
        weights = g.node("Softmax", [scores], "weights", axis=1)
        read = g.squeeze(g.node("MatMul", [g.unsqueeze(weights, [1]), v["feats"]]), [1])
        gate = g.node("Sigmoid", [g.linear(h, model.gate.weight, model.gate.bias, "gate")])
        context = g.node("Mul", [gate, read], "context")
        cell = og.cell_step(g, model.cell, g.concat([x, context], axis=1), state, "decoder")
        logits = g.linear(g.concat([cell[0], context], axis=1), model.out.weight,
                          model.out.bias, "out")
    new = dict(zip(model.cell.state_widths, cell, strict=True))
    return _step_outputs(g, sig, model, logits, model.vocab_size, new, weights,
                         model.coords.shape[0])


# --- the detector --------------------------------------------------------------------------------


def detector(g: Graph, model: Detector) -> Signature:
    """``Detector.forward`` and ``Detector.decode`` (eval mode)."""
    sig = Signature()
    og.reserve(g, "raw", "boxes", "scores")
    images = _image_input(g, sig, model.image_size)
    grid = g.node("Transpose", [og.image_encoder(g, model.encoder, images)],
                  perm=[0, 2, 3, 1])  # (B, Hg, Wg, C)
    side = model.encoder.grid_size(model.image_size)
    x = g.node("Reshape", [grid, g.ints([-1, model.encoder.out_channels])], "cells")
    k = model.max_boxes
    if model.head == "single":
        first, _, second = model.out
        hidden = g.node("Relu", [g.linear(x, first.weight, first.bias, "hidden")])
        outs = g.linear(hidden, second.weight, second.bias, "out")
    else:
        state, steps = None, []
        for j in range(k):  # K steps of the decoder, unrolled: K is a few
            state = og.cell_step(g, model.decoder, x, state, f"box{j}")
            steps.append(g.unsqueeze(g.linear(state[0], model.out.weight, model.out.bias,
                                              f"out{j}"), [1]))
        outs = g.concat(steps, axis=1, hint="steps")
    raw = g.node("Reshape", [outs, g.ints([-1, side, side, k, 5])], "raw_")
    s = float(model.stride)
    centres = (np.arange(side, dtype=np.float32) + 0.5)
    cx = g.constant(centres.reshape(1, 1, side, 1), "cell_x")
    cy = g.constant(centres.reshape(1, side, 1, 1), "cell_y")
    dx, dy, w, h, conf = g.split(raw, [1] * 5, 4, "parts")
    dx, dy, w, h, conf = (g.squeeze(p, [4]) for p in (dx, dy, w, h, conf))
    x_c = g.node("Mul", [g.node("Add", [cx, dx]), g.scalar(s)])
    y_c = g.node("Mul", [g.node("Add", [cy, dy]), g.scalar(s)])
    half_w = g.node("Mul", [g.node("Max", [w, g.scalar(0.05)]), g.scalar(s / 2)])
    half_h = g.node("Mul", [g.node("Max", [h, g.scalar(0.05)]), g.scalar(s / 2)])
    corners = [g.node("Sub", [x_c, half_w]), g.node("Sub", [y_c, half_h]),
               g.node("Add", [x_c, half_w]), g.node("Add", [y_c, half_h])]
    boxes = g.concat([g.unsqueeze(c, [4]) for c in corners], axis=4, hint="boxes_")
    set_output(g, sig, raw, float_spec("raw", "B", side, side, k, 5))
    set_output(g, sig, boxes, float_spec("boxes", "B", side, side, k, 4))
    set_output(g, sig, g.node("Sigmoid", [conf]), float_spec("scores", "B", side, side, k))
    return sig


# --- checking and running the files --------------------------------------------------------------


def _session(path: Path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def example_inputs(model, batch: int = 3, steps: int = 7, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the start graph (or the detector's): a source batch of lengths 1 to
    ``steps`` (one of ``steps``), or images in [0, 1)."""
    rng = np.random.default_rng(seed)
    if isinstance(model, Translator):
        lengths = np.concatenate([[steps], rng.integers(1, steps + 1, batch - 1)])
        vocab = model.source_embedding.num_embeddings
        return {"source": rng.integers(0, vocab, (steps, batch)),
                "lengths": lengths.astype(np.int64)}
    size = model.image_size
    return {"images": rng.random((batch, 3, size, size), dtype=np.float32)}


def _numpy(value: Tensor) -> np.ndarray:
    return value.numpy() if value.dtype == torch.bool else value.detach().float().numpy()


def _reference_state(model, state: dict[str, Any]) -> dict[str, np.ndarray]:
    """lstmlab's decoder state by the graphs' names."""
    cell = model.decoder if isinstance(model, Translator) else model.cell
    key = "cell" if isinstance(model, Translator) else "rnn"
    out = dict(zip(cell.state_widths, (_numpy(s) for s in state[key]), strict=True))
    for name in ("feed", "memory", "keys", "mask", "feats"):
        if name in state:
            out[name] = _numpy(state[name])
    return out


def compare(model, path: str | Path, *, steps: int = 4, batch: int = 3, seed: int = 0) -> float:
    """The largest absolute difference between onnxruntime and lstmlab (eval mode) on random
    inputs: for a translator or captioner the start graph's state and ``steps`` chained steps'
    logits, states and attention (each side fed its own state); for a detector raw, boxes and
    scores."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return _compare(model, Path(path), steps, batch, seed)
    finally:
        model.train(was_training)


def _worst(worst: float, name: str, got: np.ndarray, expected: np.ndarray, path: Path) -> float:
    if got.shape != expected.shape:
        raise ValueError(f"{path}: output {name} is {got.shape}, lstmlab's {expected.shape}: "
                         "was it exported from this model?")
    if got.dtype == bool:
        return worst if np.array_equal(got, expected) else float("inf")
    return max(worst, float(np.abs(got - expected).max(initial=0.0)))


def _compare(model, path: Path, steps: int, batch: int, seed: int) -> float:
    inputs = example_inputs(model, batch, 7, seed)
    t = {k: torch.from_numpy(v) for k, v in inputs.items()}
    start = _session(path)
    got = dict(zip([o.name for o in start.get_outputs()], start.run(None, inputs), strict=True))
    worst = 0.0
    if isinstance(model, Detector):
        raw = model(t["images"])
        boxes, scores = model.decode(raw)
        for name, value in (("raw", raw), ("boxes", boxes), ("scores", scores)):
            worst = _worst(worst, name, got[name], _numpy(value), path)
        return worst
    if isinstance(model, Translator):
        state = model.encode(t["source"], t["lengths"])

        def reference_step(tokens: Tensor, state: dict) -> tuple[Tensor, dict, Tensor | None]:
            out, state, weights = model.advance(tokens, state)
            return model.out(out), state, weights
    else:
        state = model.start(t["images"])

        def reference_step(tokens: Tensor, state: dict) -> tuple[Tensor, dict, Tensor | None]:
            logits, state = model.step(tokens, state)
            return logits, state, state.get("alpha")
    expected = _reference_state(model, state)
    for name, value in got.items():
        worst = _worst(worst, name, value, expected[name], path)
    stepper = _session(step_path(path))
    ours = dict(got)
    rng = np.random.default_rng(seed + 1)
    vocab = model.out.out_features
    for _ in range(steps):
        tokens = rng.integers(0, vocab, batch)
        feed = {i.name: tokens if i.name == "tokens" else ours[i.name]
                for i in stepper.get_inputs()}
        results = dict(zip([o.name for o in stepper.get_outputs()], stepper.run(None, feed),
                           strict=True))
        logits, state, weights = reference_step(torch.from_numpy(tokens), state)
        expected = {"logits": _numpy(logits), **{f"next_{k}": v for k, v in
                                                 _reference_state(model, state).items()}}
        if weights is not None:
            expected["attention"] = _numpy(weights)
        for name, value in results.items():
            worst = _worst(worst, name, value, expected[name], path)
        ours.update({k[len("next_"):]: v for k, v in results.items() if k.startswith("next_")})
    return worst


class OnnxDecoder:
    """An exported translator or captioner in onnxruntime, with the decoder face of
    ``lstmlab.models.decoding``:

        >>> decoder = OnnxDecoder("translator.onnx")             # and translator.step.onnx
        >>> state = decoder.start(source=ids, lengths=lengths)   # numpy arrays, batch last/first
        >>> best = beam_search(decoder, start_tokens, state, width=5, end_token=eos)

    The state is a dict of batch-first tensors (beam search picks rows of each); ``attention``
    holds the latest step's weights (B, S) or (B, L) where the model attends."""

    def __init__(self, path: str | Path) -> None:
        import onnx

        path = Path(path)
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False)
                .metadata_props}
        if meta.get("lstmlab.graph") != "start":
            raise ValueError(f"{path} is not the start graph of an exported translator or "
                             f"captioner (its lstmlab.graph is {meta.get('lstmlab.graph')!r})")
        self.kind = meta["lstmlab.kind"]
        self.start_session = _session(path)
        self.step_session = _session(path.with_name(meta["lstmlab.step_graph"]))
        self.inputs = [i.name for i in self.step_session.get_inputs()]

    def start(self, **inputs: np.ndarray) -> dict[str, Tensor]:
        """The decoder's first state from the start graph's inputs (``source`` and
        ``lengths``, or ``images``)."""
        names = [o.name for o in self.start_session.get_outputs()]
        values = self.start_session.run(None, {k: np.asarray(v) for k, v in inputs.items()})
        return {name: torch.from_numpy(value) for name, value in zip(names, values,
                                                                      strict=True)}

    def step(self, tokens: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        feed = {name: (tokens if name == "tokens" else state[name]).numpy()
                for name in self.inputs}
        names = [o.name for o in self.step_session.get_outputs()]
        results = dict(zip(names, self.step_session.run(None, feed), strict=True))
        new = dict(state)
        for name, value in results.items():
            if name.startswith("next_"):
                new[name[len("next_"):]] = torch.from_numpy(value)
            elif name == "attention":
                new["attention"] = torch.from_numpy(value)
        return torch.from_numpy(results["logits"]), new


def describe_state(model) -> str:
    """The state names the step graph reads, as JSON for the file's metadata."""
    changing, fixed = state_specs(model)
    return json.dumps([s[0] for s in changing + fixed])
