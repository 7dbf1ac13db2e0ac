"""Sequence to sequence: parallel files, tokenizers, the translator with each attention, beam
search against greedy, BLEU against its definition, learning a language pair that needs
reordering, the saved model, and `lstmlab translate`."""

import math
import random
from collections import Counter

import pytest
import sacrebleu
import torch
from rich.console import Console

import lstmlab
from lstmlab import kernels
from lstmlab.cli import main
from lstmlab.experiments.translate import (
    DecodeConfig,
    TranslateConfig,
    attention_matrix,
    evaluate_translator,
    load_translator,
    protocol_bleu,
    score_translations,
    train_translator,
    translate_ids,
    translate_texts,
)
from lstmlab.models.attention import Attention
from lstmlab.models.decoding import beam_search, greedy
from lstmlab.models.seq2seq import ATTENTIONS, Translator
from lstmlab.tasks.batch import Batch
from lstmlab.tasks.files import DataError
from lstmlab.tasks.translation import (
    SubwordTokenizer,
    WordTokenizer,
    build_vocabulary,
    decoder_inputs,
    protocol_tokens,
    read_parallel,
    translation_batch,
)
from lstmlab.train import CheckpointError

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


# --- a made-up language pair: the target is the source reversed, word by word through a fixed
# dictionary, so a translator must reorder (the last source word comes first)

SOURCE_WORDS = [f"w{i}" for i in range(12)]
DICTIONARY = {w: f"x{i}" for i, w in enumerate(SOURCE_WORDS)}


def reversal_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(SOURCE_WORDS) for _ in range(rng.randint(3, 7))]
        out.append((" ".join(words), " ".join(DICTIONARY[w] for w in reversed(words))))
    return out


def write_pairs(root, name, pairs):
    (root / f"{name}.src").write_text("".join(f"{s}\n" for s, _ in pairs))
    (root / f"{name}.tgt").write_text("".join(f"{t}\n" for _, t in pairs))
    return str(root / f"{name}.src"), str(root / f"{name}.tgt")


SMALL = dict(embedding=32, hidden=32, decoder=64, dropout=0.0, min_freq=1, batch=32, lr=3e-3,
             label_smoothing=0.0)


@pytest.fixture(scope="module")
def reversal(tmp_path_factory):
    root = tmp_path_factory.mktemp("reversal")
    train = write_pairs(root, "train", reversal_pairs(1200, 0))
    valid = write_pairs(root, "valid", reversal_pairs(100, 1))
    return root, train, valid


@pytest.fixture(scope="module")
def trained(reversal):
    root, train, valid = reversal
    out = root / "run"
    result = train_translator(*train, valid=valid, test=valid, out=out, epochs=7,
                              progress=False, console=Console(quiet=True),
                              attention="bahdanau", **SMALL)
    return out, result


def test_learns_reversal_with_attention(trained, reversal):
    """Attention learns a pair that needs reordering to BLEU >= 90 in seconds."""
    out, result = trained
    assert result.best_valid_bleu >= 90
    assert result.test["scores"]["sacrebleu"] >= 90
    root, _, valid = reversal
    report = evaluate_translator(out, *valid, DecodeConfig(beam=3))
    assert report.scores.protocol_bleu >= 90 and report.scores.sentences == 100
    assert translate_texts(load_translator(out), ["w1 w2 w3 w4"]) == ["x4 x3 x2 x1"]


# --- parallel files ------------------------------------------------------------------------------


def test_read_parallel_gzip_and_errors(tmp_path):
    import gzip

    (tmp_path / "a.gz").write_bytes(gzip.compress(b"ein Hund\nzwei Katzen\n"))
    (tmp_path / "b").write_text("a dog\ntwo cats\n")
    pairs = read_parallel(tmp_path / "a.gz", tmp_path / "b")
    assert [(p.source, p.target, p.line) for p in pairs] == [("ein Hund", "a dog", 1),
                                                             ("zwei Katzen", "two cats", 2)]
    (tmp_path / "c").write_text("a dog\n")
    with pytest.raises(DataError, match=r"not line-aligned: .*a.gz has 2 lines, .*c has 1"):
        read_parallel(tmp_path / "a.gz", tmp_path / "c")
    (tmp_path / "d").write_text("a dog\n \n")
    with pytest.raises(DataError, match=r"d, line 2: empty train sentence"):
        read_parallel(tmp_path / "a.gz", tmp_path / "d")


