"""Property tests for every reader of user files: random and mutated bytes give a result or
lstmlab's own error (ValueError, CheckpointError or FileNotFoundError with a message) - never
another exception. LSTMLAB_PROPERTY_EXAMPLES sets the examples per reader (default 10,000)."""

import json
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstmlab.tasks.text import Corpus, Vocabulary, read_text
from lstmlab.train import CheckpointError, load_checkpoint, save_checkpoint

EXAMPLES = int(os.environ.get("LSTMLAB_PROPERTY_EXAMPLES", "10000"))
OURS = (ValueError, CheckpointError, FileNotFoundError)
RUN = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
               suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    """Overwrite bytes at (position, value) pairs, then maybe cut the tail."""
    out = bytearray(data)
    for position, value in edits:
        if out:
            out[position % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


def only_ours(call):
    """Run ``call``; a raised exception must be lstmlab's own, with a message."""
    try:
        return call()
    except OURS as error:
        assert type(error) in OURS, f"{type(error).__name__}: {error}"
        assert str(error).strip()
        return None


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6)
cuts = st.none() | st.integers(0, 400)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def test_text_corpora(folder):
    path = folder / "corpus.txt"
    good = b"First Citizen:\nBefore we proceed any further, hear me speak.\n"

    @RUN
    @given(st.binary(max_size=300) | st.builds(mutate, st.just(good), edits, cuts),
           st.sampled_from(["char", "word"]))
    def check(data, level):
        path.write_bytes(data)
        only_ours(lambda: read_text(path))
        only_ours(lambda: Corpus.from_file(path, level, valid_fraction=0.2))

    check()


def test_vocabularies(folder):
    path = folder / "vocab.json"
    good = json.dumps(Vocabulary.build("hello world", "char").to_dict()).encode()

    @RUN
    @given(st.binary(max_size=200) | st.builds(mutate, st.just(good), edits, cuts)
           | st.builds(lambda v: json.dumps(v).encode(), json_values)
           | st.builds(lambda level, symbols: json.dumps(
               {"format": "lstmlab-vocabulary", "version": 1, "level": level,
                "symbols": symbols}).encode(), json_values, json_values))
    def check(data):
        path.write_bytes(data)
        only_ours(lambda: Vocabulary.load(path))

    check()


def test_checkpoint_json(folder):
    save_checkpoint(folder, "ck", {"model.w": torch.ones(3)}, {"kind": "x", "note": "y"})
    index = folder / "ck.json"
    good = index.read_bytes()
    meta = json.loads(good)

    @RUN
    @given(st.binary(max_size=200) | st.builds(mutate, st.just(good), edits, cuts)
           | st.builds(lambda key, value: json.dumps({**meta, key: value}).encode(),
                       st.sampled_from(sorted(meta)), json_values))
    def check(data):
        index.write_bytes(data)
        only_ours(lambda: load_checkpoint(index))

    check()
    index.write_bytes(good)
