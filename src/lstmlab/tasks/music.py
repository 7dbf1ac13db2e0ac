"""Polyphonic music as piano rolls: the JSB Chorales nesting (Boulanger-Lewandowski et al. 2012),
read from JSON or from the original pickle, and written back as MIDI.

A file holds pieces, each a list of time steps, each step the MIDI pitches sounding then
(possibly none):

    {"train": [[[60, 64, 67], [62, 65], ...], ...], "valid": [...], "test": [...]}

or a plain list of pieces (one split). JSB's steps are quarter notes. A piece becomes an
88-key piano roll, (T, 88) floats in {0, 1}, key k = pitch - 21 (the piano's A0 = 21 ... C8 =
108).

    >>> splits = read_pieces("jsb_chorales/jsb_chorales.json")   # {"train": [Piece, ...], ...}
    >>> batch = music_batch([piece.roll for piece in splits["train"][:8]])
    >>> batch.inputs.shape, batch.targets.shape      # (T-1, 8, 88) each: frame t -> frame t+1
    >>> write_midi(splits["test"][0].roll, "chorale.mid")

The pickle is read by a restricted unpickler that builds only numpy integer scalars and dtypes
(what the JSB pickle holds) and refuses any other object, so a hostile file cannot run code.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lstmlab.tasks.batch import Batch
from lstmlab.tasks.files import DataError, PathLike, read_bytes

KEYS = 88
LOWEST = 21  # A0, the piano's lowest key
HIGHEST = LOWEST + KEYS - 1  # C8 = 108
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Piece:
    """One piece: its piano roll (T, 88) and where it came from ("train piece 3")."""

    name: str
    roll: Tensor

    def __len__(self) -> int:
        return self.roll.shape[0]


def piano_roll(steps: Sequence[Sequence[int]], where: str = "piece") -> Tensor:
    """(T, 88) float roll of steps of MIDI pitches; a pitch outside 21..108 or a non-integer is
    an error naming ``where`` and the step."""
    roll = torch.zeros(len(steps), KEYS)
    for t, step in enumerate(steps):
        if not isinstance(step, (list, tuple)):
            raise DataError(f"{where}, step {t}: expected a list of MIDI pitches, got "
                            f"{type(step).__name__}")
        for pitch in step:
            if isinstance(pitch, bool) or not float(pitch).is_integer():
                raise DataError(f"{where}, step {t}: pitch {pitch!r} is not an integer")
            if not LOWEST <= int(pitch) <= HIGHEST:
                raise DataError(f"{where}, step {t}: pitch {int(pitch)} is outside the piano's "
                                f"{LOWEST}..{HIGHEST}")
            roll[t, int(pitch) - LOWEST] = 1.0
    return roll


def pitches(roll: Tensor) -> list[list[int]]:
    """The MIDI pitches of each step of a (T, 88) roll (inverse of ``piano_roll``)."""
    return [[k + LOWEST for k in (frame > 0.5).nonzero().flatten().tolist()] for frame in roll]


class _NumpyOnly(pickle.Unpickler):
    """Builds numpy scalars and dtypes, nothing else (and the byte strings inside them, which
    protocol 2 writes from Python 3 through ``_codecs.encode``)."""

    ALLOWED = {("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a music pickle "
                                         "holds only lists of numbers")
        import numpy

        if module == "_codecs":
            import codecs

            return codecs.encode
        if name == "dtype":
            return numpy.dtype
        from numpy._core.multiarray import scalar  # numpy >= 2 (numpy.core is its old name)

        return scalar


def _plain(value: Any) -> Any:
    """numpy scalars -> Python numbers, tuples -> lists, recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        return value.item()
    return value


def _load(path: PathLike, what: str) -> Any:
    data = read_bytes(path, what)
    if data[:1] == b"\x80":  # a pickle's protocol marker
        try:
            return _plain(_NumpyOnly(io.BytesIO(data), encoding="latin1").load())
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
            raise DataError(f"{what} file {path} cannot be read as a music pickle: {error}"
                            ) from None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        line = f", line {error.lineno}" if isinstance(error, json.JSONDecodeError) else ""
        raise DataError(f"{path}{line}: not JSON of pieces ({error}); expected "
                        '{"train": [[[60, 64, 67], ...], ...], ...} or a pickle of it') from None


