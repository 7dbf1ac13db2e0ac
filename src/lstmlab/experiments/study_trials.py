"""One trial of the variant study: a task's model with one LSTM variant and one point of the
search space, trained on the one loop with early stopping on validation, scored on test.

    >>> settings = TrialSettings(task="adding", minutes=0.5, lag=20)
    >>> outcome = run_trial(settings, "CIFG", {"lr": 3e-3, "hidden": 40, "momentum": 0.9,
    ...                                        "input_noise": 0.1})
    >>> outcome.valid, outcome.test           # lower is better (see FIGURES)

Each task reuses its own experiment (``train_music``, ``train_tagger``,
``train_language_model``; the memory games through the gradient learner's pieces) and trains
the way Greff et al. (2015) did: SGD with Nesterov momentum, Gaussian noise on real-valued
inputs, early stopping on the validation figure. The objective of a trial is the best
validation figure; the test figure is measured with the best-validation weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from lstmlab.experiments.learner import TaskStep, fresh_batches
from lstmlab.experiments.memory_trial import evaluate_on
from lstmlab.experiments.supervised import fit
from lstmlab.models.losses import training_loss
from lstmlab.models.memory import build_memory_model
from lstmlab.tasks.memory import TEST_SEED, VALIDATION_SEED, MemoryTask, make_task, parse_task
from lstmlab.train.loop import TrainConfig

NAMED_TASKS = ("jsb", "tinyshakespeare", "ewt")
"""The study's tasks besides the memory games (any name ``parse_task`` takes: "adding", "6a")."""

FIGURES = {
    "jsb": "frame NLL (nats)",
    "tinyshakespeare": "nats per char",
    "ewt": "token error (%)",
    "memory": "task loss",
}
"""What each task's figure measures (lower is better), on validation (the objective) and on
test. Tiny Shakespeare has no test split: its validation text stands in for it."""

TOKEN_TASKS = ("tinyshakespeare", "ewt")
"""Tasks whose inputs are token ids: Gaussian input noise has no meaning there."""

MEMORY_VALID, MEMORY_TEST = 512, 1024  # held-out sequences of a memory game
MEMORY_EVAL_EVERY = 100  # steps between validations of a memory game (its "epoch")


def check_task(task: str) -> str:
    """A study task, checked: one of NAMED_TASKS or a memory game ("adding", "6a", ...)."""
    if task in NAMED_TASKS:
        return task
    try:
        parse_task(task)
    except ValueError as error:
        raise ValueError(f"unknown task {task!r}: use {', '.join(NAMED_TASKS)} or a memory "
                         f"game ({error})") from None
    return task


def figure_name(task: str) -> str:
    return FIGURES.get(task, FIGURES["memory"])


@dataclass
class TrialSettings:
    """What every trial of a study shares (nothing here is searched).

    Attributes:
        task: see ``check_task``. minutes: the wall-clock budget of one trial.
        patience: validations without a new best before a trial stops early.
        data: jsb: the music JSON; ewt: the folder of en_ewt-ud-{train,dev,test}.conllu(.gz).
        lag: a memory game's length (None: the game's default).
        batch: sequences per update (None: 1 for jsb, Greff's per-sequence updates; the task's
            own default elsewhere).
        seed: initialisation and data order of every trial.
        steps: a budget of updates per trial besides the minutes (a fixed amount of work,
            e.g. to time workers against each other); None: the minutes alone.
    """

    task: str
    minutes: float = 2.0
    patience: int = 5
    data: str | None = None
    lag: int | None = None
    batch: int | None = None
    seed: int = 0
    device: str | None = None
    steps: int | None = None

    def __post_init__(self) -> None:
        check_task(self.task)
        if not self.minutes > 0:
            raise ValueError(f"trial-minutes must be positive, got {self.minutes}")
        if self.patience < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience}")
        if self.batch is not None and self.batch < 1:
            raise ValueError(f"batch must be a positive integer, got {self.batch}")
        if self.task in ("jsb", "ewt"):
            self.data = str(_data_path(self.task, self.data))
        elif self.task not in NAMED_TASKS:  # a memory game: its length is checked here
            name, options = parse_task(self.task)
            make_task(name, self.lag, **options)

    def record(self) -> dict[str, Any]:
        """The settings as stored with a study (JSON)."""
        return {k: getattr(self, k) for k in ("task", "minutes", "patience", "data", "lag",
                                               "batch", "seed", "steps")}


def _data_path(task: str, data: str | None) -> Path:
    what = ("the JSB Chorales JSON (jsb_chorales.json)" if task == "jsb"
            else "the folder of en_ewt-ud-{train,dev,test}.conllu(.gz)")
    if data is None:
        raise ValueError(f"--task {task} needs --data: {what}")
    path = Path(data)
    if not path.exists():
        raise ValueError(f"--data {data}: no such file or folder (expected {what})")
    return path.resolve()


def _ewt_files(folder: str) -> tuple[Path, Path, Path]:
    files = []
    for split in ("train", "dev", "test"):
        found = sorted(Path(folder).glob(f"*-ud-{split}.conllu*"))
        if not found:
            raise ValueError(f"--data {folder}: no *-ud-{split}.conllu(.gz) file in it")
        files.append(found[0])
    return files[0], files[1], files[2]


