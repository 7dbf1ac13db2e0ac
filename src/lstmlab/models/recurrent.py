"""Cell names as users write them ("rnn", "rnn:relu", "gru", "lstm", "lstm:CIFG", "lstm:NFG+NP")
and the recurrent layer each one builds."""

from __future__ import annotations

from lstmlab.cells import GRUCell, LSTMCell, RecurrentCell, RNNCell, lstm_spec
from lstmlab.layers import GRU, LSTM, RNN, RecurrentLayer

CELL_KINDS = ("rnn", "lstm", "gru")


def parse_cell(name: str) -> tuple[str, str | None]:
    """Split "lstm:CIFG" into ("lstm", "CIFG"); check both parts, with errors that list choices.

    The option is the LSTM variant (any name ``lstm_spec`` accepts) or the RNN's nonlinearity
    (tanh, relu); a GRU takes none.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a cell name is one of {', '.join(CELL_KINDS)}, optionally with "
                         f"':OPTION' (e.g. lstm:CIFG, rnn:relu); got {name!r}")
    kind, _, option = name.strip().partition(":")
    kind = kind.lower()
    if kind not in CELL_KINDS:
        raise ValueError(f"unknown cell {name!r}; choose from {', '.join(CELL_KINDS)} "
                         "(e.g. rnn, gru, lstm, lstm:CIFG, lstm:NFG+NP)")
    option = option or None
    if kind == "lstm":
        option = lstm_spec(option or "NP").name
    elif kind == "rnn":
        option = (option or "tanh").lower()
        if option not in ("tanh", "relu"):
            raise ValueError(f"rnn takes the nonlinearity tanh or relu, got {option!r} in "
                             f"{name!r}")
    elif option is not None:
        raise ValueError(f"gru takes no option, got {name!r}")
    return kind, option


def make_recurrent(cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                   dropout: float = 0.0, bidirectional: bool = False, batch_first: bool = False,
                   forget_bias: float | None = None) -> RecurrentLayer:
    """The layer a cell name stands for, e.g. make_recurrent("lstm:CIFG", 8, 32)."""
    kind, option = parse_cell(cell)
    common = dict(num_layers=num_layers, dropout=dropout, bidirectional=bidirectional,
                  batch_first=batch_first)
    if kind == "lstm":
        return LSTM(input_size, hidden_size, variant=option, forget_bias=forget_bias, **common)
    if forget_bias is not None:
        raise ValueError(f"forget_bias applies to LSTMs only, not {cell!r}")
    if kind == "gru":
        return GRU(input_size, hidden_size, **common)
    return RNN(input_size, hidden_size, nonlinearity=option, **common)


def canonical_name(name: str) -> str:
    """A cell name in its one written form: "lstm" for lstm:NP, "lstm:CIFG", "rnn" for
    rnn:tanh, "rnn:relu", "gru" (checked as ``parse_cell`` checks it)."""
    kind, option = parse_cell(name)
    if kind == "lstm":
        return "lstm" if option == "NP" else f"lstm:{option}"
    if kind == "rnn":
        return "rnn" if option == "tanh" else f"rnn:{option}"
    return kind


def make_cell(cell: str, input_size: int, hidden_size: int) -> RecurrentCell:
    """The step-wise cell module a cell name stands for (``lstmlab.cells``), for models that
    step by hand (decoders): make_cell("lstm:CIFG", 8, 32) is LSTMCell(8, 32, variant="CIFG")."""
    kind, option = parse_cell(cell)
    if kind == "lstm":
        return LSTMCell(input_size, hidden_size, variant=option)
    if kind == "gru":
        return GRUCell(input_size, hidden_size)
    return RNNCell(input_size, hidden_size, nonlinearity=option)


def cell_state(state: object) -> tuple:
    """A cell's returned state as a tuple: (h,) for GRU / RNN, (h, c[, gates]) for an LSTM;
    ``state[0]`` is always the output h. Give a cell back ``as_hx(state)``."""
    return state if isinstance(state, tuple) else (state,)


def as_hx(state: tuple) -> object:
    """The state a cell takes back from ``cell_state``'s tuple."""
    return state if len(state) > 1 else state[0]
