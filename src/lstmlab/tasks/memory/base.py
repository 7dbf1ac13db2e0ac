"""The common face of the memory games: ``Batch``, ``MemoryTask`` and shared helpers.

Shapes: T steps (time-major, the longest sequence of the batch), B sequences, I input lines,
O output units (the width of the model's linear head at each step).

A task draws batches from a ``torch.Generator`` (same seed, same batch), says which steps are
scored (``mask``), turns the model's raw head outputs into a loss, and judges each sequence by its
own rule from docs/tasks.md (``evaluate``). Three kinds of loss, the task's ``loss_kind``:

    "ce"           softmax cross-entropy; targets (T, B) int64 class indices
    "mse_sigmoid"  squared error of sigmoid(outputs), summed over the O units, as the 1997 paper's
                   logistic output units; targets (T, B) int64 (a one-hot target) or (T, B, O) float
    "mse"          squared error of the raw (linear) outputs, summed over units; (T, B, O) float

``loss`` is the mean of that per-step loss over the scored steps of the batch.

``evaluate`` returns, per sequence, ``correct`` under the task's own rule and an ``error`` that
the task's stopping rule reads: for "ce" tasks the mean cross-entropy over the scored steps; for
the others what the rule needs (the max absolute error for lag, the squared error for adding and
multiplication, the summed squared error for temporal order, ...; each task's docstring says).

Test sets are built from units of 256 sequences, each unit from its own generator seeded by
(seed, unit number), so a test set evaluated whole or in chunks (``test_batches``) holds the same
sequences whatever the chunk size.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmlab.tasks.batch import Batch
from lstmlab.tasks.stopping import StoppingRule, TestSetRule

TEST_SEED = 1997
"""Default seed of ``test_set``: the fresh sequences results are reported on."""
VALIDATION_SEED = 2001
"""Seed of ``stopping_set``: the held-out sequences that test-based stopping rules check."""
FIXED_SEED = 0
"""Default seed of ``fixed_set``: a fixed training set (for weight guessing, section E)."""
UNIT = 256
"""Test sets are generated in units of this many sequences (see ``test_batches``)."""

LOSS_KINDS = ("ce", "mse_sigmoid", "mse")


# -- shared generation helpers ------------------------------------------------------------------

def randint(low: int, high: int, size: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Integers drawn uniformly from [low, high], both ends included (int64)."""
    return torch.randint(low, high + 1, size, generator=generator)


