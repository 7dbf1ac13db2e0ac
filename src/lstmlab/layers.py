"""Recurrent layers with torch.nn's face: ``RNN``, ``LSTM`` (any variant) and ``GRU``.

A layer runs the cells of ``lstmlab.cells`` over a sequence: stacked layers, both directions,
variable lengths, initial and final state, an optional projection of the LSTM's output, optional
tracing of every gate. The layers are ``torch.nn.RNNBase`` modules with torch.nn's constructor
signatures, parameter names and layouts (docs/design.md, 'Parameter layout'; README,
'Compatibility with torch.nn'), its errors and its attributes, so code written for
``torch.nn.LSTM`` runs unchanged and a state dict moves between the two. Shapes: T steps,
B sequences, I inputs, H hidden units, P projection size, L layers, D directions (2 when
bidirectional); Hy = P for an LSTM with a projection, else H.

The step loop here is the reference; ``lstmlab.kernels`` holds the fast paths, tested against it:
``_run`` sends NP LSTM, GRU and RNN to PyTorch's native kernels and the other LSTM variants to the
fused kernel, unless told otherwise (``layer.kernel``, ``lstmlab.kernels.use``) or tracing.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstmlab import cells, kernels
from lstmlab.cells import LSTMSpec, LSTMWeights, RecurrentCell
from lstmlab.kernels import fused as fused_kernel
from lstmlab.kernels import native as native_kernel

State = tuple[Tensor, ...]
_ABSENT = object()  # RNN and GRU refuse a proj_size keyword of any value, as torch.nn's do


def _refuse_proj_size(proj_size: object) -> None:
    if proj_size is not _ABSENT:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")


class LayerInputError(ValueError, RuntimeError):
    """An input or state of the wrong shape, size or device, or an empty sequence.

    torch.nn raises RuntimeError for these and lstmlab used to raise ValueError: this is both, so
    code written for either keeps working.
    """


class LayerDtypeError(TypeError, ValueError):
    """An input or state whose dtype does not match the layer's parameters: torch.nn raises
    ValueError, lstmlab used to raise TypeError; this is both."""


class NotScriptableError(RuntimeError):
    """torch.jit.script cannot compile this layer (an LSTM variant other than NP)."""


@dataclass
class Trace:
    """Every step's gate activations and states, for each layer.

    ``forward[k]`` (and ``reverse[k]`` for a bidirectional layer) maps a name to a tensor shaped
    like the output, (T, B, H) or (B, T, H) with batch_first, aligned with the input steps and zero
    past each sequence's length. Names: LSTM i, f, z, o, c, h (h is the output y); GRU r, z, n, h;
    RNN h. Absent LSTM gates (e.g. NIG's i) are recorded as their constant value 1.
    """

    forward: list[dict[str, Tensor]] = field(default_factory=list)
    reverse: list[dict[str, Tensor]] | None = None

    def __getitem__(self, layer: int) -> dict[str, Tensor]:
        return self.forward[layer]

    def __len__(self) -> int:
        return len(self.forward)


@dataclass
class Recording:
    """Traces gathered by ``tracing``, in call order: (name, Trace) per layer call, and
    (name, {gate: (B, H)}) per cell call."""

    calls: list[tuple[str, Trace]] = field(default_factory=list)

    def __getitem__(self, index: int) -> Trace:
        return self.calls[index][1]

    def __len__(self) -> int:
        return len(self.calls)


@contextmanager
def tracing(module: nn.Module) -> Iterator[Recording]:
    """Record the gates of every lstmlab layer and cell inside ``module`` while the block runs.

    >>> with tracing(model) as rec:
    ...     model(batch)
    >>> rec[0][0]["f"]   # first call of a layer, its layer 0: forget gate, (T, B, H)
    >>> rec[1]["f"]      # a call of a cell (LSTMCell, ...): that step's forget gate, (B, H)
    """
    recording = Recording()
    layers = [(name or type(m).__name__, m) for name, m in module.named_modules()
              if isinstance(m, (RecurrentLayer, RecurrentCell))]
    if not layers:
        raise ValueError(f"tracing: {type(module).__name__} contains no lstmlab RNN/LSTM/GRU layer "
                         "or cell")
    for name, layer in layers:
        layer._recorder = (name, recording)
    try:
        yield recording
    finally:
        for _, layer in layers:
            layer._recorder = None


def _check_arguments(input_size: object, hidden_size: object, num_layers: object, bias: object,
                     batch_first: object, dropout: object, proj_size: object) -> None:
    """torch.nn.RNNBase's checks, with its error types and messages (its tests match them)."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
            or not 0 <= dropout <= 1:
        raise ValueError("dropout should be a number in range [0, 1] representing the "
                         f"probability of an element being zeroed, got {dropout!r}")
    for name, value in (("bias", bias), ("batch_first", batch_first)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers), ("proj_size", proj_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if name != "proj_size" and value <= 0:
            raise ValueError(f"{name} must be greater than zero, got {value}")
    if proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections, "
                         f"got {proj_size}")
    if proj_size >= hidden_size:
        raise ValueError(f"proj_size has to be smaller than hidden_size, got proj_size={proj_size}"
                         f" and hidden_size={hidden_size}")


def _register_safe_globals(*classes: type) -> None:
    """Let torch.load(weights_only=True) rebuild a pickled model that holds lstmlab layers: their
    classes (and the variant spec) build nothing but parameters and plain attributes."""
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:
        add(list(classes))


class RecurrentLayer(nn.RNNBase):
    """What RNN, LSTM and GRU share: arguments, parameters, input checks, stacking, directions.

    A subclass states its gate count ``G`` (the weights are (G*H, I) and (G*H, Hy)), the names of
    its state tensors, and how one direction of one layer runs over time. It is a
    ``torch.nn.RNNBase`` (``mode``, ``_flat_weights``, ``_all_weights``, ``all_weights``,
    ``flatten_parameters``, pickling, ``.to()``), built by its own constructor.
    """

    state_names: tuple[str, ...] = ("h",)

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        nn.Module.__init__(self)  # not RNNBase.__init__: the parameters depend on the variant
        _check_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         proj_size)
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers} (it does nothing)",
                          stacklevel=3)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = proj_size
        self._recorder: tuple[str, Recording] | None = None
        self.kernel = "auto"

        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        factory = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else self.output_size * self.num_directions
            for direction in range(self.num_directions):
                names = []
                for name, shape in self._parameter_shapes(layer_input):
                    full = f"{name}_l{layer}{'_reverse' if direction else ''}"
                    setattr(self, full, nn.Parameter(torch.empty(shape, **factory)))
                    names.append(full)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self._init_flat_weights()
        self.reset_parameters()

    # --- what a subclass defines -------------------------------------------------------------

    @property
    def gate_count(self) -> int:
        raise NotImplementedError

    def _parameter_shapes(self, layer_input: int) -> list[tuple[str, tuple[int, ...]]]:
        """Names (without the _l{k} suffix) and shapes of one layer-direction's parameters."""
        gh = self.gate_count * self.hidden_size
        shapes = [("weight_ih", (gh, layer_input)), ("weight_hh", (gh, self.output_size))]
        if self.bias:
            shapes += [("bias_ih", (gh,)), ("bias_hh", (gh,))]
        return shapes

    def _run_direction(self, x: Tensor, state: State, layer: int, reverse: bool,
                       mask: Tensor | None, keep: Sequence[str]) -> tuple[dict[str, Tensor], State]:
        """Run one layer in one direction over x (T, B, I_layer); returns the stacked records
        named in ``keep`` (always including "h", the output, (T, B, Hy)) and the final state."""
        raise NotImplementedError

    @property
    def _spec(self) -> LSTMSpec | None:
        """The LSTM variant the kernels compute, None for GRU and RNN."""
        return None

    # --- parameters ----------------------------------------------------------------------------

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Hy: the width of each direction's output and h state (proj_size if set, else H)."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    @property
    def kernel(self) -> str:
        """The path this layer runs on: "auto" (default), "loop", "native" or "fused"; see
        ``lstmlab.kernels``. A ``lstmlab.kernels.use`` block overrides it."""
        return self._kernel

    @kernel.setter
    def kernel(self, path: str) -> None:
        self._kernel = kernels.check_path(path)

    def reset_parameters(self) -> None:
        """torch.nn's initialisation: every parameter uniform in [-1/sqrt(H), 1/sqrt(H)]."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def weights(self, layer: int, reverse: bool = False) -> dict[str, Tensor | None]:
        """One layer-direction's parameters by short name (weight_ih, bias_hh, ...)."""
        names = self._all_weights[layer * self.num_directions + int(reverse)]
        suffix = f"_l{layer}{'_reverse' if reverse else ''}"
        return {name[: -len(suffix)]: getattr(self, name) for name in names}

    def _current_weights(self) -> list[Tensor]:
        """The parameters in torch.nn's flat order, read now (functional_call may swap them)."""
        return [getattr(self, name) for name in self._flat_weights_names]

    def flatten_parameters(self) -> None:
        """torch.nn's (packs the weights into one buffer for cuDNN on a GPU; nothing on the CPU)
        where PyTorch's kernels compute this layer; nothing for the other LSTM variants."""
        if kernels.native_computes(self._spec):
            super().flatten_parameters()

    def __setstate__(self, state: dict) -> None:
        if "_all_weights" not in state:  # pickled by lstmlab before it was an RNNBase
            state = dict(state)
            per = len(state["_flat_weights_names"]) // (state["num_layers"] * (
                2 if state["bidirectional"] else 1))
            names = state["_flat_weights_names"]
            state["_all_weights"] = [names[k: k + per] for k in range(0, len(names), per)]
            state.setdefault("proj_size", 0)
            state.setdefault("mode", {"LSTM": "LSTM", "GRU": "GRU"}.get(
                type(self).__name__, "RNN_RELU" if state.get("nonlinearity") == "relu"
                else "RNN_TANH"))
            state["_flat_weights"] = [None] * len(names)
        super().__setstate__(state)
        if any(w is None for w in self._flat_weights):
            self._init_flat_weights()

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    # --- torch.nn interop -----------------------------------------------------------------------

    def _torch_class(self) -> type[nn.RNNBase]:
        raise NotImplementedError

    def _torch_kwargs(self) -> dict:
        return {}

    def _torch_twin(self, share: bool) -> nn.RNNBase:
        """The torch.nn module with this configuration; its parameters are this layer's own
        (``share``) or copies."""
        cls = self._torch_class()
        module = cls(self.input_size, self.hidden_size, num_layers=self.num_layers,
                     bias=self.bias, batch_first=self.batch_first, dropout=self.dropout,
                     bidirectional=self.bidirectional, **self._torch_kwargs(), **_factory(self))
        if share:
            for name in self._flat_weights_names:
                setattr(module, name, getattr(self, name))
        else:
            module.load_state_dict(self.state_dict())
        module.train(self.training)
        return module

    def __prepare_scriptable__(self) -> nn.Module:
        """What torch.jit.script compiles in this layer's place: TorchScript cannot compile
        lstmlab's Python, so the NP LSTM, GRU and RNN become torch.nn's module holding this
        layer's own parameters (shared, not copied); other LSTM variants raise
        ``NotScriptableError``."""
        return self._torch_twin(share=True)

    # --- the forward pass ----------------------------------------------------------------------

    def forward(self, input: Tensor | PackedSequence, hx: Tensor | State | None = None,
                lengths: Tensor | Sequence[int] | None = None, *, return_trace: bool = False):
        """Run the layer over a batch of sequences.

        Args:
            input: (T, B, I), or (B, T, I) with batch_first, or (T, I) for one sequence, or a
                PackedSequence. B may be 0.
            hx: the initial state, zeros if None: h_0 (L*D, B, H) for RNN and GRU, the pair
                (h_0, c_0) for LSTM (h_0 (L*D, B, Hy), c_0 (L*D, B, H); without the B axis for
                an unbatched input).
            lengths: each sequence's length (B integers in [1, T]; list or tensor on any device).
                Outputs past a sequence's end are zero, the final state is the state at each
                sequence's own last step, and a reverse direction starts there: the same results
                as running each sequence alone.
            return_trace: also return a ``Trace`` of every gate and state.

        Returns:
            (output, state) - output (T, B, D*Hy) (batch_first: (B, T, D*Hy); (T, D*Hy) for an
            unbatched input; a PackedSequence for a PackedSequence input) and the final state
            shaped like ``hx``; with ``return_trace``, (output, state, trace).
        """
        packed = isinstance(input, PackedSequence)
        recording = return_trace or self._recorder is not None
        if packed:
            if lengths is not None:
                raise ValueError("give lengths or a PackedSequence, not both: a PackedSequence "
                                 "already carries its lengths")
            if self._choose(recording)[0] == "native":  # torch's packed overload as is
                self._check_input(input.data.unsqueeze(0))
                batch = int(input.batch_sizes[0])
                output, final = native_kernel.run_packed(
                    self.mode, input, self._initial_state(hx, batch, input.data, False),
                    self._current_weights(), **self._native_options())
                return output, self._state_out(final)
            x, lengths = pad_packed_sequence(input)
            unbatched = False
        else:
            if not isinstance(input, Tensor):
                raise TypeError(f"input must be a Tensor or PackedSequence, got "
                                f"{type(input).__name__}")
            if input.dim() not in (2, 3):
                expected = "(B, T, I)" if self.batch_first else "(T, B, I)"
                raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got "
                                 f"{input.dim()}D instead: input must be {expected}, or (T, I) "
                                 f"for one sequence, with I={self.input_size}; got shape "
                                 f"{tuple(input.shape)}")
            unbatched = input.dim() == 2
            if unbatched:
                x = input.unsqueeze(1)
            else:
                x = input.transpose(0, 1) if self.batch_first else input
        self._check_input(x)
        steps, batch, _ = x.shape
        mask = self._length_mask(lengths, steps, batch, x.device)
        state = self._initial_state(hx, batch, x, unbatched)

        output, final, trace = self._run(x, state, mask, recording)

        if unbatched:
            output = output.squeeze(1)
            final = tuple(s.squeeze(1) for s in final)
        elif self.batch_first and not packed:
            output = output.transpose(0, 1)
        if packed:
            output = _repack(output, input)
        if trace is not None:
            if unbatched or (self.batch_first and not packed):
                fix = (lambda t: t.squeeze(1)) if unbatched else (lambda t: t.transpose(0, 1))
                trace = Trace([{k: fix(v) for k, v in d.items()} for d in trace.forward],
                              None if trace.reverse is None else
                              [{k: fix(v) for k, v in d.items()} for d in trace.reverse])
            if self._recorder is not None:
                name, rec = self._recorder
                rec.calls.append((name, trace))
        if return_trace:
            return output, self._state_out(final), trace
        return output, self._state_out(final)

    def _state_out(self, final: State) -> Tensor | State:
        return final if len(self.state_names) > 1 else final[0]

    def _choose(self, recording: bool) -> tuple[str, bool | None]:
        return kernels.choose(self._kernel, self._spec, recording)

    def _native_options(self) -> dict:
        return {"bias": self.bias, "num_layers": self.num_layers, "dropout": self.dropout,
                "training": self.training, "bidirectional": self.bidirectional}

    def _run(self, x: Tensor, state: State, mask: Tensor | None,
             recording: bool) -> tuple[Tensor, State, Trace | None]:
        """All layers and directions over x (T, B, I); state tensors are (L*D, B, ·)."""
        path, compiled = self._choose(recording)
        if path == "native":
            output, final_state = native_kernel.run(self.mode, x, state,
                                                    self._current_weights(), mask=mask,
                                                    **self._native_options())
            return output, final_state, None
        keep = self.trace_names if recording else ("h",)
        trace = Trace(reverse=[] if self.bidirectional else None) if recording else None
        finals: list[State] = []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                initial = tuple(s[index] for s in state)
                if path == "fused":
                    records, final = self._run_direction_fused(
                        layer_input, initial, layer, bool(direction), mask, compiled)
                else:
                    records, final = self._run_direction(
                        layer_input, initial, layer, bool(direction), mask, keep)
                outputs.append(records["h"])
                finals.append(final)
                if trace is not None:
                    (trace.reverse if direction else trace.forward).append(records)
            layer_input = torch.cat(outputs, dim=2) if len(outputs) > 1 else outputs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        final_state = tuple(torch.stack([f[k] for f in finals]) for k in range(len(state)))
        return layer_input, final_state, trace

    def _run_direction_fused(self, x: Tensor, state: State, layer: int, reverse: bool,
                             mask: Tensor | None,
                             compiled: bool | None) -> tuple[dict[str, Tensor], State]:
        raise NotImplementedError

    # --- input checks ---------------------------------------------------------------------------

    def _check_input(self, x: Tensor) -> None:
        """x is time-major (T, B, I). torch.nn's error types and messages, with lstmlab's hints."""
        reference = self.weight_ih_l0
        if x.dtype != reference.dtype:
            raise LayerDtypeError(
                f"RNN input dtype ({x.dtype}) does not match weight dtype ({reference.dtype}). "
                f"Convert input: input.to({reference.dtype}), or convert model: "
                f"model.to({x.dtype})")
        if x.device != reference.device:
            raise LayerInputError(f"input is on {x.device} but the layer's parameters are on "
                                  f"{reference.device}")
        if x.shape[-1] != self.input_size:
            raise LayerInputError(f"input.size(-1) must be equal to input_size. Expected "
                                  f"{self.input_size}, got {x.shape[-1]} (features per step)")
        if x.shape[0] == 0:
            raise LayerInputError(f"Expected sequence length to be larger than 0 in RNN: the "
                                  f"input (time-major shape {tuple(x.shape)}) has no steps")

    def _length_mask(self, lengths: Tensor | Sequence[int] | None, steps: int, batch: int,
                     device: torch.device) -> Tensor | None:
        """(T, B) bool, True where step t is inside sequence b; None when all are full length."""
        if lengths is None:
            return None
        try:
            lengths = torch.as_tensor(lengths)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"lengths must be a list or 1-D tensor of {batch} integers, got "
                            f"{lengths!r}") from error
        if lengths.dim() != 1 or lengths.numel() != batch:
            raise ValueError(f"lengths must hold one length per sequence ({batch}), got shape "
                             f"{tuple(lengths.shape)}")
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise TypeError(f"lengths must be integers, got {lengths.dtype}")
        if batch == 0:
            return None
        low, high = int(lengths.min()), int(lengths.max())
        if low < 1 or high > steps:
            raise ValueError(f"lengths must be in [1, T={steps}], got values from {low} to {high}")
        if low == steps:
            return None
        lengths = lengths.to(device)
        return torch.arange(steps, device=device).unsqueeze(1) < lengths.unsqueeze(0)

    def _state_shapes(self, batch: int) -> list[tuple[int, int, int]]:
        """The shape of each state tensor: h (L*D, B, Hy) and, for the LSTM, c (L*D, B, H)."""
        first = self.num_layers * self.num_directions
        return [(first, batch, self.output_size if name == "h" else self.hidden_size)
                for name in self.state_names]

    def _initial_state(self, hx: Tensor | State | None, batch: int, x: Tensor,
                       unbatched: bool) -> State:
        shapes = self._state_shapes(batch)
        if hx is None:
            return tuple(x.new_zeros(shape) for shape in shapes)
        n = len(self.state_names)
        shown = [s[:1] + s[2:] if unbatched else s for s in shapes]
        what = (f"({', '.join(self.state_names)}) of shapes {shown[0]} and {shown[1]}" if n > 1
                else f"{self.state_names[0]}_0 of shape {shown[0]}")
        parts = tuple(hx) if isinstance(hx, (tuple, list)) else (hx,)
        if n == 1 and isinstance(hx, (tuple, list)):
            raise TypeError(f"{type(self).__name__} state must be one tensor, {what}; got a "
                            f"{type(hx).__name__}")
        if len(parts) != n or not all(isinstance(p, Tensor) for p in parts):
            raise TypeError(f"{type(self).__name__} state must be {what}")
        want = 2 if unbatched else 3
        if any(p.dim() != want for p in parts):
            kind = "unbatched 2-D" if unbatched else "batched 3-D"
            dims = ", ".join(f"{p.dim()}-D" for p in parts)
            names = "hx and cx" if n > 1 else "hx"
            raise LayerInputError(f"For {kind} input, {names} should also be {want}-D but got "
                                  f"({dims}) tensors; expected {what}")
        if unbatched:
            parts = tuple(p.unsqueeze(1) for p in parts)
        for k, (name, p, shape) in enumerate(zip(self.state_names, parts, shapes, strict=True)):
            if tuple(p.shape) != shape:
                which = f"hidden[{k}]" if n > 1 else "hidden"
                raise LayerInputError(
                    f"Expected {which} size {shape}, got {list(p.shape)}: {name}_0 must be "
                    f"(num_layers * num_directions, batch, "
                    f"{'hidden_size' if name == 'c' or not self.proj_size else 'proj_size'})")
            if p.dtype != x.dtype:
                raise LayerDtypeError(f"state {name}_0 is {p.dtype}; expected {x.dtype} like the "
                                      "input")
            if p.device != x.device:
                raise LayerInputError(f"state {name}_0 is on {p.device}; expected {x.device} "
                                      "like the input")
        return parts

    @property
    def trace_names(self) -> tuple[str, ...]:
        return ("h",)


