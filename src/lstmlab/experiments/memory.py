"""The memory suite: train each learner on each long-time-lag task for several seeds, and report
% of trials solved, sequences to success, wall time and test errors beside the 1997 paper's figure.

    >>> spec = parse_task("temporal_order:6a")          # (name, options)
    >>> result = train_trial("temporal_order", {"variant": "6a"}, 100, "lstm", seed=0,
    ...                      config=LearnerConfig(), budget=Budget(sequences=50_000))
    >>> result.solved, result.sequences_to_success, result.test_errors

A gradient learner is a ``SequenceModel`` (lstmlab RNN, LSTM of any variant or GRU with a linear
head at every step) trained by ``lstmlab.train.Trainer`` on fresh batches from the task, until the
task's own stopping rule holds (``task.stopping_rule()``: a streak, a window, a block or a check on
held-out sequences) or the budget (sequences, seconds) runs out. "Sequences to criterion" is the
rule's exact ``satisfied_at``: every training sequence seen until the criterion first held.
"Sequences to success", the figure set beside the 1997 paper's, is the same count less the
rule's confirming run (``StoppingRule.learned_at``), which only the lag tasks' streak has: for
2a/2b/2c it counts the sequences before the 10,000 correct ones in a row began. That is how the
paper must count them - its 2a figure, 5,040 sequences, is below the streak's own 10,000.

Weight guessing (``lstmlab.experiments.guessing``) is a learner of its own, model name "guess".

Initialisation (``LearnerConfig.init``) is an explicit option, because it decides whether a
gradient learner can learn a 100-step lag at all:

    "chrono"   (default) Tallec & Ollivier 2018: LSTM forget-gate bias log(u), u ~ U(1, T_max - 1),
               input-gate bias -log(u) (``lstmlab.init.chrono_``); GRU update-gate bias log(u)
               (the same idea for the GRU's keep gate, ours); T_max = the task's longest sequence.
               The Elman RNN has no gates and keeps its default initialisation.
    "default"  lstmlab's layer default (torch.nn's uniform(-1/sqrt(H), 1/sqrt(H)), LSTM forget
               bias ``forget_bias``, 1.0 unless given).

With "default", an LSTM stays at chance on 100-step lags for thousands of Adam steps (its cells
forget within a few steps, or, without a forget gate, fill up until tanh saturates); with "chrono"
it learns them in a few hundred. The RNN fails either way: that is the suite's point.

The head's bias (``LearnerConfig.head_init``) starts, by default ("prior"), for tasks with
logistic outputs, at the log-odds of each output's mean target (measured on 256 sequences drawn
with a fixed seed; clamped to [0.01, 0.99]), so that training does not begin by pushing every
output to its mean through the hidden state. It matters where many outputs are always 0: in lag
2b (101 outputs, two of them ever 1) an LSTM started with the layer default bias drives its
hidden state to saturation to silence the other 99 and stays at chance; started at the prior
it learns the 100-step lag in about 200 Adam steps. "default" keeps torch.nn's initialisation.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lstmlab.init import chrono_
from lstmlab.layers import GRU, LSTM
from lstmlab.models.recurrent import parse_model
from lstmlab.models.sequence import SequenceModel
from lstmlab.tasks.memory import TASK_NAMES, TEST_SEED, Batch, MemoryTask, make_task
from lstmlab.train.loop import StepOutput, TrainConfig, Trainer

INITS = ("chrono", "default")
HEAD_INITS = ("prior", "default")
LOSSES = ("task", "bce")
GUESS = "guess"

# "6a" is short for ("temporal_order", {"variant": "6a"}), and so on.
TASK_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    **{v: ("lag", {"variant": v}) for v in ("2a", "2b", "2c")},
    **{v: ("two_sequence", {"variant": v}) for v in ("3a", "3b", "3c")},
    **{v: ("temporal_order", {"variant": v}) for v in ("6a", "6b")},
}


# -- configuration ----------------------------------------------------------------------------

@dataclass
class LearnerConfig:
    """How a gradient learner is built and trained, and how weights are guessed.

    Attributes:
        hidden: H, hidden units of the recurrent layer. batch: sequences per Adam step.
        lr, optimizer, clip: see ``TrainConfig`` (clip is the global gradient-norm limit).
        init: "chrono" or "default" (module docstring). forget_bias: the LSTM's forget-gate bias
            with init "default" (None: the layer's default, 1.0).
        head_init: "prior" or "default": the head's bias for tasks with logistic outputs (module
            docstring).
        kernel: the recurrent layer's kernel path ("auto", "loop", "native", "fused").
        loss: what the optimiser minimises: "task" (the task's own loss, ``task.loss``) or "bce"
            (for tasks with logistic outputs, loss_kind "mse_sigmoid": binary cross-entropy of
            sigmoid(outputs) against the same targets, summed over units, mean over scored
            steps; other tasks keep their own loss). Squared error through a sigmoid stops
            learning once outputs saturate at 0 - with 101 output units (lag 2a/2b) they all do
            within 50 steps - while cross-entropy keeps the gradient. Success is always judged
            by the task's own rule.
        log_every: steps between learning-curve points.
        guess_model, guess_hidden, guess_range: the guessed network (model name, H) and r, the
            half-width of the uniform range every weight is drawn from.
        guess_set: size of the fixed training set a guess must classify entirely correctly.
    """

    hidden: int = 32
    batch: int = 32
    lr: float = 1e-2
    optimizer: str = "adam"
    clip: float | None = 1.0
    init: str = "chrono"
    head_init: str = "prior"
    forget_bias: float | None = None
    kernel: str = "auto"
    loss: str = "task"
    log_every: int = 10
    guess_model: str = "rnn"
    guess_hidden: int = 2
    guess_range: float = 100.0
    guess_set: int = 128

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"head_init must be one of {', '.join(HEAD_INITS)}, got "
                             f"{self.head_init!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        for name in ("hidden", "batch", "guess_hidden", "guess_set", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not self.guess_range > 0:
            raise ValueError(f"guess_range must be positive, got {self.guess_range}")
        parse_model(self.guess_model)


@dataclass
class Budget:
    """Per trial (one learner, one task, one seed): the first limit reached ends the trial.

    ``sequences``: training sequences (for guessing: trials x the fixed set's size);
    ``seconds``: wall time; ``trials``: weight guesses (guessing only). None: unlimited.
    """

    sequences: int | None = 100_000
    seconds: float | None = None
    trials: int | None = None

    def __post_init__(self) -> None:
        for name in ("sequences", "seconds", "trials"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"the {name} budget must be positive, got {value}")


# -- results ----------------------------------------------------------------------------------

@dataclass
class TrialResult:
    """One learner on one task for one seed.

    Attributes:
        task: the task's title ("adding (T = 100)"); name, options, lag: how it was made.
        model: the learner ("lstm", "rnn", "guess", ...). seed: the trial's seed.
        solved: the task's criterion held within the budget.
        sequences: training sequences seen in all (guessing: trials x fixed-set size).
        sequences_to_success: training sequences until the task was learned, the figure compared
            with the 1997 paper's: the criterion's count less its confirming run (for a streak,
            the sequences before it began; module docstring). None: unsolved.
        sequences_to_criterion: the exact count at which the criterion first held.
        trials: weight guesses (guessing only). seconds: wall time of the trial, training only.
        test_errors / test_size: wrong sequences of ``test_size`` fresh test sequences
            (the final model; for guessing the last guess), None where not measured.
        stopped_by: "criterion", "max_sequences", "max_seconds", "max_trials", "interrupt",
            "diverged". curve: learning-curve points {sequences, loss, accuracy, seconds}.
    """

    task: str
    name: str
    options: dict[str, Any]
    lag: int
    model: str
    seed: int
    solved: bool
    sequences: int
    sequences_to_success: int | None
    seconds: float
    stopped_by: str
    test_errors: int | None = None
    test_size: int = 0
    trials: int | None = None
    reference_sequences: int | None = None
    sequences_to_criterion: int | None = None
    note: str = ""
    curve: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Summary:
    """Per task x lag x model, over its trials."""

    task: str
    name: str
    options: dict[str, Any]
    lag: int
    model: str
    trials: int
    solved: int
    median_sequences: float | None  # of the solved trials
    min_sequences: int | None
    max_sequences: int | None
    median_guesses: float | None  # guessing: median trials (guesses) of the solved runs
    seconds: float  # total wall time of the trials
    median_test_errors: float | None
    test_size: int
    reference_sequences: int | None
    reference: str

    @property
    def percent_solved(self) -> float:
        return 100.0 * self.solved / self.trials if self.trials else 0.0


def summarise(results: list[TrialResult], tasks: dict[tuple, MemoryTask] | None = None
              ) -> list[Summary]:
    """Group trials by (task, lag, model), in order of first appearance."""
    groups: dict[tuple, list[TrialResult]] = {}
    for r in results:
        groups.setdefault((r.task, r.model), []).append(r)
    out = []
    for (_, model), rs in groups.items():
        first = rs[0]
        won = [r.sequences_to_success for r in rs
               if r.solved and r.sequences_to_success is not None]
        guesses = [r.trials for r in rs if r.solved and r.trials is not None]
        tests = [r.test_errors for r in rs if r.test_errors is not None]
        task = make_task(first.name, first.lag, **first.options)
        out.append(Summary(
            task=first.task, name=first.name, options=first.options, lag=first.lag, model=model,
            trials=len(rs), solved=sum(r.solved for r in rs),
            median_sequences=statistics.median(won) if won else None,
            min_sequences=min(won) if won else None, max_sequences=max(won) if won else None,
            median_guesses=statistics.median(guesses) if guesses else None,
            seconds=sum(r.seconds for r in rs),
            median_test_errors=statistics.median(tests) if tests else None,
            test_size=max((r.test_size for r in rs), default=0),
            reference_sequences=task.reference_sequences, reference=task.reference))
    return out


# -- tasks and models -------------------------------------------------------------------------

def parse_task(text: str) -> tuple[str, dict[str, Any]]:
    """A task as users write it: "adding", "temporal_order:6a", "lag:2c", "adding:bai", or a
    variant alone ("2a", "3a", "6b"). Returns (name, make_task options); unknown names raise
    ValueError listing the valid ones."""
    text = text.strip()
    if text in TASK_ALIASES:
        name, options = TASK_ALIASES[text]
        return name, dict(options)
    name, _, variant = text.partition(":")
    if name not in TASK_NAMES:
        raise ValueError(f"unknown memory task {text!r}; valid names: {', '.join(TASK_NAMES)} "
                         f"(a variant after a colon, e.g. temporal_order:6b, or alone: "
                         f"{', '.join(TASK_ALIASES)})")
    return name, ({"variant": variant} if variant else {})


def check_model(name: str) -> str:
    """A learner name: "guess" or a model name ``parse_model`` accepts (normalised)."""
    if name.strip().lower() == GUESS:
        return GUESS
    kind, option = parse_model(name)
    if kind == "lstm":
        return "lstm" if option == "NP" else f"lstm:{option}"
    if kind == "rnn":
        return "rnn" if option == "tanh" else f"rnn:{option}"
    return kind


def probe(task: MemoryTask, sequences: int = 256, seed: int = 0) -> Batch:
    """The fixed sample a learner's initialisation reads the task from (``build_model`` draws it
    once: for lag 2c at q=1000 it is a gigabyte of one-hot inputs)."""
    return task.sample(sequences, torch.Generator().manual_seed(seed))


def longest_sequence(task: MemoryTask, sample: Batch | None = None) -> int:
    """T_max for chrono initialisation: the longest sequence of ``sample`` (default ``probe``)."""
    return int((probe(task) if sample is None else sample).lengths.max())


def initialise(model: SequenceModel, init: str, max_lag: int,
               generator: torch.Generator | None = None) -> SequenceModel:
    """Apply ``init`` ("chrono" or "default") to the model's recurrent layer in place."""
    layer = model.recurrent
    if init == "default":
        return model
    if init != "chrono":
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if isinstance(layer, (LSTM, GRU)):  # a plain RNN has no gate to initialise
        chrono_(layer, max(3, max_lag), generator)
    return model


def build_model(task: MemoryTask, model: str, config: LearnerConfig, seed: int) -> SequenceModel:
    """The learner's network for ``task``, initialised from ``seed`` as ``config.init`` says."""
    torch.manual_seed(seed)
    forget_bias = config.forget_bias if model.startswith("lstm") else None
    net = SequenceModel(model, task.input_size, task.output_size, config.hidden,
                        forget_bias=forget_bias)
    net.recurrent.kernel = config.kernel
    sample = probe(task)
    initialise(net, config.init, longest_sequence(task, sample),
               torch.Generator().manual_seed(seed + 7919))
    if config.head_init == "prior" and task.loss_kind == "mse_sigmoid":
        with torch.no_grad():
            net.head.bias.copy_(output_prior_logits(task, sample))
    return net


def output_prior_logits(task: MemoryTask, sample: Batch | None = None) -> torch.Tensor:
    """(O,) log-odds of each output's mean target over the scored steps of ``sample`` (default
    ``probe``), the mean clamped to [0.01, 0.99] (an output never 1 starts at 0.01)."""
    batch = probe(task) if sample is None else sample
    prior = task.target_vectors(batch)[batch.mask].mean(0).clamp(0.01, 0.99)
    return torch.log(prior / (1 - prior))


def training_loss(task: MemoryTask, outputs: torch.Tensor, batch: Batch, kind: str = "task"
                  ) -> torch.Tensor:
    """The scalar the optimiser minimises: ``task.loss`` or, with kind "bce" on a task with
    logistic outputs, binary cross-entropy summed over units, mean over the scored steps
    (outputs (T, B, O) raw head outputs)."""
    if kind == "bce" and task.loss_kind == "mse_sigmoid":
        task.check_outputs(outputs, batch)
        targets = task.target_vectors(batch).to(outputs.dtype)
        per_step = F.binary_cross_entropy_with_logits(outputs, targets, reduction="none").sum(-1)
        return per_step[batch.mask].mean()
    return task.loss(outputs, batch)


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
    """(wrong, size): ``model`` on ``size`` (default 2,560) fresh test sequences."""
    correct, _ = evaluate_on(model, task, task.test_batches(TEST_SEED, size, batch_size=chunk))
    return int((~correct).sum()), correct.numel()


# -- one trial of a gradient learner ------------------------------------------------------------

Listener = Callable[[dict[str, Any]], None]


def train_trial(name: str, options: dict[str, Any], lag: int | None, model: str, seed: int,
                config: LearnerConfig | None = None, budget: Budget | None = None,
                test_size: int | None = None, listener: Listener | None = None) -> TrialResult:
    """Train ``model`` on the task until its stopping rule holds or the budget is spent.

    Inputs are time-major (T, B, I); the model reads every step and the task scores its masked
    steps. Padding past a sequence's length does not change a unidirectional model's outputs at
    its scored steps, so the model runs on the padded batch without ``lengths``.

    Args:
        name, options, lag: the task (``make_task(name, lag, **options)``).
        model: "rnn", "lstm", "lstm:CIFG", "gru", ... ("guess" goes to ``guess_trial``).
        listener: called every ``config.log_every`` steps with the latest learning-curve point.
    Returns: the trial's ``TrialResult``; test errors on ``test_size`` (2,560) fresh sequences.
    """
    config = config or LearnerConfig()
    budget = budget or Budget()
    task = make_task(name, lag, **options)
    model = check_model(model)
    if model == GUESS:
        from lstmlab.experiments.guessing import guess_trial
        return guess_trial(name, options, lag, seed, config, budget, test_size, listener)
    net = build_model(task, model, config, seed)
    rule = task.stopping_rule()
    check = list(task.test_batches(seed=_validation_seed(), size=rule.test_size,
                                   batch_size=512)) if rule.needs_test else None
    data = torch.Generator().manual_seed(seed)
    train = TrainConfig(optimizer=config.optimizer, lr=config.lr, clip=config.clip,
                        max_sequences=budget.sequences, max_seconds=budget.seconds,
                        log_every=config.log_every, progress=False)
    trainer = Trainer(net, train)

    def step() -> StepOutput:
        batch = task.sample(config.batch, data)
        outputs = net(batch.inputs)
        loss = training_loss(task, outputs, batch, config.loss)
        correct, error = task.evaluate(outputs, batch)
        rule.update(correct, error)
        return StepOutput(loss, batch.batch_size, metrics={"accuracy": float(correct.float()
                                                                             .mean())})

    def on_step(trainer: Trainer, out: StepOutput) -> bool:
        if rule.needs_test and rule.test_due():
            rule.check_test(*evaluate_on(net, task, check))
        if listener is not None and trainer.state.step % config.log_every == 0 and \
                trainer.history:
            listener(trainer.history[-1])
        return rule.done

    note = ""
    try:
        run = trainer.run(step, on_step)
        stopped_by = "criterion" if run.stopped_by == "hook" else run.stopped_by
    except FloatingPointError as error:
        stopped_by, note = "diverged", str(error)
    # the last batch may satisfy the rule after the budget check; count it as solved
    solved = rule.done
    if solved:
        stopped_by = "criterion"
    wrong, size = (None, 0)
    if stopped_by != "interrupt":
        wrong, size = test_errors(net, task, test_size)
    return TrialResult(
        task=task.title, name=name, options=dict(options), lag=task.lag, model=model, seed=seed,
        solved=solved, sequences=trainer.state.sequences,
        sequences_to_success=rule.learned_at, sequences_to_criterion=rule.satisfied_at,
        seconds=round(trainer.state.seconds, 3),
        stopped_by=stopped_by, test_errors=wrong, test_size=size,
        reference_sequences=task.reference_sequences, note=note,
        curve=[{k: p[k] for k in ("sequences", "loss", "accuracy", "seconds") if k in p}
               for p in trainer.history])


def _validation_seed() -> int:
    from lstmlab.tasks.memory import VALIDATION_SEED
    return VALIDATION_SEED


# -- the suite --------------------------------------------------------------------------------

@dataclass
class SuiteRun:
    """One suite entry: a task configuration and a learner."""

    name: str
    options: dict[str, Any]
    lag: int | None
    model: str


def plan(tasks: list[str], models: list[str], lags: list[int | None]) -> list[SuiteRun]:
    """Every task x lag x model, checked up front (bad names and lags raise ValueError)."""
    if not tasks:
        raise ValueError("name at least one task")
    if not models:
        raise ValueError("name at least one model")
    runs = []
    models = [check_model(m) for m in models]
    for text in tasks:
        name, options = parse_task(text)
        for lag in lags:
            make_task(name, lag, **options)  # raises on a lag too short, a bad variant
            runs.extend(SuiteRun(name, options, lag, m) for m in models)
    return runs


@dataclass
class SuiteResult:
    """What a suite run measured (everything, also when interrupted)."""

    results: list[TrialResult]
    summaries: list[Summary]
    interrupted: bool
    seconds: float
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "interrupted": self.interrupted,
                "seconds": round(self.seconds, 2),
                "summary": [asdict(s) | {"percent_solved": s.percent_solved}
                            for s in self.summaries],
                "trials": [asdict(r) for r in self.results]}


