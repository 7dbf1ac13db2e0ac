"""Decoding: sampling (temperature, top-k, top-p), greedy, beam search on hand-made decoders whose
best sequences are known, and the language model's generate on cells against the old loop."""

import itertools
import math

import pytest
import torch

from lstmlab.models import decoding
from lstmlab.models.decoding import (
    beam_search,
    distribution,
    greedy,
    length_penalty,
    sample,
    sample_next,
    select_state,
)
from lstmlab.models.language import LanguageModel


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny models: one thread is fastest and spares the shared machine."""


class Table:
    """A decoder whose next token depends only on the last one: logits = log P[last]. Its state
    counts each row's steps, so a wrong row selection in beam search would show."""

    def __init__(self, probs):
        self.logits = torch.tensor(probs, dtype=torch.float64).log()

    def step(self, tokens, state):
        steps = torch.zeros_like(tokens) if state is None else state
        assert steps.shape == tokens.shape and bool((steps == steps[0]).all())
        return self.logits[tokens], steps + 1


# tokens of the hand-made tables
S, A, B_, X, Y, Z, E = range(7)

# greedy takes A (0.6) then X (0.36): 0.216; the best is B then X: 0.4 * 0.9 = 0.36
GREEDY_MISSES = Table([
    [0, .6, .4, 0, 0, 0, 0],      # S
    [0, 0, 0, .36, .34, .30, 0],  # A
    [0, 0, 0, .9, .05, .05, 0],   # B
    [0, 0, 0, 0, 0, 0, 1],        # X
    [0, 0, 0, 0, 0, 0, 1],        # Y
    [0, 0, 0, 0, 0, 0, 1],        # Z
    [0, 0, 0, 0, 0, 0, 1],        # E
])

# with end token 4: "E" alone has probability 0.55 (log -0.598); "A B E" 0.288 (-1.245, or
# -0.415 per token); C repeats itself (0.6) or ends (0.4)
LS, LA, LB, LC, LE = range(5)
SHORT_OR_LONG = Table([
    [0, .45, 0, 0, .55],   # S
    [0, 0, .8, 0, .2],     # A
    [0, 0, 0, .2, .8],     # B
    [0, 0, 0, .6, .4],     # C
    [0, 0, 0, 0, 1],       # E
])


def _start(*tokens):
    return torch.tensor(tokens, dtype=torch.long)


def _exhaustive_best(table, start, length):
    best = max(itertools.product(range(table.logits.shape[1]), repeat=length),
               key=lambda seq: float(sum(table.logits[a, b] for a, b in
                                         zip((start, *seq[:-1]), seq, strict=True))))
    return list(best)


# --- beam search ------------------------------------------------------------------------------


def test_beam_finds_the_best_sequence_that_greedy_misses():
    assert greedy(GREEDY_MISSES, _start(S), max_length=2).tokens.tolist() == [[A, X]]
    best, second = beam_search(GREEDY_MISSES, _start(S), width=2, max_length=2, n_best=2)[0]
    assert best.tokens == [B_, X] == _exhaustive_best(GREEDY_MISSES, S, 2)
    assert best.log_prob == pytest.approx(math.log(0.36)) and best.score == best.log_prob
    assert second.tokens == [A, X] and second.log_prob == pytest.approx(math.log(0.216))
    assert not best.finished  # no end token: cut at max_length


def _random_table(seed, vocab=8):
    g = torch.Generator().manual_seed(seed)
    return Table(torch.softmax(3 * torch.randn(vocab, vocab, generator=g, dtype=torch.float64),
                               dim=1).tolist())


@pytest.mark.parametrize("end_token", [None, 7])
def test_beam_width_one_is_greedy(end_token):
    for seed in range(5):
        table = _random_table(seed)
        starts = _start(0, 3, 5)
        decoded = greedy(table, starts, max_length=6, end_token=end_token)
        beams = beam_search(table, starts, width=1, max_length=6, end_token=end_token)
        for row, (hyps, length) in enumerate(zip(beams, decoded.lengths.tolist(), strict=True)):
            assert hyps[0].tokens == decoded.tokens[row, :length].tolist(), (seed, row)
            assert hyps[0].finished == (hyps[0].tokens[-1] == end_token)