def _repack(output: Tensor, like: PackedSequence) -> PackedSequence:
    """Pack a (T, B, *) output in the same batch order and steps as the packed input ``like``."""
    # batch_sizes[t] counts the sequences longer than t, in sorted order: recover their lengths
    batch_sizes = like.batch_sizes.unsqueeze(1)
    sorted_lengths = (torch.arange(output.shape[1]).unsqueeze(0) < batch_sizes).sum(0)
    order = like.sorted_indices
    sorted_output = output if order is None else output.index_select(1, order.to(output.device))
    data = pack_padded_sequence(sorted_output, sorted_lengths, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def _scan(step: Callable[[Tensor, State], tuple[State, dict[str, Tensor]]], wx: Tensor,
          state: State, mask: Tensor | None, reverse: bool,
          keep: Sequence[str]) -> tuple[dict[str, Tensor], State]:
    """The plain loop: apply ``step`` to each slice wx[t] (forward or backward in time).

    Where mask[t] is False (past a sequence's end) the state is held and records are zero, so a
    reverse pass starts at each sequence's own last step. The input there is zeroed first: the
    discarded step must not depend on the padding, not even through a NaN in its gradient.
    """
    steps = wx.shape[0]
    if mask is not None:
        wx = wx.masked_fill(~mask.unsqueeze(2), 0.0)
    records: dict[str, list[Tensor]] = {name: [None] * steps for name in keep}  # type: ignore
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        new_state, out = step(wx[t], state)
        if mask is not None:
            inside = mask[t].unsqueeze(1)
            new_state = tuple(torch.where(inside, n, s) for n, s in zip(new_state, state,
                                                                          strict=True))
            out = {name: torch.where(inside, out[name], 0.0) for name in keep}
        state = new_state
        for name in keep:
            records[name][t] = out[name]
    return {name: torch.stack(values) for name, values in records.items()}, state


class RNN(RecurrentLayer):
    """Elman RNN, torch.nn.RNN's equations and parameters:

        h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   act = tanh or relu

    Args: as torch.nn.RNN (input_size, hidden_size, num_layers, nonlinearity, bias, batch_first,
    dropout, bidirectional, device, dtype). Input (T, B, I) -> output (T, B, D*H),
    h_n (L*D, B, H). A ``proj_size`` keyword is refused with torch.nn's ValueError.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None, *,
                 proj_size: object = _ABSENT):
        _refuse_proj_size(proj_size)
        if nonlinearity not in cells.RNN_NONLINEARITIES:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         device, dtype)

    @property
    def gate_count(self) -> int:
        return 1

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + f", nonlinearity={self.nonlinearity!r}"

    def _run_direction(self, x, state, layer, reverse, mask, keep):
        w = self.weights(layer, reverse)
        wx = F.linear(x, w["weight_ih"], w.get("bias_ih"))

        def step(wx_t: Tensor, s: State) -> tuple[State, dict[str, Tensor]]:
            h = cells.rnn_step(wx_t, s[0], w["weight_hh"], w.get("bias_hh"), self.nonlinearity)
            return (h,), {"h": h}

        return _scan(step, wx, state, mask, reverse, keep)

    def _torch_class(self) -> type[nn.RNNBase]:
        return nn.RNN

    def _torch_kwargs(self) -> dict:
        return {"nonlinearity": self.nonlinearity}

    @classmethod
    def from_torch(cls, module: nn.RNN) -> RNN:
        """An lstmlab RNN with the configuration and a copy of the weights of ``module``."""
        _check_torch_module(module, nn.RNN)
        layer = cls(module.input_size, module.hidden_size, module.num_layers, module.nonlinearity,
                    module.bias, module.batch_first, module.dropout, bool(module.bidirectional),
                    **_factory(module))
        layer.load_state_dict(module.state_dict())
        return layer

    def to_torch(self) -> nn.RNN:
        """A torch.nn.RNN with this layer's configuration and a copy of its weights."""
        return self._torch_twin(share=False)


class GRU(RecurrentLayer):
    """Gated recurrent unit, torch.nn.GRU's equations and parameters (blocks r, z, n):

        r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    Args: as torch.nn.GRU (input_size, hidden_size, num_layers, bias, batch_first, dropout,
    bidirectional, device, dtype). Input (T, B, I) -> output (T, B, D*H), h_n (L*D, B, H).
    A ``proj_size`` keyword is refused with torch.nn's ValueError.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None, *,
                 proj_size: object = _ABSENT):
        _refuse_proj_size(proj_size)
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)

    @property
    def gate_count(self) -> int:
        return 3

    @property
    def trace_names(self) -> tuple[str, ...]:
        return ("r", "z", "n", "h")

    def _run_direction(self, x, state, layer, reverse, mask, keep):
        w = self.weights(layer, reverse)
        wx = F.linear(x, w["weight_ih"], w.get("bias_ih"))

        def step(wx_t: Tensor, s: State) -> tuple[State, dict[str, Tensor]]:
            out = cells.gru_step(wx_t, s[0], w["weight_hh"], w.get("bias_hh"))
            return (out.h,), out._asdict()

        return _scan(step, wx, state, mask, reverse, keep)

    def _torch_class(self) -> type[nn.RNNBase]:
        return nn.GRU

    @classmethod
    def from_torch(cls, module: nn.GRU) -> GRU:
        """An lstmlab GRU with the configuration and a copy of the weights of ``module``."""
        _check_torch_module(module, nn.GRU)
        layer = cls(module.input_size, module.hidden_size, module.num_layers, module.bias,
                    module.batch_first, module.dropout, bool(module.bidirectional),
                    **_factory(module))
        layer.load_state_dict(module.state_dict())
        return layer

    def to_torch(self) -> nn.GRU:
        """A torch.nn.GRU with this layer's configuration and a copy of its weights."""
        return self._torch_twin(share=False)


DEFAULT_FORGET_BIAS = 1.0


class LSTM(RecurrentLayer):
    """Long short-term memory, any variant of Greff et al. (2015); torch.nn.LSTM's face.

        z_t = g(W_z x_t + R_z y_{t-1} + b_z)
        i_t = sigmoid(W_i x_t + R_i y_{t-1} + p_i * c_{t-1} + b_i)
        f_t = sigmoid(W_f x_t + R_f y_{t-1} + p_f * c_{t-1} + b_f)
        c_t = z_t * i_t + c_{t-1} * f_t
        o_t = sigmoid(W_o x_t + R_o y_{t-1} + p_o * c_t + b_o)
        y_t = h(c_t) * o_t,   or  y_t = W_hr (h(c_t) * o_t)  with proj_size > 0

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            proj_size, device, dtype: as torch.nn.LSTM, in its order. proj_size > 0 projects
            every output (Sak et al. 2014's LSTMP, for every variant): y_t and h are proj_size
            wide, c stays hidden_size; the projection is ``weight_hr_l{k}`` (P, H).
        variant (keyword only): "NP" (default: no peepholes, exactly torch.nn.LSTM), "V", "NIG",
            "NFG", "NOG", "NIAF", "NOAF", "CIFG", "FGR", switches joined by '+' ("NFG+NP", the
            1997 cell), or an ``LSTMSpec``.
        forget_bias (keyword only): added to the forget-gate bias (b_ih's f block) at
            initialisation. Default 1.0 where the cell has a learned forget gate and biases
            (Gers et al. 2000, Jozefowicz et al. 2015: a cell that starts out remembering learns
            long lags); 0 gives torch.nn.LSTM's initialisation exactly.

    Shapes: input (T, B, I) -> output (T, B, D*Hy); state (h_n, c_n), (L*D, B, Hy) and
    (L*D, B, H); Hy = proj_size if set, else H. FGR's gate history (the previous i, f, o) starts
    at zero on every call.
    """

    state_names = ("h", "c")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, *, variant: str | LSTMSpec = "NP",
                 forget_bias: float | None = None):
        _check_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         proj_size)
        self.spec = cells.lstm_spec(variant)
        forget_bias_applies = self.spec.learned_forget_gate and bias
        if forget_bias is None:
            forget_bias = DEFAULT_FORGET_BIAS if forget_bias_applies else 0.0
        elif forget_bias != 0 and not forget_bias_applies:
            why = "bias=False" if not bias else \
                f"variant {self.spec.name} has no learned forget gate"
            raise ValueError(f"forget_bias={forget_bias} cannot apply: {why}")
        self.forget_bias = float(forget_bias)
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)

    @property
    def variant(self) -> str:
        return self.spec.name

    @property
    def _spec(self) -> LSTMSpec:
        return self.spec

    @property
    def gate_count(self) -> int:
        return len(self.spec.gates)

    @property
    def trace_names(self) -> tuple[str, ...]:
        return ("i", "f", "z", "o", "c", "h")

    def _parameter_shapes(self, layer_input):
        shapes = super()._parameter_shapes(layer_input)
        shapes += [(f"weight_c{gate}", (self.hidden_size,)) for gate in self.spec.peephole_gates]
        if self.spec.gate_recurrence:
            side = len(self.spec.sigmoid_gates) * self.hidden_size
            shapes.append(("weight_gates", (side, side)))
        if self.proj_size:  # last, as torch.nn.LSTM: NP's order is torch's
            shapes.append(("weight_hr", (self.proj_size, self.hidden_size)))
        return shapes

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.forget_bias:
            f = self.spec.gates.index("f")
            h = self.hidden_size
            with torch.no_grad():
                for name in self._flat_weights_names:
                    if name.startswith("bias_ih"):
                        getattr(self, name)[f * h:(f + 1) * h] += self.forget_bias

    def extra_repr(self) -> str:
        return super().extra_repr() + f", variant={self.variant!r}"

    def lstm_weights(self, layer: int, reverse: bool = False) -> LSTMWeights:
        """One layer-direction's parameters as the cells and kernels expect them."""
        w = self.weights(layer, reverse)
        return LSTMWeights(*(w.get(name) for name in LSTMWeights._fields))

    def _run_direction(self, x, state, layer, reverse, mask, keep):
        spec, w = self.spec, self.lstm_weights(layer, reverse)
        wx = F.linear(x, w.weight_ih, w.bias_ih)
        if spec.gate_recurrence:
            side = len(spec.sigmoid_gates) * self.hidden_size
            state = (*state, wx.new_zeros(x.shape[1], side))

        def step(wx_t: Tensor, s: State) -> tuple[State, dict[str, Tensor]]:
            out = cells.lstm_step(spec, wx_t, s[0], s[1], s[2] if len(s) > 2 else None, w)
            new = (out.y, out.c) if out.gates is None else (out.y, out.c, out.gates)
            return new, {"i": out.i, "f": out.f, "z": out.z, "o": out.o, "c": out.c, "h": out.y}

        records, final = _scan(step, wx, state, mask, reverse, keep)
        return records, final[:2]

    def _run_direction_fused(self, x: Tensor, state: State, layer: int, reverse: bool,
                             mask: Tensor | None,
                             compiled: bool | None) -> tuple[dict[str, Tensor], State]:
        """``_run_direction`` on the fused kernel (no trace): output (T, B, Hy), (h_n, c_n)."""
        output, h, c = fused_kernel.fused_lstm(self.spec, x, state[0], state[1],
                                               self.lstm_weights(layer, reverse), mask, reverse,
                                               compiled)
        return {"h": output}, (h, c)

    def _not_torch_reason(self) -> str | None:
        """Why torch.nn.LSTM cannot compute this layer, or None when it can (NP)."""
        if self.spec == cells.VARIANTS["NP"]:
            return None
        differs = [name for name, (fld, value) in cells._SWITCHES.items()
                   if name != "NP" and getattr(self.spec, fld) == value]
        reasons = (["it has peepholes"] if self.spec.peepholes else []) + \
            [f"it is {name}" for name in differs]
        return f"this layer is {self.variant} ({', '.join(reasons)})"

    def _torch_class(self) -> type[nn.RNNBase]:
        return nn.LSTM

    def _torch_kwargs(self) -> dict:
        return {"proj_size": self.proj_size}

    def __prepare_scriptable__(self) -> nn.Module:
        reason = self._not_torch_reason()
        if reason is not None:
            raise NotScriptableError(
                f"torch.jit.script cannot compile lstmlab's LSTM variant {self.variant}: "
                f"TorchScript compiles only the NP variant (as torch.nn.LSTM), and {reason}. "
                "Use torch.compile(model) or torch.export.export(model, ...), which support "
                "every variant")
        return super().__prepare_scriptable__()

    @classmethod
    def from_torch(cls, module: nn.LSTM) -> LSTM:
        """An lstmlab LSTM (variant NP) with the configuration and a copy of the weights of
        ``module`` (proj_size included)."""
        _check_torch_module(module, nn.LSTM)
        layer = cls(module.input_size, module.hidden_size, module.num_layers, module.bias,
                    module.batch_first, module.dropout, bool(module.bidirectional),
                    module.proj_size, variant="NP", forget_bias=0.0, **_factory(module))
        layer.load_state_dict(module.state_dict())
        return layer

    def to_torch(self) -> nn.LSTM:
        """A torch.nn.LSTM with this layer's configuration and a copy of its weights (NP only)."""
        reason = self._not_torch_reason()
        if reason is not None:
            raise ValueError(f"torch.nn.LSTM computes only the NP variant; {reason}, which "
                             "torch.nn.LSTM cannot represent")
        return self._torch_twin(share=False)


