"""What the training loop calls around its steps: validation, checkpoints, early stopping,
TensorBoard, a task's stopping rule, a listener. Each is a small object; a run takes a list.

    >>> trainer.run(step, batches, callbacks=[
    ...     Validation(lambda model: evaluate(model, valid), every=200),
    ...     EarlyStopping(patience=5),
    ...     StopWhen(lambda: rule.done)])

Order matters: callbacks run in the order given, after the optimiser step; any that returns
True from ``on_step`` stops the run (``stopped_by="callback"``) once all have run. Only rank 0
(``trainer.world.is_main``) writes files; callbacks that decide must decide alike on every rank.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from lstmlab.train.loop import StepOutput, Trainer, TrainResult


class Callback:
    """The hooks; a callback overrides what it needs."""

    def on_start(self, trainer: Trainer) -> None:
        """Before the first step of ``run`` (also of a resumed run)."""

    def on_step(self, trainer: Trainer, out: StepOutput) -> bool | None:
        """After each optimiser step; True asks the loop to stop."""
        return None

    def on_end(self, trainer: Trainer, result: TrainResult) -> None:
        """After the last step, whatever stopped the run (also Ctrl-C)."""


class StopWhen(Callback):
    """Stop when ``done()`` says so - e.g. a memory task's stopping rule."""

    def __init__(self, done: Callable[[], bool]) -> None:
        self.done = done

    def on_step(self, trainer: Trainer, out: StepOutput) -> bool:
        return bool(self.done())


class Every(Callback):
    """Call ``action(trainer)`` every ``every`` steps (e.g. a listener of learning curves)."""

    def __init__(self, every: int, action: Callable[[Trainer], Any]) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1 step, got {every}")
        self.every, self.action = every, action

    def on_step(self, trainer: Trainer, out: StepOutput) -> None:
        if trainer.state.step % self.every == 0:
            self.action(trainer)


class Validation(Callback):
    """Measure ``evaluate(model)`` (lower is better, e.g. nats per token) every ``every`` steps
    and at the end; remember the best (a non-finite value never is) and, for the best, call
    ``on_best(trainer, value)`` (e.g. save a checkpoint). ``records`` keeps {step, tokens,
    seconds, valid} per measurement.

    Every rank measures (the weights are the same everywhere), so every rank agrees on "best"
    and on early stopping; ``on_best`` should write only on rank 0.
    """

    def __init__(self, evaluate: Callable[[nn.Module], float], every: int,
                 on_best: Callable[[Trainer, float], None] | None = None,
                 on_result: Callable[[Trainer, float, bool], None] | None = None,
                 best: float | None = None, records: list[dict[str, float]] | None = None
                 ) -> None:
        if every < 1:
            raise ValueError(f"validation every must be at least 1 step, got {every}")
        self.evaluate, self.every, self.on_best, self.on_result = (evaluate, every, on_best,
                                                                   on_result)
        self.best = best
        self.records = list(records or [])
        self.last_step = -1

    def measure(self, trainer: Trainer) -> float:
        value = float(self.evaluate(trainer.model))
        improved = math.isfinite(value) and (self.best is None or value < self.best)
        s = trainer.state
        self.records.append({"step": s.step, "tokens": s.tokens, "seconds": round(s.seconds, 2),
                             "valid": value})
        self.last_step = s.step
        if improved:
            self.best = value
            if self.on_best is not None:
                self.on_best(trainer, value)
        if self.on_result is not None:
            self.on_result(trainer, value, improved)
        return value

    def on_step(self, trainer: Trainer, out: StepOutput) -> None:
        if trainer.state.step % self.every == 0:
            self.measure(trainer)

    def on_end(self, trainer: Trainer, result: TrainResult) -> None:
        if result.stopped_by != "interrupt" and trainer.state.step > 0 \
                and self.last_step != trainer.state.step:
            self.measure(trainer)


class EarlyStopping(Callback):
    """Stop after ``patience`` validations of ``validation`` without a new best (a smaller
    value by more than ``min_delta``)."""

    def __init__(self, validation: Validation, patience: int, min_delta: float = 0.0) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1 validation, got {patience}")
        self.validation, self.patience, self.min_delta = validation, patience, min_delta

    def on_step(self, trainer: Trainer, out: StepOutput) -> bool:
        values = [r["valid"] for r in self.validation.records]
        if len(values) <= self.patience:
            return False
        best_before = min(values[:-self.patience])
        return min(values[-self.patience:]) > best_before - self.min_delta


class TensorBoard(Callback):
    """Write the loop's history points (loss, metrics, lr, tokens/s) to TensorBoard, and any
    scalar through ``scalar``; rank 0 only. Needs the tensorboard extra."""

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self.log = None

    def on_start(self, trainer: Trainer) -> None:
        if not trainer.world.is_main:
            return
        from lstmlab.train.tensorboard import TensorBoardLog

        self.log = TensorBoardLog(self.log_dir, purge_step=trainer.state.step or None)
        self.log.start(trainer)

    def on_step(self, trainer: Trainer, out: StepOutput) -> None:
        if self.log is not None:
            self.log.log_history(trainer)

    def scalar(self, name: str, value: float, step: int) -> None:
        if self.log is not None and math.isfinite(value):
            self.log.scalar(name, value, step)

    def on_end(self, trainer: Trainer, result: TrainResult) -> None:
        if self.log is not None:
            self.log.log_history(trainer)
            self.log.close()
            self.log = None
