"""What the supervised heads (``classify``, ``tag``, ``music``) share when they train on the one
loop: budgets in epochs / minutes / steps, shuffled length-bucketed batches, validation that
keeps the best weights (in memory and on disk), and the saved model of a run.

    >>> config = train_config(settings, steps_per_epoch=217, minutes=20, progress=True)
    >>> batches = bucketed_batches(examples, lengths, 32, make_batch, seed=0)
    >>> run = fit(model, config, step, batches, error=valid_error, eval_every=217,
    ...           save=lambda m: save_model(m, out, extra), console=console)

A run directory holds the best-validation model as the checkpoint ``best`` in lstmlab's one
model format (``lstmlab.save`` / ``lstmlab.load``): kind, configuration (``model.config()``),
the vocabularies, labels and settings in ``extra``, the weights.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lstmlab.io import CheckpointError
from lstmlab.models.registry import load_saved, save
from lstmlab.tasks.batch import Batch
from lstmlab.train import TrainConfig, Trainer, TrainResult, Validation
from lstmlab.train.callbacks import Callback, EarlyStopping, Every
from lstmlab.train.loop import Step


def check_settings(settings: Any, positive: Sequence[str] = (),
                   dropouts: Sequence[str] = ("dropout",)) -> None:
    """The range checks every supervised run's configuration shares: ``positive`` fields are
    ints >= 1, ``dropouts`` in [0, 1), ``valid_fraction`` in (0, 1); a ValueError names the
    option as the command line writes it. ``lr_decay``, where the configuration has one, is in
    (0, 1]; ``rare_dropout`` >= 0."""
    for name in positive:
        value = getattr(settings, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name.replace('_', '-')} must be a positive integer, got "
                             f"{value!r}")
    for name in dropouts:
        if not 0 <= getattr(settings, name) < 1:
            raise ValueError(f"{name.replace('_', '-')} must be in [0, 1), got "
                             f"{getattr(settings, name)}")
    if not 0 < settings.valid_fraction < 1:
        raise ValueError(f"valid-fraction must be in (0, 1), got {settings.valid_fraction}")
    if not 0 < getattr(settings, "lr_decay", 1.0) <= 1:
        raise ValueError(f"lr-decay must be in (0, 1], got {settings.lr_decay}")
    if getattr(settings, "rare_dropout", 0.0) < 0:
        raise ValueError(f"rare-dropout must be >= 0, got {settings.rare_dropout}")


def train_config(settings: Any, steps_per_epoch: int, *, minutes: float | None = None,
                 epochs: float | None = None, steps: int | None = None,
                 progress: bool = True, device: str | None = None,
                 loop: dict[str, Any] | None = None) -> TrainConfig:
    """The loop's settings from a head's configuration (fields optimizer, lr, weight_decay,
    clip) and the budgets; none given means 10 epochs. ``loop``: further ``TrainConfig``
    fields (e.g. momentum, nesterov, input_noise: how the variant study trains)."""
    if minutes is None and epochs is None and steps is None:
        epochs = 10
    limits = [s for s in (steps, None if epochs is None
                          else max(1, math.ceil(epochs * steps_per_epoch))) if s is not None]
    return TrainConfig(optimizer=settings.optimizer, lr=settings.lr,
                       weight_decay=settings.weight_decay, clip=settings.clip,
                       max_steps=min(limits) if limits else None,
                       max_seconds=None if minutes is None else minutes * 60,
                       log_every=max(1, min(20, steps_per_epoch)), progress=progress,
                       device=device, **(loop or {}))


def bucketed_batches(items: Sequence[Any], lengths: Sequence[int], batch_size: int,
                     make_batch: Callable[[list[Any]], Batch], seed: int = 0,
                     pool: int = 50) -> Iterator[Batch]:
    """Endless training batches: every epoch the items are shuffled, cut into pools of
    ``pool`` batches, each pool sorted by length and cut into batches (little padding), and the
    batches shuffled. Deterministic for a seed."""
    if not items:
        raise ValueError("no training items")
    rng = random.Random(seed)
    order = list(range(len(items)))
    while True:
        rng.shuffle(order)
        chunks = []
        for start in range(0, len(order), batch_size * pool):
            part = sorted(order[start:start + batch_size * pool], key=lambda i: lengths[i])
            chunks += [part[k:k + batch_size] for k in range(0, len(part), batch_size)]
        rng.shuffle(chunks)
        for chunk in chunks:
            yield make_batch([items[i] for i in chunk])


def ordered_batches(items: Sequence[Any], lengths: Sequence[int], batch_size: int,
                    make_batch: Callable[[list[Any]], Batch]) -> Iterator[tuple[list[int], Batch]]:
    """Evaluation batches sorted by length, with the indices of their items (to put results
    back in the items' order)."""
    order = sorted(range(len(items)), key=lambda i: lengths[i])
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        yield chunk, make_batch([items[i] for i in chunk])


def steps_per_epoch(count: int, batch_size: int) -> int:
    return max(1, math.ceil(count / batch_size))


# --- word dropout: training words replaced by <unk> (id 0) ------------------------------------


def rare_word_dropout(texts: Sequence[Sequence[int]], vocab_size: int, alpha: float) -> Tensor:
    """Per word id (vocab_size,), the probability alpha / (alpha + n) that a training word seen
    n times in ``texts`` (word-id sequences) is dropped (Kiperwasser & Goldberg 2016): rare
    words often, frequent ones almost never, so the ``<unk>`` vector and the character features
    learn to stand in for the words a test text brings that training never saw."""
    counts = torch.zeros(vocab_size)
    for text in texts:
        counts.index_add_(0, torch.as_tensor(text, dtype=torch.long),
                          torch.ones(len(text)))
    return alpha / (alpha + counts) if alpha > 0 else torch.zeros(vocab_size)


def drop_words(words: Tensor, probability: float, per_word: Tensor | None = None) -> Tensor:
    """``words`` (T, B) ids with each replaced by ``<unk>`` (0) with ``probability``, and
    besides with ``per_word[id]`` (``rare_word_dropout``) where given; padding stays 0."""
    if not probability and per_word is None:
        return words
    p = torch.full(words.shape, probability, device=words.device)
    if per_word is not None:
        rare = per_word.to(words.device)[words]
        p = 1 - (1 - p) * (1 - rare)  # either drop
    return words.masked_fill(torch.rand(words.shape, device=words.device) < p, 0)


class RunRecord:
    """What the result types of supervised runs share (each a dataclass with ``config``,
    ``steps``, ``epochs``, ``seconds`` and ``stopped_by``): ``to_dict`` for JSON, and the line that
    says how the run went."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["config"] = asdict(self.config)
        return d

    def run_line(self) -> str:
        return (f"{self.steps:,} steps ({self.epochs:.2f} epochs) in {self.seconds / 60:.1f} "
                f"min; stopped by {self.stopped_by}")


@dataclass
class FitResult:
    """A finished run: the loop's result, the best validation error (lower is better) and the
    record of every validation."""

    train: TrainResult
    best: float | None
    validations: list[dict[str, float]] = field(default_factory=list)

    @property
    def stopped_by(self) -> str:
        return self.train.stopped_by


def fit(model: nn.Module, config: TrainConfig, step: Step, batches: Iterator[Batch], *,
        error: Callable[[nn.Module], float], eval_every: int,
        save: Callable[[nn.Module], None] | None = None,
        report: Callable[[Trainer, float, bool], None] | None = None,
        console: Console | None = None, description: str = "training",
        patience: int | None = None, lr_decay: float = 1.0, average: float = 0.0,
        on_validation: Callable[[int, float], None] | None = None) -> FitResult:
    """Train ``model`` on the one loop, validating every ``eval_every`` steps and at the end by
    ``error(model)`` (lower is better); with ``patience``, stop early after that many
    validations without a new best; with ``lr_decay`` < 1, the learning rate is multiplied by
    it after every validation that brings no new best. ``on_validation(step, value)`` hears
    every validation (it may raise to end the run, e.g. a study's pruner). The best weights are
    kept in memory (and written by ``save`` on rank 0 when given) and put back into ``model`` at
    the end, so ``model`` leaves with its best-validation weights.

    ``average`` in (0, 1) validates, keeps and saves an exponential moving average of the
    weights instead of the weights themselves: after every step, avg <- average * avg +
    (1 - average) * w (Polyak averaging, as ``torch.optim.swa_utils`` computes it); the
    optimiser still steps the raw weights."""
    if not 0 <= average < 1:
        raise ValueError(f"average (the moving average's decay) must be in [0, 1), got {average}")
    trainer = Trainer(model, config, console=console)
    best_state: dict[str, Tensor] = {}
    averaged = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(average),
                              use_buffers=True) if average else None)
    kept = averaged.module if averaged is not None else model  # what is validated and saved

    def on_best(trainer: Trainer, value: float) -> None:
        best_state.update({k: v.detach().clone() for k, v in kept.state_dict().items()})
        if save is not None and trainer.world.is_main:
            save(kept)

    def evaluate(_: nn.Module) -> float:
        was_training = kept.training
        kept.eval()
        try:
            with torch.no_grad():
                return error(kept)
        finally:
            kept.train(was_training)

    def on_result(trainer: Trainer, value: float, improved: bool) -> None:
        if not improved and lr_decay < 1:
            trainer.scale_lr(lr_decay)
        if report is not None:
            report(trainer, value, improved)
        if on_validation is not None:
            on_validation(trainer.state.step, value)

    validation = Validation(evaluate, eval_every, on_best=on_best, on_result=on_result)
    callbacks: list[Callback] = [validation]
    if averaged is not None:  # first, so that each validation sees this step's average
        callbacks.insert(0, Every(1, lambda trainer: averaged.update_parameters(model)))
    if patience is not None:
        callbacks.append(EarlyStopping(validation, patience))
    result = trainer.run(step, batches, callbacks, description=description)
    if best_state:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(result, validation.best, validation.records)


# --- the saved model of a run (lstmlab's one model format) --------------------------------------


def save_model(model: nn.Module, directory: str | Path, extra: dict[str, Any]) -> Path:
    """Write ``model`` (a registered kind) with JSON-able ``extra`` (vocabularies, labels, the
    run's settings) as the checkpoint ``best`` in ``directory`` (``lstmlab.save``)."""
    return save(model, directory, extra, name="best")


def load_model(path: str | Path, kind: str | tuple[str, ...], command: str
               ) -> tuple[nn.Module, dict[str, Any], Path]:
    """Read a saved model (a run directory or a checkpoint's .json), which must be of ``kind``
    (or one of several); returns (model in eval mode, extra, the checkpoint's path).
    ``command`` names the command that reads this kind, for the error message."""
    saved = load_saved(path)
    kinds = (kind,) if isinstance(kind, str) else kind
    if saved.kind not in kinds:
        wanted = " or ".join(repr(k) for k in kinds)
        raise CheckpointError(f"{saved.path} holds a {saved.kind!r} model, not a {wanted} "
                              f"model: `lstmlab {command}` reads only {' and '.join(kinds)} "
                              "models")
    return saved.model, saved.extra, saved.path
