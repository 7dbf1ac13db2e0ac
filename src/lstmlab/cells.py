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

The cell modules at the end (``LSTMCell``, ``GRUCell``, ``RNNCell``) run one step at a time with
torch.nn's cell face, for decoders that feed each output back in; they call the same steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Self

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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


# --- cell modules: one step at a time, with torch.nn's cell face --------------------------------

DEFAULT_FORGET_BIAS = 1.0
"""Added to the forget gate's bias at initialisation where the cell has a learned forget gate and
biases (Gers et al. 2000; Jozefowicz et al. 2015: a cell that starts out remembering learns long
lags)."""


def resolve_forget_bias(spec: LSTMSpec, bias: bool, forget_bias: float | None) -> float:
    """The forget-gate bias offset to initialise with: ``DEFAULT_FORGET_BIAS`` for None where it
    applies (a learned forget gate and biases), else 0; a nonzero value that cannot apply is an
    error."""
    applies = spec.learned_forget_gate and bias
    if forget_bias is None:
        return DEFAULT_FORGET_BIAS if applies else 0.0
    if forget_bias != 0 and not applies:
        why = "bias=False" if not bias else f"variant {spec.name} has no learned forget gate"
        raise ValueError(f"forget_bias={forget_bias} cannot apply: {why}")
    return float(forget_bias)


def _check_size(name: str, value: object, zero: bool = False) -> None:
    """A size argument: a positive int (or 0 where ``zero``, as torch.nn's cells allow)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        raise ValueError(f"{name} must be a {'non-negative' if zero else 'positive'} integer, "
                         f"got {value!r}")


class CellInputError(ValueError, RuntimeError):
    """An input or state of the wrong shape for a cell. torch.nn raises RuntimeError here and
    lstmlab's first cells raised ValueError: this is both, so either ``except`` works."""


CellState = Tensor | tuple[Tensor, ...]


