"""A recurrent layer with a linear read-out at every step: the head of the memory games
(many-to-one tasks read the scored step; many-to-many tasks read every step)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from lstmlab.models.recurrent import canonical_name, make_recurrent
from lstmlab.models.registry import register


@register("sequence")
class SequenceModel(nn.Module):
    """inputs (T, B, I) -> outputs (T, B, O): ``head(recurrent(x))`` at every step.

    Args:
        cell: the recurrent cell, e.g. "rnn", "gru", "lstm:CIFG" (see ``parse_cell``).
        input_size, output_size, hidden_size, num_layers, forget_bias: sizes and LSTM init.
    """

    def __init__(self, cell: str, input_size: int, output_size: int, hidden_size: int = 32,
                 num_layers: int = 1, forget_bias: float | None = None) -> None:
        super().__init__()
        self.cell = canonical_name(cell)
        self.input_size, self.output_size = input_size, output_size
        self.hidden_size, self.num_layers, self.forget_bias = hidden_size, num_layers, forget_bias
        self.recurrent = make_recurrent(self.cell, input_size, hidden_size, num_layers,
                                        forget_bias=forget_bias)
        self.head = nn.Linear(hidden_size, output_size)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-ready: ``SequenceModel(**model.config())``."""
        return {"cell": self.cell, "input_size": self.input_size,
                "output_size": self.output_size, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "forget_bias": self.forget_bias}

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.head(self.recurrent(inputs, lengths=lengths)[0])