def test_length_normalisation_changes_the_choice():
    def best(**kwargs):
        return beam_search(SHORT_OR_LONG, _start(LS), width=2, max_length=5, end_token=LE,
                           **kwargs)[0][0]

    raw = best()
    assert raw.tokens == [LE] and raw.finished and raw.log_prob == pytest.approx(math.log(.55))
    mean = best(length_normalization="mean")
    assert mean.tokens == [LA, LB, LE] and mean.finished
    assert mean.score == pytest.approx(math.log(.288) / 3)
    # GNMT: the long sequence wins once ((5 + 3) / 6) ** alpha > log(.288) / log(.55) = 2.08
    assert best(length_normalization="gnmt", alpha=0.6).tokens == [LE]
    gnmt = best(length_normalization="gnmt", alpha=3.0)
    assert gnmt.tokens == [LA, LB, LE]
    assert gnmt.score == pytest.approx(math.log(.288) / (8 / 6) ** 3)
    assert length_penalty(3, "gnmt", 3.0) == pytest.approx((8 / 6) ** 3)


def test_finished_sequences_are_kept_and_rows_are_independent():
    """Row C: "E" (0.4) ends at step 1 and stays best while "C C ..." goes on; its n_best also
    holds "C E" (0.24), found a step later. A batch gives each row's own result."""
    rows = beam_search(SHORT_OR_LONG, _start(LS, LC), width=2, max_length=4, end_token=LE,
                       n_best=2)
    first, second = rows[1]
    assert first.tokens == [LE] and first.finished
    assert first.log_prob == pytest.approx(math.log(.4))
    assert second.tokens == [LC, LE] and second.finished
    assert second.log_prob == pytest.approx(math.log(.24))
    alone = beam_search(SHORT_OR_LONG, _start(LS), width=2, max_length=4, end_token=LE,
                        n_best=2)
    assert rows[0] == alone[0]
    # cut at max_length before n_best sequences ended: the unfinished one is returned too
    cut = beam_search(SHORT_OR_LONG, _start(LC), width=2, max_length=1, end_token=LE,
                      n_best=2)[0]
    assert [(h.tokens, h.finished) for h in cut] == [([LC], False), ([LE], True)]


def test_greedy_and_sample_stop_rows_at_the_end_token():
    decoded = greedy(SHORT_OR_LONG, _start(LS, LA), max_length=10, end_token=LE)
    assert decoded.tokens.tolist() == [[LE, LE], [LB, LE]]
    assert decoded.lengths.tolist() == [1, 2]
    drawn = sample(SHORT_OR_LONG, _start(LC, LC, LC), max_length=30, end_token=LE,
                   generator=torch.Generator().manual_seed(0))
    for row, length in zip(drawn.tokens.tolist(), drawn.lengths.tolist(), strict=True):
        assert row[length - 1] == LE and LE not in row[:length - 1]
        assert set(row[length:]) <= {LE}
    assert drawn.tokens.shape[1] == max(drawn.lengths.tolist())


class HistoryDecoder:
    """The same chain as a Table, but its state is a list of token histories (no tensors), so
    beam search must use its own ``select_state``."""

    def __init__(self, table):
        self.table = table
        self.selections = 0

    def step(self, tokens, state):
        state = [[] for _ in tokens] if state is None else state
        return self.table.logits[tokens], [h + [t] for h, t in zip(state, tokens.tolist(),
                                                                     strict=True)]

    def select_state(self, state, index):
        self.selections += 1
        return None if state is None else [list(state[i]) for i in index.tolist()]


def test_a_decoder_can_select_its_own_state_rows():
    decoder = HistoryDecoder(GREEDY_MISSES)
    found = beam_search(decoder, _start(S, A), width=3, max_length=2, n_best=3)
    assert decoder.selections == 3  # the initial repeat, then once per step
    assert found == beam_search(GREEDY_MISSES, _start(S, A), width=3, max_length=2, n_best=3)
    state = (torch.arange(6).view(3, 2), [None, {"h": torch.arange(3)}])
    picked = select_state(state, torch.tensor([2, 0]))
    assert picked[0].tolist() == [[4, 5], [0, 1]] and picked[1][1]["h"].tolist() == [2, 0]