@dataclass
class TrialOutcome:
    """What a trial reached: the best validation figure (the objective) and the test figure
    with the best weights (None where the task has no test split), both lower-is-better."""

    valid: float
    test: float | None
    seconds: float
    steps: int
    stopped_by: str
    extra: dict[str, Any] = field(default_factory=dict)


def loop_options(params: dict[str, Any]) -> dict[str, Any]:
    """The training settings of a search-space point: Nesterov momentum where momentum > 0
    (params["momentum"] = 1 - the sampled log-uniform value), input noise where searched."""
    momentum = float(params.get("momentum", 0.0))
    return {"momentum": momentum, "nesterov": momentum > 0,
            "input_noise": float(params.get("input_noise", 0.0))}


def run_trial(settings: TrialSettings, variant: str, params: dict[str, Any],
              on_validation: Callable[[int, float], None] | None = None) -> TrialOutcome:
    """Train the task's model with the LSTM ``variant`` ("V", "NP", ...) and ``params``
    (lr, hidden, momentum, input_noise) within ``settings.minutes``; see the module.
    ``on_validation(step, value)`` hears each validation (a pruner may raise there).

    Raises FloatingPointError when training diverges (the study records that)."""
    cell = f"lstm:{variant}"
    quiet = Console(quiet=True)
    common = dict(minutes=settings.minutes, steps=settings.steps, progress=False, console=quiet,
                  device=settings.device, patience=settings.patience,
                  loop=loop_options(params), on_validation=on_validation)
    hidden, lr = int(params["hidden"]), float(params["lr"])
    if settings.task == "jsb":
        from lstmlab.experiments.music import train_music

        r = train_music(settings.data, cell=cell, hidden=hidden, lr=lr, optimizer="sgd",
                        batch=settings.batch or 1, dropout=0.0, seed=settings.seed, **common)
        return TrialOutcome(_finite(r.best_valid_nll), r.test_nll, r.seconds, r.steps,
                            r.stopped_by, {"epochs": r.epochs, "parameters": r.parameters})
    if settings.task == "ewt":
        from lstmlab.experiments.tag import train_tagger

        train, dev, test = _ewt_files(settings.data)
        options = {"batch": settings.batch} if settings.batch else {}
        r = train_tagger(train, valid=dev, test=test, cell=cell, hidden=hidden, lr=lr,
                         optimizer="sgd", seed=settings.seed, **options, **common)
        valid = None if r.best_valid_accuracy is None else 100 * (1 - r.best_valid_accuracy)
        test_error = None if r.test is None else 100 * (1 - r.test["accuracy"])
        return TrialOutcome(_finite(valid), test_error, r.seconds, r.steps, r.stopped_by,
                            {"epochs": r.epochs, "parameters": r.parameters})
    if settings.task == "tinyshakespeare":
        from lstmlab.experiments.lm_train import train_language_model

        options = {"batch": settings.batch} if settings.batch else {}
        r = train_language_model(None, cell=cell, hidden=hidden, layers=1, lr=lr,
                                 optimizer="sgd", seed=settings.seed, **options, **common)
        return TrialOutcome(_finite(r.best_valid), r.test, r.seconds, r.steps, r.stopped_by,
                            {"epochs": r.epochs, "parameters": r.parameters})
    return _memory_trial(settings, cell, hidden, lr, params, on_validation)


def _finite(value: float | None) -> float:
    if value is None or not math.isfinite(value):
        raise FloatingPointError(f"no finite validation figure (got {value})")
    return float(value)


@torch.no_grad()
def _memory_figures(model: torch.nn.Module, task: MemoryTask, seed: int, size: int
                    ) -> tuple[float, float]:
    """(mean task loss per sequence batch, error rate) on ``size`` held-out sequences."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in task.test_batches(seed, size, batch_size=size):
        total += float(training_loss(task, model(batch.inputs), batch)) * batch.batch_size
        count += batch.batch_size
    correct, _ = evaluate_on(model, task, task.test_batches(seed, size, batch_size=size))
    model.train(was_training)
    return total / count, float((~correct).float().mean())


def _memory_trial(settings: TrialSettings, cell: str, hidden: int, lr: float,
                  params: dict[str, Any],
                  on_validation: Callable[[int, float], None] | None) -> TrialOutcome:
    """A memory game: fresh training batches, validation on fixed held-out sequences every
    MEMORY_EVAL_EVERY steps, the task's own loss as the figure."""
    name, options = parse_task(settings.task)
    task = make_task(name, settings.lag, **options)
    model = build_memory_model(task, cell, hidden, seed=settings.seed)
    config = TrainConfig(optimizer="sgd", lr=lr, max_seconds=settings.minutes * 60,
                         max_steps=settings.steps,
                         progress=False, device=settings.device, **loop_options(params))
    data = torch.Generator().manual_seed(settings.seed)
    run = fit(model, config, TaskStep(task), fresh_batches(task, settings.batch or 32, data),
              error=lambda m: _memory_figures(m, task, VALIDATION_SEED, MEMORY_VALID)[0],
              eval_every=MEMORY_EVAL_EVERY, patience=settings.patience,
              console=Console(quiet=True), on_validation=on_validation)
    test_loss, test_error = _memory_figures(model, task, TEST_SEED, MEMORY_TEST)
    s = run.train.state
    return TrialOutcome(_finite(run.best), test_loss, s.seconds, s.step, run.stopped_by,
                        {"test_error": test_error, "sequences": s.sequences})
