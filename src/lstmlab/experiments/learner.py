"""The gradient learners: a network trained by the one training loop on fresh batches of a
memory game, until the task's own stopping rule holds (``task.stopping_rule()``: a streak, a
window, a block or a check on held-out sequences) or the budget runs out.

    >>> result = train_trial("temporal_order", {"variant": "6a"}, 100, "lstm", seed=0,
    ...                      config=LearnerConfig(), budget=Budget(sequences=50_000))
    >>> result.solved, result.sequences_to_success, result.test_errors

Two kinds (``learner_setup``):

- a cell name ("rnn", "lstm", "lstm:CIFG", "gru", ...): a ``SequenceModel`` (that recurrent layer
  with a linear head at every step, ``lstmlab.models.memory``) trained as ``LearnerConfig`` says
  (by default Adam on batches of 32, chrono initialisation). With ``init="default"`` an LSTM
  stays at chance on 100-step lags for thousands of Adam steps; with chrono initialisation it
  learns them in a few hundred. The RNN fails either way: that is the suite's point.
- "lstm1997" (and "lstm1997:full"): the 1997 paper's own set-up for the task's experiment
  (``lstmlab.models.lstm1997.SETUPS``): its network, initialisation and learning rate, online
  (one sequence per update, plain gradient descent, no clipping) on the paper's loss ("sse"),
  with the truncated gradient (":full": full backpropagation through time); for 2a/2b the memory
  cell joins the network once the training error stops decreasing (``GrowWhenStalled``), as the
  paper grows it. The suite's size,
  optimiser, learning rate, batch, initialisation and loss options are the other learners'
  and do not apply; its budgets, device and log interval do (curve points every
  ``log_every`` x ``batch`` sequences, as for the batched learners).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lstmlab.cells import lstm_spec
from lstmlab.experiments.memory_trial import (
    GUESS,
    LSTM1997_LEARNER,
    Budget,
    LearnerConfig,
    Listener,
    TrialResult,
    check_learner,
    evaluate_on,
    optimizer_used,
    test_errors,
)
from lstmlab.models.losses import training_loss
from lstmlab.models.lstm1997 import (
    GROW_TOLERANCE,
    GROW_WINDOW,
    LSTM1997,
    build_lstm1997,
    setup_of,
)
from lstmlab.models.memory import build_memory_model, guess_network
from lstmlab.models.recurrent import parse_cell
from lstmlab.tasks.batch import Batch
from lstmlab.tasks.memory import MemoryTask, make_task
from lstmlab.tasks.memory.curriculum import Curriculum
from lstmlab.train.callbacks import Callback, Every, StopWhen
from lstmlab.train.loop import StepOutput, TrainConfig, Trainer, make_optimizer


def fresh_batches(task: MemoryTask, batch_size: int, generator: torch.Generator
                  ) -> Iterator[Batch]:
    """An endless stream of fresh training batches drawn from ``generator``."""
    while True:
        yield task.sample(batch_size, generator)


def curriculum_batches(course: Curriculum, batch_size: int) -> Iterator[Batch]:
    """An endless stream of fresh training batches from a curriculum (its lags grow)."""
    while True:
        yield course.sample(batch_size)


def curriculum_for(name: str, options: dict[str, Any], lag: int | None,
                   generator: torch.Generator | None = None) -> Curriculum:
    """The curriculum a trial with ``LearnerConfig.curriculum`` trains on, drawing from
    ``generator``. Raises ValueError for a task it does not fit: one judged on its training
    batches (the curriculum draws them at other lags) or whose sizes follow the lag."""
    task = make_task(name, lag, **options)
    rule = task.stopping_rule()
    if not rule.needs_test:
        raise ValueError(
            f"{task.title}: the curriculum needs a task judged on held-out sequences at the "
            f"target lag (copy, intern, latch, ...); this one's rule ({rule.describe()}) is "
            "judged on its training batches, which the curriculum draws at other lags")
    return Curriculum(name, options, task.lag, generator or torch.Generator())


class TaskStep:
    """One training step on a memory game: the loss to minimise (``config.loss``) and the batch's
    accuracy by the task's own rule, which also feeds the stopping ``rule`` (if any). With a
    ``course`` (``Curriculum``) each batch is judged by the task it was drawn from, and its
    results raise the curriculum's level."""

    def __init__(self, task: MemoryTask, loss: str = "task", rule: Any = None,
                 course: Curriculum | None = None) -> None:
        self.task, self.loss, self.rule, self.course = task, loss, rule, course

    def __call__(self, model: nn.Module, batch: Batch) -> StepOutput:
        task = self.task if self.course is None else self.course.task
        outputs = model(batch.inputs)
        loss = training_loss(task, outputs, batch, self.loss)
        correct, error = task.evaluate(outputs, batch)
        if self.course is not None:
            self.course.update(correct)
        if self.rule is not None:
            self.rule.update(correct, error)
        return StepOutput(loss, batch.batch_size,
                          metrics={"accuracy": float(correct.float().mean())})