def test_word_tokenizer_round_trip():
    tok = WordTokenizer()
    text = 'A man\'s red T-shirt (new), "yes" - don\'t stop!'
    tokens = tok.tokenize(text)
    assert tokens == ["A", "man", "'s", "red", "T", "-", "shirt", "(", "new", ")", ",", '"',
                      "yes", '"', "-", "do", "n't", "stop", "!"]
    assert tok.detokenize(tokens) == text
    assert WordTokenizer(lowercase=True).tokenize("Two DOGS.") == ["two", "dogs", "."]
    assert protocol_tokens("A dog's ball.") == ["a", "dog", "'s", "ball", "."]


def test_subword_tokenizer_travels(tmp_path):
    texts = [f"{a} {b} {c}" for a, b, c in (s.split()[:3] for s, _ in reversal_pairs(300, 2))]
    sub = SubwordTokenizer.train(texts, "bpe", vocab_size=16, lowercase=True)
    pieces = sub.tokenize("W1 w2 w10")
    assert sub.detokenize(pieces) == "w1 w2 w10"
    from lstmlab.tasks.translation import tokenizer_from_dict

    again = tokenizer_from_dict(sub.to_dict())
    assert again.tokenize("w1 w2 w10") == pieces and again.lowercase
    with pytest.raises(ValueError, match="smaller --vocab-size"):
        SubwordTokenizer.train(texts, "unigram", vocab_size=5000)


def test_batch_layout_and_select():
    vocab = build_vocabulary([["a", "b"], ["b", "c", "c"]])
    assert vocab.symbols[:3] == ("<unk>", "<s>", "<eos>")
    eos = vocab.index("<eos>")
    batch = translation_batch([[3], [4, 5]], [[5, 4, 3, 3], [3]], eos)
    assert batch.inputs.shape == (2, 2) and batch.targets.shape == (5, 2)
    assert batch.targets[:, 0].tolist() == [5, 4, 3, 3, eos]
    assert batch.mask[:, 1].tolist() == [True, True, False, False, False]
    assert decoder_inputs(batch.targets, 1)[:, 0].tolist() == [1, 5, 4, 3, 3]
    # a selection keeps targets longer than its inputs, and cat pads each field to its own
    picked = batch.select([0])
    assert picked.inputs.shape == (1, 1) and picked.targets[:, 0].tolist() == [5, 4, 3, 3, eos]
    joined = Batch.cat([batch.select([1]), batch.select([0])])
    assert joined.targets.shape == (5, 2) and joined.inputs.shape == (2, 2)
    assert torch.equal(joined.targets[:, 1], batch.targets[:, 0])


# --- the model -----------------------------------------------------------------------------------


def test_attention_weights_are_a_distribution_over_the_real_positions():
    torch.manual_seed(0)
    for score in ("additive", "general", "dot"):
        att = Attention(score, 6, 6)
        memory = torch.randn(3, 5, 6)
        mask = torch.arange(5).unsqueeze(0) < torch.tensor([[5], [2], [1]])
        context, weights = att(torch.randn(3, 6), att.keys(memory), memory, mask)
        assert torch.allclose(weights.sum(1), torch.ones(3))
        assert (weights[~mask] == 0).all() and context.shape == (3, 6)
        assert torch.allclose(context[2], memory[2, 0])  # one position: all weight on it
    with pytest.raises(ValueError, match="dot attention needs"):
        Attention("dot", 4, 8)


@pytest.mark.parametrize("attention", list(ATTENTIONS))
@pytest.mark.parametrize("cell,decoder_cell", [("lstm", "lstm"), ("gru", "lstm:CIFG"),
                                               ("rnn", "lstm:FGR"), ("lstm:V", "lstm:NP")])
def test_padding_changes_nothing(attention, cell, decoder_cell):
    """A sentence in a padded batch gets the logits it gets alone (each cell and attention)."""
    torch.manual_seed(0)
    model = Translator(9, 7, cell, decoder_cell, 8, 4 if attention == "dot" else 5, 8,
                       attention=attention, dropout=0.0).eval()
    batch = translation_batch([[3, 4, 5, 6], [7, 8]], [[3, 4], [5, 6, 3]], 2)
    alone = translation_batch([[7, 8]], [[5, 6, 3]], 2)
    with kernels.use("auto", compiled=False):  # lstm:V: the fused kernel, not built here
        logits = model(batch.inputs, batch.lengths, decoder_inputs(batch.targets, 1))
        single = model(alone.inputs, alone.lengths, decoder_inputs(alone.targets, 1))
    assert torch.allclose(logits[:4, 1], single[:, 0], atol=1e-6)


def test_tied_embeddings_save_and_load(tmp_path):
    torch.manual_seed(0)
    model = Translator(9, 7, embedding_size=6, hidden_size=5, decoder_size=8,
                       tie_embeddings=True).eval()
    assert model.out.weight is model.target_embedding.weight
    lstmlab.save(model, tmp_path)
    again = lstmlab.load(tmp_path)
    assert again.out.weight is again.target_embedding.weight
    batch = translation_batch([[3, 4, 5]], [[3, 4]], 2)
    args = (batch.inputs, batch.lengths, decoder_inputs(batch.targets, 1))
    assert torch.equal(model(*args), again(*args))


