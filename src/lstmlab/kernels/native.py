"""Dispatch to PyTorch's native recurrent kernels (what torch.nn.LSTM / GRU / RNN call).

The parameters are handed over as they are (a layer's weights in torch.nn's order and layout:
weight_ih, weight_hh, bias_ih, bias_hh, weight_hr per layer-direction): nothing is copied per
call. Variable lengths go through the PackedSequence overloads, as torch.nn does. ``mode`` is
torch.nn's: "LSTM", "GRU", "RNN_TANH" or "RNN_RELU".
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import _VF, Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

_OPS = {"LSTM": _VF.lstm, "GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}

State = tuple[Tensor, ...]


def _hx(mode: str, state: State) -> Tensor | State:
    return state if mode == "LSTM" else state[0]


def run(mode: str, x: Tensor, state: State, weights: Sequence[Tensor], *, bias: bool,
        num_layers: int, dropout: float, training: bool, bidirectional: bool,
        mask: Tensor | None = None) -> tuple[Tensor, State]:
    """All layers and directions over x (T, B, I) from state (each (L*D, B, H); an LSTM's h_0 is
    (L*D, B, P) with a projection); mask (T, B) bool or None. Returns output (T, B, D*H), zero
    past each sequence's end, and the final state."""
    if mask is not None:
        lengths = mask.sum(0).cpu()
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        output, final = run_packed(mode, packed, state, weights, bias=bias,
                                   num_layers=num_layers, dropout=dropout, training=training,
                                   bidirectional=bidirectional)
        return pad_packed_sequence(output, total_length=x.shape[0])[0], final
    result = _OPS[mode](x, _hx(mode, state), list(weights), bias, num_layers, dropout, training,
                        bidirectional, False)
    return result[0], tuple(result[1:])


def run_packed(mode: str, packed: PackedSequence, state: State, weights: Sequence[Tensor], *,
               bias: bool, num_layers: int, dropout: float, training: bool,
               bidirectional: bool) -> tuple[PackedSequence, State]:
    """The PackedSequence overload: state in the caller's batch order, as torch.nn.LSTM takes it."""
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    if order is not None:
        state = tuple(s.index_select(1, order) for s in state)
    result = _OPS[mode](packed.data, packed.batch_sizes, _hx(mode, state), list(weights), bias,
                        num_layers, dropout, training, bidirectional)
    final = tuple(result[1:])
    if unorder is not None:
        final = tuple(s.index_select(1, unorder) for s in final)
    return PackedSequence(result[0], packed.batch_sizes, order, unorder), final
