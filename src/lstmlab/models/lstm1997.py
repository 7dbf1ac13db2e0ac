"""The 1997 LSTM network of Hochreiter & Schmidhuber ("Long Short-Term Memory", Neural Computation
9(8), 1997), and the paper's own configuration for each of its experiments 1-6.

The network (section 4 and appendix A.1 of the paper). G memory blocks of S cells each (C = G*S
cells); every block has one input gate and, where the experiment uses one, one output gate,
shared by its S cells. No forget gate, no peepholes: the cell state is the paper's "constant error
carousel" (CEC), a self-connection of fixed weight 1. Shapes: T steps, B sequences, I input units,
O output units. For each step t, with u_t the sources the hidden layer reads,

    u_t      = [x_t ; y^c_{t-1} ; y^in_{t-1} ; y^out_{t-1}]   (B, I + C + 2G)  fully connected
             = x_t                                             (B, I)  layout "B" (2a/2b)
    y^in_t   = f(W_in u_t + b_in)                  (B, G)  input gates, f the logistic sigmoid
    y^out_t  = f(W_out u_t + b_out)                (B, G)  output gates (1 where there are none)
    s_t      = s_{t-1} + y^in_t[block] * g(W_c u_t + b_c)     (B, C)  the CEC, s_{-1} = 0
    y^c_t    = y^out_t[block] * h(s_t)             (B, C)  cell outputs
    net^k_t  = W_k [y^c_t (; x_t)] + b_k           (B, O)  output units (returned, raw)

where [block] repeats each block's gate for its S cells. The output units are logistic, f(net^k),
trained on squared error: the model returns their net inputs and the memory tasks (loss kind
"mse_sigmoid") apply the sigmoid. The squashing functions are the paper's (appendix A.1, eqs. 3-5):
g(x) = 4 f(x) - 2 in [-2, 2], h(x) = 2 f(x) - 1 in [-1, 1]; experiment 2a/2b uses g = f and
h(x) = x. Biases b exist only where the experiment's network has them (``bias``: "none", "gates",
"hidden" = gates and cells, "all" = also the output units).

Timing (a reading of the paper): appendix A.1 writes every net input from the activations of step
t - 1, inputs included. lstmlab computes the layers in order within a step - gates and cells read
x_t and the hidden layer's activations of t - 1, the output units read the cells of step t (and,
in 2a/2b, x_t) - because the targets presuppose it: in Reber and 2a the target at step t is the
symbol after x_t, and in 2c the answer is due at the trigger e itself.

Truncated gradient (``truncated=True``, the paper's learning rule; appendix A.1: the derivatives
of net_in, net_out and net_c with respect to every y^u(t-1) are replaced by zero). The recurrent
sources y^c_{t-1}, y^in_{t-1}, y^out_{t-1} enter u_t detached, so an error that reaches a gate or
a cell input changes that unit's incoming weights and stops there; the only path back in time is
s_t = s_{t-1} + ..., the CEC, along which it flows unscaled. The output units' error reaches the
cells of the same step (y^c_t is not detached). ``truncated=False`` is full backpropagation
through time through every connection (the paper's section 6 reports no significant difference).

With truncation every net input is a function of sources that carry no gradient, so ``forward``
(when gradients are on) first runs the step loop without gradients to get the sources u_t of every
step, then recomputes all steps at once from them: net inputs in one matrix product, the CEC as a
cumulative sum over time. Outputs and gradients are those of the step loop with its detach
(``steps``, the reference; tests/test_lstm1997.py compares the two).

The paper's configurations (section 5 and its summary, Tables 10 and 11 of section 5.7) are
``SETUPS``, one ``Setup1997`` per experiment; ``build_lstm1997(task)`` builds and initialises the
network of a task's experiment (``experiment_of``). Where lstmlab cannot follow the paper exactly,
the table says so (``Setup1997.departures``; docs/tasks.md, "The 1997 set-up as a learner").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.models.registry import register
from lstmlab.tasks.memory import MemoryTask

SIGMOID_SQUASHES = {"sigmoid": (1.0, 0.0), "sigmoid_pm1": (2.0, 1.0), "sigmoid_pm2": (4.0, 2.0)}
"""The squashing functions a f(x) - b by name (a, b): f, range [0, 1] (the gates; g of 2a/2b);
2 f(x) - 1, range [-1, 1] (the paper's h); 4 f(x) - 2, range [-2, 2] (the paper's g)."""
SQUASHES = (*SIGMOID_SQUASHES, "identity")
"""The names of the squashing functions g (cell input) and h (cell output); "identity" is h of
2a/2b (appendix A.1, eqs. 3-5; section 5.2)."""


def squash(name: str, x: Tensor) -> Tensor:
    """The squashing function ``name`` (``SQUASHES``) applied to x."""
    if name == "identity":
        return x
    scale, shift = SIGMOID_SQUASHES[name]
    return torch.sigmoid(x) if scale == 1.0 else scale * torch.sigmoid(x) - shift


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 + 0.5 * np.tanh(0.5 * x)  # = 1 / (1 + exp(-x)), without overflow


def _np_squash(name: str, x: np.ndarray) -> np.ndarray:
    """``squash`` in numpy."""
    if name == "identity":
        return x
    scale, shift = SIGMOID_SQUASHES[name]
    return scale * _np_sigmoid(x) - shift


BIASES = ("none", "gates", "hidden", "all")
"""Which units have bias weights (Table 10, column 12): none; "gates" (the paper's "ga"); "hidden"
(gates and cells, "b1"); "all" (every non-input unit, the output units too)."""


class Trace1997(NamedTuple):
    """Every step of a run of ``LSTM1997.steps``: outputs (T, B, O), the raw output units;
    s and y_c (T, B, C), the cell states and outputs; y_in and y_out (T, B, G), the gates
    (y_out is all ones without output gates)."""

    outputs: Tensor
    s: Tensor
    y_c: Tensor
    y_in: Tensor
    y_out: Tensor


@register("lstm1997")
class LSTM1997(nn.Module):
    """The 1997 network (module docstring): inputs (T, B, I) -> raw output units (T, B, O).

    Args:
        input_size, output_size: I input units, O output units.
        blocks, cells: G memory blocks of S cells each.
        output_gate: the blocks have output gates (not in 2a/2b).
        recurrent: the hidden layer is fully connected, gates and cells reading the previous
            step's cell outputs and gate activations (the paper's layout "F"); False: they read
            the inputs only ("B", 2a/2b).
        input_to_output: the output units also read the inputs ("B").
        bias: which units have bias weights (``BIASES``).
        g, h: the squashing functions of the cell input and output (``SQUASHES``).
        truncated: train with the paper's truncated gradient (module docstring); False: full BPTT.

    Parameters: ``input_gate`` (G, I + R), ``output_gate`` (G, I + R), ``cell_input``
    (C, I + R), each an ``nn.Linear`` over the sources u (R = C + 2G recurrent sources, C + G
    without output gates, 0 when not recurrent), and ``head`` (O, C [+ I]) for the output units.
    Initialised uniformly in [-0.1, 0.1]; ``reset_parameters`` sets the paper's ranges and
    gate biases.
    """

    def __init__(self, input_size: int, output_size: int, blocks: int, cells: int = 1, *,
                 output_gate: bool = True, recurrent: bool = True,
                 input_to_output: bool = False, bias: str = "all", g: str = "sigmoid_pm2",
                 h: str = "sigmoid_pm1", truncated: bool = True) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("output_size", output_size),
                            ("blocks", blocks), ("cells", cells)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if bias not in BIASES:
            raise ValueError(f"bias must be one of {', '.join(BIASES)}, got {bias!r}")
        for name, value in (("g", g), ("h", h)):
            if value not in SQUASHES:
                raise ValueError(f"{name} must be one of {', '.join(SQUASHES)}, got {value!r}")
        self.input_size, self.output_size = input_size, output_size
        self.blocks, self.cells = blocks, cells
        self.has_output_gate, self.recurrent = output_gate, recurrent
        self.input_to_output, self.bias, self.g_name, self.h_name = input_to_output, bias, g, h
        self.truncated = truncated
        C, G = blocks * cells, blocks
        self.recurrent_size = (C + G + (G if output_gate else 0)) if recurrent else 0
        sources = input_size + self.recurrent_size
        gate_bias, cell_bias = bias != "none", bias in ("hidden", "all")
        self.input_gate = nn.Linear(sources, G, bias=gate_bias)
        self.output_gate = nn.Linear(sources, G, bias=gate_bias) if output_gate else None
        self.cell_input = nn.Linear(sources, C, bias=cell_bias)
        self.head = nn.Linear(C + (input_size if input_to_output else 0), output_size,
                              bias=bias == "all")
        # False until the memory cells are added (2a/2b's sequential network construction):
        # the output units read zeros in their place, so no error reaches the hidden layer
        self.register_buffer("connected", torch.tensor(True))
        self.reset_parameters()

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-ready: ``LSTM1997(**model.config())``."""
        return {"input_size": self.input_size, "output_size": self.output_size,
                "blocks": self.blocks, "cells": self.cells, "output_gate": self.has_output_gate,
                "recurrent": self.recurrent, "input_to_output": self.input_to_output,
                "bias": self.bias, "g": self.g_name, "h": self.h_name,
                "truncated": self.truncated}

    @property
    def num_weights(self) -> int:
        """The number of weights, biases included: the paper's "# weights"."""
        return sum(p.numel() for p in self.parameters())

    def reset_parameters(self, weight_range: float = 0.1,
                         input_gate_bias: tuple[float, ...] | None = None,
                         output_gate_bias: tuple[float, ...] | None = None,
                         generator: torch.Generator | None = None) -> None:
        """Every weight and bias uniform in [-weight_range, weight_range]; then, where given, the
        bias of block j's input (output) gate set to ``input_gate_bias[j]``
        (``output_gate_bias[j]``), one value per block (the paper's remedy for state drift and
        the abuse problem, section 4)."""
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-weight_range, weight_range, generator=generator)
            for gate, values in ((self.input_gate, input_gate_bias),
                                 (self.output_gate, output_gate_bias)):
                if values is None:
                    continue
                if gate is None or gate.bias is None:
                    raise ValueError("gate biases given for a network without those biases")
                if len(values) != self.blocks:
                    raise ValueError(f"one gate bias per block: {self.blocks} values, got "
                                     f"{len(values)}")
                gate.bias.copy_(torch.tensor(values, dtype=gate.bias.dtype))

    # -- the equations, one step at a time (the reference) --------------------------------------

    def zero_state(self, batch: int, like: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(s, y_c, y_in, y_out) before the first step: all activations zero (the paper resets
        them at the start of every sequence)."""
        C, G = self.blocks * self.cells, self.blocks
        zeros = like.new_zeros
        return zeros(batch, C), zeros(batch, C), zeros(batch, G), zeros(batch, G)

    def _per_cell(self, gate: Tensor) -> Tensor:
        """(..., G) block gates -> (..., C), each block's gate repeated for its S cells."""
        return gate.repeat_interleave(self.cells, dim=-1) if self.cells > 1 else gate

    def step(self, x: Tensor, state: tuple[Tensor, Tensor, Tensor, Tensor]
             ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One step of the hidden layer: x (B, I) and the previous (s, y_c, y_in, y_out) ->
        this step's (s, y_c, y_in, y_out). With ``truncated`` the recurrent sources are detached:
        errors reach them only through s, the CEC."""
        s, y_c, y_in, y_out = state
        if self.recurrent:
            previous = [y_c, y_in] + ([y_out] if self.output_gate is not None else [])
            r = torch.cat(previous, dim=-1)
            u = torch.cat([x, r.detach() if self.truncated else r], dim=-1)
        else:
            u = x
        y_in = torch.sigmoid(self.input_gate(u))
        y_out = (torch.sigmoid(self.output_gate(u)) if self.output_gate is not None
                 else torch.ones_like(y_in))
        s = s + self._per_cell(y_in) * squash(self.g_name, self.cell_input(u))
        y_c = self._per_cell(y_out) * squash(self.h_name, s)
        return s, y_c, y_in, y_out

    def connect(self, connected: bool = True) -> None:
        """Add the memory cells to the network (or take them out): while they are out
        (``connected`` False) the output units read zeros in their place. The paper grows the
        network of experiment 2a/2b this way, adding the cell "once the error has stopped
        decreasing" (section 5.2; section 4, "sequential network construction")."""
        self.connected.fill_(connected)

    def read_out(self, y_c: Tensor, inputs: Tensor) -> Tensor:
        """The output units' net inputs from the cells (and the inputs, in layout "B")."""
        if not bool(self.connected):
            y_c = torch.zeros_like(y_c)
        return self.head(torch.cat([y_c, inputs], dim=-1) if self.input_to_output else y_c)

    def steps(self, inputs: Tensor) -> Trace1997:
        """The step loop over inputs (T, B, I): every step's outputs and states (``Trace1997``).
        The reference the fast path of ``forward`` is tested against."""
        self._check(inputs)
        state = self.zero_state(inputs.shape[1], inputs)
        trace = []
        for x in inputs:
            state = self.step(x, state)
            trace.append(state)
        s, y_c, y_in, y_out = (torch.stack(parts) for parts in zip(*trace, strict=True))
        return Trace1997(self.read_out(y_c, inputs), s, y_c, y_in, y_out)

    # -- forward: the step loop, or its fast form under truncation ------------------------------

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """inputs (T, B, I) -> the output units' net inputs (T, B, O). ``lengths`` is accepted
        for the memory games' interface and not needed: the network runs forward in time, so
        padding after a sequence's end does not change its outputs before it."""
        if not self.recurrent:  # nothing flows from step to step but the CEC: all at once
            return self._all_steps(inputs, None)
        if torch.is_grad_enabled() and not self.truncated:  # full BPTT: the step loop
            return self.steps(inputs).outputs
        with torch.no_grad():  # truncated, or no gradient at all: the sources carry none
            previous = self._recurrent_sources(inputs)
        return self._all_steps(inputs, previous)

    def _weights(self) -> tuple[Tensor, Tensor | None]:
        """The hidden layer's weights stacked [input gates; output gates; cells], (Hh, I + R),
        and biases (Hh,) (zeros where a unit has none; None without any bias)."""
        layers = [self.input_gate] + ([self.output_gate] if self.output_gate is not None else [])
        layers.append(self.cell_input)
        weight = torch.cat([layer.weight for layer in layers])
        if self.bias == "none":
            return weight, None
        bias = torch.cat([layer.bias if layer.bias is not None
                          else layer.weight.new_zeros(layer.out_features) for layer in layers])
        return weight, bias

    def _split(self, net: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Net inputs (..., Hh) -> activations y_in (..., G), y_out (..., G), g(net_c) (..., C)."""
        G = self.blocks
        y_in = torch.sigmoid(net[..., :G])
        if self.output_gate is not None:
            y_out, net_c = torch.sigmoid(net[..., G:2 * G]), net[..., 2 * G:]
        else:
            y_out, net_c = torch.ones_like(y_in), net[..., G:]
        return y_in, y_out, squash(self.g_name, net_c)

    def _recurrent_sources(self, inputs: Tensor) -> Tensor:
        """(T, B, R): the recurrent sources [y^c; y^in; y^out] of step t - 1 that step t reads
        (zeros at t = 0), without gradients. On the CPU by the step loop in numpy (the same
        numbers as ``steps`` up to rounding, about 3x faster for these small nets at batch 1,
        where each torch call costs more than its arithmetic); elsewhere from ``steps``."""
        if inputs.device.type == "cpu":
            return self._recurrent_sources_numpy(inputs)
        trace = self.steps(inputs)
        r = torch.cat([trace.y_c, trace.y_in]
                      + ([trace.y_out] if self.output_gate is not None else []), dim=-1)
        return torch.cat([torch.zeros_like(r[:1]), r[:-1]])

    def _recurrent_sources_numpy(self, inputs: Tensor) -> Tensor:
        """``_recurrent_sources`` as a numpy loop over the steps (the equations of ``step``)."""
        self._check(inputs)
        weight, bias = self._weights()
        I, G, S = self.input_size, self.blocks, self.cells
        w = weight.detach().numpy()
        x = inputs.detach().numpy()
        from_inputs = x @ w[:, :I].T                                   # (T, B, Hh)
        if bias is not None:
            from_inputs += bias.detach().numpy()
        w_r = np.ascontiguousarray(w[:, I:].T)                         # (R, Hh)
        gates = 2 * G if self.output_gate is not None else G
        steps, batch = x.shape[:2]
        sources = np.zeros((steps, batch, self.recurrent_size), dtype=x.dtype)
        r = np.zeros((batch, self.recurrent_size), dtype=x.dtype)
        s = np.zeros((batch, G * S), dtype=x.dtype)
        for t in range(steps):
            sources[t] = r
            net = from_inputs[t] + r @ w_r
            y = _np_sigmoid(net[:, :gates])                            # [y^in; y^out]
            s = s + np.repeat(y[:, :G], S, axis=1) * _np_squash(self.g_name, net[:, gates:])
            y_c = _np_squash(self.h_name, s)
            if self.output_gate is not None:
                y_c = np.repeat(y[:, G:], S, axis=1) * y_c
            r = np.concatenate([y_c, y], axis=1)
        return torch.from_numpy(sources)

    def _all_steps(self, inputs: Tensor, previous: Tensor | None) -> Tensor:
        """Every step at once, given the sources: net inputs from [x_t; previous_t] (previous:
        (T, B, R) recurrent sources, constants; None when not recurrent), the CEC as a
        cumulative sum over time, then the output units."""
        self._check(inputs)
        weight, bias = self._weights()
        sources = inputs if previous is None else torch.cat([inputs, previous], dim=-1)
        y_in, y_out, z = self._split(F.linear(sources, weight, bias))
        s = torch.cumsum(self._per_cell(y_in) * z, dim=0)
        y_c = self._per_cell(y_out) * squash(self.h_name, s)
        return self.read_out(y_c, inputs)

    def _check(self, inputs: Tensor) -> None:
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size or inputs.shape[0] == 0:
            raise ValueError(f"inputs must be (T, B, {self.input_size}) with T >= 1, got "
                             f"{tuple(inputs.shape)}")


# -- the paper's configurations -----------------------------------------------------------------

@dataclass(frozen=True)
class Setup1997:
    """One experiment's LSTM set-up in the 1997 paper (section 5; Tables 10 and 11 of 5.7).

    Attributes:
        experiment: "1", "2a", ..., "6b"; section: where the paper describes it.
        blocks, cells: b and S of Table 10 (memory blocks, cells per block).
        output_gate, recurrent, input_to_output, bias, g, h: the network (``LSTM1997``;
            Table 10's connectivity "F" is recurrent=True, "B" recurrent=False with
            input_to_output=True).
        weight_range: every weight and bias drawn from [-r, r] (Table 11, column 3).
        input_gate_bias, output_gate_bias: the initial gate bias of each block (Table 10,
            columns 10-11); None: drawn like the other weights ("r").
        lr: the learning rate alpha (Table 10, column 15), for online learning: plain gradient
            descent after every sequence, on half the squared error summed over the sequence's
            scored steps and output units (appendix A.1, eqs. 16-22).
        grow: the memory cells join the network only "once the error has stopped decreasing"
            (2a/2b; ``LSTM1997.connect``); the learner decides when (ours: see departures).
        paper_weights: Table 10's weight count at the paper's size (None where it depends on the
            task's size only through I and O, which ``LSTM1997.num_weights`` reproduces).
        departures: where lstmlab's set-up differs from the paper's, and why (one line each).
    """

    experiment: str
    section: str
    blocks: int
    cells: int
    lr: float
    weight_range: float
    bias: str
    input_gate_bias: tuple[float, ...] | None = None
    output_gate_bias: tuple[float, ...] | None = None
    output_gate: bool = True
    recurrent: bool = True
    input_to_output: bool = False
    g: str = "sigmoid_pm2"
    h: str = "sigmoid_pm1"
    grow: bool = False
    paper_weights: int | None = None
    departures: tuple[str, ...] = ()


GROW_WINDOW = 100
GROW_TOLERANCE = 0.01
"""When the 2a/2b learner adds the memory cell (ours; the paper says only "once the error has
stopped decreasing"): when the mean training error of the last ``GROW_WINDOW`` sequences is no
longer ``GROW_TOLERANCE`` (1%) below the mean of the ``GROW_WINDOW`` before them."""

_ONCE_PER_SEQUENCE = (
    "weights change once per sequence: the paper gives each time step's contribution and a "
    "weight's total update as their sum (appendix A.1, eqs. 17-28); with targets at every step "
    "(1, 2a, 2b) a learner that changed the weights at every step, as real-time recurrent "
    "learning does, would differ within a sequence. With the error at the last step only "
    "(2c, 3-6) the two are the same.")
_GROWN = (
    "the paper adds the memory cell and its input gate 'once the error has stopped decreasing' "
    "(section 5.2; sequential network construction, section 4) without saying when; lstmlab "
    "adds them when the mean training error of 100 sequences is no longer 1% below that of the "
    "100 before (GROW_WINDOW, GROW_TOLERANCE).")

SETUPS: dict[str, Setup1997] = {s.experiment: s for s in (
    # 5.1, Table 1: the best of the five LSTM rows (3 blocks of 2, lr 0.5: 8,440 sequences),
    # the figure lstmlab's reber task compares with. All weights in [-0.2, 0.2] but the output
    # gate biases, -1, -2, -3; only the gates have biases ("ga").
    Setup1997("1", "5.1, Table 1 (row 3 blocks x 2, lr 0.5)", blocks=3, cells=2, lr=0.5,
              weight_range=0.2, bias="gates", output_gate_bias=(-1.0, -2.0, -3.0),
              paper_weights=276, departures=(_ONCE_PER_SEQUENCE,)),
    # 5.2, 2a/2b: the RTRL net's layout "B" with the hidden unit replaced by one memory cell and
    # an input gate; no output gate, no biases; g the logistic sigmoid, h the identity; lr 1.0.
    Setup1997("2a", "5.2, Task 2a; Table 2", blocks=1, cells=1, lr=1.0, weight_range=0.2,
              bias="none", output_gate=False, recurrent=False, input_to_output=True,
              g="sigmoid", h="identity", grow=True, paper_weights=10_504,
              departures=(_GROWN, _ONCE_PER_SEQUENCE)),
    Setup1997("2b", "5.2, Task 2b", blocks=1, cells=1, lr=1.0, weight_range=0.2,
              bias="none", output_gate=False, recurrent=False, input_to_output=True,
              g="sigmoid", h="identity", grow=True, paper_weights=10_504,
              departures=(_GROWN, _ONCE_PER_SEQUENCE)),
    # 5.2, 2c: two blocks of one cell ("although one would be sufficient"), no biases, lr 0.01.
    # Weights 6p + 64: 364, 664, 1264, 3064, 6064 for p = 50 ... 1000 (Table 3).
    Setup1997("2c", "5.2, Task 2c; Table 3", blocks=2, cells=1, lr=0.01, weight_range=0.2,
              bias="none"),
    # 5.3: three blocks of one cell; gates and cells biased ("b1"), input gates -1, -3, -5,
    # output gates -2, -4, -6; weights in [-0.1, 0.1]; lr 1.0 (3a, 3b), 0.1 (3c).
    *(Setup1997(v, f"5.3, Task {v}; Table {table}", blocks=3, cells=1, lr=lr, weight_range=0.1,
                bias="hidden", input_gate_bias=(-1.0, -3.0, -5.0),
                output_gate_bias=(-2.0, -4.0, -6.0), paper_weights=102)
      for v, lr, table in (("3a", 1.0, 4), ("3b", 1.0, 5), ("3c", 0.1, 6))),
    # 5.4: two blocks of two cells; every non-input unit biased; input gates -3, -6, output gate
    # biases random; weights in [-0.1, 0.1]; lr 0.5.
    Setup1997("4", "5.4; Table 7", blocks=2, cells=2, lr=0.5, weight_range=0.1, bias="all",
              input_gate_bias=(-3.0, -6.0), paper_weights=93),
    # 5.5: as 5.4 with random input gate biases and lr 0.1.
    Setup1997("5", "5.5; Table 8", blocks=2, cells=2, lr=0.1, weight_range=0.1, bias="all",
              paper_weights=93),
    # 5.6: two (three) blocks of two cells; input gates -2, -4 (, -6); lr 0.5 (0.1).
    Setup1997("6a", "5.6, Task 6a; Table 9", blocks=2, cells=2, lr=0.5, weight_range=0.1,
              bias="all", input_gate_bias=(-2.0, -4.0), paper_weights=156),
    Setup1997("6b", "5.6, Task 6b; Table 9", blocks=3, cells=2, lr=0.1, weight_range=0.1,
              bias="all", input_gate_bias=(-2.0, -4.0, -6.0), paper_weights=308),
)}
"""The paper's LSTM set-up of each experiment, by experiment ("1", "2a", ..., "6b"). From the text
of sections 5.1-5.6 and the summary Tables 10 and 11 (5.7); weights = the paper's count at its
sizes (every one reproduced by ``LSTM1997.num_weights``):

    exp.    section (table) blocks x S    conn. biases igb        ogb      range lr        weights
    1       5.1 (1)         3 x 2         F     gates  r          -1 -2 -3 0.2   0.5       276
    2a, 2b  5.2 (2)         1 x 1, no og  B     none   -          -        0.2   1.0       10,504
    2c      5.2 (3)         2 x 1         F     none   -          -        0.2   0.01      6p + 64
    3a-3c   5.3 (4-6)       3 x 1         F     hidden -1 -3 -5   -2 -4 -6 0.1   1.0, 0.1  102
    4       5.4 (7)         2 x 2         F     all    -3 -6      r        0.1   0.5       93
    5       5.5 (8)         2 x 2         F     all    r          r        0.1   0.1       93
    6a, 6b  5.6 (9)         2 x 2, 3 x 2  F     all    -2 -4 (-6) r        0.1   0.5, 0.1  156, 308

F: the output units read the cells only; cells and gates read the inputs and every cell output and
gate activation of the previous step. B: each layer reads all layers below (2a/2b: the cell and its
input gate read the inputs, the output units the inputs and the cell). igb / ogb: the initial input
/ output gate bias of each block; r: drawn like the other weights; range: every weight drawn from
[-range, range]; 3a and 3b learn at lr 1.0, 3c at 0.1. g in [-2, 2] and h in [-1, 1] everywhere but
in 2a/2b (g the logistic sigmoid, h the identity). Experiment 1 is Table 1's best row (lr 0.5;
8,440 sequences). Every experiment learns online (one sequence per update, plain gradient descent
at lr, no momentum, no clipping) on half the squared error summed over the sequence's scored steps,
with the truncated gradient; 2a/2b grow the cell in (``grow``). Departures:
``Setup1997.departures`` (docs/tasks.md, B7)."""

_EXPERIMENT_OF_TASK = {"reber": "1", "adding": "4", "multiplication": "5"}
_BY_VARIANT = ("lag", "two_sequence", "temporal_order")  # the variant names the experiment


def experiment_of(task: MemoryTask) -> str:
    """The 1997 experiment a memory task reruns ("1", "2a", ..., "6b"); ValueError for a task
    the paper has no LSTM set-up for."""
    if task.name in _BY_VARIANT and task.variant in SETUPS:
        return task.variant
    if task.name == "adding" and task.variant != "1997":
        raise ValueError(f"{task.title} is not the 1997 adding problem (experiment 4): the "
                         "paper has no set-up for it; use the task 'adding'")
    if task.name in _EXPERIMENT_OF_TASK:
        return _EXPERIMENT_OF_TASK[task.name]
    raise ValueError(f"{task.title}: the 1997 set-up exists for the paper's experiments 1-6 only "
                     "(reber, lag 2a/2b/2c, two_sequence 3a/3b/3c, adding, multiplication, "
                     "temporal_order 6a/6b)")


def setup_of(task: MemoryTask) -> Setup1997:
    """The paper's set-up for the experiment ``task`` reruns (``experiment_of``)."""
    return SETUPS[experiment_of(task)]


def build_lstm1997(task: MemoryTask, seed: int = 0, truncated: bool = True,
                   setup: Setup1997 | None = None) -> LSTM1997:
    """The paper's network for ``task``'s experiment, sized for the task (I input and O output
    units) and initialised as the paper says (its weight range and gate biases), drawn from
    ``seed``. Where the paper grows the network (2a/2b, ``Setup1997.grow``) its memory cell is
    not connected yet (``LSTM1997.connect``). ``setup``: another set-up in the paper's place
    (e.g. ``dataclasses.replace(setup_of(task), bias="all")``, to study a change)."""
    setup = setup or setup_of(task)
    net = LSTM1997(task.input_size, task.output_size, setup.blocks, setup.cells,
                   output_gate=setup.output_gate, recurrent=setup.recurrent,
                   input_to_output=setup.input_to_output, bias=setup.bias, g=setup.g,
                   h=setup.h, truncated=truncated)
    net.reset_parameters(setup.weight_range, setup.input_gate_bias, setup.output_gate_bias,
                         torch.Generator().manual_seed(seed))
    net.connect(not setup.grow)
    return net
