"""One model format: save/load of every model kind, atomic checkpoints verified on loading, the
one atomic-write helper, and checkpoints written by the previous release."""

import json
import os
import random
from pathlib import Path

import pytest
import torch
from torch import nn

import lstmlab
from lstmlab.io import (
    CheckpointError,
    atomic_write,
    atomic_write_text,
    checkpoint_files,
    read_checkpoint,
    read_meta,
    resolve,
    write_checkpoint,
)
from lstmlab.models import registry
from lstmlab.models.language import LanguageModel
from lstmlab.models.registry import load_saved, model_meta, model_tensors
from lstmlab.models.sequence import SequenceModel
from lstmlab.tasks.text import Vocabulary

FIXTURE = Path(__file__).parent / "fixtures" / "lm_v1"  # written by train_language_model at
# 17f6e42 (format version 1): hidden 4, 1 layer, 32 characters


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sequence_model(seed: int = 0, cell: str = "lstm:V", hidden: int = 5) -> SequenceModel:
    torch.manual_seed(seed)
    forget_bias = 1.0 if cell in {"lstm", "lstm:V"} else None  # CIFG has no forget gate
    return SequenceModel(cell, 3, 2, hidden_size=hidden, num_layers=2, forget_bias=forget_bias)


def same_outputs(a: nn.Module, b: nn.Module, inputs: torch.Tensor) -> bool:
    with torch.no_grad():
        out_a, out_b = a(inputs), b(inputs)
    out_a = out_a[0] if isinstance(out_a, tuple) else out_a
    out_b = out_b[0] if isinstance(out_b, tuple) else out_b
    return torch.equal(out_a, out_b)


def edit_json(path: Path, **changes) -> None:
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        meta[key] = value
    path.write_text(json.dumps(meta))


# --- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm:V", "lstm:CIFG"])
def test_sequence_model_round_trip(tmp_path, kind):
    model = sequence_model(cell=kind)
    path = lstmlab.save(model, tmp_path, extra={"task": "adding", "lag": 100})
    assert path == tmp_path / "model.json"
    saved = load_saved(tmp_path)
    assert type(saved.model) is SequenceModel and not saved.model.training
    assert saved.kind == "sequence" and saved.config == model.config()
    assert saved.extra == {"task": "adding", "lag": 100}
    assert saved.meta["lstmlab"] == lstmlab.__version__
    assert same_outputs(model, saved.model, torch.randn(7, 4, 3))


def test_language_model_round_trip_with_tied_weights(tmp_path):
    torch.manual_seed(1)
    model = LanguageModel(9, "gru", hidden_size=6, num_layers=2, tie_weights=True, dropout=0.1)
    vocab = {"format": "lstmlab.vocabulary", "version": 1, "level": "char",
             "symbols": list("abcdefghi")}
    lstmlab.save(model, tmp_path, extra={"vocabulary": vocab}, name="best")
    rng = torch.get_rng_state()
    saved = load_saved(tmp_path, kind="language_model")
    assert torch.equal(torch.get_rng_state(), rng), "loading must not move the caller's RNG"
    loaded = saved.model
    assert loaded.decoder.weight is loaded.embedding.weight  # tied again, not two copies
    assert saved.extra["vocabulary"] == vocab and saved.config == model.config()
    model.eval()
    assert same_outputs(model, loaded, torch.randint(0, 9, (5, 3)))


def test_float64_and_wrapped_models_round_trip(tmp_path):
    model = sequence_model().double()
    lstmlab.save(nn.DataParallel(model), tmp_path)  # a wrapper is looked through
    tensors, _ = read_checkpoint(tmp_path)
    assert all(key.startswith("model.recurrent.") or key.startswith("model.head.")
               for key in tensors)
    loaded = lstmlab.load(tmp_path)
    assert next(loaded.parameters()).dtype == torch.float64
    assert same_outputs(model, loaded, torch.randn(4, 2, 3, dtype=torch.float64))


def test_a_training_checkpoint_loads_as_a_model_and_folders_prefer_best(tmp_path):
    model, other = sequence_model(0), sequence_model(1)
    state = {**model_tensors(model), "optimizer.0.exp_avg": torch.ones(3), "rng.torch":
             torch.get_rng_state()}
    write_checkpoint(tmp_path, "last", state, {**model_meta(model), "trainer": {"step": 7}})
    x = torch.randn(5, 2, 3)
    assert same_outputs(model, lstmlab.load(tmp_path), x)  # only last: the folder means it
    lstmlab.save(other, tmp_path, name="best")
    assert same_outputs(other, lstmlab.load(tmp_path), x)  # best wins over last
    assert same_outputs(model, lstmlab.load(tmp_path / "last"), x)
    assert same_outputs(model, lstmlab.load(tmp_path / "last.json"), x)
    weights = checkpoint_files(tmp_path / "last")[1]
    assert same_outputs(model, lstmlab.load(weights), x)  # NAME.<h>.safetensors resolves too


