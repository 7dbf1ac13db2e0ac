"""Text corpora, vocabularies and truncated-BPTT batching (lstmlab.tasks.text).

Self-contained: every corpus is a tiny text written to tmp_path, except the one shipped inside
the package.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from lstmlab.tasks.text import (
    DEFAULT_CORPUS,
    EOS,
    IGNORE_INDEX,
    UNK,
    BatchStream,
    Corpus,
    EvalSpans,
    Vocabulary,
    count_targets,
    default_corpus_text,
    load_corpus,
    read_text,
    tokenize,
)

UNICODE_TEXT = "Grüße, naïve café!\nΑλφα βήτα — 日本語 ✓ 🙂\n"


# ---------------------------------------------------------------------------------- vocabulary


def test_char_vocabulary_round_trip_with_unicode(tmp_path):
    vocab = Vocabulary.build(UNICODE_TEXT, "char")
    assert vocab.symbols == tuple(sorted(set(UNICODE_TEXT)))  # nanoGPT's ids
    assert vocab.unk_id is None and vocab.eos_id is None
    ids = vocab.encode(UNICODE_TEXT)
    assert ids.dtype == torch.long and ids.shape == (len(UNICODE_TEXT),)
    assert vocab.decode(ids) == UNICODE_TEXT

    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["symbols"] == list(vocab.symbols)
    assert Vocabulary.load(path) == vocab
    assert Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # no temporary left behind


def test_word_vocabulary_round_trip_and_order(tmp_path):
    text = "the cat sat\nthe naïve café sat\nthe end\n"
    vocab = Vocabulary.build(text, "word")
    # by decreasing count, ties alphabetical; <unk> was not in the text, so it comes last
    assert vocab.symbols == (EOS, "the", "sat", "café", "cat", "end", "naïve", UNK)
    ids = vocab.encode(text)
    assert len(ids) == 9 + 3  # words + lines
    assert vocab.decode(ids) == text
    assert vocab.decode(ids.view(1, -1)) == text  # any shape, read in order

    vocab.save(tmp_path / "v.json")
    loaded = Vocabulary.load(tmp_path / "v.json")
    assert loaded == vocab and loaded.encode(text).equal(ids)
    assert Vocabulary.build(text, "char") != Vocabulary.build(text, "word")


def test_tokenize_word_level_is_zaremba_reader():
    text = " a b \n\n c d\n e"
    assert tokenize(text, "word") == text.replace("\n", " <eos> ").split()
    assert tokenize(text, "word") == ["a", "b", EOS, EOS, "c", "d", EOS, "e"]
    with pytest.raises(ValueError, match="level"):
        tokenize(text, "byte")


def test_unknown_characters_raise_without_unk_and_map_with_it():
    closed = Vocabulary.build("abc abc\n", "char")
    with pytest.raises(ValueError) as err:
        closed.encode("abxxyé")
    message = str(err.value)
    assert "'x' (2x)" in message and "'y' (1x)" in message and "'é' (1x)" in message
    assert "unk=True" in message

    open_ = Vocabulary.build("abc abc\n", "char", unk=True)
    assert open_.symbols[-1] == UNK
    assert open_.encode("abz").tolist() == [open_.index("a"), open_.index("b"), open_.unk_id]
    assert open_.decode(open_.encode("abz")) == "ab" + UNK


def test_unknown_words_and_ptb_unk_reuse():
    ptb_like = " the <unk> sat \n the cat <unk> \n"
    vocab = Vocabulary.build(ptb_like, "word", unk=False)  # the text's own <unk> is kept
    assert vocab.symbols.count(UNK) == 1 and vocab.unk_id == vocab.index(UNK)
    assert vocab.encode("the dog").tolist() == [vocab.index("the"), vocab.unk_id]

    closed = Vocabulary.build("the cat sat\n", "word", unk=False)
    assert closed.unk_id is None and len(closed) == 4
    with pytest.raises(ValueError, match=r"'dog' \(2x\)"):
        closed.encode("the dog dog\n")


def test_max_size_keeps_frequent_words():
    vocab = Vocabulary.build("a a a b b c\n", "word", max_size=4)
    assert vocab.symbols == ("a", "b", EOS, UNK)
    assert vocab.encode("c").tolist() == [vocab.unk_id]
    with pytest.raises(ValueError, match="unk=True"):
        Vocabulary.build("a a a b b c\n", "word", unk=False, max_size=3)


def test_vocabulary_rejects_bad_input():
    vocab = Vocabulary.build("ab", "char")
    with pytest.raises(ValueError, match="out of range"):
        vocab.decode([0, 2])
    with pytest.raises(ValueError, match="out of range"):
        vocab.decode([-1])
    with pytest.raises(ValueError, match="repeated"):
        Vocabulary("char", ("a", "a"))
    with pytest.raises(ValueError, match="one character"):
        Vocabulary("char", ("a", "bc"))
    with pytest.raises(ValueError, match="not an lstmlab vocabulary"):
        Vocabulary.from_dict({"symbols": ["a"]})


# ------------------------------------------------------------------------------------- corpora


def test_single_file_split_is_deterministic(tmp_path):
    text = "".join(chr(ord("a") + i % 26) for i in range(1000)) + "\n"
    path = tmp_path / "book.txt"
    path.write_text(text, encoding="utf-8")
    corpus = Corpus.from_file(path)
    n_train = int(len(text) * 0.9)  # nanoGPT: first 90% train, last 10% val
    assert corpus.vocab.decode(corpus.train) == text[:n_train]
    assert corpus.vocab.decode(corpus.valid) == text[n_train:]
    assert corpus.test is None and corpus.name == "book"
    again = Corpus.from_file(path)
    assert again.train.equal(corpus.train) and again.valid.equal(corpus.valid)

    quarter = Corpus.from_file(path, valid_fraction=0.25)
    assert len(quarter.valid) == len(text) - int(len(text) * 0.75)

    words = Corpus.from_text("one two three four five six seven eight nine ten\n", "word")
    assert len(words.train) == 9 and words.vocab.decode(words.valid) == "ten\n"


def test_split_that_leaves_validation_empty_is_refused():
    with pytest.raises(ValueError, match="validation"):
        Corpus.from_text("abcdefghij", valid_fraction=0.1)  # 1 token left for validation
    with pytest.raises(ValueError, match="valid_fraction"):
        Corpus.from_text("abcdefghij", valid_fraction=1.0)


def test_ptb_style_split_files(tmp_path):
    train = " the cat sat on the mat \n the <unk> ran \n a dog sat \n"
    valid = " the dog ran \n the rat sat \n"  # 'rat' is not in train (its letters are)
    test = " a cat \n"
    for split, text in [("train", train), ("valid", valid), ("test", test)]:
        (tmp_path / f"ptb.{split}.txt").write_text(text, encoding="utf-8")
        char_lines = [" ".join("_".join(line.split())) + "\n" for line in text.splitlines()]
        (tmp_path / f"ptb.char.{split}.txt").write_text("".join(char_lines), encoding="utf-8")

    corpus = Corpus.from_dir(tmp_path, "word", prefix="ptb.")
    for split, text in [("train", train), ("valid", valid), ("test", test)]:
        words, lines = len(text.split()), text.count("\n")
        assert len(corpus.split(split)) == words + lines  # one <eos> per line
    # the vocabulary is the train file's: its words, <unk> (already in the text) and <eos>
    assert set(corpus.vocab.symbols) == set(train.split()) | {EOS}
    assert corpus.valid.tolist().count(corpus.vocab.unk_id) == 1  # 'rat'
    assert corpus.vocab.decode(corpus.test) == "a cat\n"

    explicit = Corpus.from_files(tmp_path / "ptb.train.txt", tmp_path / "ptb.valid.txt",
                                 tmp_path / "ptb.test.txt", "word")
    assert explicit.vocab == corpus.vocab and explicit.valid.equal(corpus.valid)

    with pytest.raises(ValueError, match="prefix="):  # two *train.txt files: ambiguous
        Corpus.from_dir(tmp_path, "word")
    chars = Corpus.from_dir(tmp_path, "word", prefix="ptb.char.", unk=False)
    assert UNK not in chars.vocab and EOS in chars.vocab and "_" in chars.vocab


def test_unknown_symbols_in_a_valid_file_name_the_file(tmp_path):
    (tmp_path / "train.txt").write_text("aaa bbb\n", encoding="utf-8")
    (tmp_path / "valid.txt").write_text("abc\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"valid file .*valid\.txt.*'c' \(1x\)"):
        Corpus.from_dir(tmp_path, "char")
    corpus = Corpus.from_dir(tmp_path, "char", unk=True)
    assert corpus.valid[-2] == corpus.vocab.unk_id  # 'c' -> <unk>


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        Corpus.from_file(tmp_path / "nowhere.txt")

    (tmp_path / "train.txt").write_text("some text here\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=r"no valid\.txt \(or val\.txt\) beside train"):
        Corpus.from_dir(tmp_path)

    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        Corpus.from_file(empty)
    blank = tmp_path / "blank.txt"
    blank.write_bytes(b"\n \n")
    with pytest.raises(ValueError, match="only whitespace"):
        read_text(blank)

    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("line one\ncaf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError) as err:
        Corpus.from_file(latin1)
    message = str(err.value)
    assert "latin1.txt" in message and "not UTF-8" in message
    assert "0xe9" in message and "byte offset 12" in message and "line 2" in message


def test_read_text_normalizes_line_breaks_and_bom(tmp_path):
    path = tmp_path / "dos.txt"
    path.write_bytes("\ufeffa\r\nb\rc\n".encode())
    assert read_text(path) == "a\nb\nc\n"


def test_default_corpus_ships_tiny_shakespeare():
    text = default_corpus_text()
    assert DEFAULT_CORPUS == "tinyshakespeare"
    assert len(text) == 1_115_394 and len(set(text)) == 65
    assert text.startswith("First Citizen:\n") and text.count("\n") == 40_000
    corpus = load_corpus()  # no file: the shipped corpus, nanoGPT's split
    assert corpus.name == DEFAULT_CORPUS and len(corpus.vocab) == 65
    assert (len(corpus.train), len(corpus.valid)) == (1_003_854, 111_540)


# ------------------------------------------------------------------------------------- batches


def _ids(n: int) -> torch.Tensor:
    return torch.arange(n)  # token id = position: makes the layout visible


def test_batch_stream_layout_and_state_carry_over():
    B, T, N = 3, 4, 40
    stream = BatchStream(_ids(N), batch_size=B, seq_len=T)
    L = (N - 1) // B  # 13 tokens per row
    assert len(stream) == L // T == 3 and stream.tokens_per_epoch == B * T * 3
    windows = list(stream)
    assert len(windows) == 3 and (stream.epoch, stream.step) == (1, 0)
    for k, (x, y) in enumerate(windows):
        assert x.shape == y.shape == (T, B)  # time-major
        assert y.equal(x + 1)  # targets are the inputs shifted by one
        for b in range(B):  # row b is the contiguous run ids[b*L : (b+1)*L]
            assert x[:, b].tolist() == list(range(b * L + k * T, b * L + (k + 1) * T))
    for (x0, _), (x1, _) in zip(windows, windows[1:], strict=False):
        assert x1[0].equal(x0[-1] + 1)  # row b of batch k+1 continues row b of batch k

    again = list(stream)  # the next epoch is the same windows again
    assert all(a.equal(b) for (a, _), (b, _) in zip(windows, again, strict=True))
    assert stream.epoch == 2


def test_batch_stream_resumes_exactly():
    data = torch.randint(0, 50, (500,))
    uninterrupted = BatchStream(data, batch_size=4, seq_len=7)  # 17 windows per epoch
    reference = [w for _ in range(3) for w in uninterrupted]

    first = BatchStream(data, batch_size=4, seq_len=7)
    seen = []
    for window in first:
        seen.append(window)
        if len(seen) == 5:
            break
    seen.extend(first)  # the rest of epoch 0
    for window in first:  # 6 windows of epoch 1, then a checkpoint
        seen.append(window)
        if len(seen) == 17 + 6:
            state = json.loads(json.dumps(first.state_dict()))
            break
    assert state["epoch"] == 1 and state["step"] == 6 and state["offset"] == 42

    resumed = BatchStream(data, batch_size=4, seq_len=7)
    resumed.load_state_dict(state)
    while len(seen) < len(reference):
        seen.extend(resumed)
    assert len(seen) == len(reference)
    for (x, y), (rx, ry) in zip(seen, reference, strict=True):
        assert x.equal(rx) and y.equal(ry)

    with pytest.raises(ValueError, match="batch_size"):
        BatchStream(data, batch_size=5, seq_len=7).load_state_dict(state)


def test_batch_stream_needs_enough_tokens():
    with pytest.raises(ValueError, match="too few"):
        BatchStream(_ids(20), batch_size=4, seq_len=5)  # needs 4*5 + 1 = 21
    assert len(BatchStream(_ids(21), batch_size=4, seq_len=5)) == 1


@pytest.mark.parametrize("batch_size, span, context", [(1, 5, 3), (3, 4, 0), (30, 100, 10)])
def test_eval_spans_score_every_target_once_after_their_context(batch_size, span, context):
    N, T = 29, 4
    data = _ids(N) + 100
    spans = EvalSpans(data, batch_size=batch_size, seq_len=T, span=span, context=context)
    assert spans.num_targets == count_targets(data) == N - 1
    groups = list(spans)
    assert len(groups) == len(spans)
    seen = []
    for windows in groups:
        xs = torch.cat([x for x, _ in windows])  # (L, rows): each row in time order
        ys = torch.cat([y for _, y in windows])
        assert all(x.shape[0] <= T and x.shape == y.shape for x, y in windows)
        real = ys != IGNORE_INDEX
        assert ys[real].equal(xs[real] + 1)  # each target follows its input
        for r in range(xs.shape[1]):
            scored = ys[:, r][real[:, r]]
            seen += scored.tolist()
            first = int(real[:, r].nonzero()[0])
            assert first == min(context, int(scored[0]) - 101)  # context read, not scored
    assert sorted(seen) == data[1:].tolist()  # each target exactly once


def test_eval_spans_give_exact_nats_per_token():
    V, data = 7, torch.randint(0, 7, (101,))
    total = 0.0
    for windows in EvalSpans(data, batch_size=4, seq_len=10, span=30, context=5):
        for _, y in windows:
            logits = torch.zeros(*y.shape, V)  # a uniform model: ln V nats for every token
            total += F.cross_entropy(logits.view(-1, V), y.reshape(-1),
                                     reduction="sum").item()
    assert total / count_targets(data) == pytest.approx(math.log(V))