def uniform(low: float, high: float, size: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Floats drawn uniformly from [low, high) (float32)."""
    return low + (high - low) * torch.rand(size, generator=generator)


def lengths_between(low: int, high: int, batch_size: int, generator: torch.Generator) -> Tensor:
    """(B,) sequence lengths drawn uniformly from [low, high]."""
    return randint(low, high, (batch_size,), generator)


def step_mask(lengths: Tensor, steps: int | None = None) -> Tensor:
    """(T, B) bool: True for the steps t < length of each sequence."""
    steps = int(lengths.max()) if steps is None else steps
    return torch.arange(steps).unsqueeze(1) < lengths.unsqueeze(0)


def last_step_mask(lengths: Tensor, steps: int | None = None) -> Tensor:
    """(T, B) bool: True only at each sequence's last step (t = length - 1)."""
    steps = int(lengths.max()) if steps is None else steps
    return torch.arange(steps).unsqueeze(1) == (lengths - 1).unsqueeze(0)


def one_hot(symbols: Tensor, size: int) -> Tensor:
    """(T, B) int64 symbol indices -> (T, B, size) float32 one-hot; negative indices give zeros."""
    out = torch.zeros((*symbols.shape, size))
    valid = symbols >= 0
    out.scatter_(-1, symbols.clamp(min=0).unsqueeze(-1), valid.unsqueeze(-1).float())
    return out


def two_distinct(n1: int, n2: int, batch_size: int, generator: torch.Generator
                 ) -> tuple[Tensor, Tensor]:
    """p1 uniform in [0, n1), p2 uniform in [0, n2) excluding p1 (needs n2 >= 2, or p1 outside)."""
    p1 = torch.randint(0, n1, (batch_size,), generator=generator)
    inside = p1 < n2
    r = torch.randint(0, 2**62, (batch_size,), generator=generator)
    r = torch.where(inside, r % max(n2 - 1, 1), r % n2)
    p2 = torch.where(inside & (r >= p1), r + 1, r)
    return p1, p2


def unit_seed(seed: int, unit: int) -> int:
    """The generator seed of unit ``unit`` of the test set with seed ``seed``."""
    return (seed * 0x9E3779B97F4A7C15 + unit * 0xBF58476D1CE4E5B9 + 1) % (2**63 - 1)


# -- the base class ------------------------------------------------------------------------------

class MemoryTask:
    """One memory game. Subclasses set the attributes below and implement ``_generate``.

    Attributes:
        name: the registry name ("adding"); ``variant`` names the sub-task ("2c") where there are.
        input_size: I, the input lines. ``output_size``: O, the head's width.
        lag: the length/lag parameter actually used (each task says what it measures).
        loss_kind: "ce", "mse_sigmoid" or "mse" (module docstring).
        reference: the published reference figure from docs/tasks.md, one line.
        reference_sequences: the 1997 paper's sequences-to-success figure for this exact setup, or
            None where it gives none.
        symbols / classes: names of the input lines / output units, for displays.
        test_size: the size of a fresh test set (2,560, the 1997 paper's).
    """

    name: str = ""
    variant: str | None = None
    default_lag: int = 100
    min_lag: int = 1
    lag_reason: str = ""  # why min_lag, for the error message
    loss_kind: str = "ce"
    input_size: int
    output_size: int
    reference: str = ""
    reference_sequences: int | None = None
    symbols: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    test_size: int = 2560

    def __init__(self, lag: int | None = None) -> None:
        lag = self.default_lag if lag is None else lag
        if isinstance(lag, bool) or not isinstance(lag, int):
            raise TypeError(f"{self.name}: lag must be an int, got {lag!r}")
        if lag < self.min_lag:
            why = f"; {self.lag_reason}" if self.lag_reason else ""
            raise ValueError(f"{self.title_prefix()}: lag {lag} is too short; the minimum is "
                             f"{self.min_lag} (lag = {self.lag_meaning()}{why})")
        self.lag = lag

    # -- description ---------------------------------------------------------------------------

    def title_prefix(self) -> str:
        return self.name + (f" {self.variant}" if self.variant else "")

    def lag_meaning(self) -> str:
        """What ``lag`` measures for this task: "symbol, in words"."""
        return "lag"

    @property
    def title(self) -> str:
        """A one-line name of this configuration, e.g. "adding (T = 100)"."""
        return f"{self.title_prefix()} ({self.lag_meaning().split(',')[0]} = {self.lag})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.title}: I={self.input_size}, O={self.output_size}>"

    # -- data ----------------------------------------------------------------------------------

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """A batch of fresh sequences, determined by the generator's state."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        return self._generate(batch_size, generator)

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def test_batches(self, seed: int = TEST_SEED, size: int | None = None,
                     batch_size: int = UNIT) -> Iterator[Batch]:
        """The test set ``test_set(seed, size)`` in chunks of ``batch_size`` sequences (the last may
        be smaller): the same sequences, for tasks too large to hold at once (lag 2c, q=1000)."""
        size = self.test_size if size is None else size
        if size < 1 or batch_size < 1:
            raise ValueError(f"size and batch_size must be >= 1, got {size} and {batch_size}")
        pending: list[Batch] = []
        held, made, unit = 0, 0, 0
        while made < size:
            while held < min(batch_size, size - made):
                want = min(UNIT, size - made - held)
                part = self._generate(UNIT, torch.Generator().manual_seed(unit_seed(seed, unit)))
                pending.append(part if want == UNIT else part.select(slice(0, want)))
                held += want
                unit += 1
            joined = Batch.cat(pending) if len(pending) > 1 else pending[0]
            take = min(batch_size, size - made)
            yield joined.select(slice(0, take)) if take < joined.batch_size else joined
            rest = joined.batch_size - take
            pending = [joined.select(slice(take, None))] if rest else []
            held, made = rest, made + take

    def test_set(self, seed: int = TEST_SEED, size: int | None = None) -> Batch:
        """Fixed fresh test sequences (``test_size`` = 2,560 unless given), the same for a seed."""
        return Batch.cat(list(self.test_batches(seed, size, batch_size=UNIT)))

    def fixed_set(self, size: int, seed: int = FIXED_SEED) -> Batch:
        """A fixed training set of ``size`` sequences (for learners that need one: guessing)."""
        return self.test_set(seed=seed, size=size)

    def stopping_set(self, rule: StoppingRule | None = None) -> Batch:
        """The held-out sequences a test-based stopping rule is checked on: ``rule.test_size``
        sequences (the task's test size if None) drawn with VALIDATION_SEED, so they differ from
        the sequences ``test_set()`` reports on. The same sequences come in chunks from
        ``test_batches(VALIDATION_SEED, rule.test_size, batch_size)``."""
        size = rule.test_size if rule is not None and rule.test_size else None
        return self.test_set(seed=VALIDATION_SEED, size=size)

    def stopping_batches(self, rule: StoppingRule | None = None,
                         batch_size: int = UNIT) -> Iterator[Batch]:
        """``stopping_set(rule)`` in chunks of ``batch_size`` sequences (the same sequences)."""
        size = rule.test_size if rule is not None and rule.test_size else None
        yield from self.test_batches(VALIDATION_SEED, size, batch_size)

    def report_batches(self, size: int | None = None, batch_size: int = UNIT) -> Iterator[Batch]:
        """The test sequences a trial's errors are reported on, in chunks: ``size`` (the task's
        test size if None) fresh sequences drawn with TEST_SEED."""
        yield from self.test_batches(TEST_SEED, size, batch_size)

    # -- judging -------------------------------------------------------------------------------

    def stopping_rule(self) -> StoppingRule:
        """A fresh stopping rule for one training run (the task's criterion, docs/tasks.md)."""
        return TestSetRule(min_accuracy=0.99, test_size=self.test_size)

    def predict(self, outputs: Tensor) -> Tensor:
        """Raw head outputs -> the task's output space (softmax, sigmoid or identity)."""
        if self.loss_kind == "ce":
            return outputs.softmax(-1)
        if self.loss_kind == "mse_sigmoid":
            return torch.sigmoid(outputs)
        return outputs

    def target_vectors(self, batch: Batch) -> Tensor:
        """(T, B, O) float targets for the squared-error losses (one-hot for class targets)."""
        if batch.targets.dtype == torch.long:
            return F.one_hot(batch.targets, self.output_size).to(torch.float32)
        return batch.targets

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Scalar mean loss over the scored steps of the batch (see ``loss_kind``)."""
        self.check_outputs(outputs, batch)
        mask = batch.mask
        if self.loss_kind == "ce":
            return F.cross_entropy(outputs[mask], batch.targets[mask])
        pred = torch.sigmoid(outputs) if self.loss_kind == "mse_sigmoid" else outputs
        per_step = (pred - self.target_vectors(batch).to(pred.dtype)).square().sum(-1)
        return per_step[mask].mean()

    def evaluate(self, outputs: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Per-sequence (correct (B,) bool, error (B,) float) under the task's own rule.

        The default, for "ce" tasks: correct when the arg-max is the target at every scored step;
        error is the mean cross-entropy (nats) over the scored steps.
        """
        self.check_outputs(outputs, batch)
        return evaluate_classes(outputs, batch)

    def check_outputs(self, outputs: Tensor, batch: Batch) -> None:
        expected = (batch.steps, batch.batch_size, self.output_size)
        if tuple(outputs.shape) != expected:
            raise ValueError(f"{self.name}: outputs must be (T, B, O) = {expected}, got "
                             f"{tuple(outputs.shape)}")


# -- shared judging helpers ----------------------------------------------------------------------

def evaluate_classes(outputs: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
    """Arg-max right at every scored step; error = mean cross-entropy over the scored steps."""
    outputs = outputs.detach().float()
    targets, mask = batch.targets, batch.mask
    nll = -outputs.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    right = outputs.argmax(-1) == targets
    correct = (right | ~mask).all(0)
    error = (nll * mask).sum(0) / mask.sum(0).clamp(min=1)
    return correct, error


def at_last_step(values: Tensor, lengths: Tensor) -> Tensor:
    """(T, B, ...) -> (B, ...): each sequence's value at its last step."""
    return values[lengths - 1, torch.arange(values.shape[1], device=values.device)]


def masked_max(values: Tensor, mask: Tensor) -> Tensor:
    """(T, B) -> (B,): the maximum over the scored steps (0 where none)."""
    return torch.where(mask, values, torch.zeros((), dtype=values.dtype,
                                                 device=values.device)).amax(0)