# --- atomic writes ------------------------------------------------------------------------------


def test_atomic_write_replaces_whole_files_or_nothing(tmp_path):
    target = tmp_path / "sub" / "notes.txt"
    atomic_write_text(target, "first")
    assert target.read_text() == "first"

    def fails(tmp):
        Path(tmp).write_text("half of the sec")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, fails)
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["notes.txt"]


def test_written_files_follow_the_umask_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        lstmlab.save(sequence_model(), tmp_path / "m")
    finally:
        os.umask(old)
    files = [tmp_path / "a.txt", *checkpoint_files(tmp_path / "m")]
    assert [f.stat().st_mode & 0o777 for f in files] == [0o644] * 3


class Killed(BaseException):
    """Stands for SIGKILL at a chosen moment (nothing after it runs, cleanup aside)."""


def test_a_save_interrupted_at_any_step_leaves_the_old_or_the_new_checkpoint(
        tmp_path, monkeypatch):
    old, new = sequence_model(0), sequence_model(1)
    x = torch.randn(3, 2, 3)
    real_replace, real_unlink = os.replace, Path.unlink
    outcomes = []
    for moment in range(1, 20):  # each file operation of a save, in turn, is the one killed
        lstmlab.save(old, tmp_path)
        calls = 0

        def counted(real, moment=moment):
            def operation(*args, **kwargs):
                nonlocal calls
                calls += 1
                if calls == moment:
                    raise Killed
                return real(*args, **kwargs)
            return operation

        monkeypatch.setattr(os, "replace", counted(real_replace))
        monkeypatch.setattr(Path, "unlink", counted(real_unlink))
        try:
            lstmlab.save(new, tmp_path)
        except Killed:
            pass
        else:
            break
        finally:
            monkeypatch.undo()
        loaded = lstmlab.load(tmp_path)  # verified: size and sha256 of what the JSON names
        outcomes.append("new" if same_outputs(loaded, new, x) else
                        "old" if same_outputs(loaded, old, x) else "torn")
    # killed at the weights' rename, at the JSON's rename (the commit), after it
    assert outcomes == ["old", "old", "new"]
    assert same_outputs(lstmlab.load(tmp_path), new, x)
    # what a SIGKILL can leave: temporaries of both files; the next save clears them
    (tmp_path / ".model.json.0123abcd.tmp").write_text("{")
    (tmp_path / ".model.0123456789abcdef.safetensors.89abcdef.tmp").write_bytes(b"\0")
    lstmlab.save(old, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        sorted(p.name for p in checkpoint_files(tmp_path))


def test_weights_written_but_not_committed_leave_the_old_checkpoint(tmp_path, monkeypatch):
    old, new = sequence_model(0), sequence_model(1)
    lstmlab.save(old, tmp_path)
    before = (tmp_path / "model.json").read_text()
    import lstmlab.io as io

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(io, "atomic_write_text", killed)  # dies just before the JSON's rename
    with pytest.raises(Killed):
        lstmlab.save(new, tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "model.json").read_text() == before
    assert len(list(tmp_path.glob("model.*.safetensors"))) == 2  # the orphan is harmless
    assert same_outputs(old, lstmlab.load(tmp_path), torch.randn(3, 2, 3))


def test_a_reader_racing_a_writer_reads_the_new_checkpoint(tmp_path, monkeypatch):
    old, new = sequence_model(0), sequence_model(1)
    lstmlab.save(old, tmp_path)
    real_read = Path.read_bytes
    raced = []

    def read_bytes(path):
        if path.suffix == ".safetensors" and not raced:  # the JSON is read, the weights not yet
            raced.append(path)
            monkeypatch.setattr(Path, "read_bytes", real_read)
            lstmlab.save(new, tmp_path)  # commits, then removes the weights the reader wants
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    loaded = lstmlab.load(tmp_path)
    assert raced and not raced[0].exists()
    assert same_outputs(loaded, new, torch.randn(3, 2, 3))


# --- damaged and foreign checkpoints ------------------------------------------------------------


@pytest.fixture
def saved_dir(tmp_path):
    lstmlab.save(sequence_model(), tmp_path / "run", name="best")
    return tmp_path / "run"


def test_same_size_corruption_is_caught_by_the_checksum(saved_dir):
    weights = checkpoint_files(saved_dir)[1]
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x10  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"does not match the sha256 .*corrupt"):
        lstmlab.load(saved_dir)


