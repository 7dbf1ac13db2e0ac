"""The equations: one step of each recurrent cell, and the table of LSTM variants.

This file is the reference. Every faster path in ``lstmlab.kernels`` is tested against the steps
below, so they are written to read like the equations (Greff et al. 2015, section II):

    z_t = g(W_z x_t + R_z y_{t-1} + b_z)                        candidate ("update")
    i_t = sigmoid(W_i x_t + R_i y_{t-1} + p_i * c_{t-1} + b_i)  input gate
    f_t = sigmoid(W_f x_t + R_f y_{t-1} + p_f * c_{t-1} + b_f)  forget gate
    c_t = z_t * i_t + c_{t-1} * f_t                             cell state
    o_t = sigmoid(W_o x_t + R_o y_{t-1} + p_o * c_t + b_o)      output gate ("select")
    y_t = h(c_t) * o_t                                          output

with g = h = tanh. A variant is an ``LSTMSpec``: a set of switches on that one cell.

The input contribution ``W x_t + b_ih`` of every step does not depend on the recurrence, so the
layers compute it for all steps at once and hand each step its slice (``wx``, shape (B, G*H)).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

GATE_ORDER = ("i", "f", "z", "o")  # parameter block order: nn.LSTM's i, f, g(=z), o


@dataclass(frozen=True)
class LSTMSpec:
    """Switches on the LSTM cell. The default is Greff's vanilla LSTM (V).

    Attributes:
        input_gate: learn i_t; False sets i_t = 1 (NIG).
        forget_gate: the cell forgets; False sets f_t = 1 (NFG).
        output_gate: learn o_t; False sets o_t = 1 (NOG).
        peepholes: p_i, p_f, p_o connect c to the gates that exist; False is NP.
        input_activation: g = tanh; False makes the candidate linear, g(x) = x (NIAF).
        output_activation: h = tanh; False gives y_t = c_t * o_t (NOAF).
        coupled: f_t = 1 - i_t with no forget-gate weights (CIFG).
        gate_recurrence: every gate also receives the previous step's i, f, o activations
            through one (S*H, S*H) matrix, S the number of learned sigmoid gates (FGR).
    """

    input_gate: bool = True
    forget_gate: bool = True
    output_gate: bool = True
    peepholes: bool = True
    input_activation: bool = True
    output_activation: bool = True
    coupled: bool = False
    gate_recurrence: bool = False

    def __post_init__(self) -> None:
        if self.coupled and not self.input_gate:
            raise ValueError("a coupled forget gate (CIFG: f = 1 - i) needs the input gate "
                             "(not NIG)")
        if self.coupled and not self.forget_gate:
            raise ValueError("CIFG couples the forget gate to the input gate; it cannot be "
                             "combined with NFG (no forget gate)")
        if self.gate_recurrence and not self.sigmoid_gates:
            raise ValueError("full gate recurrence (FGR) needs at least one learned gate")

    @property
    def learned_forget_gate(self) -> bool:
        """True when f_t has weights of its own (not NFG, not CIFG)."""
        return self.forget_gate and not self.coupled

    @property
    def gates(self) -> tuple[str, ...]:
        """Blocks of the weight matrices, in parameter order (a subset of i, f, z, o)."""
        present = {"i": self.input_gate, "f": self.learned_forget_gate, "z": True,
                   "o": self.output_gate}
        return tuple(g for g in GATE_ORDER if present[g])

    @property
    def sigmoid_gates(self) -> tuple[str, ...]:
        """The learned sigmoid gates (i, f, o that have weights): FGR's recurrence acts on these."""
        return tuple(g for g in self.gates if g != "z")

    @property
    def peephole_gates(self) -> tuple[str, ...]:
        """Gates with a peephole weight p_i / p_f / p_o."""
        return self.sigmoid_gates if self.peepholes else ()

    @property
    def name(self) -> str:
        """Greff's name for a preset ("NP", "CIFG"), else the switches joined by '+' ("NFG+NP")."""
        for preset, spec in VARIANTS.items():
            if spec == self:
                return preset
        return "+".join(s for s, (field, value) in _SWITCHES.items()
                        if getattr(self, field) == value) or "V"


# Each named switch is one field changed from vanilla; presets are single switches (Greff's design).
_SWITCHES: dict[str, tuple[str, bool]] = {
    "NIG": ("input_gate", False),
    "NFG": ("forget_gate", False),
    "NOG": ("output_gate", False),
    "NP": ("peepholes", False),
    "NIAF": ("input_activation", False),
    "NOAF": ("output_activation", False),
    "CIFG": ("coupled", True),
    "FGR": ("gate_recurrence", True),
}

VARIANTS: dict[str, LSTMSpec] = {"V": LSTMSpec()} | {
    name: LSTMSpec(**{field: value}) for name, (field, value) in _SWITCHES.items()
}
"""Greff et al.'s nine named variants: V (vanilla) and one switch changed for each other."""


