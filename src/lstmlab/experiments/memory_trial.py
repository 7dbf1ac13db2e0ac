"""What every memory-game learner shares: its settings, its budget, its result, and how a trained
network is scored on held-out sequences.

A learner is a gradient learner (``lstmlab.experiments.learner``: a ``SequenceModel`` of a cell
such as "lstm", or the 1997 paper's own set-up, "lstm1997", trained by the one training loop
until the task's stopping rule holds) or weight guessing (``lstmlab.experiments.guessing``,
learner name "guess"). ``lstmlab.experiments.memory_suite``
runs learners x tasks x seeds.

"Sequences to criterion" is the stopping rule's exact ``satisfied_at``: every training sequence
seen until the criterion first held. "Sequences to success", the figure set beside the 1997
paper's, is the same count less the rule's confirming run (``StoppingRule.learned_at``), which
only the lag tasks' streak has: for 2a/2b/2c it counts the sequences before the 10,000 correct
ones in a row began. That is how the paper must count them - its 2a figure, 5,040 sequences, is
below the streak's own 10,000.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lstmlab.init import INITS
from lstmlab.models.losses import LOSSES
from lstmlab.models.memory import HEAD_INITS
from lstmlab.models.recurrent import canonical_name, parse_cell
from lstmlab.tasks.batch import Batch
from lstmlab.tasks.memory import MemoryTask
from lstmlab.train.loop import BUDGET_SCHEDULES

# the learners' rate schedules: the loop's that need no settings of their own, and
# "exponential" with the learner's half-life in sequences
SCHEDULES = (*BUDGET_SCHEDULES, "exponential")
GUESS = "guess"
LSTM1997_LEARNER = "lstm1997"
"""The 1997 paper's set-up for each of its experiments (``lstmlab.models.lstm1997``), with its
truncated gradient; "lstm1997:full" trains the same network by full BPTT."""

Listener = Callable[[dict[str, Any]], None]
"""Called with each learning-curve point of a running trial ({sequences, loss, accuracy, ...})."""


def check_learner(name: str) -> str:
    """A learner name, normalised: "guess", "lstm1997" (also "lstm1997:truncated"),
    "lstm1997:full", or a cell name (``canonical_name``)."""
    text = name.strip().lower() if isinstance(name, str) else name
    if text == GUESS:
        return GUESS
    if isinstance(text, str) and text.partition(":")[0] == LSTM1997_LEARNER:
        gradient = text.partition(":")[2] or "truncated"
        if gradient not in ("truncated", "full"):
            raise ValueError(f"{name!r}: the 1997 learner is lstm1997 (its truncated gradient) "
                             "or lstm1997:full (full backpropagation through time)")
        return LSTM1997_LEARNER if gradient == "truncated" else f"{LSTM1997_LEARNER}:full"
    return canonical_name(name)


def optimizer_used(optimizer: str, input_decay: float) -> str:
    """The optimiser a gradient learner trains with: ``optimizer``, except that Adam with an
    input-weight decay is AdamW (the decoupled decay; AdamW with no decay is Adam, and Adam's own
    L2 decay, unlike AdamW's, would be rescaled per weight)."""
    return "adamw" if input_decay and optimizer == "adam" else optimizer


@dataclass
class LearnerConfig:
    """How a gradient learner is built and trained, and how weights are guessed.

    Attributes:
        hidden: H, hidden units of the recurrent layer. batch: sequences per Adam step.
        lr, optimizer, clip: see ``TrainConfig`` (clip is the global gradient-norm limit).
        schedule: "constant" learning rate; "cosine": to 0 over the trial's sequence budget,
            counted in steps (so that the trial does not depend on the machine's speed), or over
            its minutes where it has no sequence budget (Loshchilov & Hutter 2017); or
            "exponential": halved every ``half_life`` training sequences, whatever the budget
            (for a task that stops on a streak of right sequences, the rate is low by the time
            the streak must begin, however long the budget).
        half_life: training sequences per halving of the exponential schedule's rate.
        init: "chrono" or "default" (module docstring). forget_bias: the LSTM's forget-gate bias
            with init "default" (None: the layer's default, 1.0). input_bias: added to the
            LSTM's input-gate bias after initialisation (None: nothing added; a gate that starts
            nearly shut is the 1997 paper's remedy for internal state drift).
        input_decay: decoupled weight decay (AdamW's, Loshchilov & Hutter 2019) on the
            recurrent layer's input weights W_ih alone, per step times the learning rate (0:
            none). Adam moves the weights of inputs that carry no information (the random
            middle of lag 2b) by steps of the order of the learning rate whatever their
            gradient's size, so they drift apart and their sum shifts each sequence's timing;
            the decay holds them together near 0.
        direct: the outputs also read the inputs of the same step (``SequenceModel``'s
            ``direct``; the 1997 experiment-2 networks' layout).
        head_init: "prior" or "default": the head's bias for tasks with logistic outputs (module
            docstring).
        kernel: the recurrent layer's kernel path ("auto", "loop", "native", "fused").
        device: "cpu" (None) or "cuda" for training.
        loss: what the optimiser minimises: "task" (the task's own loss, ``task.loss``) or "bce"
            (for tasks with logistic outputs, loss_kind "mse_sigmoid": binary cross-entropy of
            sigmoid(outputs) against the same targets, summed over units, mean over scored
            steps; other tasks keep their own loss). Squared error through a sigmoid stops
            learning once outputs saturate at 0 - with 101 output units (lag 2a/2b) they all do
            within 50 steps - while cross-entropy keeps the gradient. Success is always judged
            by the task's own rule.
        curriculum: train on lags growing to the task's (``lstmlab.tasks.memory.curriculum``;
            Zaremba & Sutskever 2014), for tasks judged on held-out sequences; the stopping
            rule is checked once the target lag is reached, and every training sequence, of
            any lag, is counted.
        log_every: steps between learning-curve points.
        guess_cell, guess_hidden, guess_range: the guessed network (cell, H) and r, the
            half-width of the uniform range every weight is drawn from.
        guess_set: size of the fixed training set a guess must classify entirely correctly.

    Each default is defined here once; ``lstmlab memory``'s options read them.
    """

    hidden: int = 32
    batch: int = 32
    lr: float = 1e-2
    optimizer: str = "adam"
    clip: float | None = 1.0
    schedule: str = "constant"
    half_life: int = 2_000
    init: str = "chrono"
    head_init: str = "prior"
    forget_bias: float | None = None
    input_bias: float | None = None
    input_decay: float = 0.0
    direct: bool = False
    kernel: str = "auto"
    device: str | None = None
    loss: str = "task"
    curriculum: bool = False
    log_every: int = 10
    guess_cell: str = "rnn"
    guess_hidden: int = 2
    guess_range: float = 100.0
    guess_set: int = 128

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"head_init must be one of {', '.join(HEAD_INITS)}, got "
                             f"{self.head_init!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got "
                             f"{self.schedule!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        for name in ("hidden", "batch", "half_life", "guess_hidden", "guess_set", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not self.input_decay >= 0:
            raise ValueError(f"input_decay must be >= 0, got {self.input_decay}")
        if not self.guess_range > 0:
            raise ValueError(f"guess_range must be positive, got {self.guess_range}")
        parse_cell(self.guess_cell)


@dataclass
class Budget:
    """Per trial (one learner, one task, one seed): the first limit reached ends the trial.

    ``sequences``: training sequences (for guessing: guesses x the fixed set's size);
    ``seconds``: wall time; ``guesses``: weight guesses (guessing only). None: unlimited.
    """

    sequences: int | None = 200_000
    seconds: float | None = None
    guesses: int | None = None

    def __post_init__(self) -> None:
        for name in ("sequences", "seconds", "guesses"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"the {name} budget must be positive, got {value}")


@dataclass
class TrialResult:
    """One learner on one task for one seed.

    Attributes:
        task: the task's title ("adding (T = 100)"); name, options, lag: how it was made.
        learner: "lstm", "rnn", "lstm:CIFG", "guess", ... seed: the trial's seed.
        solved: the task's criterion held within the budget.
        sequences: training sequences seen in all (guessing: guesses x fixed-set size).
        sequences_to_success: training sequences until the task was learned, the figure compared
            with the 1997 paper's: the criterion's count less its confirming run (for a streak,
            the sequences before it began; module docstring). None: unsolved.
        sequences_to_criterion: the exact count at which the criterion first held.
        guesses: weight guesses (guessing only). seconds: wall time of the trial, training only.
        test_errors / test_size: wrong sequences of ``test_size`` fresh test sequences
            (the final model; for guessing the last guess), None where not measured.
        stopped_by: "criterion", "max_sequences", "max_seconds", "max_guesses", "interrupt",
            "diverged". curve: learning-curve points {sequences, loss, accuracy, seconds}.
        parameters: the network's trainable weights, biases included (None: not recorded, in
            results written before it was).
    """

    task: str
    name: str
    options: dict[str, Any]
    lag: int
    learner: str
    seed: int
    solved: bool
    sequences: int
    sequences_to_success: int | None
    seconds: float
    stopped_by: str
    test_errors: int | None = None
    test_size: int = 0
    guesses: int | None = None
    reference_sequences: int | None = None
    sequences_to_criterion: int | None = None
    note: str = ""
    curve: list[dict[str, float]] = field(default_factory=list)
    parameters: int | None = None


@torch.no_grad()
def evaluate_on(model: nn.Module, task: MemoryTask, batches: Iterator[Batch] | list[Batch]
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence (correct, error) of ``model`` over batches (no gradients; eval mode)."""
    was_training = model.training
    model.eval()
    correct, error = [], []
    for batch in batches:
        c, e = task.evaluate(model(batch.inputs), batch)
        correct.append(c)
        error.append(e)
    model.train(was_training)
    return torch.cat(correct), torch.cat(error)


def test_errors(model: nn.Module, task: MemoryTask, size: int | None = None,
                chunk: int = 512) -> tuple[int, int]:
    """(wrong, size): ``model`` on the task's report set (``task.report_batches``: ``size``
    fresh test sequences, 2,560 by default; Reber: its 256 fixed test strings)."""
    correct, _ = evaluate_on(model, task, task.report_batches(size, batch_size=chunk))
    return int((~correct).sum()), correct.numel()