def run_suite(runs: list[SuiteRun], trials: int = 3, config: LearnerConfig | None = None,
              budget: Budget | None = None, seed: int = 0, test_size: int | None = None,
              on_start: Callable[[SuiteRun, int], None] | None = None,
              on_trial: Callable[[TrialResult], None] | None = None,
              listener: Listener | None = None) -> SuiteResult:
    """Run every entry for ``trials`` seeds (seed, seed + 1, ...). Ctrl-C ends the suite cleanly:
    the trials finished so far (and the interrupted one's partial result) are returned."""
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive int, got {trials!r}")
    config = config or LearnerConfig()
    budget = budget or Budget()
    start = time.perf_counter()
    results: list[TrialResult] = []
    interrupted = False
    try:
        for run in runs:
            for k in range(trials):
                if on_start is not None:
                    on_start(run, k)
                result = train_trial(run.name, run.options, run.lag, run.model, seed + k,
                                     config, budget, test_size, listener)
                results.append(result)
                if on_trial is not None:
                    on_trial(result)
                if result.stopped_by == "interrupt":
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted = True
    settings = {"trials": trials, "seed": seed, "learner": asdict(config),
                "budget": asdict(budget), "threads": torch.get_num_threads(),
                "runs": [asdict(r) for r in runs]}
    return SuiteResult(results, summarise(results), interrupted,
                       time.perf_counter() - start, settings)


def format_count(value: float | None) -> str:
    """12345.0 -> "12,345"; None -> "-"."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:,.0f}"