def lstm_spec(variant: str | LSTMSpec) -> LSTMSpec:
    """Parse a variant: a preset name ("NP"), switches joined by '+' ("NFG+NP"), or a spec.

    >>> lstm_spec("NFG+NP")  # the original 1997 LSTM cell: no forget gate, no peepholes
    """
    if isinstance(variant, LSTMSpec):
        return variant
    if not isinstance(variant, str) or not variant.strip():
        raise TypeError(f"variant must be a name such as 'NP' or an LSTMSpec, got {variant!r}")
    fields: dict[str, bool] = {}
    for part in variant.upper().replace(" ", "").split("+"):
        if part == "V":
            continue
        if part not in _SWITCHES:
            raise ValueError(f"unknown LSTM variant {part!r} in {variant!r}; valid names: "
                             f"{', '.join(VARIANTS)} (combine switches with '+', e.g. 'NFG+NP')")
        field, value = _SWITCHES[part]
        fields[field] = value
    return LSTMSpec(**fields)


def with_switches(spec: LSTMSpec, **changes: bool) -> LSTMSpec:
    """A copy of ``spec`` with some switches changed."""
    return dataclasses.replace(spec, **changes)


class LSTMWeights(NamedTuple):
    """One layer-direction's LSTM parameters (None where the variant lacks them).

    Shapes: weight_ih (G*H, I), weight_hh (G*H, Hy), biases (G*H,), peepholes (H,),
    weight_gates (S*H, S*H), weight_hr (P, H), with G = len(spec.gates), S =
    len(spec.sigmoid_gates) and Hy = P with a projection (weight_hr; Sak et al. 2014), else H.
    """

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None
    bias_hh: Tensor | None
    weight_ci: Tensor | None
    weight_cf: Tensor | None
    weight_co: Tensor | None
    weight_gates: Tensor | None
    weight_hr: Tensor | None = None


class LSTMStep(NamedTuple):
    """What one LSTM step produces. Every tensor is (B, H) but ``y``, (B, P) with a projection;
    ``gates`` is S*H wide (FGR's memory)."""

    y: Tensor
    c: Tensor
    i: Tensor
    f: Tensor
    z: Tensor
    o: Tensor
    gates: Tensor | None


def _identity(x: Tensor) -> Tensor:
    return x


def lstm_step(spec: LSTMSpec, wx: Tensor, y_prev: Tensor, c_prev: Tensor,
              gates_prev: Tensor | None, w: LSTMWeights) -> LSTMStep:
    """One step of the LSTM ``spec``.

    With a projection (``w.weight_hr``, LSTMP of Sak et al. 2014) the output is projected,
    y_t = W_hr (h(c_t) * o_t), and the recurrence sees that projected y.

    Args:
        wx: the input contribution W x_t + b_ih, (B, G*H).
        y_prev, c_prev: the previous output (B, H), or (B, P) with a projection, and cell
            state (B, H).
        gates_prev: the previous step's learned [i; f; o] activations, (B, S*H), for FGR
            (zeros before the first step); ignored otherwise.
    """
    g = torch.tanh if spec.input_activation else _identity
    h = torch.tanh if spec.output_activation else _identity
    one = torch.ones_like(c_prev)

    pre = wx + F.linear(y_prev, w.weight_hh, w.bias_hh)
    pre = dict(zip(spec.gates, pre.chunk(len(spec.gates), dim=1), strict=True))
    if spec.gate_recurrence:
        recurrent = F.linear(gates_prev, w.weight_gates).chunk(len(spec.sigmoid_gates), dim=1)
        for name, r in zip(spec.sigmoid_gates, recurrent, strict=True):
            pre[name] = pre[name] + r
    peep = {"i": w.weight_ci, "f": w.weight_cf, "o": w.weight_co}

    def peephole(gate: str, c: Tensor) -> Tensor | float:
        return peep[gate] * c if gate in spec.peephole_gates else 0.0

    z = g(pre["z"])
    i = torch.sigmoid(pre["i"] + peephole("i", c_prev)) if spec.input_gate else one
    if spec.coupled:
        f = 1 - i
    elif spec.forget_gate:
        f = torch.sigmoid(pre["f"] + peephole("f", c_prev))
    else:
        f = one
    c = z * i + c_prev * f
    o = torch.sigmoid(pre["o"] + peephole("o", c)) if spec.output_gate else one
    y = h(c) * o
    if w.weight_hr is not None:
        y = F.linear(y, w.weight_hr)

    act = {"i": i, "f": f, "o": o}
    gates = torch.cat([act[n] for n in spec.sigmoid_gates], dim=1) if spec.gate_recurrence else None
    return LSTMStep(y, c, i, f, z, o, gates)


class GRUStep(NamedTuple):
    """What one GRU step produces, each (B, H)."""

    h: Tensor
    r: Tensor
    z: Tensor
    n: Tensor


def gru_step(wx: Tensor, h_prev: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> GRUStep:
    """One step of torch.nn.GRU (blocks r, z, n; ``wx`` = W_ih x_t + b_ih, (B, 3H)):

        r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}
    """
    x_r, x_z, x_n = wx.chunk(3, dim=1)
    h_r, h_z, h_n = F.linear(h_prev, weight_hh, bias_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    h = (1 - z) * n + z * h_prev
    return GRUStep(h, r, z, n)


RNN_NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu}


def rnn_step(wx: Tensor, h_prev: Tensor, weight_hh: Tensor, bias_hh: Tensor | None,
             nonlinearity: str = "tanh") -> Tensor:
    """One step of the Elman RNN (torch.nn.RNN): h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    ``wx`` = W_ih x_t + b_ih, (B, H); returns h_t, (B, H).
    """
    return RNN_NONLINEARITIES[nonlinearity](wx + F.linear(h_prev, weight_hh, bias_hh))