class HeldOutCheck(Callback):
    """For stopping rules that test on held-out sequences: score them when the rule asks (with
    a curriculum, once it has reached the target lag)."""

    def __init__(self, rule: Any, task: MemoryTask, batches: list[Batch],
                 course: Curriculum | None = None) -> None:
        self.rule, self.task, self.batches, self.course = rule, task, batches, course

    def on_step(self, trainer: Trainer, out: StepOutput) -> None:
        if self.rule.test_due() and (self.course is None or self.course.at_target):
            self.rule.check_test(*evaluate_on(trainer.model, self.task, self.batches))


def check_fits(learner: str, config: LearnerConfig) -> None:
    """ValueError where ``config`` sets what ``learner``'s network lacks: an input-gate bias for
    a cell other than an LSTM with an input gate ("guess" and "lstm1997" ignore the gradient
    learners' network options)."""
    learner = check_learner(learner)
    if config.input_bias is None or learner == GUESS or learner.startswith(LSTM1997_LEARNER):
        return
    kind, variant = parse_cell(learner)
    if kind != "lstm" or "i" not in lstm_spec(variant).gates:
        raise ValueError(f"--input-bias (input_bias) is for LSTM cells with an input gate; "
                         f"{learner} has none")


def learner_train_config(config: LearnerConfig, budget: Budget) -> TrainConfig:
    """The loop's settings for a gradient learner (no progress bar: the suite shows its own).
    A cosine schedule with a sequence budget decays over its steps of ``config.batch``, so the
    rate at each step, and the trial, do not depend on the machine's speed; without one it
    decays by the clock. The exponential one halves the rate every ``config.half_life``
    sequences (a factor 0.5 ** (batch / half_life) per step)."""
    steps = (-(-budget.sequences // config.batch)
             if config.schedule == "cosine" and budget.sequences is not None else None)
    optimizer = optimizer_used(config.optimizer, config.input_decay)
    gamma = 0.5 ** (config.batch / config.half_life) if config.schedule == "exponential" else 1.0
    return TrainConfig(optimizer=optimizer, lr=config.lr, clip=config.clip,
                       schedule=config.schedule, gamma=gamma, max_steps=steps,
                       max_sequences=budget.sequences, max_seconds=budget.seconds,
                       log_every=config.log_every, progress=False, device=config.device)


INPUT_WEIGHTS = "recurrent.weight_ih_l0"  # a memory model's W_ih, what input_decay decays


def parameter_groups(net: nn.Module, config: LearnerConfig) -> list[dict[str, Any]]:
    """The optimiser's parameter groups for a gradient learner's ``net``: the recurrent
    layer's input weights (``INPUT_WEIGHTS``) with weight decay ``config.input_decay``, every
    other parameter with none."""
    named = dict(net.named_parameters())
    if INPUT_WEIGHTS not in named:
        raise ValueError(f"input_decay: {type(net).__name__} has no {INPUT_WEIGHTS} (input "
                         "weights of a recurrent layer) to decay")
    rest = [p for name, p in named.items() if name != INPUT_WEIGHTS]
    return [{"params": [named[INPUT_WEIGHTS]], "weight_decay": config.input_decay},
            {"params": rest, "weight_decay": 0.0}]


def learner_optimizer(net: nn.Module, config: LearnerConfig, train: TrainConfig
                      ) -> torch.optim.Optimizer:
    """``train``'s optimiser over a gradient learner's ``net``; with ``config.input_decay`` the
    recurrent layer's input weights decay and nothing else does (``parameter_groups``)."""
    groups = parameter_groups(net, config) if config.input_decay else net.parameters()
    return make_optimizer(groups, train)


class GrowWhenStalled(Callback):
    """Add the memory cells of a 1997 network that starts without them (2a/2b) once the training
    error has stopped decreasing: when the mean loss of the last ``window`` training sequences is
    no longer ``tolerance`` below the mean of the ``window`` before (``lstmlab.models.lstm1997``,
    GROW_WINDOW and GROW_TOLERANCE). ``at``: the sequences seen when they were added."""

    def __init__(self, net: LSTM1997, window: int = GROW_WINDOW,
                 tolerance: float = GROW_TOLERANCE) -> None:
        self.net, self.window, self.tolerance = net, window, tolerance
        self.total, self.count, self.previous = 0.0, 0, None
        self.at: int | None = None

    def on_step(self, trainer: Trainer, out: StepOutput) -> None:
        if self.at is not None:
            return
        self.total += float(out.loss.detach()) * out.sequences
        self.count += out.sequences
        if self.count < self.window:
            return
        mean = self.total / self.count
        if self.previous is not None and mean > (1 - self.tolerance) * self.previous:
            self.net.connect(True)
            self.at = trainer.state.sequences
        self.total, self.count, self.previous = 0.0, 0, mean

    @property
    def note(self) -> str:
        return ("memory cell never added" if self.at is None
                else f"memory cell added after {self.at:,} sequences")


@dataclass
class LearnerSetup:
    """What a gradient learner trains on a task: the network, the loop's settings, sequences per
    update, the loss (``training_loss`` kind), callbacks of its own and a note for the trial's
    result."""

    net: nn.Module
    train: TrainConfig
    batch: int
    loss: str
    note: str = ""
    callbacks: list[Callback] = field(default_factory=list)
    optimizer: torch.optim.Optimizer | None = None  # None: the loop's own for ``train``


def learner_setup(task: MemoryTask, learner: str, seed: int, config: LearnerConfig,
                  budget: Budget) -> LearnerSetup:
    """The network and training settings of ``learner`` (a cell name, or "lstm1997[:full]"; the
    module docstring) for ``task``, drawn from ``seed``."""
    if learner in (LSTM1997_LEARNER, f"{LSTM1997_LEARNER}:full"):
        paper = setup_of(task)
        net = build_lstm1997(task, seed, truncated=learner == LSTM1997_LEARNER)
        train = TrainConfig(optimizer="online", lr=paper.lr, clip=None,
                            max_sequences=budget.sequences, max_seconds=budget.seconds,
                            log_every=config.log_every * config.batch, progress=False,
                            device=config.device)
        gradient = "truncated gradient" if learner == LSTM1997_LEARNER else "full BPTT"
        note = (f"1997 set-up of experiment {paper.experiment} (section {paper.section}): "
                f"{paper.blocks} block(s) x {paper.cells} cell(s), {net.num_weights:,} weights, "
                f"online SGD lr {paper.lr:g}, {gradient}")
        grow = [GrowWhenStalled(net)] if paper.grow else []
        return LearnerSetup(net, train, 1, "sse", note, grow)
    net = build_memory_model(task, learner, config.hidden, init=config.init,
                             head_init=config.head_init, forget_bias=config.forget_bias,
                             input_bias=config.input_bias, direct=config.direct,
                             kernel=config.kernel, seed=seed)
    train = learner_train_config(config, budget)
    return LearnerSetup(net, train, config.batch, config.loss,
                        optimizer=learner_optimizer(net, config, train))


def learner_parameters(task: MemoryTask, learner: str,
                       config: LearnerConfig | None = None) -> int:
    """The trainable weights (biases included) of ``learner``'s network for ``task`` as the
    suite builds it (for "guess", the guessed network; for "lstm1997", the paper's "# weights"
    with the 2a/2b cell counted from the start)."""
    config = config or LearnerConfig()
    learner = check_learner(learner)
    if learner == GUESS:
        net = guess_network(task, config.guess_cell, config.guess_hidden, config.kernel)
    else:
        net = learner_setup(task, learner, 0, config, Budget()).net
    return sum(p.numel() for p in net.parameters())


def train_trial(name: str, options: dict[str, Any], lag: int | None, cell: str, seed: int,
                config: LearnerConfig | None = None, budget: Budget | None = None,
                test_size: int | None = None, listener: Listener | None = None) -> TrialResult:
    """Train ``cell``'s learner on the task until its stopping rule holds or the budget is
    spent.

    Inputs are time-major (T, B, I); the model reads every step and the task scores its masked
    steps. Padding past a sequence's length does not change a unidirectional model's outputs at
    its scored steps, so the model runs on the padded batch without ``lengths``.

    Args:
        name, options, lag: the task (``make_task(name, lag, **options)``).
        cell: the learner: a cell, "rnn", "lstm", "lstm:CIFG", "gru", ..., or "lstm1997" /
            "lstm1997:full" (module docstring; "guess" is
            ``lstmlab.experiments.guessing.guess_trial``).
        listener: called every ``config.log_every`` steps with the latest learning-curve point.
    Returns: the trial's ``TrialResult``; test errors on ``test_size`` (2,560) fresh sequences.
    """
    config = config or LearnerConfig()
    budget = budget or Budget()
    task = make_task(name, lag, **options)
    cell = check_learner(cell)
    if cell == GUESS:
        raise ValueError("weight guessing is not a gradient learner: use "
                         "lstmlab.experiments.guessing.guess_trial")
    setup = learner_setup(task, cell, seed, config, budget)
    net = setup.net
    rule = task.stopping_rule()
    data = torch.Generator().manual_seed(seed)
    course = curriculum_for(name, options, task.lag, data) if config.curriculum else None
    callbacks: list[Callback] = list(setup.callbacks)
    if rule.needs_test:
        check = list(task.stopping_batches(rule, batch_size=512))
        callbacks.append(HeldOutCheck(rule, task, check, course))
    trainer = Trainer(net, setup.train, setup.optimizer)
    if listener is not None:
        callbacks.append(Every(setup.train.log_every,
                               lambda t: t.history and listener(t.history[-1])))
    callbacks.append(StopWhen(lambda: rule.done))
    batches = (fresh_batches(task, setup.batch, data) if course is None
               else curriculum_batches(course, setup.batch))
    diverged = ""
    try:
        run = trainer.run(TaskStep(task, setup.loss, rule, course), batches, callbacks)
        stopped_by = "criterion" if run.stopped_by == "callback" else run.stopped_by
    except FloatingPointError as error:
        stopped_by, diverged = "diverged", str(error)
    notes = [setup.note, *(getattr(c, "note", "") for c in setup.callbacks),
             course.describe() if course is not None else "", diverged]
    note = "; ".join(n for n in notes if n)
    # the last batch may satisfy the rule after the budget check; count it as solved
    solved = rule.done
    if solved:
        stopped_by = "criterion"
    wrong, size = (None, 0)
    if stopped_by != "interrupt":
        wrong, size = test_errors(net, task, test_size)
    return TrialResult(
        task=task.title, name=name, options=dict(options), lag=task.lag, learner=cell, seed=seed,
        solved=solved, sequences=trainer.state.sequences,
        sequences_to_success=rule.learned_at, sequences_to_criterion=rule.satisfied_at,
        seconds=round(trainer.state.seconds, 3),
        stopped_by=stopped_by, test_errors=wrong, test_size=size,
        reference_sequences=task.reference_sequences, note=note,
        parameters=sum(p.numel() for p in net.parameters()),
        curve=[{k: p[k] for k in ("sequences", "loss", "accuracy", "seconds") if k in p}
               for p in trainer.history])
