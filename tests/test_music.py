"""Polyphonic music: the piece reader (JSON, the pickle through a numpy-only unpickler, gzip),
piano rolls and batches, the frame NLL checked by hand, MIDI out and back, learning a repeating
chord pattern, and `lstmlab music`."""

import gzip
import io
import json
import math
import os
import pickle
import random

import numpy as np
import pytest
import torch
from rich.console import Console

import lstmlab
from lstmlab.cli import main
from lstmlab.experiments.music import (
    evaluate_music,
    generate_music,
    load_music_model,
    pieces_nll,
    train_music,
)
from lstmlab.metrics import frame_nll
from lstmlab.models.classifier import TextClassifier
from lstmlab.models.music import MusicModel
from lstmlab.tasks.files import DataError
from lstmlab.tasks.music import (
    KEYS,
    music_batch,
    piano_roll,
    pitches,
    read_midi_roll,
    read_pieces,
    write_midi,
)
from lstmlab.train import CheckpointError

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


SMALL = {"train": [[[60, 64, 67], [], [62, 65, 69]], [[21], [108]]],
         "valid": [[[60], [64]]]}


# --- reading --------------------------------------------------------------------------------


def test_reads_json_pickle_and_gzip_alike(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(SMALL))
    # the pickle as the JSB file has it: tuples of numpy int64, protocol 2
    as_numpy = {k: [[tuple(np.int64(p) for p in step) for step in piece] for piece in v]
                for k, v in SMALL.items()}
    (tmp_path / "a.pickle").write_bytes(pickle.dumps(as_numpy, protocol=2))
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(json.dumps(SMALL).encode()))
    for name in ("a.json", "a.pickle", "a.json.gz"):
        splits = read_pieces(tmp_path / name)
        assert set(splits) == {"train", "valid"}
        first = splits["train"][0]
        assert first.roll.shape == (3, KEYS) and first.name == "train piece 0"
        assert pitches(first.roll) == [[60, 64, 67], [], [62, 65, 69]]
        assert pitches(splits["train"][1].roll) == [[21], [108]]  # the piano's two ends


def test_the_unpickler_builds_numbers_only(tmp_path):
    (tmp_path / "evil.pickle").write_bytes(pickle.dumps({"train": [[[os.getpid]]]}, protocol=2))
    with pytest.raises(DataError, match="refusing to load"):
        read_pieces(tmp_path / "evil.pickle")


@pytest.mark.parametrize("data, message", [
    ({"train": [[[60], [20]]]}, r"train piece 0, step 1: pitch 20 is outside the piano's "
                                r"21..108"),
    ({"train": [[[60]], [[109], [60]]]}, r"train piece 0 has 1 step"),
    ({"train": [[[60], [62]], [[], []]]}, "train piece 1 has no notes"),
    ({"train": [[[60], [61.5]]]}, r"step 1: pitch 61.5 is not an integer"),
    ({"train": []}, "split 'train' should be a non-empty list"),
])
def test_bad_pieces_are_named(tmp_path, data, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=message) as caught:
        read_pieces(path)
    assert str(path) in str(caught.value)


def test_broken_json_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"train": [\n[[60], [62]],\n]}')
    with pytest.raises(DataError, match="bad.json, line 3: not JSON"):
        read_pieces(path)


def test_batch_predicts_each_frame_from_the_ones_before():
    a, b = piano_roll([[60], [62], [64]]), piano_roll([[70], [72]])
    batch = music_batch([a, b])
    assert batch.inputs.shape == batch.targets.shape == (2, 2, KEYS)
    assert batch.lengths.tolist() == [2, 1]
    assert torch.equal(batch.inputs[:, 0], a[:2]) and torch.equal(batch.targets[:, 0], a[1:])
    assert torch.equal(batch.targets[0, 1], b[1]) and not batch.mask[1, 1]


# --- the frame NLL ----------------------------------------------------------------------------


def test_frame_nll_of_a_two_frame_piece_by_hand():
    # frame 1 predicted from frame 0: keys 39 and 43 (MIDI 60, 64) sound, the rest do not
    target = piano_roll([[60, 64]])  # (1, 88)
    logits = torch.full((1, 1, KEYS), -3.0)
    logits[0, 0, 39] = 2.0
    logits[0, 0, 43] = -1.0
    expected = (-math.log(1 / (1 + math.exp(-2.0)))      # key 39: -log sigmoid(2)
                - math.log(1 / (1 + math.exp(1.0)))      # key 43: -log sigmoid(-1)
                + 86 * math.log(1 + math.exp(-3.0)))     # 86 silent keys: -log(1 - sigmoid(-3))
    total, frames = frame_nll(logits, target.unsqueeze(1))
    assert frames == 1 and total == pytest.approx(expected, rel=1e-9)
    # uniform logits: ln 2 per key, whatever the frame
    total, _ = frame_nll(torch.zeros(1, 1, KEYS), target.unsqueeze(1))
    assert total == pytest.approx(KEYS * math.log(2))