# --- sampling ---------------------------------------------------------------------------------


PROBS = [0.15, 0.5, 0.05, 0.3]  # sorted: 0.5 (id 1), 0.3 (id 3), 0.15 (id 0), 0.05 (id 2)


@pytest.mark.parametrize(("top_p", "kept"), [
    (0.45, [1]), (0.5, [1]), (0.75, [1, 3]), (0.85, [1, 3, 0]), (0.97, [1, 3, 0, 2]),
    (1.0, [1, 3, 0, 2]),
])
def test_top_p_keeps_the_smallest_set_with_enough_mass(top_p, kept):
    logits = torch.tensor(PROBS, dtype=torch.float64).log()
    expected = torch.zeros(4, dtype=torch.float64)
    expected[kept] = torch.tensor(PROBS, dtype=torch.float64)[kept]
    assert torch.allclose(distribution(logits, top_p=top_p), expected / expected.sum(),
                          atol=1e-12)


def test_draws_follow_the_filtered_distribution():
    logits = torch.tensor(PROBS).log().expand(2000, 4)
    g = torch.Generator().manual_seed(1)
    drawn = sample_next(logits, top_p=0.75, generator=g)
    assert set(drawn.tolist()) == {1, 3}
    assert (drawn == 1).double().mean().item() == pytest.approx(0.5 / 0.8, abs=0.04)
    drawn = sample_next(logits, top_k=3, top_p=0.7, generator=g)  # top-k first, then top-p
    assert set(drawn.tolist()) == {1, 3}
    drawn = sample_next(logits, temperature=2.0, top_k=2, generator=g)
    share = math.sqrt(.5) / (math.sqrt(.5) + math.sqrt(.3))  # p ** (1 / T), renormalised
    assert set(drawn.tolist()) == {1, 3}
    assert (drawn == 1).double().mean().item() == pytest.approx(share, abs=0.04)


def test_cold_sampling_and_top_k_one_are_argmax():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(6, 50, generator=g)
    for _ in range(20):
        assert torch.equal(sample_next(logits, temperature=1e-3, generator=g), logits.argmax(1))
    before = g.get_state()
    assert torch.equal(sample_next(logits, top_k=1, generator=g), logits.argmax(1))
    assert torch.equal(g.get_state(), before)  # greedy draws no random number
    assert torch.equal(distribution(logits[0], top_k=1), torch.eye(50)[int(logits[0].argmax())])