class RecurrentCell(nn.Module):
    """What LSTMCell, GRUCell and RNNCell share: torch.nn's cell face over one step above.

    ``cell(x, hx)`` takes x_t (B, I) (or (I,) for one sequence) and the previous state (zeros if
    None) and returns the new state: h (B, H) for GRU and RNN, (h, c) for an LSTM ((h, c, gates)
    for FGR, see ``LSTMCell``). Parameters are named as torch.nn's cells name them - ``weight_ih``
    (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih`` and ``bias_hh`` (G*H,) - and laid out as one
    layer-direction of the sequence layers, which adds the suffix ``_l{k}`` (``_l{k}_reverse``).
    So weights move both ways:

        >>> cell = LSTMCell.from_layer(lstm, layer_index=1)     # a copy of layer 1's weights
        >>> cell.copy_to_layer(lstm, layer_index=1)             # and back, checked
        >>> lstm.load_state_dict(cell.to_layer_weights(1), strict=False)   # the same, unchecked

    Stepping a cell T times over a sequence gives the layer's outputs (tests/test_cells.py).
    """

    mode = ""  # torch.nn's name for the kind of layer whose weights fit (RNNBase.mode)
    trace_names: tuple[str, ...] = ("h",)
    _layer_modes: tuple[str, ...] = ()  # the modes of the layers whose weights fit
    _layer_kind = ""  # their name in messages

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        _check_size("input_size", input_size)
        _check_size("hidden_size", hidden_size, zero=True)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bool(bias)
        self._recorder: tuple[str, object] | None = None  # set by a tracing block
        for name, shape in self._parameter_shapes():
            setattr(self, name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
        self.reset_parameters()

    # --- what a subclass defines -------------------------------------------------------------

    @property
    def gate_count(self) -> int:
        raise NotImplementedError

    @property
    def state_widths(self) -> dict[str, int]:
        """Each state tensor's name and width (its last dimension), in order."""
        return {"h": self.hidden_size}

    required_states = 1  # how many leading state tensors a given hx must hold

    def _step(self, x: Tensor, state: tuple[Tensor, ...]
              ) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
        """One step on x (B, I) from the full state; returns the new state and the trace."""
        raise NotImplementedError

    def _layer_options(self) -> dict[str, object]:
        """Constructor options (besides sizes and bias) that a matching layer must share."""
        return {}

    @classmethod
    def _options_of(cls, layer: nn.Module) -> dict[str, object]:
        """The constructor options of the cell that fits ``layer``."""
        return {}

    # --- parameters ----------------------------------------------------------------------------

    def _parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        gh = self.gate_count * self.hidden_size
        shapes = [("weight_ih", (gh, self.input_size)), ("weight_hh", (gh, self.hidden_size))]
        if self.bias:
            shapes += [("bias_ih", (gh,)), ("bias_hh", (gh,))]
        return shapes

    def reset_parameters(self) -> None:
        """torch.nn's initialisation: every parameter uniform in [-1/sqrt(H), 1/sqrt(H)] (0 for
        H = 0, whose parameters are empty)."""
        bound = self.hidden_size ** -0.5 if self.hidden_size else 0.0
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    # --- one step ------------------------------------------------------------------------------

    def forward(self, input: Tensor, hx: CellState | None = None, *, return_trace: bool = False):
        """One step: x_t and the previous state -> the new state.

        Args:
            input: x_t, (B, I), or (I,) for one sequence.
            hx: the previous state, zeros if None: h (B, H) for GRU and RNN, the tuple (h, c)
                for an LSTM ((H,) each for an unbatched input).
            return_trace: also return this step's gates and states, a dict of tensors shaped
                like h (names in ``trace_names``; an absent LSTM gate is its constant 1).

        Returns:
            The new state shaped like ``hx`` (h; or (h, c)); with ``return_trace``,
            (state, trace).
        """
        x, unbatched = self._check_input(input)
        new, trace = self._step(x, self._initial_state(hx, x, unbatched))
        if unbatched:
            new = tuple(s.squeeze(0) for s in new)
            trace = {name: value.squeeze(0) for name, value in trace.items()}
        if self._recorder is not None:
            name, recording = self._recorder
            recording.calls.append((name, trace))
        state = new if len(new) > 1 else new[0]
        return (state, trace) if return_trace else state

    def _check_input(self, input: Tensor) -> tuple[Tensor, bool]:
        kind = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{kind}: input must be a Tensor, got {type(input).__name__}")
        if input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            raise CellInputError(f"{kind}: input must be (B, I) or (I,) with "
                                 f"I={self.input_size}, got shape {tuple(input.shape)}")
        reference = self.weight_ih
        if not input.is_floating_point():
            raise TypeError(f"{kind}: input must be a floating-point tensor, got {input.dtype}")
        if input.dtype != reference.dtype:
            raise TypeError(f"{kind}: input dtype {input.dtype} does not match the cell's "
                            f"parameters ({reference.dtype}); convert one of them")
        if input.device != reference.device:
            raise ValueError(f"{kind}: input is on {input.device} but the cell's parameters are "
                             f"on {reference.device}")
        unbatched = input.dim() == 1
        return (input.unsqueeze(0) if unbatched else input), unbatched

    def _initial_state(self, hx: CellState | None, x: Tensor,
                       unbatched: bool) -> tuple[Tensor, ...]:
        batch = x.shape[0]
        widths = self.state_widths
        if hx is None:
            return tuple(x.new_zeros(batch, width) for width in widths.values())
        kind, names = type(self).__name__, tuple(widths)
        lead = (batch,) if not unbatched else ()
        shapes = ", ".join(f"{n} {(*lead, w)}" for n, w in widths.items())
        what = f"the tuple ({', '.join(names[:self.required_states])}"
        what += f"[, {', '.join(names[self.required_states:])}])" \
            if len(names) > self.required_states else ")"
        what = what if len(names) > 1 else f"one tensor {names[0]}"
        if len(names) == 1 and isinstance(hx, (tuple, list)):
            raise TypeError(f"{kind}: hx must be {what} of shape {(*lead, widths['h'])}, got a "
                            f"{type(hx).__name__}")
        parts = tuple(hx) if isinstance(hx, (tuple, list)) else (hx,)
        if not self.required_states <= len(parts) <= len(names) \
                or not all(isinstance(p, Tensor) for p in parts):
            raise TypeError(f"{kind}: hx must be {what} ({shapes})")
        for name, p in zip(names, parts, strict=False):
            if tuple(p.shape) != (*lead, widths[name]):
                raise CellInputError(f"{kind}: hx's {name} has shape {tuple(p.shape)}, expected "
                                     f"{(*lead, widths[name])} (like the input: {shapes})")
            if p.dtype != x.dtype or p.device != x.device:
                raise TypeError(f"{kind}: hx's {name} is {p.dtype} on {p.device}; expected "
                                f"{x.dtype} on {x.device} like the input")
        if unbatched:
            parts = tuple(p.unsqueeze(0) for p in parts)
        missing = tuple(x.new_zeros(batch, widths[n]) for n in names[len(parts):])
        return parts + missing

    # --- weights to and from the sequence layers and torch.nn ----------------------------------

    @classmethod
    def _empty(cls, input_size: int, hidden_size: int, weight: Tensor, **options) -> Self:
        """A cell with uninitialised parameters on ``weight``'s device and dtype: built on the
        meta device, so making it draws no random numbers."""
        cell = cls(input_size, hidden_size, device="meta", dtype=weight.dtype, **options)
        return cell.to_empty(device=weight.device)

    @classmethod
    def _check_layer(cls, layer: nn.Module, layer_index: int, reverse: bool) -> None:
        """Raise unless ``layer`` is of this cell's kind and has that layer-direction."""
        kind = cls.__name__
        if getattr(layer, "mode", None) not in cls._layer_modes:
            raise TypeError(f"{kind} takes the weights of a {cls._layer_kind} layer (lstmlab's "
                            f"or torch.nn's), got a {type(layer).__name__}")
        if getattr(layer, "proj_size", 0):
            raise ValueError(f"{kind}: layers with proj_size={layer.proj_size} are not supported")
        count = layer.num_layers
        if isinstance(layer_index, bool) or not isinstance(layer_index, int) \
                or not 0 <= layer_index < count:
            raise ValueError(f"layer_index must be in [0, {count}) for this {count}-layer "
                             f"{type(layer).__name__}, got {layer_index!r}")
        if reverse and not layer.bidirectional:
            raise ValueError(f"reverse=True needs a bidirectional layer; this "
                             f"{type(layer).__name__} has one direction")

    def _layer_parameters(self, layer: nn.Module, layer_index: int,
                          reverse: bool) -> dict[str, nn.Parameter]:
        """``layer``'s parameters of one layer-direction by this cell's names (checked)."""
        self._check_layer(layer, layer_index, reverse)
        suffix = f"_l{layer_index}{'_reverse' if reverse else ''}"
        found = {name: getattr(layer, name + suffix, None) for name, _ in self.named_parameters()}
        missing = [name + suffix for name, p in found.items() if p is None]
        if missing:
            raise ValueError(f"{type(layer).__name__} has no {', '.join(missing)} for {self!r} "
                             "(bias=False on one side only?)")
        return found

    @classmethod
    def from_layer(cls, layer: nn.Module, layer_index: int = 0, reverse: bool = False, *,
                   share: bool = False) -> Self:
        """The cell of one layer-direction of a sequence layer, with a copy of its weights.

        Args:
            layer: an lstmlab or torch.nn layer of this cell's kind (LSTM of any variant for
                LSTMCell, GRU, RNN).
            layer_index: which stacked layer (its parameters end in ``_l{layer_index}``).
            reverse: the backward direction of a bidirectional layer (``_reverse``).
            share: use the layer's own parameter tensors instead of copies, so that changing or
                training one changes the other (a decoder stepping a trained layer).
        """
        cls._check_layer(layer, layer_index, reverse)
        weight_ih = getattr(layer, f"weight_ih_l{layer_index}{'_reverse' if reverse else ''}")
        cell = cls._empty(weight_ih.shape[1], layer.hidden_size, weight_ih, bias=layer.bias,
                          **cls._options_of(layer))
        source = cell._layer_parameters(layer, layer_index, reverse)
        for name, p in source.items():
            if share:
                setattr(cell, name, p)
            else:
                getattr(cell, name).data.copy_(p.data)
        return cell

    def to_layer_weights(self, layer_index: int = 0, reverse: bool = False) -> dict[str, Tensor]:
        """This cell's parameters under a layer's names (``weight_ih_l{k}``, ...): detached views
        for ``layer.load_state_dict(..., strict=False)``. ``copy_to_layer`` checks the fit."""
        suffix = f"_l{layer_index}{'_reverse' if reverse else ''}"
        return {name + suffix: p.detach() for name, p in self.named_parameters()}

    def copy_to_layer(self, layer: nn.Module, layer_index: int = 0, reverse: bool = False) -> None:
        """Copy this cell's weights into one layer-direction of ``layer``, after checking that
        the layer is of the same kind, variant, sizes and bias."""
        target = self._layer_parameters(layer, layer_index, reverse)
        mine = self._layer_options()
        theirs = self._options_of(layer)
        if any(mine[k] != theirs[k] for k in mine) or layer.bias != self.bias:
            raise ValueError(f"{self!r} does not fit {type(layer).__name__} layer {layer_index}: "
                             f"{mine | {'bias': self.bias}} against "
                             f"{theirs | {'bias': layer.bias}}")
        for name, p in self.named_parameters():
            if target[name].shape != p.shape:
                raise ValueError(f"{name}: the cell's {tuple(p.shape)} does not fit the layer's "
                                 f"{tuple(target[name].shape)} (input or hidden size differ)")
        with torch.no_grad():
            for name, p in self.named_parameters():
                target[name].copy_(p)

    @classmethod
    def _check_torch(cls, module: nn.Module) -> None:
        expected = getattr(nn, cls.__name__)
        if type(module) is not expected:
            raise TypeError(f"{cls.__name__}.from_torch expects a torch.nn.{cls.__name__}, got "
                            f"{type(module).__name__}")



class LSTMCell(RecurrentCell):
    """One step of the LSTM ``variant`` (``lstm_step``), torch.nn.LSTMCell's face.

        (h_t, c_t) = cell(x_t, (h_{t-1}, c_{t-1}))      x_t (B, I); h, c (B, H)

    Args:
        input_size, hidden_size, bias: as torch.nn.LSTMCell.
        variant: "NP" (default: torch.nn.LSTMCell's cell), "V", "NIG", ..., "FGR", switches
            joined by '+', or an ``LSTMSpec`` (see ``lstm_spec``).
        forget_bias: added to the forget gate's bias at initialisation, as ``lstmlab.LSTM``
            (default ``DEFAULT_FORGET_BIAS`` where the cell has a learned forget gate and biases).

    FGR's gates also see the previous step's i, f, o activations, so its state has a third
    tensor, ``gates`` (B, S*H) with S = len(spec.sigmoid_gates): the cell returns
    (h, c, gates), and takes (h, c) - the gate history starting at zero, as a layer does at the
    start of every call - or (h, c, gates) to carry it on.
    """

    mode = "LSTM"
    trace_names = ("i", "f", "z", "o", "c", "h")
    _layer_modes = ("LSTM",)
    _layer_kind = "LSTM"
    required_states = 2

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 variant: str | LSTMSpec = "NP", forget_bias: float | None = None,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        self.spec = lstm_spec(variant)
        self.forget_bias = resolve_forget_bias(self.spec, bool(bias), forget_bias)
        super().__init__(input_size, hidden_size, bias, device, dtype)

    @property
    def variant(self) -> str:
        return self.spec.name

    @property
    def gate_count(self) -> int:
        return len(self.spec.gates)

    @property
    def state_widths(self) -> dict[str, int]:
        widths = {"h": self.hidden_size, "c": self.hidden_size}
        if self.spec.gate_recurrence:
            widths["gates"] = len(self.spec.sigmoid_gates) * self.hidden_size
        return widths

    def _parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        shapes = super()._parameter_shapes()
        shapes += [(f"weight_c{gate}", (self.hidden_size,)) for gate in self.spec.peephole_gates]
        if self.spec.gate_recurrence:
            side = len(self.spec.sigmoid_gates) * self.hidden_size
            shapes.append(("weight_gates", (side, side)))
        return shapes

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.forget_bias:
            f, h = self.spec.gates.index("f"), self.hidden_size
            with torch.no_grad():
                self.bias_ih[f * h:(f + 1) * h] += self.forget_bias

    def extra_repr(self) -> str:
        return super().extra_repr() + f", variant={self.variant!r}"

    def lstm_weights(self) -> LSTMWeights:
        """The parameters as ``lstm_step`` takes them."""
        return LSTMWeights(*(getattr(self, name, None) for name in LSTMWeights._fields))

    def _step(self, x, state):
        w = self.lstm_weights()
        out = lstm_step(self.spec, F.linear(x, w.weight_ih, w.bias_ih), state[0], state[1],
                        state[2] if self.spec.gate_recurrence else None, w)
        new = (out.y, out.c) if out.gates is None else (out.y, out.c, out.gates)
        return new, {"i": out.i, "f": out.f, "z": out.z, "o": out.o, "c": out.c, "h": out.y}

    def _layer_options(self) -> dict[str, object]:
        return {"variant": self.spec}

    @classmethod
    def _options_of(cls, layer: nn.Module) -> dict[str, object]:
        return {"variant": getattr(layer, "spec", VARIANTS["NP"]),
                "forget_bias": getattr(layer, "forget_bias", 0.0)}

    @classmethod
    def from_torch(cls, module: nn.LSTMCell) -> LSTMCell:
        """An NP LSTMCell with ``module``'s sizes and a copy of its weights."""
        cls._check_torch(module)
        cell = cls._empty(module.input_size, module.hidden_size, module.weight_ih,
                          bias=module.bias, variant="NP", forget_bias=0.0)
        cell.load_state_dict(module.state_dict())
        return cell

    def to_torch(self) -> nn.LSTMCell:
        """A torch.nn.LSTMCell with a copy of this cell's weights (variant NP only)."""
        if self.spec != VARIANTS["NP"]:
            raise ValueError(f"torch.nn.LSTMCell computes only the NP variant; this cell is "
                             f"{self.variant}")
        module = nn.LSTMCell(self.input_size, self.hidden_size, self.bias, device="meta",
                             dtype=self.weight_ih.dtype).to_empty(device=self.weight_ih.device)
        module.load_state_dict(self.state_dict())
        return module


class GRUCell(RecurrentCell):
    """One step of the GRU (``gru_step``: blocks r, z, n), torch.nn.GRUCell's face and weights:

        h_t = cell(x_t, h_{t-1})      x_t (B, I); h (B, H)
    """

    mode = "GRU"
    trace_names = ("r", "z", "n", "h")
    _layer_modes = ("GRU",)
    _layer_kind = "GRU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)

    @property
    def gate_count(self) -> int:
        return 3

    def _step(self, x, state):
        bias_ih, bias_hh = self._parameters.get("bias_ih"), self._parameters.get("bias_hh")
        out = gru_step(F.linear(x, self.weight_ih, bias_ih), state[0], self.weight_hh, bias_hh)
        return (out.h,), out._asdict()

    @classmethod
    def from_torch(cls, module: nn.GRUCell) -> GRUCell:
        """A GRUCell with ``module``'s sizes and a copy of its weights."""
        cls._check_torch(module)
        cell = cls._empty(module.input_size, module.hidden_size, module.weight_ih,
                          bias=module.bias)
        cell.load_state_dict(module.state_dict())
        return cell

    def to_torch(self) -> nn.GRUCell:
        """A torch.nn.GRUCell with a copy of this cell's weights."""
        module = nn.GRUCell(self.input_size, self.hidden_size, self.bias, device="meta",
                            dtype=self.weight_ih.dtype).to_empty(device=self.weight_ih.device)
        module.load_state_dict(self.state_dict())
        return module


class RNNCell(RecurrentCell):
    """One step of the Elman RNN (``rnn_step``), torch.nn.RNNCell's face and weights:

        h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   act = tanh or relu
    """

    trace_names = ("h",)
    _layer_modes = ("RNN_TANH", "RNN_RELU")
    _layer_kind = "RNN"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", *, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        if nonlinearity not in RNN_NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {list(RNN_NONLINEARITIES)}, got "
                             f"{nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    @property
    def mode(self) -> str:
        return "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"

    @property
    def gate_count(self) -> int:
        return 1

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + f", nonlinearity={self.nonlinearity!r}"

    def _step(self, x, state):
        bias_ih, bias_hh = self._parameters.get("bias_ih"), self._parameters.get("bias_hh")
        h = rnn_step(F.linear(x, self.weight_ih, bias_ih), state[0], self.weight_hh, bias_hh,
                     self.nonlinearity)
        return (h,), {"h": h}

    def _layer_options(self) -> dict[str, object]:
        return {"nonlinearity": self.nonlinearity}

    @classmethod
    def _options_of(cls, layer: nn.Module) -> dict[str, object]:
        return {"nonlinearity": layer.nonlinearity}

    @classmethod
    def from_torch(cls, module: nn.RNNCell) -> RNNCell:
        """An RNNCell with ``module``'s sizes, nonlinearity and a copy of its weights."""
        cls._check_torch(module)
        cell = cls._empty(module.input_size, module.hidden_size, module.weight_ih,
                          bias=module.bias, nonlinearity=module.nonlinearity)
        cell.load_state_dict(module.state_dict())
        return cell

    def to_torch(self) -> nn.RNNCell:
        """A torch.nn.RNNCell with this cell's nonlinearity and a copy of its weights."""
        module = nn.RNNCell(self.input_size, self.hidden_size, self.bias, self.nonlinearity,
                            device="meta", dtype=self.weight_ih.dtype)
        module = module.to_empty(device=self.weight_ih.device)
        module.load_state_dict(self.state_dict())
        return module


CELLS: dict[str, type[RecurrentCell]] = {"LSTM": LSTMCell, "GRU": GRUCell, "RNN_TANH": RNNCell,
                                         "RNN_RELU": RNNCell}
"""The cell class for each kind of layer (torch.nn's ``mode``: LSTM, GRU, RNN_TANH, RNN_RELU)."""


def cell_from_layer(layer: nn.Module, layer_index: int = 0, reverse: bool = False, *,
                    share: bool = False) -> RecurrentCell:
    """The cell of one layer-direction of any lstmlab or torch.nn RNN / LSTM / GRU layer: e.g.
    ``[cell_from_layer(lstm, k) for k in range(lstm.num_layers)]`` steps a stacked LSTM.
    See ``RecurrentCell.from_layer`` for the arguments."""
    mode = getattr(layer, "mode", None)
    if mode not in CELLS:
        raise TypeError(f"cell_from_layer takes an RNN, LSTM or GRU layer (lstmlab's or "
                        f"torch.nn's), got a {type(layer).__name__}")
    return CELLS[mode].from_layer(layer, layer_index, reverse, share=share)
