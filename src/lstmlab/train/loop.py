"""The one training loop: optimiser, clipping, schedule, budgets, progress, clean interruption.

Every trained thing in lstmlab (memory games, language models, sequence heads) runs through
``Trainer.run``. The caller supplies a ``step`` function that draws its own batch, runs the model
and returns the loss with how many sequences (and tokens) it consumed; the loop does the rest:

    zero grads -> loss.backward() -> clip the global gradient norm -> optimiser step -> schedule
    -> count sequences exactly -> progress -> budgets -> the caller's ``on_step`` hook (which may
    stop the run, e.g. a task's stopping rule, validation, checkpoints)

Ctrl-C ends the run cleanly: ``run`` returns what was reached, with ``stopped_by="interrupt"``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor, nn

from lstmlab.train.checkpoint import (
    pack_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unpack_state,
)

OPTIMIZERS = ("adam", "adamw", "sgd", "online")
SCHEDULES = ("constant", "cosine", "exponential", "step")


@dataclass
class TrainConfig:
    """How to train. Budgets may be combined; the first one reached stops the run.

    Attributes:
        optimizer: "adam" (default), "adamw", "sgd" (with ``momentum``), or "online": plain SGD
            with no momentum, meant for batch size 1 as in the 1997 LSTM paper.
        lr: learning rate. clip: maximum global gradient norm (None: no clipping).
        schedule: "constant", "cosine" (to 0 over ``max_steps``), "exponential" (lr times
            ``gamma`` every step), or "step" (lr times ``gamma`` every ``decay_every`` steps
            once ``decay_start`` steps are done: with both set to epochs' worth of steps this is
            Zaremba et al.'s "halve the lr every epoch after epoch 4"); ``warmup_steps`` ramps
            the lr linearly from 0 first.
        max_sequences / max_steps / max_seconds: budgets (None: unlimited).
        log_every: steps between history points (learning curves) and progress updates.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    clip: float | None = 1.0
    schedule: str = "constant"
    gamma: float = 1.0
    warmup_steps: int = 0
    decay_start: int = 0
    decay_every: int | None = None
    max_sequences: int | None = None
    max_steps: int | None = None
    max_seconds: float | None = None
    log_every: int = 20
    progress: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got "
                             f"{self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got "
                             f"{self.schedule!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be positive or None, got {self.clip}")
        for name in ("max_sequences", "max_steps", "max_seconds"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None, got {value}")
        if self.schedule == "cosine" and self.max_steps is None:
            raise ValueError("the cosine schedule needs max_steps (it decays to 0 over them)")
        if self.schedule == "step" and (self.decay_every is None or self.decay_every < 1):
            raise ValueError(f"the step schedule needs decay_every >= 1 (steps between decays), "
                             f"got {self.decay_every}")
        if self.decay_start < 0:
            raise ValueError(f"decay_start must be >= 0, got {self.decay_start}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be at least 1, got {self.log_every}")


@dataclass
class StepOutput:
    """What one training step reports: the loss to minimise and what it consumed.

    ``metrics`` are averaged over the steps between history points and shown in the progress
    line (e.g. {"accuracy": 0.9}); ``tokens`` counts scored positions for tokens/s.
    """

    loss: Tensor
    sequences: int
    tokens: int = 0
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainState:
    """Counters of a run; saved in checkpoints so a resumed run continues them."""

    step: int = 0
    sequences: int = 0
    tokens: int = 0
    seconds: float = 0.0


@dataclass
class TrainResult:
    state: TrainState
    stopped_by: str  # "hook", "max_sequences", "max_steps", "max_seconds", "interrupt"
    history: list[dict[str, float]]

    def to_dict(self) -> dict:
        return {"state": asdict(self.state), "stopped_by": self.stopped_by,
                "history": self.history}


def make_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in parameters if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "online":
        return torch.optim.SGD(params, lr=config.lr)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def make_schedule(optimizer: torch.optim.Optimizer,
                  config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    warmup = config.warmup_steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.schedule == "cosine":
            progress = min(1.0, (step - warmup) / max(1, config.max_steps - warmup))
            return 0.5 * (1 + math.cos(math.pi * progress))
        if config.schedule == "exponential":
            return config.gamma ** (step - warmup)
        if config.schedule == "step":
            done = step - warmup - config.decay_start
            return config.gamma ** (done // config.decay_every + 1) if done >= 0 else 1.0
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Trainer:
    """Owns a model's optimiser, schedule and counters; ``run`` trains until a stop.

    >>> trainer = Trainer(model, TrainConfig(lr=1e-2, max_sequences=10_000))
    >>> result = trainer.run(step)   # step() -> StepOutput
    """

    def __init__(self, model: nn.Module, config: TrainConfig,
                 optimizer: torch.optim.Optimizer | None = None,
                 console: Console | None = None) -> None:
        self.model = model
        self.config = config
        self.optimizer = optimizer or make_optimizer(model.parameters(), config)
        self.schedule = make_schedule(self.optimizer, config)
        self.state = TrainState()
        self.history: list[dict[str, float]] = []
        self.window: dict[str, float] = {}  # sums since the last history point
        self.window_steps = 0
        self.console = console or Console(stderr=True)

    def _budget_reached(self, elapsed: float) -> str | None:
        c, s = self.config, self.state
        if c.max_sequences is not None and s.sequences >= c.max_sequences:
            return "max_sequences"
        if c.max_steps is not None and s.step >= c.max_steps:
            return "max_steps"
        if c.max_seconds is not None and elapsed >= c.max_seconds:
            return "max_seconds"
        return None

    def _budget_fraction(self, elapsed: float) -> float | None:
        c, s = self.config, self.state
        fractions = [s.sequences / c.max_sequences if c.max_sequences else None,
                     s.step / c.max_steps if c.max_steps else None,
                     elapsed / c.max_seconds if c.max_seconds else None]
        known = [f for f in fractions if f is not None]
        return min(1.0, max(known)) if known else None

    def run(self, step: Callable[[], StepOutput],
            on_step: Callable[[Trainer, StepOutput], bool | None] | None = None,
            description: str = "training") -> TrainResult:
        """Train until a budget is reached, ``on_step`` returns True, or Ctrl-C.

        Time spent in earlier runs of this trainer (``state.seconds``, e.g. restored from a
        checkpoint) counts against ``max_seconds``.
        """
        self.model.train()
        start, base_seconds = time.perf_counter(), self.state.seconds
        self._run_start = (self.state.sequences, self.state.tokens)
        stopped_by = self._budget_reached(base_seconds)
        progress = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                            TimeRemainingColumn(), console=self.console,
                            disable=not self.config.progress, transient=False)
        try:
            with progress:
                bar = progress.add_task(description, total=1.0, status="")
                while stopped_by is None:
                    out = step()
                    loss = out.loss
                    if not torch.isfinite(loss):
                        raise FloatingPointError(
                            f"the loss became {loss.item()} at step {self.state.step} "
                            f"(sequence {self.state.sequences}); lower the learning rate "
                            f"(lr={self.config.lr}) or clip gradients (clip={self.config.clip})")
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if self.config.clip is not None:
                        nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip)
                    self.optimizer.step()
                    self.schedule.step()

                    self.state.step += 1
                    self.state.sequences += out.sequences
                    self.state.tokens += out.tokens
                    elapsed = base_seconds + time.perf_counter() - start
                    self.state.seconds = elapsed
                    window = self.window
                    window["loss"] = window.get("loss", 0.0) + loss.item()
                    for name, value in out.metrics.items():
                        window[name] = window.get(name, 0.0) + float(value)
                    self.window_steps += 1
                    if self.state.step % self.config.log_every == 0:
                        point = {name: total / self.window_steps
                                 for name, total in window.items()}
                        point.update(step=self.state.step, sequences=self.state.sequences,
                                     tokens=self.state.tokens, seconds=round(elapsed, 3),
                                     lr=self.optimizer.param_groups[0]["lr"])
                        self.history.append(point)
                        self.window, self.window_steps = {}, 0
                        progress.update(bar, completed=self._budget_fraction(elapsed) or 0.0,
                                        status=self._status(point, elapsed - base_seconds))
                    if on_step is not None and on_step(self, out):
                        stopped_by = "hook"
                    else:
                        stopped_by = self._budget_reached(elapsed)
        except KeyboardInterrupt:
            stopped_by = "interrupt"
            self.state.seconds = base_seconds + time.perf_counter() - start
        return TrainResult(self.state, stopped_by, self.history)

    def _status(self, point: dict[str, float], run_seconds: float) -> str:
        s = self.state
        parts = [f"{s.sequences:,} seq", f"loss {point['loss']:.4f}"]
        parts += [f"{k} {v:.3f}" for k, v in point.items()
                  if k not in {"loss", "step", "sequences", "tokens", "seconds", "lr"}]
        sequences, tokens = s.sequences - self._run_start[0], s.tokens - self._run_start[1]
        if tokens and run_seconds > 0:
            parts.append(f"{tokens / run_seconds:,.0f} tok/s")
        elif run_seconds > 0:
            parts.append(f"{sequences / run_seconds:,.0f} seq/s")
        return "  ".join(parts)

    # --- checkpoints ----------------------------------------------------------------------------

    def save(self, directory: str | Path, name: str, meta: dict | None = None,
             tensors: dict[str, Tensor] | None = None) -> Path:
        """Checkpoint the model and everything needed to resume: optimiser, schedule, counters,
        history and random states, plus the caller's ``meta`` (JSON) and ``tensors``."""
        store = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        store.update(tensors or {})
        document = dict(meta or {})
        document["trainer"] = {
            "state": asdict(self.state), "history": self.history,
            "window": [self.window, self.window_steps],
            "optimizer": pack_state("optimizer", self.optimizer.state_dict(), store),
            "schedule": pack_state("schedule", self.schedule.state_dict(), store),
            "rng": rng_state(store),
        }
        return save_checkpoint(directory, name, store, document)

    def restore(self, tensors: dict[str, Tensor], meta: dict) -> None:
        """Load what ``save`` wrote (from ``load_checkpoint``) into this trainer and its model."""
        if "trainer" not in meta:
            raise ValueError("this checkpoint holds weights only, not a training state to resume")
        self.model.load_state_dict({k[len("model."):]: v for k, v in tensors.items()
                                    if k.startswith("model.")})
        saved = meta["trainer"]
        self.optimizer.load_state_dict(unpack_state(saved["optimizer"], tensors))
        self.schedule.load_state_dict(unpack_state(saved["schedule"], tensors))
        self.state = TrainState(**saved["state"])
        self.history = list(saved["history"])
        self.window, self.window_steps = dict(saved["window"][0]), saved["window"][1]
        set_rng_state(saved["rng"], tensors)