def test_pieces_nll_is_frame_weighted_and_batching_free():
    torch.manual_seed(0)
    model = MusicModel(cell="lstm:NFG", hidden_size=8, dropout=0.0).eval()
    rng = random.Random(0)
    rolls = [piano_roll([[rng.randint(50, 70)] for _ in range(n)]) for n in (2, 7, 4)]
    totals = []
    for roll in rolls:  # each piece alone from a zero state, as Bai et al.'s loop does
        with torch.no_grad():
            logits, _ = model(roll[:-1].unsqueeze(1))
        totals.append(frame_nll(logits, roll[1:].unsqueeze(1)))
    mean, frames = pieces_nll(model, rolls, batch_size=2)
    assert frames == 1 + 6 + 3
    assert mean == pytest.approx(sum(t for t, _ in totals) / frames, rel=1e-5)


# --- MIDI ---------------------------------------------------------------------------------------


def test_midi_round_trip(tmp_path):
    roll = piano_roll([[60, 64], [60, 64], [], [21, 108], [67]])  # a held chord, a rest
    path = write_midi(roll, tmp_path / "x.mid")
    import mido

    notes = [m for m in mido.MidiFile(str(path)) if m.type == "note_on"]
    assert len(notes) == 5  # the chord held over two steps is one note each
    assert torch.equal(read_midi_roll(path), roll)


# --- learning --------------------------------------------------------------------------------

CHORDS = [[60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67, 72]]  # C F G C'


def chord_pieces(n: int, seed: int) -> list:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        start = rng.randrange(4)
        out.append([CHORDS[(start + t) % 4] for t in range(rng.randint(8, 16))])
    return out


@pytest.fixture(scope="module")
def chord_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("chords") / "chords.json"
    path.write_text(json.dumps({"train": chord_pieces(40, 1), "valid": chord_pieces(10, 2),
                                "test": chord_pieces(10, 3)}))
    return path


@pytest.fixture(scope="module")
def trained(chord_file):
    out = chord_file.parent / "run"
    result = train_music(chord_file, out=out, epochs=100, hidden=32, batch=8, lr=0.02,
                         dropout=0.0, progress=False, console=Console(file=io.StringIO()))
    return out, result


def test_learns_a_repeating_chord_pattern(trained, chord_file):
    out, result = trained
    # what independent keys at their training frequencies would score (no memory of the past)
    rolls = [r.roll for r in read_pieces(chord_file)["train"]]
    p = torch.cat(rolls).mean(0).clamp(1e-6, 1 - 1e-6)
    entropy = float(-(p * p.log() + (1 - p) * (1 - p).log()).sum())
    assert entropy > 3.0
    assert result.test_nll < 0.5  # the next chord is certain after the first
    assert result.test_frames == sum(len(p) - 1 for p in chord_pieces(10, 3))
    assert evaluate_music(out, chord_file).nll == pytest.approx(result.test_nll, rel=1e-6)
    assert isinstance(lstmlab.load(out), MusicModel)  # the one model format


def test_generation_continues_the_pattern(trained, tmp_path, chord_file):
    out, _ = trained
    made = generate_music(out, tmp_path / "g.mid", steps=8, temperature=0.2, seed=0,
                          prime=chord_file, split="test", piece=0, prime_steps=3)
    assert made.primed == 3 and made.roll.shape == (11, KEYS)
    assert made.midi.exists() and made.png.exists()
    chords = pitches(made.roll)
    start = CHORDS.index(chords[0])
    assert chords == [CHORDS[(start + t) % 4] for t in range(11)]
    silent = generate_music(out, tmp_path / "s.mid", steps=5, seed=1, png=False)
    assert silent.roll.shape == (5, KEYS) and silent.png is None


def test_a_checkpoint_of_another_kind_is_refused(tmp_path):
    lstmlab.save(TextClassifier(5, 2), tmp_path / "m")
    with pytest.raises(CheckpointError, match="holds a 'classifier' model, not a 'music'"):
        load_music_model(tmp_path / "m")


def test_music_commands(chord_file, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["music", "train", str(chord_file), "--steps", "10", "--hidden", "8",
                 "--model", "gru", "--no-progress", "--out", str(out),
                 "--json", str(tmp_path / "r.json")]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["steps"] == 10 and result["test_nll"] > 0
    assert main(["music", "eval", str(out), str(chord_file), "--split", "valid"]) == 0
    assert "valid: frame NLL" in capsys.readouterr().out
    assert main(["music", "generate", str(out), "--out", str(tmp_path / "p.mid"),
                 "--steps", "4", "--seed", "3"]) == 0
    assert (tmp_path / "p.mid").exists() and (tmp_path / "p.png").exists()
    assert main(["music", "eval", str(out), str(chord_file), "--split", "nope"]) == 2
    assert "has no split 'nope'" in capsys.readouterr().err