def test_seeded_sampling_is_reproducible():
    table = _random_table(3)
    runs = [sample(table, _start(0, 1), max_length=40, temperature=1.3, top_p=0.95,
                   generator=torch.Generator().manual_seed(seed)).tokens for seed in (5, 5, 6)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


@pytest.mark.parametrize(("call", "match"), [
    (lambda: sample_next(torch.zeros(3), temperature=0), "temperature must be a positive"),
    (lambda: sample_next(torch.zeros(3), temperature=-1.0), "temperature"),
    (lambda: sample_next(torch.zeros(3), temperature=float("nan")), "temperature"),
    (lambda: sample_next(torch.zeros(3), top_k=0), "top-k must be an integer of at least 1"),
    (lambda: sample_next(torch.zeros(3), top_k=2.5), "top-k"),
    (lambda: sample_next(torch.zeros(3), top_p=0), r"top-p must be a probability in \(0, 1\]"),
    (lambda: sample_next(torch.zeros(3), top_p=1.5), "top-p"),
    (lambda: sample(GREEDY_MISSES, _start(S), max_length=-1), "length must be an integer >= 0"),
    (lambda: sample(GREEDY_MISSES, _start(S), end_token=-2), "end_token must be a token id"),
    (lambda: greedy(GREEDY_MISSES, torch.tensor([[S]])), r"1-D long tensor \(B,\)"),
    (lambda: beam_search(GREEDY_MISSES, _start(S), width=0), "beam width must be an integer"),
    (lambda: beam_search(GREEDY_MISSES, _start(S), width=2, n_best=3), r"n_best .* \[1, width"),
    (lambda: beam_search(GREEDY_MISSES, _start(S), max_length=0), "max_length must be"),
    (lambda: beam_search(GREEDY_MISSES, _start(S), length_normalization="sum"),
     "length_normalization must be one of"),
    (lambda: beam_search(GREEDY_MISSES, _start(S), length_normalization="gnmt", alpha=-1),
     "alpha"),
    (lambda: beam_search(GREEDY_MISSES, _start(S), end_token=7), r"vocabulary \[0, 7\)"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- the language model on cells -------------------------------------------------------------


def _old_generate(model, prime, length, temperature=1.0, top_k=None, seed=0, rerun=False):
    """The generate loop before cells: run the layer on each new token with the carried state,
    drawing as the old sample_logits did. ``rerun``: run the layer over the whole sequence so far
    instead (the reference for FGR, whose gate history a layer call does not return)."""
    g = torch.Generator().manual_seed(seed)
    ids = list(prime)
    with torch.no_grad():
        logits, state = model(torch.tensor(ids).unsqueeze(1))
        for _ in range(length):
            last = logits[-1, 0].float() / temperature
            if top_k == 1:
                next_id = int(last.argmax())
            elif top_k is not None:
                values, indices = torch.topk(last, top_k)
                next_id = int(indices[torch.multinomial(torch.softmax(values, -1), 1,
                                                        generator=g)])
            else:
                next_id = int(torch.multinomial(torch.softmax(last, -1), 1, generator=g))
            ids.append(next_id)
            if rerun:
                logits, _ = model(torch.tensor(ids).unsqueeze(1))
            else:
                logits, state = model(torch.tensor([[next_id]]), state)
    return ids[len(prime):]


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn", "lstm:CIFG", "lstm:V", "lstm:FGR"])
def test_generate_on_cells_gives_the_old_tokens(kind):
    torch.manual_seed(0)
    model = LanguageModel(20, kind, hidden_size=16, num_layers=2, dropout=0.1)
    model.train()  # generate switches to eval and back
    rerun = kind == "lstm:FGR"
    for prime, options in [([1], {}), ([1, 2, 3], dict(temperature=0.7, top_k=5)),
                           ([4, 5], dict(top_k=1))]:
        length = 40 if rerun else 150
        expected = _old_generate(model.eval(), prime, length, seed=3, rerun=rerun, **options)
        model.train()
        assert list(model.generate(prime, length, seed=3, **options)) == expected, options
        assert model.training


def test_generate_top_p():
    torch.manual_seed(1)
    model = LanguageModel(20, "lstm", hidden_size=16, num_layers=1)
    greedy_ids = list(model.generate([1], 50, top_k=1))
    assert list(model.generate([1], 50, top_p=1e-9, seed=4)) == greedy_ids
    assert list(model.generate([1], 50, top_p=1.0, seed=4)) == \
        list(model.generate([1], 50, seed=4))
    with pytest.raises(ValueError, match="top-p"):
        list(model.generate([1], 5, top_p=2.0))


def test_stepper_equals_the_model_and_decodes_with_beams():
    torch.manual_seed(2)
    model = LanguageModel(12, "lstm:V", hidden_size=8, num_layers=2).double().eval()
    ids = torch.randint(0, 12, (6, 3))
    expected, _ = model(ids)
    stepper = model.stepper()
    state = stepper.advance(ids[:2])
    for t in range(2, 6):
        logits, state = stepper.step(ids[t], state)
        assert torch.allclose(logits, expected[t], atol=1e-12)
    with torch.no_grad():
        found = beam_search(stepper, ids[0], width=1, max_length=8)
        assert [h[0].tokens for h in found] == greedy(stepper, ids[0], max_length=8).tokens.tolist()
        wide = beam_search(stepper, ids[0], width=4, max_length=8)
    assert all(w[0].log_prob >= f[0].log_prob - 1e-9 for w, f in zip(wide, found, strict=True))


def test_old_names_still_import():
    from lstmlab.models.language import check_sampling, sample_logits
    assert sample_logits is decoding.sample_logits and check_sampling is decoding.check_sampling
