"""Many-to-many tagging: the CoNLL-U and CoNLL readers (gzip included), the tagger, the CoNLL
entity rule checked by hand, learning tags that need context, and `lstmlab tag`."""

import gzip
import io
import json
import random
from collections import Counter

import pytest
import torch
from rich.console import Console

import lstmlab
from lstmlab.cli import main
from lstmlab.experiments.classify import load_classifier
from lstmlab.experiments.supervised import drop_words, rare_word_dropout
from lstmlab.experiments.tag import evaluate_tagger, load_tagger, predict_tags, train_tagger
from lstmlab.metrics import chunk_scores, chunks, is_chunk_tagging
from lstmlab.models.tagger import SequenceTagger
from lstmlab.tasks.files import DataError
from lstmlab.tasks.tagging import read_tagged, tagging_batch
from lstmlab.tasks.words import WordVocabulary
from lstmlab.train import CheckpointError

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


CONLLU = """\
# sent_id = 1
# text = I can't go.
1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_
2-3\tcan't\t_\t_\t_\t_\t_\t_\t_\t_
2\tca\tcan\tAUX\tMD\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
4\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_
4.1\tgone\tgo\tVERB\tVBN\t_\t_\t_\t_\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\tSpaceAfter=No

# sent_id = 2
1\tYes\tyes\tINTJ\tUH\t_\t0\troot\t_\t_
"""


def write(path, text, compress=False):
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    return path


# --- reading --------------------------------------------------------------------------------


@pytest.mark.parametrize("name, compress", [("a.conllu", False), ("a.conllu.gz", True),
                                            ("noname", False), ("noname.gz", True)])
def test_reads_conllu_skipping_multiword_tokens_and_empty_nodes(tmp_path, name, compress):
    data = read_tagged(write(tmp_path / name, CONLLU, compress))
    assert data.format == "conllu" and data.column == "UPOS"
    assert [s.words for s in data.sentences] == [("I", "ca", "n't", "go", "."), ("Yes",)]
    assert [s.tags for s in data.sentences] == [("PRON", "AUX", "PART", "VERB", "PUNCT"),
                                                 ("INTJ",)]
    assert data.sentences[0].lines == (3, 5, 6, 7, 9)
    assert data.skipped == {"multi-word tokens": 1, "empty nodes": 1}
    assert "1 multi-word tokens skipped" in data.summary()


def test_conllu_other_columns(tmp_path):
    path = write(tmp_path / "a.conllu", CONLLU)
    assert read_tagged(path, column="xpos").sentences[0].tags[:2] == ("PRP", "MD")
    assert read_tagged(path, column=8).sentences[1].tags == ("root",)
    with pytest.raises(ValueError, match="column FORM cannot be the tag"):
        read_tagged(path, column="form")