def _factory(module: nn.Module) -> dict:
    weight = next(module.parameters())
    return {"device": weight.device, "dtype": weight.dtype}


def _check_torch_module(module: nn.Module, expected: type) -> None:
    if type(module) is not expected:
        raise TypeError(f"expected a torch.nn.{expected.__name__}, got {type(module).__name__}")


def quantize_dynamic(model: nn.Module, dtype: torch.dtype = torch.qint8, *,
                     inplace: bool = False) -> nn.Module:
    """Dynamic quantisation (int8 weights, activations quantised on the fly) of a model holding
    lstmlab layers, through torch.ao.quantization.quantize_dynamic.

    torch's function matches module types exactly, so on its own it leaves lstmlab's layers float.
    This one first replaces every NP LSTM and every GRU (what torch.nn computes) by torch.nn's
    module with the same weights (``to_torch``), then quantises those and every nn.Linear. LSTM
    variants, LSTMs with a projection and RNNs have no quantised torch module and stay float (a
    warning names them). Returns the quantised copy (``model`` itself with ``inplace``).
    """
    from torch.ao.quantization import quantize_dynamic as torch_quantize_dynamic

    if not inplace:
        model = copy.deepcopy(model)
    kept: list[str] = []

    def converted(name: str, module: nn.Module) -> nn.Module | None:
        if isinstance(module, (LSTM, GRU)) and kernels.native_computes(module._spec) \
                and not module.proj_size:
            return module.to_torch()
        if isinstance(module, RecurrentLayer):
            kept.append(f"{name or 'model'} ({type(module).__name__}"
                        f"{' ' + module.variant if isinstance(module, LSTM) else ''})")
        return None

    def swap(parent: nn.Module, prefix: str) -> None:
        for name, child in parent.named_children():
            full = f"{prefix}{name}"
            new = converted(full, child)
            if new is not None:
                setattr(parent, name, new)
            elif not isinstance(child, RecurrentLayer):
                swap(child, full + ".")

    model = converted("", model) or model
    swap(model, "")
    if kept:
        warnings.warn(f"lstmlab.quantize_dynamic: left float (no quantised torch module): "
                      f"{', '.join(kept)}", stacklevel=2)
    return torch_quantize_dynamic(model, {nn.Linear, nn.LSTM, nn.GRU}, dtype=dtype, inplace=True)


_register_safe_globals(LSTM, GRU, RNN, LSTMSpec)
