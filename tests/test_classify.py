"""Many-to-one: the labelled-text reader (SST, TSV, gzip), word batches, the classifier's
pooling, the metrics, learning a task that needs word order, and `lstmlab classify`."""

import gzip
import io
import json
import random

import pytest
import torch
from rich.console import Console

import lstmlab
from lstmlab.cli import main
from lstmlab.experiments.classify import (
    evaluate_classifier,
    load_classifier,
    predict_texts,
    train_classifier,
)
from lstmlab.metrics import accuracy, classification_report
from lstmlab.models.classifier import POOLINGS, ClassifierEnsemble, TextClassifier
from lstmlab.models.tagger import SequenceTagger
from lstmlab.tasks.files import DataError
from lstmlab.tasks.sentiment import (
    classification_batch,
    detect_format,
    read_labelled,
    split_examples,
)
from lstmlab.tasks.words import WordVocabulary
from lstmlab.train import CheckpointError

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def order_task(n: int, seed: int) -> str:
    """TSV lines whose label says whether "a" comes before "b": the same bag of words can
    carry either label, so only a model that reads the order beats chance."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        words = [rng.choice("x y z w v".split()) for _ in range(rng.randint(2, 7))]
        first, second = sorted(rng.sample(range(len(words) + 2), 2))
        a_first = rng.random() < 0.5
        words.insert(first, "a" if a_first else "b")
        words.insert(second, "b" if a_first else "a")
        lines.append(f"{'pos' if a_first else 'neg'}\t{' '.join(words)}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def order_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("order")
    (root / "train.tsv").write_text(order_task(400, 1))
    (root / "valid.tsv").write_text(order_task(100, 2))
    (root / "test.tsv").write_text(order_task(200, 3))
    return root


@pytest.fixture(scope="module")
def trained(order_files):
    out = order_files / "run"
    result = train_classifier(order_files / "train.tsv", valid=order_files / "valid.tsv",
                              test=order_files / "test.tsv", out=out, epochs=15, hidden=32,
                              embedding=16, lr=0.01, pooling="last", progress=False,
                              console=Console(file=io.StringIO()))
    return out, result


# --- reading --------------------------------------------------------------------------------


def test_reads_sst_and_tsv_detected_from_the_file(tmp_path):
    sst = tmp_path / "a.txt"
    sst.write_text("1 a fine , moving film .\n\n0 dull\n")
    data = read_labelled(sst)
    assert data.format == "sst" and data.blank_lines == 1
    assert [(e.label, e.words, e.line) for e in data.examples] == [
        ("1", ("a", "fine", ",", "moving", "film", "."), 1), ("0", ("dull",), 3)]
    tsv = tmp_path / "b.tsv"
    tsv.write_text("very good\tI liked it\nbad\t  not at all \n")
    data = read_labelled(tsv)
    assert data.format == "tsv"
    assert [(e.label, e.words) for e in data.examples] == [
        ("very good", ("I", "liked", "it")), ("bad", ("not", "at", "all"))]
    # forced: the same TSV read as SST takes the first word as the label
    assert read_labelled(tsv, "sst").examples[0].label == "very"


def test_reads_gzip_whatever_the_name(tmp_path):
    path = tmp_path / "data.txt"  # no .gz suffix: found by its magic bytes
    path.write_bytes(gzip.compress(b"pos\tgreat fun\nneg\tboring\n"))
    data = read_labelled(path)
    assert data.format == "tsv" and [e.label for e in data.examples] == ["pos", "neg"]


def test_detect_format_looks_at_the_first_non_blank_line():
    assert detect_format(["", "1\tx y"]) == "tsv"
    assert detect_format(["  ", "1 x y", "0\tz"]) == "sst"


@pytest.mark.parametrize("text, format, message", [
    ("pos\tfine\nno tab here\n", "auto", "line 2: no tab"),
    ("\tfine\n", "tsv", "line 1: no label before the tab"),
    ("1 good\n0\n", "auto", "line 2: label '0' without text"),
    ("pos\t   \n", "auto", "line 1: label 'pos' without text"),
    ("\n\n", "auto", "is empty"),
])
def test_bad_lines_name_the_file_and_line(tmp_path, text, format, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as caught:
        read_labelled(path, format)
    assert str(path) in str(caught.value)


def test_split_is_deterministic_and_disjoint(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text(order_task(50, 0))
    examples = read_labelled(path).examples
    rest, held = split_examples(examples, 0.2)
    again = split_examples(examples, 0.2)
    assert (rest, held) == again
    assert len(held) == 10 and len(rest) == 40
    assert {e.line for e in rest}.isdisjoint({e.line for e in held})


# --- batches and the model ------------------------------------------------------------------


def test_vocabulary_min_freq_unknown_words_and_batch_layout():
    vocab = WordVocabulary.build([["the", "cat"], ["the", "dog"]], min_freq=2, chars=True)
    assert vocab.words.symbols == ("<unk>", "the")
    batch = classification_batch(vocab, [["the", "cat"], ["dog"]], [1, 0])
    assert batch.inputs.tolist() == [[1, 0], [0, 0]]  # (T, B): unseen words -> <unk> = 0
    assert batch.lengths.tolist() == [2, 1]
    assert batch.mask.tolist() == [[False, True], [True, False]]  # the last word is scored
    assert batch.targets[1, 0] == 1 and batch.extras["labels"].tolist() == [1, 0]
    chars = vocab.chars
    assert batch.extras["char_lengths"].tolist() == [[3, 3], [3, 0]]
    assert batch.extras["chars"][0, 1].tolist() == [chars.index(c) for c in "cat"]


@pytest.mark.parametrize("pooling", POOLINGS)
def test_pooling_ignores_padding(pooling):
    """Each text in a padded batch gets the logits it gets alone, for every pooling, with
    character features and a bidirectional LSTM variant."""
    torch.manual_seed(0)
    vocab = WordVocabulary.build([["a", "bb", "ccc", "dddd"]], chars=True)
    model = TextClassifier(len(vocab.words), 3, "lstm:CIFG", 8, 6, num_layers=2,
                           bidirectional=True, dropout=0.0, pooling=pooling,
                           char_vocab_size=len(vocab.chars), char_embedding_size=4,
                           char_hidden_size=3).double().eval()
    texts = [["a", "bb", "ccc", "dddd", "a"], ["ccc"], ["bb", "a"]]

    def logits(batch):
        return model(batch.inputs, batch.lengths, batch.extras["chars"],
                     batch.extras["char_lengths"])

    together = logits(classification_batch(vocab, texts))
    for b, text in enumerate(texts):
        alone = logits(classification_batch(vocab, [text]))
        torch.testing.assert_close(together[b], alone[0])


def test_last_pooling_reads_both_ends():
    """'last' pooling of a bidirectional layer = forward output at the last word joined with
    the backward output at the first word."""
    torch.manual_seed(1)
    model = TextClassifier(10, 2, "gru", 4, 5, pooling="last", dropout=0.0).eval()
    words, lengths = torch.randint(0, 10, (6, 2)), torch.tensor([6, 3])
    x = model.words(words)
    outputs, state = model.recurrent(x, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        expected = torch.cat([outputs[n - 1, b, :5], outputs[0, b, 5:]])
        torch.testing.assert_close(torch.cat([state[-2, b], state[-1, b]]), expected)


# --- metrics -----------------------------------------------------------------------------------


def test_classification_report_by_hand():
    # gold:      0 0 0 1 1 2
    # predicted: 0 1 0 1 0 2
    report = classification_report([0, 0, 0, 1, 1, 2], [0, 1, 0, 1, 0, 2], ["a", "b", "c"])
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.confusion == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert report.precision == pytest.approx([2 / 3, 1 / 2, 1.0])
    assert report.recall == pytest.approx([2 / 3, 1 / 2, 1.0])
    assert report.f1 == pytest.approx([2 / 3, 1 / 2, 1.0])
    assert report.support == [3, 2, 1]
    assert report.macro_f1 == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert accuracy(["x", "y"], ["x", "x"]) == 0.5
    # a class never predicted: precision 0, not a division error
    assert classification_report([0, 1], [0, 0], ["a", "b"]).precision == [0.5, 0.0]


# --- learning and the saved model --------------------------------------------------------------


def test_learns_a_task_that_needs_word_order(trained):
    out, result = trained
    assert result.best_valid_accuracy >= 0.9
    assert result.test_accuracy >= 0.85  # chance is 0.5: a bag of words cannot do it
    assert result.labels == ["neg", "pos"]
    assert (out / "best.json").exists()


def test_saved_model_predicts_and_evaluates_as_trained(trained, order_files):
    out, result = trained
    report = evaluate_classifier(out, order_files / "test.tsv")
    assert report.accuracy == pytest.approx(result.test_accuracy)
    predictions = predict_texts(out, ["x a y b", "b z a"])
    assert [label for label, _ in predictions] == ["pos", "neg"]
    assert all(0.5 < p <= 1 for _, p in predictions)
    loaded = load_classifier(out)
    assert loaded.model.cell == "lstm" and not loaded.model.training
    saved = lstmlab.models.load_saved(out)  # the one model format: any kind, by its name
    assert saved.kind == "classifier" and isinstance(saved.model, TextClassifier)
    assert saved.extra["labels"] == ["neg", "pos"] and "vocabulary" in saved.extra


def test_unseen_label_at_eval_and_empty_text_are_errors(trained, tmp_path):
    out, _ = trained
    path = tmp_path / "eval.tsv"
    path.write_text("pos\tx a b\nneutral\ta b\n")
    with pytest.raises(DataError, match=r"line 2: label 'neutral' was never seen"):
        evaluate_classifier(out, path)
    with pytest.raises(DataError, match="text 2 is empty"):
        predict_texts(out, ["a b", "  "])


def test_a_checkpoint_of_another_kind_is_refused(tmp_path):
    lstmlab.save(SequenceTagger(5, 3), tmp_path / "other", name="best")
    with pytest.raises(CheckpointError, match="holds a 'tagger' model, not a 'classifier' or "
                                              "'classifier_ensemble' model"):
        load_classifier(tmp_path / "other")


# --- the command line --------------------------------------------------------------------------


def test_classify_commands(order_files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "cli"
    train = order_files / "train.tsv"
    code = main(["classify", "train", str(train), "--steps", "30", "--hidden", "8",
                 "--embedding", "8", "--chars", "--pooling", "attention", "--no-progress",
                 "--out", str(out), "--json", str(tmp_path / "r.json"), "--eval-every", "10"])
    assert code == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["steps"] == 30 and result["config"]["chars"] is True
    assert result["valid_texts"] == 40  # 10% of 400 held out
    assert main(["classify", "eval", str(out), str(order_files / "valid.tsv")]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "confusion" in printed
    monkeypatch.setattr("sys.stdin", io.StringIO("x a b\n\nb a\n"))
    assert main(["classify", "predict", str(out)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0] in ("pos", "neg")
    assert "1 blank lines skipped" in captured.err
    bad = tmp_path / "bad.tsv"
    bad.write_text("pos\tfine\nnothing\n")
    assert main(["classify", "train", str(bad), "--no-progress", "--out", str(tmp_path / "x")]
                ) == 2
    assert f"{bad}, line 2: no tab" in capsys.readouterr().err
    assert main(["classify", "eval", str(tmp_path / "missing"), str(bad)]) == 2


# --- ensembles ---------------------------------------------------------------------------------


def test_an_ensemble_averages_its_members_probabilities(tmp_path):
    torch.manual_seed(0)
    members = [TextClassifier(12, 3, hidden_size=6, embedding_size=5).eval() for _ in range(3)]
    ensemble = ClassifierEnsemble.of(members).eval()
    words, lengths = torch.randint(0, 12, (7, 4)), torch.tensor([7, 3, 1, 5])
    expected = torch.stack([m(words, lengths).softmax(-1) for m in members]).mean(0)
    assert torch.allclose(ensemble(words, lengths).softmax(-1), expected, atol=1e-6)
    assert torch.allclose(ensemble(words, lengths).exp(), expected, atol=1e-6)
    lstmlab.save(ensemble, tmp_path / "e", name="best")
    saved = lstmlab.models.load_saved(tmp_path / "e")
    assert saved.kind == "classifier_ensemble" and len(saved.model.members) == 3
    assert torch.allclose(saved.model(words, lengths), ensemble(words, lengths), atol=1e-6)
    with pytest.raises(ValueError, match="share one configuration"):
        ClassifierEnsemble.of([members[0], TextClassifier(12, 3, hidden_size=7)])
    with pytest.raises(ValueError, match="at least 1 member"):
        ClassifierEnsemble(0, vocab_size=12, num_classes=3)


def test_members_train_apart_and_are_kept_as_one_ensemble(order_files, tmp_path):
    out = tmp_path / "ensemble"
    result = train_classifier(order_files / "train.tsv", valid=order_files / "valid.tsv",
                              test=order_files / "test.tsv", out=out, steps=20, hidden=8,
                              embedding=8, members=2, seed=3, progress=False)
    assert [m["seed"] for m in result.members] == [6, 7]  # seed * 2 + k: no seed shared
    assert [m["steps"] for m in result.members] == [20, 20] and result.steps == 40
    assert {v["member"] for v in result.validations} == {1, 2}
    loaded = load_classifier(out)
    assert isinstance(loaded.model, ClassifierEnsemble) and len(loaded.model.members) == 2
    # the saved ensemble is the one scored: its own valid and test accuracy
    assert evaluate_classifier(out, order_files / "test.tsv").accuracy == pytest.approx(
        result.test_accuracy)
    assert evaluate_classifier(out, order_files / "valid.tsv").accuracy == pytest.approx(
        result.best_valid_accuracy)
    # member 1 alone is the run with the same seed and budget
    alone = train_classifier(order_files / "train.tsv", valid=order_files / "valid.tsv",
                             steps=20, hidden=8, embedding=8, seed=6, progress=False)
    assert alone.best_valid_accuracy == pytest.approx(result.members[0]["best_valid_accuracy"])
    assert "ensemble of 2" in result.summary()