def test_truncated_and_missing_weights(saved_dir):
    weights = checkpoint_files(saved_dir)[1]
    data = weights.read_bytes()
    weights.write_bytes(data[:-10])
    with pytest.raises(CheckpointError, match=f"{weights.name} has .* bytes but .*incomplete"):
        lstmlab.load(saved_dir)
    weights.unlink()
    with pytest.raises(CheckpointError, match=f"names {weights.name}, which is missing"):
        lstmlab.load(saved_dir)


def test_invalid_foreign_and_newer_json(saved_dir):
    index = saved_dir / "best.json"
    good = index.read_text()
    edit_json(index, version=3)
    with pytest.raises(CheckpointError, match="newer lstmlab .*version 3.*reads versions 1 to 2"):
        lstmlab.load(saved_dir)
    index.write_text(good[:-20])
    with pytest.raises(CheckpointError, match="best.json is not valid JSON"):
        lstmlab.load(saved_dir)
    index.write_text(json.dumps({"weights": "x.bin"}))
    with pytest.raises(CheckpointError, match='not an lstmlab checkpoint .*"format"'):
        lstmlab.load(saved_dir)
    index.write_text(good)
    edit_json(index, tensors="../elsewhere.safetensors")
    with pytest.raises(CheckpointError, match="must name a .safetensors file beside it"):
        lstmlab.load(saved_dir)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        lstmlab.load(saved_dir / "nothing")
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        lstmlab.load(saved_dir.parent)


def test_unknown_kind_wrong_kind_and_no_model(saved_dir):
    index = saved_dir / "best.json"
    with pytest.raises(CheckpointError, match="holds a 'sequence' model; a 'language_model' "
                                              "model is needed"):
        lstmlab.load(saved_dir, kind="language_model")
    with pytest.raises(ValueError, match="unknown model kind 'sequnce'; known: .*sequence"):
        lstmlab.load(saved_dir, kind="sequnce")
    edit_json(index, kind="segmenter")
    with pytest.raises(CheckpointError, match="unknown kind 'segmenter' .*known: "
                                              ".*language_model.*sequence"):
        lstmlab.load(saved_dir)
    write_checkpoint(saved_dir, "best", {"w": torch.ones(2)}, {"note": "no model here"})
    with pytest.raises(CheckpointError, match='holds no model description .*"kind"'):
        lstmlab.load(saved_dir)


def test_configurations_that_do_not_build_or_do_not_fit(saved_dir):
    index = saved_dir / "best.json"
    config = json.loads(index.read_text())["config"]
    edit_json(index, config={**config, "hidden_size": 6})
    with pytest.raises(CheckpointError, match=r"do not fit the model configuration .*"
                                              r"recurrent.weight_hh_l0 is \(20, 5\), the "
                                              r"configuration makes it \(24, 6\)"):
        lstmlab.load(saved_dir)
    edit_json(index, config={**config, "num_layers": 1})
    with pytest.raises(CheckpointError, match="unexpected recurrent.*_l1"):
        lstmlab.load(saved_dir)
    edit_json(index, config={**config, "cell": "lstm:XYZ"})
    with pytest.raises(CheckpointError, match="configuration does not build a 'sequence' model"):
        lstmlab.load(saved_dir)
    edit_json(index, config={**config, "colour": "red"})
    with pytest.raises(CheckpointError, match="does not build .*TypeError.*colour"):
        lstmlab.load(saved_dir)
    edit_json(index, config=[1, 2])
    with pytest.raises(CheckpointError, match="configuration must be a JSON object"):
        lstmlab.load(saved_dir)


def test_a_configuration_far_too_large_for_its_weights_is_stopped_while_building(
        tmp_path, monkeypatch):
    """A corrupt or hostile configuration with huge sizes must not allocate (and initialise)
    them: building stops at a few times the weights' size."""
    monkeypatch.setattr(registry, "_KINDS", dict(registry._KINDS))
    monkeypatch.setattr(registry, "BUILD_SLACK", 1000)
    built = []

    @registry.register("probe")
    class Probe(nn.Module):
        def __init__(self, size: int) -> None:
            super().__init__()
            self.size = size
            self.weight = nn.Parameter(torch.zeros(size))
            built.append(size)

        def config(self):
            return {"size": self.size}

    lstmlab.save(Probe(100), tmp_path)
    edit_json(tmp_path / "model.json", config={"size": 400})  # 1,600 bytes: fits the budget
    with pytest.raises(CheckpointError, match=r"weight is \(100,\), the configuration makes "
                                              r"it \(400,\)"):
        lstmlab.load(tmp_path)
    edit_json(tmp_path / "model.json", config={"size": 10**6})
    with pytest.raises(CheckpointError, match="does not fit the weights .*allocates 4,000,000 "
                                              "bytes or more, for 400 bytes of weights"):
        lstmlab.load(tmp_path)
    assert built == [100, 400], "the huge one never finished building"
    edit_json(tmp_path / "model.json", config={"size": 100})
    assert lstmlab.load(tmp_path).weight.shape == (100,)


