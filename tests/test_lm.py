"""Language models: the model, state carry-over, checkpoints, exact resume, learning, sampling,
evaluation, inspection and the `lstmlab lm` commands. Tiny texts only; no network."""

import io
import json
import math

import pytest
import torch
from rich.console import Console

import lstmlab
from lstmlab.cli import main
from lstmlab.experiments import lm_train
from lstmlab.experiments.lm_eval import evaluate, load_language_model
from lstmlab.experiments.lm_inspect import inspect, text_features
from lstmlab.experiments.lm_sample import sample
from lstmlab.experiments.lm_train import LMConfig, train_language_model
from lstmlab.io import checkpoint_files
from lstmlab.models.language import LanguageModel, sample_logits
from lstmlab.tasks.text import BatchStream, Vocabulary
from lstmlab.train import CheckpointError, TrainConfig, load_checkpoint, save_checkpoint
from lstmlab.train.loop import make_schedule

TEXT = 'the cat sat on the mat. (a dog) said "hello there".\n' * 40
TINY = dict(hidden=24, layers=1, seq_len=16, batch=4, lr=1e-2)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and a busy machine's other threads cannot stall
    them (OpenMP's barriers do when the cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def quiet() -> Console:
    return Console(file=io.StringIO())


def train(source, **kwargs):
    options = {**TINY, **kwargs}
    return train_language_model(source, progress=False, console=quiet(), **options)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text(TEXT)
    return path


@pytest.fixture(scope="module")
def run_dir(text_file, tmp_path_factory):
    """A small model that has learnt TEXT well."""
    out = tmp_path_factory.mktemp("run") / "run"
    result = train(text_file, out=out, steps=150, eval_every=50)
    assert result.best_valid is not None
    return out


# --- the model ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "lstm:CIFG", "gru", "rnn"])
def test_state_carried_across_windows_equals_one_pass(kind):
    torch.manual_seed(0)
    model = LanguageModel(11, kind, hidden_size=8, num_layers=2).eval()
    ids = torch.randint(0, 11, (30, 3))
    whole, _ = model(ids)
    first, state = model(ids[:12])
    second, _ = model(ids[12:], model.detach_state(state))
    torch.testing.assert_close(torch.cat([first, second]), whole)


def test_batch_stream_windows_continue_rows_through_the_model():
    """Windows of a BatchStream, state carried, give the logits of each row read whole."""
    torch.manual_seed(0)
    data = torch.randint(0, 7, (4 * 25 + 1,))
    stream = BatchStream(data, batch_size=4, seq_len=5)
    model = LanguageModel(7, "lstm", hidden_size=6, num_layers=1).eval()
    state, outputs = None, []
    for inputs, _ in stream:
        logits, state = model(inputs, state)
        state = model.detach_state(state)
        outputs.append(logits)
    rows = stream.inputs.t()  # (L, B)
    whole, _ = model(rows[: 5 * len(outputs)])
    torch.testing.assert_close(torch.cat(outputs), whole)


def test_detached_state_stops_gradients_at_the_window():
    model = LanguageModel(5, "lstm", hidden_size=4, num_layers=1)
    _, state = model(torch.randint(0, 5, (3, 2)))
    assert all(s.requires_grad for s in state)
    assert not any(s.requires_grad for s in model.detach_state(state))


def test_tied_weights_share_the_matrix_and_check_sizes(tmp_path):
    model = LanguageModel(9, "gru", hidden_size=6, num_layers=1, tie_weights=True)
    assert model.decoder.weight is model.embedding.weight
    with pytest.raises(ValueError, match="embedding size .* must equal the hidden size"):
        LanguageModel(9, "lstm", hidden_size=6, embedding_size=4, tie_weights=True)
    # shared storage goes through safetensors
    save_checkpoint(tmp_path, "tied", {f"model.{k}": v for k, v in model.state_dict().items()},
                    {"x": 1})


def test_step_schedule_halves_after_epochs():
    params = [torch.nn.Parameter(torch.zeros(1))]
    config = TrainConfig(optimizer="sgd", lr=1.0, schedule="step", gamma=0.5, decay_start=4,
                         decay_every=2)
    opt = torch.optim.SGD(params, lr=1.0)
    schedule = make_schedule(opt, config)
    lrs = []
    for _ in range(9):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert lrs == [1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.125]


# --- checkpoints and resume -------------------------------------------------------------------


def test_vocabulary_and_config_round_trip_through_checkpoint(run_dir, text_file):
    loaded = load_language_model(run_dir)
    assert loaded.vocab == Vocabulary.build(TEXT, "char")
    assert loaded.model.hidden_size == 24 and loaded.model.cell == "lstm"
    meta = json.loads((run_dir / "best.json").read_text())
    assert meta["kind"] == "language_model" and meta["extra"]["lm"]["config"]["seq_len"] == 16
    assert loaded.lm["config"]["seq_len"] == 16
    assert load_language_model(run_dir / "last.json").vocab == loaded.vocab
    assert isinstance(lstmlab.load(run_dir), LanguageModel)  # the one model format


def test_word_level_round_trip_and_perplexity(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("the cat sat on the mat\nthe dog sat on the log\n" * 30)
    result = train(path, level="word", out=tmp_path / "w", steps=40, eval_every=20, seq_len=8)
    loaded = load_language_model(tmp_path / "w")
    assert loaded.vocab.level == "word" and "<eos>" in loaded.vocab and "<unk>" in loaded.vocab
    assert not result.char_like
    scored = evaluate(tmp_path / "w", text="the cat sat on the zebra\n")
    assert scored.unknown == 1 and scored.tokens == 6 and scored.perplexity > 1
    words = "".join(sample(tmp_path / "w", "the", 20, seed=0)).split()
    assert words and all(w in loaded.vocab for w in words)


def test_split_files_give_a_test_figure(tmp_path):
    for split, lines in (("train", 30), ("valid", 5), ("test", 5)):
        (tmp_path / f"toy.{split}.txt").write_text("a b a c\n" * lines)
    by_dir = train(tmp_path, level="word", steps=5, eval_every=5, seq_len=4)
    by_file = train(tmp_path / "toy.train.txt", level="word", steps=5, eval_every=5, seq_len=4)
    assert by_dir.corpus == "toy" and by_dir.test is not None
    assert by_dir.test == by_file.test
    (tmp_path / "more.train.txt").write_text("x\n")
    with pytest.raises(ValueError, match="name the training file itself"):
        train(tmp_path, level="word", steps=5)


def _weights(path):
    return {k: v for k, v in load_checkpoint(path)[0].items() if k.startswith("model.")}


def test_resume_continues_exactly(text_file, tmp_path):
    common = dict(layers=2, dropout=0.2, eval_every=4)  # dropout: the RNG state matters too
    train(text_file, out=tmp_path / "whole", steps=10, **common)
    first = train(text_file, out=tmp_path / "split", steps=6, **common)
    assert first.steps == 6
    second = train(text_file, out=tmp_path / "split", steps=10, resume=True, **common)
    assert second.steps == 10
    whole = _weights(tmp_path / "whole" / "last.json")
    split = _weights(tmp_path / "split" / "last.json")
    assert whole.keys() == split.keys()
    for name in whole:
        assert torch.equal(whole[name], split[name]), name


def test_ctrl_c_then_resume_continues_exactly(text_file, tmp_path, monkeypatch):
    common = dict(layers=2, dropout=0.2, eval_every=4)
    train(text_file, out=tmp_path / "whole", steps=10, **common)
    original, calls = lm_train.WindowStep.__call__, []

    def interrupted(self, model, batch):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return original(self, model, batch)

    monkeypatch.setattr(lm_train.WindowStep, "__call__", interrupted)
    first = train(text_file, out=tmp_path / "split", steps=10, **common)
    assert first.stopped_by == "interrupt" and first.steps == 6
    monkeypatch.setattr(lm_train.WindowStep, "__call__", original)
    resumed = train(text_file, out=tmp_path / "split", resume=True, **common)
    assert resumed.steps == 10  # the budget is in the checkpoint: no flag needed
    whole = _weights(tmp_path / "whole" / "last.json")
    split = _weights(tmp_path / "split" / "last.json")
    assert all(torch.equal(whole[name], split[name]) for name in whole)


def test_resume_refuses_conflicts_and_overwrites(text_file, tmp_path):
    train(text_file, out=tmp_path / "r", steps=3)
    with pytest.raises(ValueError, match="--hidden 32 .*checkpoint has 24"):
        train(text_file, out=tmp_path / "r", steps=6, resume=True, hidden=32)
    with pytest.raises(ValueError, match="already holds a run; pass --resume"):
        train(text_file, out=tmp_path / "r", steps=6)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(text_file, out=tmp_path / "none", steps=6, resume=True)


def test_missing_and_corrupt_checkpoints_raise_clear_errors(run_dir, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_language_model(tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.mkdir()
    for file in checkpoint_files(run_dir / "best"):
        (broken / file.name).write_bytes(file.read_bytes())
    weights = checkpoint_files(broken / "best")[1]
    weights.write_bytes(weights.read_bytes()[:-40])  # cut off
    with pytest.raises(CheckpointError, match="incomplete"):
        load_language_model(broken)
    (broken / "best.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_language_model(broken)
    from lstmlab.models.sequence import SequenceModel

    lstmlab.save(SequenceModel("lstm", 2, 2, 4), tmp_path / "other", name="best")
    with pytest.raises(CheckpointError, match="'sequence'.*'language_model'"):
        load_language_model(tmp_path / "other")


# --- learning, sampling, evaluation -------------------------------------------------------------


def test_tiny_model_learns_repetitive_text(run_dir):
    """TEXT is one 52-character line repeated: a small LSTM predicts it almost perfectly
    (uniform over its 20 symbols would be ln 20 = 3.0 nats/char)."""
    best = load_language_model(run_dir).lm["valid"]
    assert best < 0.4
    assert evaluate(run_dir, text=TEXT[:520]).nats < 0.4


def test_top_k_one_is_greedy_and_deterministic(run_dir):
    a = "".join(sample(run_dir, "the cat", 60, top_k=1, seed=1))
    b = "".join(sample(run_dir, "the cat", 60, top_k=1, seed=2))
    assert a == b
    model = load_language_model(run_dir)
    ids = model.vocab.encode("the cat")
    greedy, state = [], None
    logits, state = model.model(ids.unsqueeze(1))
    for _ in range(60):
        greedy.append(int(logits[-1, 0].argmax()))
        logits, state = model.model(torch.tensor([[greedy[-1]]]), state)
    assert a == model.vocab.decode(greedy)


def test_seeds_are_reproducible(run_dir):
    a = "".join(sample(run_dir, None, 80, temperature=1.5, seed=7))
    assert a == "".join(sample(run_dir, None, 80, temperature=1.5, seed=7))
    assert a != "".join(sample(run_dir, None, 80, temperature=1.5, seed=8))


def test_only_top_k_ids_appear_and_temperature_sharpens():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(50, generator=generator)
    top = set(torch.topk(logits, 3).indices.tolist())
    drawn = {sample_logits(logits, 2.0, 3, generator) for _ in range(300)}
    assert drawn <= top and len(drawn) == 3
    cold = [sample_logits(logits, 0.01, None, generator) for _ in range(50)]
    assert set(cold) == {int(logits.argmax())}
    hot = {sample_logits(logits, 100.0, None, generator) for _ in range(300)}
    assert len(hot) > 20


def test_bad_sampling_arguments(run_dir):
    with pytest.raises(ValueError, match="temperature"):
        sample(run_dir, temperature=0)
    with pytest.raises(ValueError, match="top-k"):
        sample(run_dir, top_k=0)
    with pytest.raises(ValueError, match="'Z'"):
        sample(run_dir, prime="Zebra")


# --- inspect --------------------------------------------------------------------------------


def test_text_features():
    f = text_features(list('ab "c(d)" x\ny'))
    assert f["inside quotes"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    assert f["inside brackets"].tolist() == [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0]
    assert f["position in line"].tolist()[-3:] == [11, 0, 1]
    assert f["start of word"].tolist() == [1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1]


def test_inspect_writes_html_with_the_text(run_dir, tmp_path):
    out = tmp_path / "cells.html"
    result = inspect(run_dir, TEXT[:300], out=out, cell="1:3")
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "the</span>" not in page and ">h</span>" in page  # one span per character
    assert "&quot;" in page and "(layer 1, unit 3)" in page
    assert {f.feature for f in result.findings} == {"inside quotes", "inside brackets",
                                                    "position in line", "start of word"}
    assert result.shown == 3 and all(-1 <= f.r <= 1 for f in result.findings)
    with pytest.raises(ValueError, match="out of range"):
        inspect(run_dir, TEXT[:100], out=None, cell=10_000)


@pytest.mark.parametrize("kind", ["gru", "rnn", "lstm:CIFG"])
def test_inspect_other_cells(text_file, tmp_path, kind):
    train(text_file, out=tmp_path / kind, steps=3, eval_every=3, cell=kind, layers=2)
    result = inspect(tmp_path / kind, TEXT[:200], out=tmp_path / "p.html", top=1)
    assert len(result.findings) == 4 and (tmp_path / "p.html").exists()
    assert result.shown < 2 * 24


# --- the command line -----------------------------------------------------------------------


def test_cli_end_to_end(text_file, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["lm", "train", str(text_file), "--hidden", "16", "--layers", "1",
                 "--seq-len", "16", "--batch", "4", "--steps", "20", "--eval-every", "10",
                 "--out", str(out), "--no-progress"]) == 0
    assert (out / "best.json").exists() and all(f.exists() for f in checkpoint_files(out / "last"))
    assert main(["lm", "train", str(text_file), "--steps", "25", "--out", str(out),
                 "--resume", "--no-progress"]) == 0
    assert json.loads((out / "last.json").read_text())["trainer"]["state"]["step"] == 25
    capsys.readouterr()
    assert main(["lm", "sample", str(out), "--prime", "the", "--length", "30", "--seed",
                 "0", "--top-k", "3", "--temperature", "0.8"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("the") and len(text) == 3 + 30 + 1
    assert main(["lm", "eval", str(out), str(text_file)]) == 0
    assert "bits/char" in capsys.readouterr().out
    page = tmp_path / "p.html"
    assert main(["lm", "inspect", str(out), "a (c) t", "--out", str(page)]) == 0
    assert "inside brackets" in capsys.readouterr().out and page.exists()


@pytest.mark.parametrize("argv, message", [
    (["lm", "sample", "{ckpt}", "--temperature", "0"], "temperature"),
    (["lm", "sample", "{ckpt}", "--top-k", "0"], "top-k"),
    (["lm", "sample", "{ckpt}", "--prime", "QQ"], "'Q'"),
    (["lm", "sample", "{tmp}/nothing"], "no checkpoint"),
    (["lm", "eval", "{ckpt}", "{tmp}/missing.txt"], "not found"),
    (["lm", "train", "{tmp}/missing.txt", "--out", "{tmp}/x"], "not found"),
    (["lm", "train", "--tie", "--embedding", "8", "--hidden", "16", "--out", "{tmp}/y"],
     "must equal the hidden size"),
])
def test_cli_bad_inputs_exit_2_with_one_line(run_dir, tmp_path, capsys, argv, message):
    argv = [a.format(ckpt=run_dir, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_tensorboard_logs(text_file, tmp_path):
    pytest.importorskip("tensorboard")
    train(text_file, out=tmp_path / "tb", steps=8, eval_every=4, tensorboard=True)
    assert list((tmp_path / "tb" / "tensorboard").glob("events.out.tfevents.*"))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="seq-len"):
        LMConfig(seq_len=0)
    with pytest.raises(ValueError, match="level"):
        LMConfig(level="byte")
    assert math.isclose(LMConfig().lr, 2e-3)


def test_evaluation_does_not_depend_on_how_it_is_batched(run_dir, tmp_path):
    long_text = tmp_path / "long.txt"
    long_text.write_text(TEXT * 4)
    figures = [evaluate(run_dir, long_text, batch_size=b, seq_len=t).nats
               for b, t in ((1, 100), (3, 7), (64, 1000))]
    assert max(figures) - min(figures) < 1e-5 * figures[0]


def test_unknown_characters_are_refused_or_left_out(run_dir, tmp_path):
    odd = tmp_path / "odd.txt"
    odd.write_text("the cat sat on the mat. ~~ " * 20)  # '~' was never seen
    with pytest.raises(ValueError, match="pass --skip-unknown"):
        evaluate(run_dir, odd)
    scored = evaluate(run_dir, odd, skip_unknown=True)
    assert scored.skipped == 40 and scored.tokens == len("the cat sat on the mat.  ") * 20 - 1
    assert main(["lm", "eval", str(run_dir), str(odd), "--skip-unknown"]) == 0


def test_resume_falls_back_to_the_previous_checkpoint(text_file, tmp_path):
    run = tmp_path / "run"
    train(text_file, out=run, steps=6, eval_every=2)
    assert (run / "previous.json").exists()
    weights = checkpoint_files(run / "last")[1]
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # same size, one byte flipped: only the sha256 tells
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_language_model(run / "last.json")
    resumed = train(text_file, out=run, steps=8, eval_every=2, resume=True)
    assert resumed.steps == 8  # from the previous checkpoint (step 4) on to the new budget


def test_an_unbounded_variant_that_overflows_says_why(text_file, tmp_path):
    """NIAF+NOAF have no tanh on the cell: with a huge initialisation they overflow, and the
    error names the variant's unbounded activations instead of a bare FloatingPointError."""
    with pytest.raises(FloatingPointError, match="no tanh on the cell's input .NIAF. and output"):
        train(text_file, out=tmp_path / "u", steps=4, eval_every=2, cell="lstm:NIAF+NOAF",
              init_range=50.0)
