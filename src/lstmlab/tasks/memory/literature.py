"""Tasks from later literature (docs/tasks.md, section D): ``copy``, ``parity`` and ``latch``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lstmlab.tasks.memory.base import (
    Batch,
    MemoryTask,
    at_last_step,
    last_step_mask,
    lengths_between,
    one_hot,
    randint,
    step_mask,
)
from lstmlab.tasks.stopping import StoppingRule, TestSetRule

COPY_STOP_ACCURACY = 0.995
"""The share of the copy task's held-out sequences that must be right to stop (``CopyTask``)."""


class CopyTask(MemoryTask):
    """D1 ``copy``: copy memory (Arjovsky et al. 2016; Bai et al. 2018).

    Layout (length T + 20, lag = T): steps 0..9 carry 10 digits uniform over 1..8; steps
    10..T+8 are blank (0); step T+9 is the delimiter 9; steps T+10..T+19 are blank, and during them
    the 10 digits must be reproduced in order. This is Arjovsky's and Bai's layout (T - 1 blanks
    before the delimiter), the one that gives the memoryless baseline 10 log 8 / (T + 20);
    see docs/tasks.md, 'D1 copy'.
    Inputs: one-hot over the 10 symbols 0..9 (I = 10). Targets ((T, B) int64): blank (class 0) at
    steps 0..T+9, then the digits (classes 1..8); O = 9, loss "ce", every step scored (so the loss
    is comparable with ``baseline_loss``).
    Correct (ours): every step's arg-max right (all 10 digits recalled). Error: mean cross-entropy.
    Stop (ours): >= 99.5% of the held-out set (2,560 sequences) correct, checked every 1,000
    training sequences: a margin over the 99% of fresh sequences that "solved" means, since the
    first of many checks to pass is the luckiest (one percent of 2,560 is 25.6 +- 5 sequences).
    """

    name = "copy"
    default_lag = 1000
    input_size = 10
    output_size = 9
    symbols = ("blank",) + tuple(str(k) for k in range(1, 9)) + ("delimiter",)
    classes = ("blank",) + tuple(str(k) for k in range(1, 9))
    reference = ("Bai et al. 2018 Table 1, T=1000: LSTM loss 0.0204 (not solved); memoryless "
                 "baseline 10 log 8 / (T + 20)")

    def lag_meaning(self) -> str:
        return "T, steps from the last digit to the delimiter"

    def stopping_rule(self) -> StoppingRule:
        return TestSetRule(min_accuracy=COPY_STOP_ACCURACY, test_size=self.test_size)

    @property
    def baseline_loss(self) -> float:
        """Cross-entropy of the best memoryless answer (blanks right, uniform over the digits)."""
        return 10 * math.log(8) / (self.lag + 20)

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        T = self.lag
        steps = T + 20
        digits = randint(1, 8, (10, batch_size), generator)
        symbols = torch.zeros((steps, batch_size), dtype=torch.long)
        symbols[:10] = digits
        symbols[T + 9] = 9
        targets = torch.zeros((steps, batch_size), dtype=torch.long)
        targets[T + 10:] = digits
        mask = torch.ones((steps, batch_size), dtype=torch.bool)
        return Batch(one_hot(symbols, 10), targets, mask,
                     torch.full((batch_size,), steps, dtype=torch.long))


class _BinaryEndTask(MemoryTask):
    """A one-line input, one sigmoid output judged at the last step (target 1.0 or 0.0)."""

    loss_kind = "mse_sigmoid"
    input_size = 1
    output_size = 1

    def __init__(self, lag: int | None = None, tolerance: float = 0.5) -> None:
        if not 0.0 < tolerance <= 0.5:
            raise ValueError(f"{self.name}: tolerance must be in (0, 0.5], got {tolerance}")
        super().__init__(lag)
        self.tolerance = tolerance

    def evaluate(self, outputs: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Correct when |sigmoid(output) - target| < tolerance at the last step (default 0.5: on
        the right side of 0.5); error: that absolute error."""
        self.check_outputs(outputs, batch)
        out = at_last_step(torch.sigmoid(outputs.detach().float()), batch.lengths)[:, 0]
        error = (out - at_last_step(batch.targets, batch.lengths)[:, 0]).abs()
        return error < self.tolerance, error


class ParityTask(_BinaryEndTask):
    """D2 ``parity`` (Bengio et al. 1994; Schmidhuber, Hochreiter & Bengio 2001).

    One input line (I = 1) of +1/-1 values (each uniform), length uniform in [T, 2T] (lag = T,
    default 25: lengths 25..50). Target at the last step ((T, B, 1) float32, O = 1, loss
    "mse_sigmoid"): 1.0 when the number of +1 inputs is odd, else 0.0.
    Correct (ours): |sigmoid(output) - target| < ``tolerance`` (0.5: the right side of 0.5).
    Stop (ours): >= 99% of the held-out set correct. For weight guessing use ``fixed_set``.
    """

    name = "parity"
    default_lag = 25
    symbols = ("+1/-1",)
    classes = ("odd",)
    reference = ("Schmidhuber, Hochreiter & Bengio 2001: random weight guessing solved parity "
                 "(length 25-50) in about 2,800 trials")

    def lag_meaning(self) -> str:
        return "T, the shortest length (lengths T..2T)"

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        lengths = lengths_between(self.lag, 2 * self.lag, batch_size, generator)
        steps = int(lengths.max())
        bits = randint(0, 1, (steps, batch_size), generator)
        bits = torch.where(step_mask(lengths, steps), bits, 0)
        x = torch.where(step_mask(lengths, steps), 2.0 * bits.float() - 1.0, 0.0)
        odd = (bits.sum(0) % 2).float()
        mask = last_step_mask(lengths, steps)
        return Batch(x.unsqueeze(-1), torch.where(mask, odd, 0.0).unsqueeze(-1), mask, lengths)


class LatchTask(_BinaryEndTask):
    """D2 ``latch`` (Bengio et al. 1994; Schmidhuber, Hochreiter & Bengio 2001).

    One input line (I = 1), length T (lag, default 100). Step 0 carries +1 (class 1) or -1
    (class 2); every later step is Gaussian noise (mean 0, variance 0.2, as in two_sequence).
    Target at the last step ((T, B, 1) float32, O = 1, loss "mse_sigmoid"): 1.0 for class 1, else
    0.0; the class must be latched through the noise.
    Correct (ours): |sigmoid(output) - target| < ``tolerance`` (0.5: the right side of 0.5).
    Stop (ours): >= 99% of the held-out set correct. For weight guessing use ``fixed_set``.
    """

    name = "latch"
    min_lag = 2
    lag_reason = "the class step and at least one noise step"
    symbols = ("signal + noise",)
    classes = ("class 1",)
    reference = ("Schmidhuber, Hochreiter & Bengio 2001: random weight guessing solved latch in a "
                 "mean of 6 trials")

    def lag_meaning(self) -> str:
        return "T, the sequence length"

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        T = self.lag
        label = randint(0, 1, (batch_size,), generator)
        x = torch.randn((T, batch_size), generator=generator) * math.sqrt(0.2)
        x[0] = 2.0 * label.float() - 1.0
        mask = torch.zeros((T, batch_size), dtype=torch.bool)
        mask[-1] = True
        targets = torch.zeros((T, batch_size, 1))
        targets[-1, :, 0] = label.float()
        return Batch(x.unsqueeze(-1), targets, mask, torch.full((batch_size,), T, dtype=torch.long),
                     {"label": label})