def test_mutated_json_gives_a_model_or_a_checkpoint_error(saved_dir):
    """Random damage to the JSON: the only outcomes are a loaded model or a CheckpointError
    (sizes in the configuration are left alone: a huge one is refused, but building the
    skeleton of a million layers would take the test's time)."""
    index = saved_dir / "best.json"
    good = index.read_bytes()
    rng = random.Random(0)
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(150):
        data = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            action = rng.choice(["delete", "insert", "replace"])
            if action == "delete":
                del data[at:at + rng.randint(1, 8)]
            elif action == "insert":
                data[at:at] = bytes(rng.choice(b'{}[]":,nul\\\xff ') for _ in range(3))
            elif chr(data[at]) not in "0123456789":
                data[at] = rng.choice(b'{}[]":,ntrue\x00\xc3')
        index.write_bytes(bytes(data))
        try:
            lstmlab.load(saved_dir)
            outcomes["loaded"] += 1
        except CheckpointError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(ValueError, match="GRU is not a registered model kind"):
        lstmlab.save(lstmlab.GRU(3, 4), tmp_path)
    with pytest.raises(ValueError, match="extra must be JSON-able"):
        lstmlab.save(sequence_model(), tmp_path, extra={"tensor": torch.ones(1)})
    assert not any(tmp_path.iterdir()), "a refused save writes nothing"
    with pytest.raises(ValueError, match="takes a folder"):
        lstmlab.save(sequence_model(), tmp_path / "model.json")
    with pytest.raises(ValueError, match="plain file name"):
        lstmlab.save(sequence_model(), tmp_path, name="../escape")
    with pytest.raises(ValueError, match="may not set version"):
        write_checkpoint(tmp_path, "x", {}, {"version": 7})


# --- checkpoints of the previous release ---------------------------------------------------------


def test_language_model_checkpoint_of_the_previous_release_loads():
    saved = load_saved(FIXTURE, kind="language_model")
    assert saved.path == FIXTURE / "best.json" and saved.meta["version"] == 1
    model = saved.model
    assert isinstance(model, LanguageModel) and not model.training
    assert (model.vocab_size, model.hidden_size, model.cell) == (32, 4, "lstm")
    vocab = Vocabulary.from_dict(saved.extra["vocabulary"])
    assert len(vocab) == 32 and saved.extra["lm"]["step"] == 2
    ids = torch.as_tensor(vocab.encode("To be")).unsqueeze(1)
    with torch.no_grad():
        logits, _ = model(ids)
    # the logits the release that wrote the fixture computed for this input
    expected = torch.tensor([-0.0104489028, -0.2152532339, -0.0351359025, 0.5603576899])
    assert torch.allclose(logits[-1, 0, :4], expected, atol=1e-7)
    for path in (FIXTURE / "best", FIXTURE / "best.json", FIXTURE / "best.safetensors"):
        assert resolve(path) == FIXTURE / "best.json"
    assert read_meta(FIXTURE)[1]["kind"] == "lstmlab.language_model"


def test_previous_release_checkpoints_are_checked_by_size(tmp_path):
    for file in checkpoint_files(FIXTURE):
        (tmp_path / file.name).write_bytes(file.read_bytes())
    weights = tmp_path / "best.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1])
    with pytest.raises(CheckpointError, match="incomplete"):
        lstmlab.load(tmp_path)


def test_saving_over_a_previous_release_checkpoint_replaces_it(tmp_path):
    for file in checkpoint_files(FIXTURE):
        (tmp_path / file.name).write_bytes(file.read_bytes())
    model = lstmlab.load(tmp_path)
    lstmlab.save(model, tmp_path, name="best")
    assert not (tmp_path / "best.safetensors").exists()  # version 1's weights, now stale
    assert read_meta(tmp_path)[1]["version"] == 2
    assert same_outputs(model, lstmlab.load(tmp_path), torch.tensor([[1], [2]]))
