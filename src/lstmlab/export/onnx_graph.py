"""ONNX graph pieces for the export: a small graph builder over ``onnx.helper``, and lstmlab's
recurrent layers (every LSTM variant, GRU, Elman RNN; stacked, bidirectional, with lengths) as
ONNX nodes.

Which ONNX operator computes a layer (``onnx_op``) is decided from the layer's switches, never
from a variant's name:

- GRU -> the ``GRU`` operator with ``linear_before_reset=1`` (torch's r * (W_hn h + b_hn)).
- Elman RNN -> the ``RNN`` operator with the ``Tanh`` or ``Relu`` activation.
- An LSTM whose cell has all three gates, no full gate recurrence and no projection -> the
  ``LSTM`` operator: peepholes through its input P, a linear block input or output (NIAF, NOAF)
  through its activations list (``Affine`` with alpha 1, beta 0, i.e. g(x) = x), the coupled
  gate (CIFG, f = 1 - i) through ``input_forget=1``. onnxruntime implements all three (checked
  against lstmlab in tests/test_export_onnx.py).
- Every other LSTM (NIG, NFG, NOG, FGR, proj_size > 0 and their combinations) -> a ``Scan``
  whose body is one step of ``cells.lstm_step`` for that spec, written out node by node.

Parameter order: lstmlab stacks an LSTM's blocks as i, f, z, o (torch.nn's i, f, g, o; a block
the variant lacks is left out), the ONNX operator as i, o, f, c; peepholes go to P as
[p_i, p_o, p_f]. The GRU's blocks r, z, n become ONNX's z, r, h.

Shapes follow lstmlab: a layer reads x (T, B, I) and gives output (T, B, D*Hy), h_n (L*D, B, Hy)
and, for the LSTM, c_n (L*D, B, H). Every tensor of the graph is float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from torch import Tensor, nn

from lstmlab.cells import GRUCell, LSTMCell, LSTMSpec, RecurrentCell, RNNCell
from lstmlab.layers import GRU, LSTM, RNN, RecurrentLayer

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


def array(tensor: Tensor) -> np.ndarray:
    """A parameter as a float32 numpy array (the graph computes in float32)."""
    return tensor.detach().cpu().float().numpy()


class Graph:
    """Nodes and initializers of one ONNX graph, with unique value names.

    A subgraph (a Scan body, ``subgraph()``) has its own nodes but shares the names and the
    initializers of its root: ONNX lets a body read outer-scope values, so weights are stored
    once. ``node`` returns the name (or names) of its outputs, so graphs read like code:

        >>> y = g.node("Tanh", [g.node("Add", [a, b])])
    """

    def __init__(self, opset: int, root: Graph | None = None) -> None:
        self.opset = opset
        self.root = root or self
        self.nodes: list[onnx.NodeProto] = []
        if root is None:
            self.initializers: list[onnx.TensorProto] = []
            self._used: set[str] = set()
            self._constants: dict[tuple, str] = {}
            self._masks: dict[tuple[str, str], str] = {}

    def fresh(self, hint: str) -> str:
        """A value name not used anywhere in the model yet: ``hint``, or ``hint_2``, ..."""
        used = self.root._used
        name, k = hint, 1
        while name in used:
            k += 1
            name = f"{hint}_{k}"
        used.add(name)
        return name

    def constant(self, value: np.ndarray, hint: str = "const") -> str:
        """An initializer holding ``value`` (floats become float32); equal small constants are
        stored once."""
        value = np.asarray(value)
        if value.dtype.kind == "f":
            value = value.astype(np.float32)
        key = None
        if value.size <= 16:
            key = (value.dtype.str, value.shape, value.tobytes())
            if key in self.root._constants:
                return self.root._constants[key]
        name = self.fresh(hint)
        self.root.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        if key is not None:
            self.root._constants[key] = name
        return name

    def ints(self, values: list[int] | int, hint: str = "ints") -> str:
        """An int64 constant: a list becomes a 1-D tensor, an int a scalar."""
        return self.constant(np.array(values, dtype=np.int64), hint)

    def scalar(self, value: float) -> str:
        """A float32 scalar constant."""
        return self.constant(np.array(value, dtype=np.float32), "scalar")

    def node(self, op: str, inputs: list[str], hint: str | None = None, outputs: int = 1,
             **attributes: Any) -> Any:
        """Add one node; returns its output name (a list of names when ``outputs`` > 1)."""
        names = [self.fresh(f"{hint or op.lower()}{'' if outputs == 1 else f'_{k}'}")
                 for k in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=self.fresh(f"node_{op}"),
                                           **attributes))
        return names[0] if outputs == 1 else names

    def name_as(self, value: str, name: str) -> None:
        """Copy ``value`` to the name ``name`` (a graph output's), which must be free."""
        self.nodes.append(helper.make_node("Identity", [value], [name],
                                           name=self.fresh(f"node_{name}")))

    def subgraph(self) -> Graph:
        return Graph(self.opset, self.root)

    # --- the few compound pieces the heads and layers need ---------------------------------------

    def linear(self, x: str, weight: Tensor, bias: Tensor | None, hint: str = "linear") -> str:
        """x @ weight^T + bias, as torch.nn.functional.linear (x of any rank >= 2)."""
        y = self.node("MatMul", [x, self.constant(array(weight).T, f"{hint}_weight")], hint)
        if bias is None:
            return y
        return self.node("Add", [y, self.constant(array(bias), f"{hint}_bias")], hint)

    def unsqueeze(self, x: str, axes: list[int], hint: str | None = None) -> str:
        return self.node("Unsqueeze", [x, self.ints(axes, "axes")], hint)

    def squeeze(self, x: str, axes: list[int], hint: str | None = None) -> str:
        return self.node("Squeeze", [x, self.ints(axes, "axes")], hint)

    def reduce(self, op: str, x: str, axes: list[int], hint: str | None = None) -> str:
        """ReduceMax/ReduceSum/... over ``axes`` without keeping them (axes became an input of
        ReduceMax and ReduceMean in opset 18, of ReduceSum in 13)."""
        if op == "ReduceSum" or self.opset >= 18:
            return self.node(op, [x, self.ints(axes, "axes")], hint, keepdims=0)
        return self.node(op, [x], hint, axes=axes, keepdims=0)

    def dim(self, x: str, axis: int) -> str:
        """The size of ``x``'s ``axis`` as a 1-element int64 tensor (for shapes)."""
        shape = self.node("Shape", [x])
        return self.node("Slice", [shape, self.ints([axis]), self.ints([axis + 1])], "dim")

    def zeros(self, rows: str, width: int, hint: str = "zeros") -> str:
        """A (rows, width) float32 zero tensor; ``rows`` is a 1-element int64 tensor."""
        shape = self.node("Concat", [rows, self.ints([width])], axis=0)
        zero = helper.make_tensor("zero", FLOAT, [1], [0.0])
        return self.node("ConstantOfShape", [shape], hint, value=zero)

    def split(self, x: str, sizes: list[int], axis: int, hint: str = "split") -> list[str]:
        if len(sizes) == 1:
            return [x]
        return self.node("Split", [x, self.ints(sizes, "sizes")], hint, outputs=len(sizes),
                         axis=axis)

    def concat(self, parts: list[str], axis: int, hint: str | None = None) -> str:
        return parts[0] if len(parts) == 1 else self.node("Concat", parts, hint, axis=axis)

    def step_mask(self, lengths: str, like: str) -> str:
        """(T, B) bool, True where step t is inside sequence b: t < lengths[b] (lengths (B,)
        int64, T taken from ``like`` (T, B, ...))."""
        cache = self.root._masks
        if (lengths, like) not in cache:
            steps = self.squeeze(self.dim(like, 0), [0])
            t = self.node("Range", [self.ints(0), steps, self.ints(1)], "steps")
            cache[lengths, like] = self.node(
                "Less", [self.unsqueeze(t, [1]), self.unsqueeze(lengths, [0])], "valid")
        return cache[lengths, like]


def value_info(name: str, elem: int, shape: list[int | str | None]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


# --- a graph's inputs and outputs -------------------------------------------------------------


@dataclass
class Signature:
    """A graph's inputs and outputs as (name, element type, shape)."""

    inputs: list[tuple[str, int, list]] = field(default_factory=list)
    outputs: list[tuple[str, int, list]] = field(default_factory=list)


def float_spec(name: str, *shape: int | str) -> tuple[str, int, list]:
    return (name, FLOAT, list(shape))


def int64_spec(name: str, *shape: int | str) -> tuple[str, int, list]:
    return (name, INT64, list(shape))


def bool_spec(name: str, *shape: int | str) -> tuple[str, int, list]:
    return (name, TensorProto.BOOL, list(shape))


def declare_inputs(g: Graph, sig: Signature, *specs: tuple[str, int, list]) -> list[str]:
    """Declare graph inputs (their names are reserved) and return the names."""
    for spec in specs:
        sig.inputs.append(spec)
        g.fresh(spec[0])
    return [spec[0] for spec in specs]


def set_output(g: Graph, sig: Signature, value: str, spec: tuple[str, int, list]) -> None:
    """Make ``value`` the graph output named ``spec[0]`` (a name ``reserve`` kept free)."""
    g.name_as(value, spec[0])
    sig.outputs.append(spec)


def reserve(g: Graph, *names: str) -> None:
    """Keep the output names free: the nodes built before the outputs must not take them."""
    for name in names:
        g.fresh(name)


# --- which operator computes a layer ----------------------------------------------------------


def lstm_op_expresses(spec: LSTMSpec, proj_size: int = 0) -> bool:
    """True when the ONNX LSTM operator computes this cell exactly: all three gates (the
    forget gate may be coupled, CIFG), no full gate recurrence, no projection."""
    return (spec.input_gate and spec.output_gate and spec.forget_gate
            and not spec.gate_recurrence and not proj_size)


def onnx_op(layer: nn.Module) -> str:
    """The ONNX operator a layer is exported as: "LSTM", "GRU", "RNN" or "Scan"."""
    if isinstance(layer, LSTM):
        return "LSTM" if lstm_op_expresses(layer.spec, layer.proj_size) else "Scan"
    if isinstance(layer, GRU):
        return "GRU"
    if isinstance(layer, RNN):
        return "RNN"
    raise TypeError(f"not an lstmlab recurrent layer: {type(layer).__name__}")


# --- a layer as nodes -----------------------------------------------------------------------


@dataclass
class Recurrent:
    """A layer's results in the graph: output (T, B, D*Hy), h_n (L*D, B, Hy), c_n (L*D, B, H)
    (None for GRU and RNN)."""

    output: str
    h_n: str
    c_n: str | None


def recurrent(g: Graph, layer: RecurrentLayer, x: str, lengths: str | None = None,
              h0: str | None = None, c0: str | None = None, hint: str = "rnn") -> Recurrent:
    """The nodes of ``layer`` (any lstmlab RNN / LSTM / GRU, in eval mode: no dropout) over x
    (T, B, I), float32, time-major.

    Args:
        lengths: each sequence's length, (B,) int64 (None: all T). As in lstmlab, outputs past
            a length are zero, h_n / c_n are the state at each sequence's own last step, and a
            reverse direction starts there.
        h0, c0: the initial state, (L*D, B, Hy) and (L*D, B, H) (None: zeros).
    """
    directions = layer.num_directions
    scan = onnx_op(layer) == "Scan"
    lengths32 = None
    if lengths is not None and not scan:
        lengths32 = g.node("Cast", [lengths], "lengths_int32", to=TensorProto.INT32)
    hs, cs = [], []
    for k in range(layer.num_layers):
        name = f"{hint}_l{k}"
        if scan:
            outputs = []
            for d in range(directions):
                index = k * directions + d
                y, h, c = _lstm_scan(g, layer, x, k, bool(d), lengths,
                                     _state_row(g, h0, index), _state_row(g, c0, index),
                                     f"{name}{'_reverse' if d else ''}")
                outputs.append(y)
                hs.append(g.unsqueeze(h, [0]))
                cs.append(g.unsqueeze(c, [0]))
            x = g.concat(outputs, axis=2, hint=f"{name}_output")
        else:
            rows = [k * directions, (k + 1) * directions]
            first = [_state_rows(g, s, rows) if s is not None else "" for s in (h0, c0)]
            y, h, c = _operator(g, layer, x, k, lengths32, first, name)
            # Y is (T, D, B, Hy): lstmlab's (T, B, D*Hy) puts the directions side by side
            if directions == 1:
                x = g.squeeze(y, [1], f"{name}_output")
            else:
                y = g.node("Transpose", [y], perm=[0, 2, 1, 3])
                x = g.node("Reshape", [y, g.ints([0, 0, -1])], f"{name}_output")
            hs.append(h)
            cs.append(c)
    h_n = g.concat(hs, axis=0, hint=f"{hint}_h_n")
    c_n = g.concat(cs, axis=0, hint=f"{hint}_c_n") if isinstance(layer, LSTM) else None
    return Recurrent(x, h_n, c_n)


def _state_rows(g: Graph, state: str, rows: list[int]) -> str:
    return g.node("Slice", [state, g.ints([rows[0]]), g.ints([rows[1]]), g.ints([0])], "state")


def _state_row(g: Graph, state: str | None, index: int) -> str | None:
    return None if state is None else g.squeeze(_state_rows(g, state, [index, index + 1]), [0])


def _operator(g: Graph, layer: RecurrentLayer, x: str, k: int, lengths32: str | None,
              initial: list[str], name: str) -> tuple[str, str, str | None]:
    """Layer ``k`` (both directions) as one ONNX LSTM / GRU / RNN node: (Y, Y_h, Y_c)."""
    op = onnx_op(layer)
    per_direction = [layer.weights(k, bool(d)) for d in range(layer.num_directions)]
    attributes: dict[str, Any] = {
        "hidden_size": layer.hidden_size,
        "direction": "bidirectional" if layer.bidirectional else "forward"}
    if op == "LSTM":
        blocks = [_lstm_blocks(layer.spec, w, layer.hidden_size) for w in per_direction]
        order = ("i", "o", "f", "z")  # ONNX's i, o, f, c
        activations = ["Sigmoid", "Tanh" if layer.spec.input_activation else "Affine",
                       "Tanh" if layer.spec.output_activation else "Affine"]
        if activations != ["Sigmoid", "Tanh", "Tanh"]:  # a linear g or h: Affine(x) = 1 x + 0
            affine = activations.count("Affine") * layer.num_directions
            attributes.update(activations=activations * layer.num_directions,
                              activation_alpha=[1.0] * affine, activation_beta=[0.0] * affine)
        if layer.spec.coupled:
            attributes["input_forget"] = 1  # f = 1 - i; the f blocks below are zeros
    elif op == "GRU":
        blocks = [_split_blocks(w, ("r", "z", "n"), layer.hidden_size) for w in per_direction]
        order = ("z", "r", "n")  # ONNX's z, r, h
        attributes["linear_before_reset"] = 1
    else:
        blocks = [_split_blocks(w, ("h",), layer.hidden_size) for w in per_direction]
        order = ("h",)
        attributes["activations"] = [layer.nonlinearity.capitalize()] * layer.num_directions

    def stacked(part: str) -> np.ndarray:
        return np.stack([np.concatenate([b[part][gate] for gate in order]) for b in blocks])

    inputs = [x, g.constant(stacked("ih"), f"{name}_W"), g.constant(stacked("hh"), f"{name}_R")]
    if layer.bias:
        bias = np.concatenate([stacked("bias_ih"), stacked("bias_hh")], axis=1)
        inputs.append(g.constant(bias, f"{name}_B"))
    else:
        inputs.append("")
    inputs += [lengths32 or "", *initial[:2 if op == "LSTM" else 1]]
    if op == "LSTM" and layer.spec.peepholes:
        peepholes = np.stack([np.concatenate([b["peep"][gate] for gate in ("i", "o", "f")])
                              for b in blocks])
        inputs.append(g.constant(peepholes, f"{name}_P"))
    while inputs[-1] == "":  # trailing optional inputs are left out
        inputs.pop()
    results = 3 if op == "LSTM" else 2
    out = g.node(op, inputs, name, outputs=results, **attributes)
    return out[0], out[1], out[2] if op == "LSTM" else None


def _split_blocks(w: dict[str, Tensor], gates: tuple[str, ...],
                  hidden: int) -> dict[str, dict[str, np.ndarray]]:
    """{"ih" | "hh" | "bias_ih" | "bias_hh": {gate: block}} of one layer-direction."""
    out = {}
    for part, key in (("ih", "weight_ih"), ("hh", "weight_hh"), ("bias_ih", "bias_ih"),
                      ("bias_hh", "bias_hh")):
        if w.get(key) is not None:
            out[part] = dict(zip(gates, np.split(array(w[key]), len(gates)), strict=True))
    return out


def _lstm_blocks(spec: LSTMSpec, w: dict[str, Tensor],
                 hidden: int) -> dict[str, dict[str, np.ndarray]]:
    """An LSTM layer-direction's blocks by gate, with zeros for CIFG's forget gate (which
    ``input_forget`` ignores) and for peepholes a gate lacks."""
    blocks = _split_blocks(w, spec.gates, hidden)
    for part in blocks.values():
        if "f" not in part:
            part["f"] = np.zeros_like(part["i"])
    zero = np.zeros(hidden, dtype=np.float32)
    blocks["peep"] = {gate: array(w[f"weight_c{gate}"]) if f"weight_c{gate}" in w else zero
                      for gate in ("i", "f", "o")}
    return blocks


def _lstm_scan(g: Graph, layer: LSTM, x: str, k: int, reverse: bool, lengths: str | None,
               h0: str | None, c0: str | None, name: str) -> tuple[str, str, str]:
    """One direction of LSTM layer ``k`` as a Scan over time: (output (T, B, Hy), h (B, Hy),
    c (B, H)). The body is ``cells.lstm_step`` for ``layer.spec``; W x_t + b_ih is computed for
    all steps before the loop, as lstmlab's layers do."""
    spec, hidden = layer.spec, layer.hidden_size
    w = layer.lstm_weights(k, reverse)
    wx = g.linear(x, w.weight_ih, w.bias_ih, f"{name}_wx")
    rows = g.dim(x, 1)
    states = [h0 or g.zeros(rows, layer.output_size, f"{name}_h0"),
              c0 or g.zeros(rows, hidden, f"{name}_c0")]
    widths = [layer.output_size, hidden]
    if spec.gate_recurrence:  # the gate history starts at zero on every call
        widths.append(len(spec.sigmoid_gates) * hidden)
        states.append(g.zeros(rows, widths[-1], f"{name}_gates0"))
    scanned = [wx]
    if lengths is not None:
        scanned.append(g.unsqueeze(g.step_mask(lengths, x), [2], f"{name}_mask"))

    body = g.subgraph()
    previous = [body.fresh(f"{name}_{s}_prev") for s in ("h", "c", "gates")[:len(states)]]
    wx_t = body.fresh(f"{name}_wx_t")
    mask_t = body.fresh(f"{name}_mask_t") if lengths is not None else None
    new, y = _lstm_step(body, spec, w, wx_t, previous, hidden, name)
    if mask_t is not None:  # past a sequence's end: hold the state, output zero
        new = [body.node("Where", [mask_t, n, p], f"{name}_held") for n, p in zip(new, previous,
                                                                                   strict=True)]
        y = body.node("Where", [mask_t, y, body.scalar(0.0)], f"{name}_y")
    outputs = [body.node("Identity", [n], f"{name}_{s}") for n, s in zip(new, ("h", "c", "g"),
                                                                         strict=False)]
    y_out = body.node("Identity", [y], f"{name}_y_out")
    graph = helper.make_graph(
        body.nodes, f"{name}_step",
        [value_info(p, FLOAT, ["B", wd]) for p, wd in zip(previous, widths, strict=True)]
        + [value_info(wx_t, FLOAT, ["B", len(spec.gates) * hidden])]
        + ([value_info(mask_t, TensorProto.BOOL, ["B", 1])] if mask_t else []),
        [value_info(o, FLOAT, ["B", wd]) for o, wd in zip(outputs, widths, strict=True)]
        + [value_info(y_out, FLOAT, ["B", layer.output_size])])
    direction = [int(reverse)]
    results = g.node("Scan", states + scanned, name, outputs=len(states) + 1, body=graph,
                     num_scan_inputs=len(scanned), scan_input_directions=direction * len(scanned),
                     scan_output_directions=direction)
    return results[-1], results[0], results[1]


def _lstm_step(b: Graph, spec: LSTMSpec, w, wx_t: str, previous: list[str], hidden: int,
               name: str) -> tuple[list[str], str]:
    """``cells.lstm_step`` as nodes: the new states [h, c(, gates)] and the output y. A gate
    the cell lacks is the constant 1, so its products are left out (x * 1 = x exactly)."""
    y_prev, c_prev = previous[:2]
    pre = b.node("Add", [wx_t, b.linear(y_prev, w.weight_hh, w.bias_hh, f"{name}_rh")])
    parts = dict(zip(spec.gates, b.split(pre, [hidden] * len(spec.gates), 1, f"{name}_pre"),
                     strict=True))
    if spec.gate_recurrence:
        gate_in = b.linear(previous[2], w.weight_gates, None, f"{name}_fgr")
        for gate, r in zip(spec.sigmoid_gates,
                           b.split(gate_in, [hidden] * len(spec.sigmoid_gates), 1, f"{name}_fgr"),
                           strict=True):
            parts[gate] = b.node("Add", [parts[gate], r])
    peep = {"i": w.weight_ci, "f": w.weight_cf, "o": w.weight_co}

    def gate(which: str, c: str) -> str:
        x = parts[which]
        if which in spec.peephole_gates:
            x = b.node("Add", [x, b.node("Mul", [b.constant(array(peep[which]),
                                                            f"{name}_p{which}"), c])])
        return b.node("Sigmoid", [x], f"{name}_{which}")

    z = b.node("Tanh", [parts["z"]], f"{name}_z") if spec.input_activation else parts["z"]
    i = gate("i", c_prev) if spec.input_gate else None
    if spec.coupled:
        f = b.node("Sub", [b.scalar(1.0), i], f"{name}_f")
    else:
        f = gate("f", c_prev) if spec.forget_gate else None
    write = b.node("Mul", [z, i]) if i else z
    keep = b.node("Mul", [c_prev, f]) if f else c_prev
    c = b.node("Add", [write, keep], f"{name}_c")
    o = gate("o", c) if spec.output_gate else None
    shown = b.node("Tanh", [c]) if spec.output_activation else c
    y = b.node("Mul", [shown, o]) if o else shown
    if w.weight_hr is not None:
        y = b.linear(y, w.weight_hr, None, f"{name}_proj")
    new = [y, c]
    if spec.gate_recurrence:
        act = {"i": i, "f": f, "o": o}
        new.append(b.concat([act[n] for n in spec.sigmoid_gates], axis=1, hint=f"{name}_gates"))
    return new, y


# --- one step of a cell module, and the image encoder --------------------------------------------


def cell_step(g: Graph, cell: RecurrentCell, x: str, state: list[str] | None,
              hint: str = "cell") -> list[str]:
    """One step of an ``lstmlab.cells`` module (``LSTMCell`` of any variant, ``GRUCell``,
    ``RNNCell``) on x (B, I) from ``state`` (the tensors of ``cell.state_widths``, each (B, W);
    None: zeros, as the cell starts); returns the new state, h first. Unlike a layer's Scan, an
    FGR cell's gate history is carried in and out."""
    if state is None:
        rows = g.dim(x, 0)
        state = [g.zeros(rows, width, f"{hint}_{name}0")
                 for name, width in cell.state_widths.items()]
    if isinstance(cell, LSTMCell):
        w = cell.lstm_weights()
        wx = g.linear(x, w.weight_ih, w.bias_ih, f"{hint}_wx")
        new, _ = _lstm_step(g, cell.spec, w, wx, list(state), cell.hidden_size, hint)
        return new
    bias_ih, bias_hh = cell._parameters.get("bias_ih"), cell._parameters.get("bias_hh")
    wx = g.linear(x, cell.weight_ih, bias_ih, f"{hint}_wx")
    wh = g.linear(state[0], cell.weight_hh, bias_hh, f"{hint}_wh")
    if isinstance(cell, GRUCell):  # cells.gru_step
        x_r, x_z, x_n = g.split(wx, [cell.hidden_size] * 3, 1, f"{hint}_x")
        h_r, h_z, h_n = g.split(wh, [cell.hidden_size] * 3, 1, f"{hint}_h")
        r = g.node("Sigmoid", [g.node("Add", [x_r, h_r])], f"{hint}_r")
        z = g.node("Sigmoid", [g.node("Add", [x_z, h_z])], f"{hint}_z")
        n = g.node("Tanh", [g.node("Add", [x_n, g.node("Mul", [r, h_n])])], f"{hint}_n")
        keep = g.node("Mul", [z, state[0]])
        write = g.node("Mul", [g.node("Sub", [g.scalar(1.0), z]), n])
        return [g.node("Add", [write, keep], f"{hint}_h")]
    if isinstance(cell, RNNCell):  # cells.rnn_step
        act = "Tanh" if cell.nonlinearity == "tanh" else "Relu"
        return [g.node(act, [g.node("Add", [wx, wh])], f"{hint}_h")]
    raise TypeError(f"not an lstmlab cell module: {type(cell).__name__}")


def image_encoder(g: Graph, encoder: nn.Module, images: str) -> str:
    """``models.image_encoder.ImageEncoder`` in eval mode (batch norm with its running
    statistics): images (B, 3, H, W) -> grid (B, C, H', W')."""
    x = g.node("Sub", [images, g.scalar(0.5)], "centred")
    for k, (conv, norm, _) in enumerate(zip(*[iter(encoder.blocks)] * 3, strict=True)):
        stride = conv.stride[0]
        x = g.node("Conv", [x, g.constant(array(conv.weight), f"conv{k}_weight")], f"conv{k}",
                   kernel_shape=list(conv.kernel_size), strides=[stride, stride],
                   pads=[conv.padding[0]] * 4)
        x = g.node("BatchNormalization",
                   [x, g.constant(array(norm.weight), f"norm{k}_scale"),
                    g.constant(array(norm.bias), f"norm{k}_bias"),
                    g.constant(array(norm.running_mean), f"norm{k}_mean"),
                    g.constant(array(norm.running_var), f"norm{k}_var")],
                   f"norm{k}", epsilon=float(norm.eps))
        x = g.node("Relu", [x], f"block{k}")
    return x