class Plain:
    """The translator's decoder without its own select_state: the reference (decoding.py's
    select_state re-gathers every tensor of the state)."""

    def __init__(self, decoder):
        self.inner = decoder

    def step(self, tokens, state):
        return self.inner.step(tokens, state)


def test_beam_search_fast_state_selection_equals_the_reference():
    torch.manual_seed(1)
    model = Translator(12, 10, "gru", "lstm:FGR", 8, 6, 8, attention="luong").eval()
    batch = translation_batch([[3, 4, 5, 6, 7], [8, 9], [10, 11, 3]], None, 2)
    decoder, state = model.start(batch.inputs, batch.lengths)
    first = torch.full((3,), 1)
    with torch.no_grad():
        fast = beam_search(decoder, first, state, width=4, max_length=9, end_token=2,
                           n_best=3)
        plain = beam_search(Plain(decoder), first, state, width=4, max_length=9, end_token=2,
                            n_best=3)
    assert fast == plain


def test_beam_width_one_equals_greedy(trained):
    out, _ = trained
    loaded = load_translator(out)
    sources = loaded.source_ids([s for s, _ in reversal_pairs(40, 5)])
    wide = translate_ids(loaded.model, sources, loaded.target_vocab, DecodeConfig(beam=1))
    batch = translation_batch(sources, None, 2)
    with torch.no_grad():
        decoder, state = loaded.model.start(batch.inputs, batch.lengths)
        first = torch.full((len(sources),), 1)
        beams = beam_search(decoder, first, state, width=1, max_length=20, end_token=2)
        found = greedy(decoder, first, state, max_length=20, end_token=2)
    for row, hyps, tokens, n in zip(wide, beams, found.tokens, found.lengths, strict=True):
        assert hyps[0].tokens == tokens[:n].tolist() == row + [2]


class Table:
    """A hand-made decoder: the next-token probabilities depend on the previous token only.
    Tokens: 0 start, 1 end, 2 "a", 3 "b", 4 "c". Greedy takes "a" (0.6) and then can only
    reach 0.6 * 0.4; the better sentence is "b" end (0.4 * 0.9 = 0.36)."""

    probs = {0: {2: 0.6, 3: 0.4}, 2: {4: 0.4, 1: 0.3, 3: 0.3}, 3: {1: 0.9, 4: 0.1},
             4: {1: 1.0}}

    def step(self, tokens, state):
        logits = torch.full((tokens.shape[0], 5), -1e9, dtype=torch.float64)
        for row, token in enumerate(tokens.tolist()):
            for nxt, p in self.probs[token].items():
                logits[row, nxt] = math.log(p)
        return logits, state


def test_beam_finds_what_greedy_misses():
    start = torch.tensor([0])
    found = greedy(Table(), start, None, max_length=5, end_token=1)
    assert found.tokens[0, :found.lengths[0]].tolist() == [2, 4, 1]  # 0.6 * 0.4 * 1.0 = 0.24
    best = beam_search(Table(), start, None, width=2, max_length=5, end_token=1)[0][0]
    assert best.tokens == [3, 1] and math.isclose(best.log_prob, math.log(0.36))


# --- scores --------------------------------------------------------------------------------------


def torchtext_bleu(candidates, references, max_n=4):
    """torchtext.data.metrics.bleu_score's definition, one reference each: clipped n-gram
    counts summed over the corpus, uniform weights, no smoothing, brevity penalty."""
    clipped, total = [0] * max_n, [0] * max_n
    c_len = r_len = 0
    for cand, ref in zip(candidates, references, strict=True):
        c_len, r_len = c_len + len(cand), r_len + len(ref)
        for n in range(1, max_n + 1):
            c = Counter(tuple(cand[i:i + n]) for i in range(len(cand) - n + 1))
            r = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            clipped[n - 1] += sum((c & r).values())
            total[n - 1] += sum(c.values())
    if min(clipped) == 0:
        return 0.0
    score = math.exp(sum(math.log(k / t) for k, t in zip(clipped, total, strict=True)) / max_n)
    return 100 * math.exp(min(0.0, 1 - r_len / c_len)) * score