def read_pieces(path: PathLike, what: str = "data") -> dict[str, list[Piece]]:
    """The pieces of a JSON or pickle file, by split ("train", "valid", "test"; a plain list of
    pieces is the split "all"). Errors name the file, split, piece and step: a piece that
    is not a list of steps, has fewer than two steps (nothing to predict) or no notes at all, a
    pitch outside 21..108."""
    raw = _load(path, what)
    splits = raw if isinstance(raw, dict) else {"all": raw}
    out: dict[str, list[Piece]] = {}
    for split, pieces in splits.items():
        if not isinstance(pieces, list) or not pieces:
            raise DataError(f"{path}: split {split!r} should be a non-empty list of pieces")
        out[split] = []
        for i, steps in enumerate(pieces):
            where = f"{path}: {split} piece {i}"
            if not isinstance(steps, list):
                raise DataError(f"{where}: expected a list of steps, got "
                                f"{type(steps).__name__}")
            if len(steps) < 2:
                raise DataError(f"{where} has {len(steps)} step(s): a piece needs at least two "
                                "(each step is predicted from the ones before)")
            roll = piano_roll(steps, where)
            if not roll.any():
                raise DataError(f"{where} has no notes")
            out[split].append(Piece(f"{split} piece {i}", roll))
    return out


def pick_split(splits: dict[str, list[Piece]], name: str, path: PathLike) -> list[Piece]:
    """One split of a file; a file of one unnamed split ("all") serves any name."""
    if name in splits:
        return splits[name]
    if list(splits) == ["all"]:
        return splits["all"]
    raise DataError(f"{path} has no split {name!r} (it has {', '.join(splits)})")


def music_batch(rolls: Sequence[Tensor]) -> Batch:
    """Next-frame prediction batch of rolls (each (T_i, 88), T_i >= 2): inputs are frames
    0..T_i-2 and targets frames 1..T_i-1, both (T, B, 88) with T = max T_i - 1, lengths
    T_i - 1: every frame but the first is predicted, from the frames before it."""
    if not rolls:
        raise ValueError("a batch needs at least one piece")
    lengths = torch.tensor([r.shape[0] - 1 for r in rolls], dtype=torch.long)
    if int(lengths.min()) < 1:
        raise ValueError("every piece needs at least two frames")
    steps = int(lengths.max())
    inputs = torch.zeros(steps, len(rolls), KEYS)
    targets = torch.zeros(steps, len(rolls), KEYS)
    for b, roll in enumerate(rolls):
        n = roll.shape[0] - 1
        inputs[:n, b] = roll[:-1]
        targets[:n, b] = roll[1:]
    return Batch(inputs, targets, lengths=lengths)


def write_midi(roll: Tensor, path: PathLike, step_seconds: float = 0.5, velocity: int = 80,
               program: int = 0) -> Path:
    """Write a (T, 88) roll as a one-track MIDI file (needs mido): a key held over consecutive
    steps is one note; ``step_seconds`` per step (0.5: quarter notes at 120 beats a minute)."""
    import mido

    if roll.dim() != 2 or roll.shape[1] != KEYS:
        raise ValueError(f"a piano roll is (T, {KEYS}), got {tuple(roll.shape)}")
    ticks_per_beat = 480
    tempo = 500_000  # microseconds per beat: 120 bpm
    ticks = max(1, round(step_seconds * 1e6 / tempo * ticks_per_beat))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    track.append(mido.Message("program_change", program=program, time=0))
    down = roll > 0.5
    previous = torch.zeros(KEYS, dtype=torch.bool)
    wait = 0
    for t in range(roll.shape[0] + 1):
        now = down[t] if t < roll.shape[0] else torch.zeros(KEYS, dtype=torch.bool)
        for k in (previous & ~now).nonzero().flatten().tolist():
            track.append(mido.Message("note_off", note=k + LOWEST, velocity=0, time=wait))
            wait = 0
        for k in (now & ~previous).nonzero().flatten().tolist():
            track.append(mido.Message("note_on", note=k + LOWEST, velocity=velocity, time=wait))
            wait = 0
        previous = now
        wait += ticks
    track.append(mido.MetaMessage("end_of_track", time=0))
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    midi.tracks.append(track)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(str(path))
    return path


def read_midi_roll(path: PathLike, step_seconds: float = 0.5) -> Tensor:
    """A MIDI file (as ``write_midi`` writes it, or any) sampled every ``step_seconds``: the
    keys sounding at the start of each step, (T, 88)."""
    import mido

    try:
        midi = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError) as error:
        raise DataError(f"{path} cannot be read as MIDI: {error}") from None
    sounding: set[int] = set()
    events: list[tuple[float, set[int]]] = []
    clock = 0.0
    for message in midi:  # time in seconds since the previous message
        clock += message.time
        if message.type in ("note_on", "note_off"):
            on = message.type == "note_on" and message.velocity > 0
            (sounding.add if on else sounding.discard)(message.note)
            events.append((clock, set(sounding)))
    steps = max(1, round(clock / step_seconds))
    roll = torch.zeros(steps, KEYS)
    for t in range(steps):
        moment = t * step_seconds + 1e-6
        current = set()
        for when, state in events:
            if when > moment:
                break
            current = state
        for note in current:
            if LOWEST <= note <= HIGHEST:
                roll[t, note - LOWEST] = 1.0
    return roll
