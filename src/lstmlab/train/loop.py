"""The one training loop: device, (distributed) model, optimiser, clipping, schedule, budgets,
progress, clean interruption, and callbacks.

Every trained thing in lstmlab (memory games, gradient flow, language models, sequence heads)
runs through ``Trainer.run(step, batches, callbacks)``. ``batches`` yields ``Batch``es; ``step``
receives the model and one batch and returns the loss with what it consumed:

    def step(model: nn.Module, batch: Batch) -> StepOutput:
        outputs = model(batch.inputs)
        return StepOutput(loss(outputs, batch), batch.batch_size)

The model handed to ``step`` is the one to call: under torchrun it is the
DistributedDataParallel wrapper (``lstmlab.train.distributed``), and the batch is this rank's
share of the rows, already on the training device. For each batch the loop does

    batch -> device, this rank's rows -> step(model, batch) -> zero grads -> backward -> clip the
    global gradient norm -> optimiser step -> schedule -> count sequences exactly -> history and
    progress (rank 0) -> callbacks (validation, checkpoints, stopping rules...) -> budgets

Ctrl-C ends the run cleanly: ``run`` returns what was reached, with ``stopped_by="interrupt"``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor, nn

from lstmlab.tasks.batch import Batch
from lstmlab.train.callbacks import Callback
from lstmlab.train.checkpoint import (
    pack_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unpack_state,
)
from lstmlab.train.distributed import World, resolve_device

OPTIMIZERS = ("adam", "adamw", "sgd", "online")
SCHEDULES = ("constant", "cosine", "exponential", "step")
BUDGET_SCHEDULES = ("constant", "cosine")
"""The schedules that need nothing but the run's budget (what the captioner and the memory
suite offer)."""


@dataclass
class TrainConfig:
    """How to train. Budgets may be combined; the first one reached stops the run.

    Attributes:
        optimizer: "adam" (default), "adamw", "sgd" (with ``momentum``, Nesterov's if
            ``nesterov``), or "online": plain SGD with no momentum, meant for batch size 1 as
            in the 1997 LSTM paper.
        lr: learning rate. clip: maximum global gradient norm (None: no clipping).
        schedule: "constant", "cosine" (to 0 over ``max_steps``; with none, over the share of
            ``max_sequences`` or ``max_seconds`` used, whichever is further: a time budget
            decays by the clock), "exponential" (lr times
            ``gamma`` every step), or "step" (lr times ``gamma`` every ``decay_every`` steps
            once ``decay_start`` steps are done: with both set to epochs' worth of steps this is
            Zaremba et al.'s "halve the lr every epoch after epoch 4"); ``warmup_steps`` ramps
            the lr linearly from 0 first.
        max_sequences / max_steps / max_seconds: budgets (None: unlimited).
        log_every: steps between history points (learning curves) and progress updates.
        progress: show a progress bar (rank 0 only).
        device: "cpu", "cuda" or "cuda:N" for the model and batches (None: cpu).
        input_noise: the standard deviation of Gaussian noise added to float inputs of every
            training batch (Greff et al. 2015's regulariser; 0: none). Token ids get none.
        nonfinite: what a non-finite loss or gradient does: "raise" (a FloatingPointError) or
            "backoff" (skip the step, undo the update before it, restart the optimiser's
            moments and halve the learning rate, up to ``max_backoffs`` times in a row, then
            raise).
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
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
    device: str | None = None
    input_noise: float = 0.0
    nonfinite: str = "raise"
    max_backoffs: int = 8

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got "
                             f"{self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got "
                             f"{self.schedule!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.nesterov and not (self.optimizer == "sgd" and self.momentum > 0):
            raise ValueError("nesterov needs optimizer 'sgd' and a momentum > 0")
        if not self.input_noise >= 0:
            raise ValueError(f"input_noise must be >= 0, got {self.input_noise}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be positive or None, got {self.clip}")
        for name in ("max_sequences", "max_steps", "max_seconds"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None, got {value}")
        if self.schedule == "cosine" and (self.max_steps, self.max_sequences,
                                          self.max_seconds) == (None, None, None):
            raise ValueError("the cosine schedule needs a budget to decay over (max_steps, "
                             "max_sequences or max_seconds)")
        if self.schedule == "step" and (self.decay_every is None or self.decay_every < 1):
            raise ValueError(f"the step schedule needs decay_every >= 1 (steps between decays), "
                             f"got {self.decay_every}")
        if self.decay_start < 0:
            raise ValueError(f"decay_start must be >= 0, got {self.decay_start}")
        if self.nonfinite not in ("raise", "backoff"):
            raise ValueError(f"nonfinite must be 'raise' or 'backoff', got {self.nonfinite!r}")
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
    stopped_by: str  # "callback", "max_sequences", "max_steps", "max_seconds", "batches",
    #                  "interrupt"
    history: list[dict[str, float]]

    def to_dict(self) -> dict:
        return {"state": asdict(self.state), "stopped_by": self.stopped_by,
                "history": self.history}


def make_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    """``config``'s optimiser over ``parameters``: tensors, or torch's parameter groups (dicts
    with "params" and settings of their own, such as a "weight_decay" that overrides
    ``config.weight_decay`` for that group)."""
    params: list = list(parameters)
    if params and isinstance(params[0], dict):
        params = [{**group, "params": [p for p in group["params"] if p.requires_grad]}
                  for group in params]
        params = [group for group in params if group["params"]]
    else:
        params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "online":
        return torch.optim.SGD(params, lr=config.lr)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                           nesterov=config.nesterov, weight_decay=config.weight_decay)


def make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig,
                  used: Callable[[], float] | None = None
                  ) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule of ``config``; ``used()`` gives the share of the budget
    spent so far, in [0, 1] (the cosine schedule's clock where there is no ``max_steps``)."""
    warmup = config.warmup_steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.schedule == "cosine":
            if config.max_steps is not None:
                progress = min(1.0, (step - warmup) / max(1, config.max_steps - warmup))
            else:
                progress = used() if used is not None else 0.0
            return 0.5 * (1 + math.cos(math.pi * progress))
        if config.schedule == "exponential":
            return config.gamma ** (step - warmup)
        if config.schedule == "step":
            done = step - warmup - config.decay_start
            return config.gamma ** (done // config.decay_every + 1) if done >= 0 else 1.0
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


Step = Callable[[nn.Module, Batch], StepOutput]

_STOPS = ("", "callback", "max_sequences", "max_steps", "max_seconds", "batches", "interrupt")


class Trainer:
    """Owns a model's device, optimiser, schedule and counters; ``run`` trains until a stop.

    >>> trainer = Trainer(model, TrainConfig(lr=1e-2, max_sequences=10_000))
    >>> result = trainer.run(step, batches, callbacks=[StopWhen(lambda: rule.done)])

    Attributes:
        model: the bare module (weights to save and evaluate), on ``device``.
        wrapped: what ``step`` receives: ``model`` itself, or its DistributedDataParallel
            wrapper under torchrun.
        world: this process's rank among the training processes (``World``).
    """

    def __init__(self, model: nn.Module, config: TrainConfig,
                 optimizer: torch.optim.Optimizer | None = None,
                 console: Console | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.world = World.from_environment(self.device)
        if self.world.distributed:
            self.device = resolve_device(config.device, self.world)
        self.model = model.to(self.device)
        self.wrapped: nn.Module = model
        if self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.wrapped = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.optimizer = optimizer or make_optimizer(model.parameters(), config)
        self._used = 0.0  # the budget's share spent, for a cosine schedule without max_steps
        self.schedule = make_schedule(self.optimizer, config, lambda: self._used)
        self.state = TrainState()
        self.history: list[dict[str, float]] = []
        self.pending: dict[str, float] = {}  # metric sums since the last history point
        self.pending_steps = 0
        self.backoffs = 0  # non-finite steps in a row
        self._good: list[Tensor] | None = None  # weights before the last update (backoff)
        self.console = console or Console(stderr=True, quiet=not self.world.is_main)

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

    def _shared_stop(self, reason: str | None) -> str | None:
        """The stop every rank takes: the first reason any rank has (time budgets differ)."""
        code = self.world.all_max(_STOPS.index(reason or ""))
        return _STOPS[code] or None

    def run(self, step: Step, batches: Iterable[Batch],
            callbacks: Sequence[Callback] = (), description: str = "training") -> TrainResult:
        """Train on ``batches`` until a budget is reached, a callback asks to stop, the batches
        run out, or Ctrl-C.

        Time spent in earlier runs of this trainer (``state.seconds``, e.g. restored from a
        checkpoint) counts against ``max_seconds``.
        """
        self.model.train()
        world = self.world
        start, base_seconds = time.perf_counter(), self.state.seconds
        self._run_start = (self.state.sequences, self.state.tokens)
        stopped_by = self._shared_stop(self._budget_reached(base_seconds))
        progress = Progress(TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                            TimeRemainingColumn(), console=self.console,
                            disable=not (self.config.progress and world.is_main),
                            transient=False)
        for callback in callbacks:
            callback.on_start(self)
        source = iter(batches)
        try:
            with progress:
                bar = progress.add_task(description, total=1.0, status="")
                while stopped_by is None:
                    batch = next(source, None)
                    if batch is None:
                        stopped_by = "batches"
                        break
                    rows = batch.batch_size
                    batch = batch.to(self.device)
                    if world.distributed:
                        batch = batch.shard(world.rank, world.size)
                    if self.config.input_noise > 0 and batch.inputs.is_floating_point():
                        batch = replace(batch, inputs=batch.inputs + self.config.input_noise
                                        * torch.randn_like(batch.inputs))
                    out = step(self.wrapped, batch)
                    loss = out.loss
                    if world.distributed:  # DDP averages gradients: weigh each rank's share
                        loss = loss * (batch.batch_size * world.size / rows)
                    finite = world.all_max(0 if torch.isfinite(loss) else 1) == 0
                    if finite:
                        self.optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        norm = nn.utils.clip_grad_norm_(
                            self.model.parameters(),
                            self.config.clip if self.config.clip is not None else math.inf)
                        finite = bool(torch.isfinite(norm))
                    if finite:
                        if self.config.nonfinite == "backoff":  # the weights to go back to
                            self._good = [p.detach().clone() for p in self.model.parameters()]
                        self.optimizer.step()
                        self.backoffs = 0
                    else:
                        self._back_off(loss)

                    self.state.step += 1
                    self.state.sequences += rows
                    self.state.tokens += (round(world.all_mean(out.tokens) * world.size)
                                          if world.distributed else out.tokens)
                    elapsed = base_seconds + time.perf_counter() - start
                    self.state.seconds = elapsed
                    if self.config.schedule == "cosine" and self.config.max_steps is None:
                        # ranks' clocks differ, their learning rates must not
                        self._used = world.all_mean(self._budget_fraction(elapsed) or 0.0)
                    if finite:
                        self.schedule.step()
                    else:
                        with warnings.catch_warnings():  # a skipped first step is expected
                            warnings.simplefilter("ignore", UserWarning)
                            self.schedule.step()
                    pending = self.pending
                    pending["loss"] = pending.get("loss", 0.0) + world.all_mean(out.loss.item())
                    for name, value in out.metrics.items():
                        pending[name] = pending.get(name, 0.0) + float(value)
                    self.pending_steps += 1
                    if self.state.step % self.config.log_every == 0:
                        point = {name: total / self.pending_steps
                                 for name, total in pending.items()}
                        point.update(step=self.state.step, sequences=self.state.sequences,
                                     tokens=self.state.tokens, seconds=round(elapsed, 3),
                                     lr=self.optimizer.param_groups[0]["lr"])
                        self.history.append(point)
                        self.pending, self.pending_steps = {}, 0
                        progress.update(bar, completed=self._budget_fraction(elapsed) or 0.0,
                                        status=self._status(point, elapsed - base_seconds))
                    asked = [callback.on_step(self, out) for callback in callbacks]
                    reason = "callback" if any(asked) else self._budget_reached(elapsed)
                    stopped_by = self._shared_stop(reason)
        except KeyboardInterrupt:
            stopped_by = "interrupt"
            self.state.seconds = base_seconds + time.perf_counter() - start
        result = TrainResult(self.state, stopped_by, self.history)
        for callback in callbacks:
            callback.on_end(self, result)
        return result

    def scale_lr(self, factor: float) -> None:
        """Multiply the learning rate by ``factor`` from now on (the schedule's base rates and
        the optimiser's current ones, so the schedule's shape is kept)."""
        self.schedule.base_lrs = [lr * factor for lr in self.schedule.base_lrs]
        for group in self.optimizer.param_groups:
            group["lr"] *= factor

    def _back_off(self, loss: Tensor) -> None:
        """A non-finite loss or gradient: the step is skipped (no update); with
        ``nonfinite="backoff"`` the learning rate is halved, at most ``max_backoffs`` times in a
        row, else (and with "raise") a FloatingPointError says what to do."""
        self.optimizer.zero_grad(set_to_none=True)
        c, s = self.config, self.state
        what = (f"the loss became {loss.item()}" if not torch.isfinite(loss)
                else "the gradient became non-finite")
        if c.nonfinite == "raise" or self.backoffs >= c.max_backoffs:
            tried = (f" (after halving the learning rate {self.backoffs} times)"
                     if self.backoffs else "")
            raise FloatingPointError(
                f"{what} at step {s.step} (sequence {s.sequences}){tried}; lower the learning "
                f"rate (lr={self.schedule.base_lrs[0]:g}) or clip gradients harder "
                f"(clip={c.clip})")
        self.backoffs += 1
        self.scale_lr(0.5)
        undone = ""
        if self._good is not None:  # the last update led here: undo it, restart the moments
            with torch.no_grad():
                for p, good in zip(self.model.parameters(), self._good, strict=True):
                    p.copy_(good)
            self.optimizer.state.clear()
            self._good = None
            undone = "the last update undone, "
        self.console.print(f"[yellow]{what} at step {s.step}: step skipped, {undone}learning "
                           f"rate halved to {self.schedule.base_lrs[0]:g}[/]")

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
            "window": [self.pending, self.pending_steps],
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
        self.pending, self.pending_steps = dict(saved["window"][0]), saved["window"][1]
        set_rng_state(saved["rng"], tensors)