def test_protocol_bleu_is_torchtexts_definition():
    hyps = ["A man in a blue shirt is standing on a ladder.", "Two dogs run.",
            "The girl's T-shirt is red and white"]
    refs = ["A man in a blue shirt stands on a ladder.", "Two dogs are running in the snow.",
            "The girl's t-shirt is red and white."]
    expected = torchtext_bleu([protocol_tokens(h) for h in hyps],
                              [protocol_tokens(r) for r in refs])
    assert 0 < expected < 100
    assert math.isclose(protocol_bleu(hyps, refs), expected, rel_tol=1e-9)
    # by hand: one sentence, 4 of 5 unigrams, 2 of 4 bigrams, 1 of 3 trigrams, 0 of 2 4-grams
    assert protocol_bleu(["a b c d x"], ["a b c y d"]) == 0.0
    # a shorter output pays the brevity penalty exp(1 - 6/4)
    assert math.isclose(protocol_bleu(["a b c d"], ["a b c d e f"]),
                        100 * math.exp(1 - 6 / 4), rel_tol=1e-9)


def test_sacrebleu_and_chrf_are_sacrebleus():
    hyps = ["A man in a blue shirt is standing on a ladder.", "Two dogs run."]
    refs = ["A man in a blue shirt stands on a ladder.", "Two dogs are running in the snow."]
    scores = score_translations(hyps, refs)
    assert math.isclose(scores.sacrebleu, sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert math.isclose(scores.chrf, sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert "case:mixed" in scores.sacrebleu_signature and "tok:13a" in scores.sacrebleu_signature
    lower = score_translations([h.lower() for h in hyps], refs, lowercase=True)
    assert "case:lc" in lower.sacrebleu_signature
    assert math.isclose(lower.sacrebleu, sacrebleu.corpus_bleu(hyps, [refs],
                                                                lowercase=True).score)


# --- the saved model, subwords and the command line ----------------------------------------------


def test_subword_model_round_trip(reversal, tmp_path):
    _, train, valid = reversal
    out = tmp_path / "sub"
    result = train_translator(*train, valid=valid, out=out, steps=3, progress=False,
                              console=Console(quiet=True), subwords="unigram", vocab_size=16,
                              **{**SMALL, "min_freq": 1})
    assert "unigram subwords" in result.vocabulary
    loaded = load_translator(out)
    assert isinstance(loaded.source_tokenizer, SubwordTokenizer)
    texts = ["w1 w2 w3"]
    assert translate_texts(loaded, texts) == translate_texts(load_translator(out), texts)


def test_truncation_warns_with_the_line(trained, capsys):
    out, _ = trained
    loaded = load_translator(out)
    console = Console(stderr=True, width=200)
    too_long = " ".join(["w1"] * (loaded.max_length + 5))
    ids = loaded.source_ids(["w1 w2", too_long], "in.txt", console)
    assert len(ids[1]) == loaded.max_length
    assert f"in.txt, line 2: source of {loaded.max_length + 5} tokens is longer than the " \
           f"model's maximum of {loaded.max_length}: truncated" in capsys.readouterr().err
    source, target, weights = attention_matrix(loaded, "w1 w2 w3")
    assert weights.shape == (len(target), len(source)) == (4, 3)
    assert torch.allclose(weights.sum(1), torch.ones(4))


def test_config_checks():
    with pytest.raises(ValueError, match="attention must be one of"):
        TranslateConfig(attention="cosine")
    with pytest.raises(ValueError, match="decoder is an LSTM"):
        Translator(5, 5, decoder_cell="gru")
    with pytest.raises(ValueError, match="beam must be"):
        DecodeConfig(beam=0)


def test_cli(trained, reversal, tmp_path, capsys):
    out, _ = trained
    root, train, valid = reversal
    assert main(["translate", str(out), "w5 w6 w7", "--beam", "1", "--show-attention",
                 str(tmp_path / "a.png")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "x7 x6 x5"
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["translate", "eval", str(out), *valid, "--json", str(tmp_path / "s.json"),
                 "--output", str(tmp_path / "o.txt")]) == 0
    assert "tutorial protocol" in capsys.readouterr().out
    assert len((tmp_path / "o.txt").read_text().splitlines()) == 100
    # bad input: one line each, exit code 2
    assert main(["translate", "eval", str(out), valid[0], train[1]]) == 2
    assert "not line-aligned" in capsys.readouterr().err
    from lstmlab.models.classifier import TextClassifier

    lstmlab.save(TextClassifier(5, 2), tmp_path / "c", name="best")
    assert main(["translate", str(tmp_path / "c"), "w1"]) == 2
    err = capsys.readouterr().err
    assert "holds a 'classifier' model, not a 'translator' model" in err
    with pytest.raises(CheckpointError):
        load_translator(tmp_path / "c")
    assert main(["translate", "train", train[0], valid[1], "--out", str(tmp_path / "x")]) == 2
    assert "not line-aligned" in capsys.readouterr().err
