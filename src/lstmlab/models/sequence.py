"""A recurrent layer with a linear read-out at every step: the head of the memory games
(many-to-one tasks read the scored step; many-to-many tasks read every step)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from lstmlab.models.recurrent import canonical_name, make_recurrent
from lstmlab.models.registry import register


@register("sequence")
class SequenceModel(nn.Module):
    """inputs (T, B, I) -> outputs (T, B, O): ``head(recurrent(x))`` at every step, plus
    ``direct(x)`` with ``direct=True``.

    Args:
        cell: the recurrent cell, e.g. "rnn", "gru", "lstm:CIFG" (see ``parse_cell``).
        input_size, output_size, hidden_size, num_layers, forget_bias: sizes and LSTM init.
        direct: the outputs also read the inputs of the same step through ``direct``, an
            (O, I) weight without bias that starts at zero (the layout of the 1997 paper's
            experiment-2 networks, where each layer reads every layer below it: the recurrent
            layer is left with what the current input cannot predict).
    """

    def __init__(self, cell: str, input_size: int, output_size: int, hidden_size: int = 32,
                 num_layers: int = 1, forget_bias: float | None = None,
                 direct: bool = False) -> None:
        super().__init__()
        self.cell = canonical_name(cell)
        self.input_size, self.output_size = input_size, output_size
        self.hidden_size, self.num_layers, self.forget_bias = hidden_size, num_layers, forget_bias
        self.recurrent = make_recurrent(self.cell, input_size, hidden_size, num_layers,
                                        forget_bias=forget_bias)
        self.head = nn.Linear(hidden_size, output_size)
        self.direct = nn.Linear(input_size, output_size, bias=False) if direct else None
        if self.direct is not None:
            nn.init.zeros_(self.direct.weight)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-ready: ``SequenceModel(**model.config())``."""
        return {"cell": self.cell, "input_size": self.input_size,
                "output_size": self.output_size, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "forget_bias": self.forget_bias,
                "direct": self.direct is not None}

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        outputs = self.head(self.recurrent(inputs, lengths=lengths)[0])
        return outputs if self.direct is None else outputs + self.direct(inputs)
