"""Dispatch to PyTorch's native recurrent kernels (what torch.nn.LSTM / GRU / RNN call).

The layer's parameters are handed over as they are (``layer._flat_weights``, already in
torch.nn's order and layout): nothing is copied per call. Variable lengths go through the
PackedSequence overloads, as torch.nn does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import _VF, Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

if TYPE_CHECKING:
    from lstmlab.layers import RecurrentLayer

_OPS = {"LSTM": _VF.lstm, "GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}

State = tuple[Tensor, ...]


def _hx(layer: RecurrentLayer, state: State) -> Tensor | State:
    return state if layer.mode == "LSTM" else state[0]


def run(layer: RecurrentLayer, x: Tensor, state: State,
        mask: Tensor | None) -> tuple[Tensor, State]:
    """All layers and directions over x (T, B, I) from state (each (L*D, B, H)); mask (T, B) bool
    or None. Returns output (T, B, D*H), zero past each sequence's end, and the final state."""
    if mask is not None:
        lengths = mask.sum(0).cpu()
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        output, final = run_packed(layer, packed, state)
        return pad_packed_sequence(output, total_length=x.shape[0])[0], final
    result = _OPS[layer.mode](x, _hx(layer, state), layer._flat_weights, layer.bias,
                              layer.num_layers, layer.dropout, layer.training,
                              layer.bidirectional, False)
    return result[0], tuple(result[1:])


def run_packed(layer: RecurrentLayer, packed: PackedSequence,
               state: State) -> tuple[PackedSequence, State]:
    """The PackedSequence overload: state in the caller's batch order, as torch.nn.LSTM takes it."""
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    if order is not None:
        state = tuple(s.index_select(1, order) for s in state)
    result = _OPS[layer.mode](packed.data, packed.batch_sizes, _hx(layer, state),
                              layer._flat_weights, layer.bias, layer.num_layers, layer.dropout,
                              layer.training, layer.bidirectional)
    final = tuple(result[1:])
    if unorder is not None:
        final = tuple(s.index_select(1, unorder) for s in final)
    return PackedSequence(result[0], packed.batch_sizes, order, unorder), final