def test_reads_two_column_conll(tmp_path):
    path = write(tmp_path / "ner.txt", "-DOCSTART-\tO\n\nJohn\tB-PER\nlives\tO\n\n"
                                       "in\tO\nNew\tB-LOC\nYork\tI-LOC\n")
    data = read_tagged(path)
    assert data.format == "conll" and data.skipped == {"-DOCSTART- lines": 1}
    assert [s.tags for s in data.sentences] == [("B-PER", "O"), ("O", "B-LOC", "I-LOC")]
    # CoNLL-2003's four space-separated columns: the last one by default, or --column
    path = write(tmp_path / "four.txt", "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    assert read_tagged(path).sentences[0].tags == ("B-ORG", "O")
    assert read_tagged(path, column=2).sentences[0].tags == ("NNP", "VBZ")


@pytest.mark.parametrize("text, name, message", [
    ("1\tI\tI\tPRON\tPRP\t_\t0\troot\t_\n", "x.conllu", r"line 1: 9 tab-separated columns, "
                                                         "expected 10"),
    ("# sent_id = 1\n1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n\n", "x.conllu",
     "line 1: a sentence with no words"),
    ("a\tX\nb\tY\tZ\n", "x.txt", "line 2: 3 columns, expected 2"),
    ("a\n", "x.txt", "line 1: one column"),
])
def test_bad_files_name_the_line(tmp_path, text, name, message):
    path = write(tmp_path / name, text)
    with pytest.raises(DataError, match=message) as caught:
        read_tagged(path)
    assert str(path) in str(caught.value)


# --- the CoNLL entity rule --------------------------------------------------------------------


def test_chunks_follow_the_conll_rule():
    assert chunks(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]
    assert chunks(["I-PER", "I-PER", "B-PER"]) == [("PER", 0, 2), ("PER", 2, 3)]  # IOB1 start
    assert chunks(["B-PER", "I-LOC"]) == [("PER", 0, 1), ("LOC", 1, 2)]  # type change
    assert chunks(["O", "I-ORG", "O"]) == [("ORG", 1, 2)]
    assert chunks(["S-PER", "B-LOC", "E-LOC"]) == [("PER", 0, 1), ("LOC", 1, 3)]  # BIOES
    assert is_chunk_tagging(["O", "B-X", "I-X"]) and not is_chunk_tagging(["NOUN", "VERB"])


def test_entity_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-PER"]]
    # gold chunks: PER(0,2) LOC(3,4) | ORG(0,1)          -> 3
    # predicted:   PER(0,2) ORG(3,4) | ORG(0,1) PER(1,2) -> 4, of which 2 correct
    scores = chunk_scores(gold, pred)
    assert (scores.correct, scores.predicted, scores.gold) == (2, 4, 3)
    assert scores.precision == pytest.approx(0.5)
    assert scores.recall == pytest.approx(2 / 3)
    assert scores.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert scores.by_type["PER"]["precision"] == pytest.approx(0.5)
    assert scores.by_type["LOC"]["recall"] == 0.0


# --- the model ------------------------------------------------------------------------------


def test_tagger_gives_each_sentence_its_own_tags_in_a_padded_batch():
    torch.manual_seed(0)
    vocab = WordVocabulary.build([["the", "old", "man", "the", "boats"]], chars=True)
    model = SequenceTagger(len(vocab.words), 4, "lstm:V", 6, 5, num_layers=2, dropout=0.0,
                           char_vocab_size=len(vocab.chars), char_embedding_size=4,
                           char_hidden_size=3).double().eval()
    sentences = [["the", "old", "man", "the", "boats"], ["man"], ["boats", "the"]]

    def logits(batch):
        return model(batch.inputs, batch.lengths, batch.extras["chars"],
                     batch.extras["char_lengths"])

    together = logits(tagging_batch(vocab, sentences))
    for b, s in enumerate(sentences):
        torch.testing.assert_close(together[: len(s), b], logits(tagging_batch(vocab, [s]))[:, 0])


# --- word dropout ---------------------------------------------------------------------------


def test_rare_word_dropout_by_hand():
    # ids 1, 2, 3 seen 1, 3 and 0 times (id 0, <unk>, twice)
    p = rare_word_dropout([[1, 2, 0], [2, 2, 0]], 4, alpha=0.25)
    torch.testing.assert_close(p, torch.tensor([0.25 / 2.25, 0.25 / 1.25, 0.25 / 3.25, 1.0]))
    assert not rare_word_dropout([[1]], 2, alpha=0.0).any()


def test_drop_words_combines_both_kinds_and_keeps_padding():
    torch.manual_seed(0)
    words = torch.tensor([[1, 2, 3, 0]] * 2000)  # (T, B) with 0 as padding
    per_word = torch.tensor([0.0, 1.0, 0.0, 0.5])
    dropped = drop_words(words, 0.0, per_word)
    assert (dropped[:, 0] == 0).all() and (dropped[:, 1] == 2).all() and (dropped[:, 3] == 0).all()
    assert abs(float((dropped[:, 2] == 0).float().mean()) - 0.5) < 0.05
    both = drop_words(words, 0.2, per_word)  # id 3: 1 - 0.8 x 0.5 = 0.6
    assert abs(float((both[:, 2] == 0).float().mean()) - 0.6) < 0.05
    assert abs(float((both[:, 1] == 0).float().mean()) - 0.2) < 0.05
    assert drop_words(words, 0.0) is words


# --- learning -------------------------------------------------------------------------------


def entity_task(n: int, seed: int) -> str:
    """Two-column CoNLL: "a" opens an entity (B-E), and each "x" right after it or after
    another x in the entity is I-E; any other "x" is O, and so is "b". The tag of "x" depends
    on its left context, however far back the "a" is."""
    rng = random.Random(seed)
    blocks = []
    for _ in range(n):
        words = [rng.choice("a b x x".split()) for _ in range(rng.randint(3, 10))]
        lines, inside = [], False
        for w in words:
            inside = w == "a" or (w == "x" and inside)
            tag = "B-E" if w == "a" else "I-E" if inside else "O"
            lines.append(f"{w}\t{tag}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


@pytest.fixture(scope="module")
def entity_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("entities")
    for name, n, seed in (("train", 300, 1), ("valid", 60, 2), ("test", 100, 3)):
        (root / f"{name}.txt").write_text(entity_task(n, seed))
    return root


@pytest.fixture(scope="module")
def trained(entity_files):
    out = entity_files / "run"
    result = train_tagger(entity_files / "train.txt", valid=entity_files / "valid.txt",
                          test=entity_files / "test.txt", out=out, epochs=12, hidden=24,
                          embedding=8, char_embedding=4, char_hidden=4, lr=0.01, dropout=0.0,
                          word_dropout=0.0, progress=False, console=Console(file=io.StringIO()))
    return out, result


def test_learns_tags_that_need_context(trained, entity_files):
    out, result = trained
    data = read_tagged(entity_files / "test.txt")
    # the best a tagger without context can do: each word's most frequent tag
    counts = Counter((w, t) for s in data.sentences for w, t in zip(s.words, s.tags, strict=True))
    best = {w: max((n, t) for (w2, t), n in counts.items() if w2 == w)[1] for w, _ in counts}
    total = sum(len(s) for s in data.sentences)
    unigram = sum(best[w] == t for s in data.sentences
                  for w, t in zip(s.words, s.tags, strict=True)) / total
    assert unigram < 0.85
    assert result.test["accuracy"] >= 0.97
    assert result.test["chunks"]["f1"] >= 0.9
    assert result.tags == ["B-E", "I-E", "O"]


def test_saved_tagger_evaluates_and_predicts(trained, entity_files):
    out, result = trained
    scores = evaluate_tagger(out, entity_files / "test.txt")
    assert scores.accuracy == pytest.approx(result.test["accuracy"])
    assert scores.chunks is not None and scores.tokens == sum(
        len(s) for s in read_tagged(entity_files / "test.txt").sentences)
    assert predict_tags(out, ["b a x x b x"]) == [["O", "B-E", "I-E", "I-E", "O", "O"]]
    with pytest.raises(DataError, match="text 2 has no words"):
        predict_tags(out, ["a", ""])
    bad = write(entity_files / "unseen.txt", "a\tB-E\nx\tI-X\n")
    with pytest.raises(DataError, match=r"unseen.txt, line 2: tag 'I-X' was never seen"):
        evaluate_tagger(out, bad)
    with pytest.raises(CheckpointError, match="holds a 'tagger' model, not a 'classifier' or "
                                              "'classifier_ensemble' model"):
        load_classifier(out)
    loaded = load_tagger(out)
    assert loaded.tags == ["B-E", "I-E", "O"]
    assert isinstance(lstmlab.load(out), SequenceTagger)  # the one model format
    # words are looked up lowercased by default (characters keep their case), and say so
    assert loaded.vocab.lowercase and loaded.vocab.word_ids(["A", "x"]) == loaded.vocab.word_ids(
        ["a", "X"])
    assert loaded.vocab.char_ids("A") != loaded.vocab.char_ids("a")


def test_tag_commands(entity_files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "cli"
    code = main(["tag", "train", str(entity_files / "train.txt"), "--steps", "20",
                 "--hidden", "8", "--embedding", "8", "--char-hidden", "4", "--no-progress",
                 "--model", "lstm:CIFG", "--out", str(out), "--json", str(tmp_path / "r.json")])
    assert code == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["steps"] == 20 and result["config"]["cell"] == "lstm:CIFG"
    assert main(["tag", "eval", str(out), str(entity_files / "valid.txt")]) == 0
    printed = capsys.readouterr().out
    assert "token accuracy" in printed and "entities (CoNLL rule)" in printed
    monkeypatch.setattr("sys.stdin", io.StringIO("a x b\n"))
    assert main(["tag", "predict", str(out)]) == 0
    tagged = capsys.readouterr().out.split()
    assert [t.split("/")[0] for t in tagged] == ["a", "x", "b"]
    assert main(["classify", "eval", str(out), str(entity_files / "valid.txt")]) == 2
    assert "not a 'classifier' or 'classifier_ensemble' model" in capsys.readouterr().err
