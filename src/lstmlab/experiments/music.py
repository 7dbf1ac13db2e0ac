"""Many-to-many, multi-label: train, evaluate and sample a polyphonic music model
(``lstmlab music``).

    >>> result = train_music("jsb_chorales/jsb_chorales.json", out="runs/jsb", minutes=30)
    >>> evaluate_music("runs/jsb", "jsb_chorales/jsb_chorales.json").nll     # test, nats/frame
    >>> generate_music("runs/jsb", "piece.mid", steps=64, temperature=0.8)

The figure is the frame negative log-likelihood of the published tables, by the protocol of Bai
et al. (2018)'s code: per predicted frame the sum over the 88 keys of the binary cross-entropy
in nats, averaged over every predicted frame of every piece (frame-weighted; each piece's first
frame is input only), with the best-validation weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor, nn

from lstmlab.experiments.supervised import (
    RunRecord,
    bucketed_batches,
    check_settings,
    fit,
    load_model,
    ordered_batches,
    save_model,
    steps_per_epoch,
    train_config,
)
from lstmlab.metrics import frame_nll
from lstmlab.models.music import MusicModel
from lstmlab.models.recurrent import canonical_name
from lstmlab.tasks.files import DataError
from lstmlab.tasks.music import (
    KEYS,
    Piece,
    music_batch,
    pick_split,
    read_midi_roll,
    read_pieces,
    write_midi,
)
from lstmlab.tasks.sentiment import split_examples
from lstmlab.train import Trainer
from lstmlab.train.loop import StepOutput

KIND = "music"
EVAL_BATCH = 32


@dataclass
class MusicConfig:
    """What defines a music run.

    Attributes:
        cell: the recurrent cell: "lstm" (= lstm:NP), "lstm:CIFG", ..., "gru", "rnn".
        layers, hidden: recurrent layers and their units.
        dropout: between layers and before the output layer.
        batch, optimizer, lr, weight_decay, clip: pieces per step and the optimiser.
        lr_decay: the learning rate is multiplied by this after every validation that brings
            no new best (1: constant).
        average: validate, keep and save a moving average of the weights with this decay
            per step (e.g. 0.999; 0: the weights themselves; ``supervised.fit``).
        valid_fraction: pieces held out of the training split when the file has no "valid"
            split and no validation file is given.
        seed: initialisation, dropout and batch order.
    """

    cell: str = "lstm"
    layers: int = 1
    hidden: int = 256
    dropout: float = 0.3
    batch: int = 8
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip: float | None = 5.0
    lr_decay: float = 1.0
    average: float = 0.0
    valid_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        self.cell = canonical_name(self.cell)
        check_settings(self, ("layers", "hidden", "batch"), ("dropout", "average"))


class MusicStep:
    """One training step: the frame NLL (nats summed over keys, mean over the predicted frames
    of the batch); reports it as "nll" and the frames as tokens."""

    def __call__(self, model: nn.Module, batch: Any) -> StepOutput:
        logits, _ = model(batch.inputs, batch.lengths)
        per_frame = F.binary_cross_entropy_with_logits(logits, batch.targets,
                                                       reduction="none").sum(2)  # (T, B)
        loss = per_frame[batch.mask].mean()
        return StepOutput(loss, batch.batch_size, int(batch.mask.sum()),
                          {"nll": loss.item()})


@torch.no_grad()
def pieces_nll(model: nn.Module, rolls: Sequence[Tensor], batch_size: int = EVAL_BATCH
               ) -> tuple[float, int]:
    """(mean frame NLL in nats, predicted frames) of rolls: every piece from a zero state,
    each frame after the first predicted from the ones before (frame-weighted mean)."""
    device = next(model.parameters()).device
    total, frames = 0.0, 0
    for _, batch in ordered_batches(rolls, [r.shape[0] for r in rolls], batch_size,
                                    music_batch):
        batch = batch.to(device)
        logits, _ = model(batch.inputs, batch.lengths)
        nll, count = frame_nll(logits, batch.targets, batch.mask)
        total, frames = total + nll, frames + count
    return total / frames, frames


@dataclass
class MusicResult(RunRecord):
    """What a training run reached: frame NLLs in nats (None where not measured)."""

    config: MusicConfig
    out: str | None
    parameters: int
    train_pieces: int
    valid_pieces: int
    steps: int
    epochs: float
    seconds: float
    stopped_by: str
    best_valid_nll: float | None
    test_nll: float | None
    test_frames: int | None
    history: list[dict[str, float]] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [self.run_line()]
        if self.best_valid_nll is not None:
            lines.append(f"best valid frame NLL: {self.best_valid_nll:.4f} nats")
        if self.test_nll is not None:
            lines.append(f"test frame NLL (best weights): {self.test_nll:.4f} nats over "
                         f"{self.test_frames:,} predicted frames")
        return "\n".join(lines)


def _describe(pieces: Sequence[Piece]) -> str:
    return f"{len(pieces):,} pieces, {sum(len(p) for p in pieces):,} steps"


def train_music(file: str | Path, *, valid: str | Path | None = None,
                test: str | Path | None = None, out: str | Path | None = None,
                minutes: float | None = None, epochs: float | None = None,
                steps: int | None = None, eval_every: int | None = None, progress: bool = True,
                console: Console | None = None, device: str | None = None,
                patience: int | None = None, loop: dict[str, Any] | None = None,
                on_validation: Callable[[int, float], None] | None = None,
                **options: Any) -> MusicResult:
    """Train a next-frame model on the "train" split of a music file (``lstmlab.tasks.music``).

    Validation: the file's "valid" split, else ``valid`` (its "valid" split, or all its pieces),
    else a held-out ``valid_fraction`` of the training pieces. Test: the file's "test" split or
    ``test``'s, scored with the best weights at the end. ``out``, budgets (none: 10 epochs),
    ``eval_every`` (default one epoch), ``progress``, ``console`` and ``device`` as for the
    other heads; ``patience``: stop after that many validations without a new best; ``loop``:
    further ``TrainConfig`` fields (momentum, input_noise, ...); ``on_validation(step,
    nll)`` hears each validation (``fit``); ``options`` are the fields of
    ``MusicConfig``.
    """
    console = console or Console(stderr=True)
    config = MusicConfig(**options)
    splits = read_pieces(file, "train")
    train_pieces = pick_split(splits, "train", file)
    if valid is not None:
        valid_pieces = pick_split(read_pieces(valid, "valid"), "valid", valid)
    elif "valid" in splits:
        valid_pieces = splits["valid"]
    else:
        train_pieces, valid_pieces = split_examples(train_pieces, config.valid_fraction)
        console.print(f"validation: {len(valid_pieces)} pieces held out of the training split")
    test_pieces = None
    if test is not None:
        test_pieces = pick_split(read_pieces(test, "test"), "test", test)
    elif "test" in splits:
        test_pieces = splits["test"]
    console.print(f"{file}: train {_describe(train_pieces)}; valid {_describe(valid_pieces)}"
                  + (f"; test {_describe(test_pieces)}" if test_pieces else ""))

    torch.manual_seed(config.seed)
    model = MusicModel(KEYS, config.cell, config.hidden, config.layers, config.dropout)
    spe = steps_per_epoch(len(train_pieces), config.batch)
    loop = train_config(config, spe, minutes=minutes, epochs=epochs, steps=steps,
                        progress=progress, device=device, loop=loop)
    console.print(f"model: {model.cell} {config.layers}x{config.hidden}, "
                  f"{sum(p.numel() for p in model.parameters()):,} parameters; "
                  f"{spe:,} steps per epoch")
    rolls = [p.roll for p in train_pieces]
    batches = bucketed_batches(rolls, [r.shape[0] for r in rolls], config.batch, music_batch,
                               seed=config.seed, pool=10)
    valid_rolls = [p.roll for p in valid_pieces]

    def report(trainer: Trainer, nll: float, improved: bool) -> None:
        s = trainer.state
        console.print(f"step {s.step:,} ({s.sequences / len(rolls):.1f} epochs, "
                      f"{s.seconds / 60:.1f} min): valid frame NLL {nll:.4f}"
                      + ("  [best]" if improved else ""))

    extra = {"config": asdict(config), "train": str(file)}
    save = (lambda m: save_model(m, out, extra)) if out is not None else None
    run = fit(model, loop, MusicStep(), batches,
              error=lambda m: pieces_nll(m, valid_rolls)[0], eval_every=eval_every or spe,
              save=save, report=report, console=console,
              description=f"music {model.cell}", patience=patience,
              lr_decay=config.lr_decay, average=config.average, on_validation=on_validation)
    test_nll = test_frames = None
    if test_pieces is not None and run.train.state.step > 0:
        test_nll, test_frames = pieces_nll(model, [p.roll for p in test_pieces])
    s = run.train.state
    return MusicResult(config, None if out is None else str(out),
                       sum(p.numel() for p in model.parameters()), len(rolls),
                       len(valid_rolls), s.step, s.sequences / len(rolls), s.seconds,
                       run.stopped_by, run.best, test_nll, test_frames,
                       list(run.train.history), run.validations)


# --- a saved model -----------------------------------------------------------------------------


def load_music_model(path: str | Path) -> MusicModel:
    """A music model saved by ``train_music`` (its run directory or ``best.json``)."""
    return load_model(path, KIND, "music")[0]


@dataclass
class MusicScores:
    split: str
    pieces: int
    frames: int
    nll: float

    def summary(self) -> str:
        return (f"{self.split}: frame NLL {self.nll:.4f} nats (sum over 88 keys, mean over "
                f"{self.frames:,} predicted frames of {self.pieces} pieces)")


def evaluate_music(path: str | Path, file: str | Path, split: str = "test") -> MusicScores:
    """The frame NLL of a saved model on one split of a music file (see the module)."""
    model = load_music_model(path)
    pieces = pick_split(read_pieces(file, "eval"), split, file)
    nll, frames = pieces_nll(model, [p.roll for p in pieces])
    return MusicScores(split, len(pieces), frames, nll)


@dataclass
class Generated:
    roll: Tensor
    primed: int
    midi: Path
    png: Path | None


def generate_music(path: str | Path, out: str | Path, *, steps: int = 64,
                   temperature: float = 1.0, seed: int | None = None,
                   prime: str | Path | None = None, split: str = "test", piece: int = 0,
                   prime_steps: int | None = None, step_seconds: float = 0.5,
                   png: bool = True) -> Generated:
    """Sample ``steps`` frames from a saved model and write them as MIDI to ``out`` (and a
    piano-roll PNG beside it). Primed with piece ``piece`` of ``split`` of a music file, or
    a MIDI file, cut to its first ``prime_steps`` frames; without ``prime``, from silence."""
    model = load_music_model(path)
    roll = None
    if prime is not None:
        if Path(prime).suffix.lower() in (".mid", ".midi"):
            roll = read_midi_roll(prime, step_seconds)
        else:
            pieces = pick_split(read_pieces(prime, "prime"), split, prime)
            if not 0 <= piece < len(pieces):
                raise DataError(f"{prime}: {split} has pieces 0..{len(pieces) - 1}, not {piece}")
            roll = pieces[piece].roll
        if prime_steps is not None:
            roll = roll[:prime_steps]
    primed = 0 if roll is None else roll.shape[0]
    result = model.generate(roll, steps, temperature=temperature, seed=seed)
    if roll is None:
        result = result[1:]  # the silent starting frame is no part of the piece
    midi = write_midi(result, out, step_seconds)
    picture = None
    if png:
        from lstmlab.viz.pianoroll import pianoroll_png

        picture = pianoroll_png(result, Path(out).with_suffix(".png"), primed,
                                title=f"{model.cell}, temperature {temperature:g}")
    return Generated(result, primed, midi, picture)
