"""Memory games: every generator's targets recomputed independently from its inputs (plain Python
loops over the decoded sequences), the Reber grammar, lag bounds, seeds, evaluation thresholds and
the stopping rules on hand-made results."""

from __future__ import annotations

import math
import re

import pytest
import torch

from lstmlab.tasks import (
    TASK_NAMES,
    Batch,
    BlockRule,
    StreakRule,
    TestSetRule,
    WindowRule,
    make_task,
)
from lstmlab.tasks.memory import (
    REFERENCE_SETUPS,
    decode_strings,
    embedded_reber_legal_next,
    encode_strings,
    is_embedded_reber,
    is_reber,
)

B = 64


pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


_DECODED: list = [None, None]  # [the inputs tensor decoded last (kept alive), its rows]


def symbols_of(batch: Batch, b: int) -> list[int | None]:
    """Sequence b's one-hot inputs as symbol indices (None for an all-zero step), checking that
    every step is one-hot or zero."""
    x = batch.inputs
    if _DECODED[0] is not x:
        assert ((x == 0) | (x == 1)).all() and (x.sum(-1) <= 1).all(), "inputs are not one-hot"
        index, present = x.argmax(-1).T.tolist(), (x.sum(-1) == 1).T.tolist()
        _DECODED[:] = [x, [[i if p else None for i, p in zip(row, has, strict=True)]
                           for row, has in zip(index, present, strict=True)]]
    return _DECODED[1][b][:int(batch.lengths[b])]


def scored(batch: Batch, b: int) -> list[int]:
    return [t for t in range(batch.steps) if batch.mask[t, b]]


# -- configurations used across the generic tests -------------------------------------------------

CONFIGS = [
    ("intern", 10, {}),
    ("tasks", 30, {}),
    ("tasks", 30, {"regression": True}),
    ("romaji", 20, {}),
    ("reber", None, {}),
    ("reber", None, {"online": True, "target": "legal"}),
    ("lag", 12, {"variant": "2a"}),
    ("lag", 12, {"variant": "2b"}),
    ("lag", 12, {"variant": "2c"}),
    ("two_sequence", 20, {"variant": "3a"}),
    ("two_sequence", 20, {"variant": "3b"}),
    ("two_sequence", 20, {"variant": "3c", "stop": "ST2"}),
    ("adding", 40, {}),
    ("adding", 40, {"variant": "bai"}),
    ("multiplication", 40, {}),
    ("temporal_order", 40, {"variant": "6a"}),
    ("temporal_order", 40, {"variant": "6b"}),
    ("dsr", None, {}),
    ("timing", 80, {}),
    ("copy", 15, {}),
    ("parity", 10, {}),
    ("latch", 20, {}),
]
IDS = [f"{n}-{o.get('variant', '')}{'-reg' if o.get('regression') else ''}"
       f"{'-online' if o.get('online') else ''}" for n, _, o in CONFIGS]

_TASK_CACHE: dict[int, object] = {}


def task_of(index: int):
    """One task instance per configuration (the Reber fixed sets are built once)."""
    if index not in _TASK_CACHE:
        name, lag, options = CONFIGS[index]
        _TASK_CACHE[index] = make_task(name, lag, **options)
    return _TASK_CACHE[index]


def oracle(task, batch: Batch, wrong: bool = False) -> torch.Tensor:
    """Raw head outputs that answer every scored step right (or, with wrong=True, wrong)."""
    T, Bn, O = batch.steps, batch.batch_size, task.output_size
    if task.name == "reber":
        legal = batch.targets > 0.5
        if wrong:
            legal = ~legal
        return torch.where(legal, 5.0, -5.0)
    if task.loss_kind == "ce":
        target = batch.targets
        if wrong:
            target = (target + 1) % O
        return torch.nn.functional.one_hot(target, O).float() * 20.0
    target = task.target_vectors(batch).clone()
    if task.name == "two_sequence":  # judged against the noise-free target
        clean = batch.extras["clean_target"]
        target[batch.lengths - 1, torch.arange(Bn), 0] = clean
    if wrong and task.loss_kind == "mse_sigmoid":  # flip, or move 0.3 away from values near 0.5
        near = (target - 0.5).abs() < 0.2
        target = torch.where(near, torch.where(target > 0.5, target - 0.3, target + 0.3),
                             1.0 - target)
    elif wrong:
        target = target + 1.0
    if task.name == "tasks" and wrong:
        target = batch.targets + 2.0 / task.capacity
    if task.loss_kind == "mse_sigmoid":
        return torch.logit(target.clamp(1e-6, 1 - 1e-6))
    return target.reshape(T, Bn, O)


# -- registry and bounds ---------------------------------------------------------------------------

def test_registry_names():
    assert set(TASK_NAMES) == {"intern", "tasks", "romaji", "reber", "lag", "two_sequence",
                               "adding", "multiplication", "temporal_order", "dsr", "timing",
                               "copy", "parity", "latch"}
    for name in TASK_NAMES:
        task = make_task(name)
        assert task.name == name and task.lag >= task.min_lag
        assert task.reference and isinstance(task.reference, str) and "\n" not in task.reference
        assert task.input_size >= 1 and task.output_size >= 1
        assert task.loss_kind in ("ce", "mse_sigmoid", "mse")


def test_unknown_name_and_option():
    with pytest.raises(ValueError, match="valid names: intern, tasks"):
        make_task("addding")
    with pytest.raises(ValueError, match="unknown option.*valid options: variant"):
        make_task("adding", 100, varient="bai")
    with pytest.raises(ValueError, match="unknown variant '2d'.*2a, 2b, 2c"):
        make_task("lag", 10, variant="2d")
    with pytest.raises(ValueError, match="2c only"):
        make_task("lag", 10, variant="2a", distractors=5)
    with pytest.raises(TypeError):
        make_task("adding", 100.0)


@pytest.mark.parametrize("name, options, minimum", [
    ("adding", {}, 11), ("adding", {"variant": "bai"}, 2), ("multiplication", {}, 11),
    ("lag", {"variant": "2a"}, 2), ("lag", {"variant": "2b"}, 2), ("lag", {"variant": "2c"}, 1),
    ("two_sequence", {"signal_steps": 3}, 4), ("two_sequence", {"signal_steps": 1}, 2),
    ("temporal_order", {"variant": "6b"}, 20), ("romaji", {"max_letters": 6}, 6),
    ("reber", {"online": True}, 9), ("dsr", {}, 4), ("intern", {}, 0), ("latch", {}, 2),
    ("copy", {}, 1), ("parity", {}, 1), ("timing", {}, 1), ("tasks", {}, 1),
])
def test_lag_bounds(name, options, minimum):
    task = make_task(name, minimum, **options)
    batch = task.sample(8, gen())
    assert batch.batch_size == 8
    with pytest.raises(ValueError, match=f"too short; the minimum is {minimum}"):
        make_task(name, minimum - 1, **options)


def test_reference_setups_build_and_carry_figures():
    figures = {}
    for name, options in REFERENCE_SETUPS:
        task = make_task(name, **options)
        figures[(name, task.title)] = task.reference_sequences
    assert figures[("adding", "adding (T = 100)")] == 74_000
    assert figures[("adding", "adding (T = 1000)")] == 853_000
    assert figures[("lag", "lag 2a (p = 100)")] == 5_040
    assert figures[("reber", "reber (max length = 64)")] == 8_440
    assert figures[("lag", "lag 2c (q = 500, p = 500)")] == 38_000
    assert figures[("two_sequence", "two_sequence 3a (T = 100, N = 1)")] == 58_370
    assert figures[("temporal_order", "temporal_order 6b (T = 100)")] == 571_100
    assert make_task("multiplication", 100, stop_errors=13).reference_sequences == 1_273_000
    assert make_task("adding", 200).reference_sequences is None
    assert make_task("dsr").reference_sequences is None


# -- the batch contract, for every task -----------------------------------------------------------

@pytest.mark.parametrize("index", range(len(CONFIGS)), ids=IDS)
def test_batch_contract(index):
    task = task_of(index)
    batch = task.sample(B, gen(1))
    T = batch.steps
    assert batch.inputs.shape == (T, B, task.input_size) and batch.inputs.dtype == torch.float32
    assert batch.mask.shape == (T, B) and batch.mask.dtype == torch.bool
    assert batch.lengths.shape == (B,) and batch.lengths.dtype == torch.int64
    assert int(batch.lengths.max()) == T and int(batch.lengths.min()) >= 1
    if batch.targets.dtype == torch.int64:
        assert batch.targets.shape == (T, B)
        assert int(batch.targets.min()) >= 0 and int(batch.targets.max()) < task.output_size
    else:
        assert batch.targets.dtype == torch.float32
        assert batch.targets.shape == (T, B, task.output_size)
    beyond = torch.arange(T).unsqueeze(1) >= batch.lengths.unsqueeze(0)
    assert not batch.inputs[beyond].any(), "inputs must be zero past each length"
    assert not batch.mask[beyond].any(), "no scored step past a length"
    assert batch.mask.any(0).all(), "every sequence has a scored step"
    for value in batch.extras.values():
        assert value.shape[0] == B
    assert torch.isfinite(batch.inputs).all()


@pytest.mark.parametrize("index", range(len(CONFIGS)), ids=IDS)
def test_seeds_reproduce(index):
    task = task_of(index)
    a, b, c = task.sample(B, gen(5)), task.sample(B, gen(5)), task.sample(B, gen(6))
    for x, y in ((a.inputs, b.inputs), (a.targets, b.targets), (a.mask, b.mask),
                 (a.lengths, b.lengths)):
        assert torch.equal(x, y)
    assert a.inputs.shape != c.inputs.shape or not torch.equal(a.inputs, c.inputs)


@pytest.mark.parametrize("index", range(len(CONFIGS)), ids=IDS)
def test_loss_and_evaluate(index):
    task = task_of(index)
    batch = task.sample(B, gen(2))
    outputs = torch.randn(batch.steps, B, task.output_size, requires_grad=True)
    loss = task.loss(outputs, batch)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    assert outputs.grad is not None and outputs.grad[~batch.mask].abs().sum() == 0
    correct, error = task.evaluate(outputs, batch)
    assert correct.shape == (B,) and correct.dtype == torch.bool
    assert error.shape == (B,) and error.is_floating_point()
    right = oracle(task, batch)
    ok, err = task.evaluate(right, batch)
    assert ok.all(), f"an oracle answer was judged wrong: {err}"
    bad, _ = task.evaluate(oracle(task, batch, wrong=True), batch)
    assert not bad.any()
    if task.name not in ("reber",):
        assert task.loss(right, batch) < task.loss(oracle(task, batch, wrong=True), batch)
    with pytest.raises(ValueError, match=r"outputs must be \(T, B, O\)"):
        task.evaluate(torch.zeros(batch.steps, B, task.output_size + 1), batch)


@pytest.mark.parametrize("index", range(len(CONFIGS)), ids=IDS)
def test_test_sets_fixed_and_chunked(index):
    task = task_of(index)
    whole = task.test_set(seed=11, size=300)
    assert whole.batch_size == 300
    again = task.test_set(seed=11, size=300)
    assert torch.equal(whole.inputs, again.inputs) and torch.equal(whole.targets, again.targets)
    chunks = list(task.test_batches(seed=11, size=300, batch_size=128))
    assert [c.batch_size for c in chunks] == [128, 128, 44]
    joined = Batch.cat(chunks)
    assert torch.equal(joined.inputs, whole.inputs) and torch.equal(joined.mask, whole.mask)
    assert torch.equal(joined.lengths, whole.lengths)
    other = task.test_set(seed=12, size=300)
    assert other.inputs.shape != whole.inputs.shape or not torch.equal(other.inputs, whole.inputs)
    assert task.fixed_set(40, seed=3).batch_size == 40


def test_default_test_set_size_and_stopping_set():
    task = make_task("intern", 5)
    assert task.test_set().batch_size == 2560
    rule = make_task("two_sequence", 20).stopping_rule()
    check = make_task("two_sequence", 20).stopping_set(rule)
    assert rule.needs_test and check.batch_size == 256
    assert not torch.equal(check.inputs[:, :10],
                           make_task("two_sequence", 20).test_set(size=256).inputs[:, :10])


def test_batch_select_and_cat():
    task = make_task("adding", 40)
    batch = task.sample(10, gen(3))
    part = batch.select([2, 5])
    assert part.steps == int(batch.lengths[[2, 5]].max())
    assert torch.equal(part.inputs[:, 1], batch.inputs[:part.steps, 5])
    assert torch.equal(part.extras["positions"], batch.extras["positions"][[2, 5]])
    joined = Batch.cat([batch.select(slice(0, 4)), batch.select(slice(4, None))])
    assert torch.equal(joined.inputs, batch.inputs) and torch.equal(joined.targets, batch.targets)
    assert len(batch) == 10 and batch.to("cpu").batch_size == 10


# -- each generator recomputed independently ------------------------------------------------------

def test_intern_targets():
    task = make_task("intern", 7, names=5, distractors=4)
    batch = task.sample(B, gen())
    for b in range(B):
        s = symbols_of(batch, b)
        assert len(s) == 9 and 0 <= s[0] < 5 and s[-1] == 9
        assert all(5 <= x < 9 for x in s[1:-1])
        assert scored(batch, b) == [8] and int(batch.targets[8, b]) == s[0]


def test_tasks_running_sum():
    task = make_task("tasks", 60, capacity=6, max_change=3, p_active=0.3)
    batch = task.sample(B, gen())
    empty = 0
    for b in range(B):
        counts = [round(float(v) * 3) for v in batch.inputs[:60, b, 0]]
        assert all(abs(c) <= 3 for c in counts)
        assert batch.inputs[:60, b, 1].sum() == 0 and batch.inputs[60, b].tolist() == [0.0, 1.0]
        total = 0
        for c in counts:
            total += c
            assert 0 <= total <= 6, "the open count must stay in 0..capacity"
        empty += counts.count(0)
        assert scored(batch, b) == [60] and int(batch.targets[60, b]) == total
    assert empty > 0.6 * 60 * B  # most days are empty
    regression = make_task("tasks", 60, capacity=6, max_change=3, p_active=0.3, regression=True)
    rb = regression.sample(B, gen())
    assert torch.allclose(rb.targets[60, :, 0] * 6, batch.targets[60].float())


def test_romaji_recall_order():
    task = make_task("romaji", 15, min_letters=2, max_letters=4)
    batch = task.sample(B, gen())
    L, END = 26, 26
    for b in range(B):
        s = symbols_of(batch, b)
        stream, prompt, recall = s[:15], s[15], s[16:]
        assert prompt == task.input_size - 1 and recall == [None] * 5
        letters = [x for x in stream if x < L]
        assert 2 <= len(letters) <= 4 and all(x is not None for x in stream)
        expected = letters + [END] * (5 - len(letters))
        assert scored(batch, b) == list(range(16, 21))
        assert batch.targets[16:, b].tolist() == expected
    assert task.classes[END] == "<end>" and task.symbols[0] == "A"


# An independent description of the Reber grammar, as a regular expression.
_N3 = "T*V(?:PXT*V)*(?:V|PS)"
_REBER_RE = re.compile(f"^B(?:TS*X(?:S|X{_N3})|P{_N3})E$")
_EMBEDDED_RE = re.compile(f"^B(?:T({_REBER_RE.pattern[1:-1]})T|P({_REBER_RE.pattern[1:-1]})P)E$")
# ... and as an edge list (state, symbol, next), walked by hand in legal_by_hand
_EDGES = ["0B1", "1T2", "1P3", "2S2", "2X4", "3T3", "3V5", "4X3", "4S6", "5P4", "5V6", "6E7"]


def legal_by_hand(string: str) -> list[set[str]]:
    """Legal next symbols after each prefix, by walking the edge list."""
    out = [{"T", "P"}, {"B"}]
    state = "0"
    for symbol in string[2:-2]:
        state = next(e[2] for e in _EDGES if e[0] == state and e[1] == symbol)
        nxt = {e[1] for e in _EDGES if e[0] == state}
        out.append(nxt if nxt else {string[1]})
    out.append({"E"})
    return out


def test_reber_examples():
    for good in ("BTSSXXTVVE", "BPVVE", "BTXSE", "BPTVPXVVE", "BTSXXVPSE"):
        assert is_reber(good) and _REBER_RE.match(good)
    for bad in ("BTSSXXTVE", "BPVE", "TXSE", "BTXS", "BTXSEE", ""):
        assert not is_reber(bad) and not _REBER_RE.match(bad)
    assert is_embedded_reber("BTBPVVETE")
    assert not is_embedded_reber("BTBPVVEPE")  # the long-lag symbol must repeat the second
    assert not is_embedded_reber("BPBTXSETE")
    assert embedded_reber_legal_next("BTBPVVETE") == [
        {"T", "P"}, {"B"}, {"T", "P"}, {"T", "V"}, {"P", "V"}, {"E"}, {"T"}, {"E"}]
    with pytest.raises(ValueError, match="not an embedded Reber string"):
        embedded_reber_legal_next("BTBPVVEPE")


def test_reber_generated_strings_and_legal_sets():
    task = make_task("reber", online=True)
    batch = task.sample(400, gen(4))
    strings = decode_strings(batch)
    rng = torch.Generator().manual_seed(9)
    for b, string in enumerate(strings):
        assert _EMBEDDED_RE.match(string) and is_embedded_reber(string)
        assert len(string) == int(batch.lengths[b]) <= task.lag
        legal = legal_by_hand(string)
        assert scored(batch, b) == list(range(len(string) - 1))
        for t, allowed in enumerate(legal):
            got = {c for c, v in zip("BTPSXVE", batch.targets[t, b].tolist(), strict=True) if v}
            assert got == allowed, (string, t)
            assert string[t + 1] in allowed
        # corrupt one symbol: the checker must agree with the regular expression
        i = int(torch.randint(0, len(string), (1,), generator=rng))
        for c in "BTPSXVE":
            mutated = string[:i] + c + string[i + 1:]
            assert is_embedded_reber(mutated) == bool(_EMBEDDED_RE.match(mutated))
    # the long-lag symbol swapped: always rejected
    swapped = [s[:-2] + ("P" if s[-2] == "T" else "T") + "E" for s in strings]
    assert not any(is_embedded_reber(s) for s in swapped)
    assert encode_strings(strings).targets.shape == batch.targets.shape


def test_reber_fixed_sets():
    task = make_task("reber")
    train, test = task.training_strings, task.test_strings
    assert len(train) == len(set(train)) == 256 and len(test) == len(set(test)) == 256
    assert not set(train) & set(test)
    assert all(is_embedded_reber(s) for s in train + test)
    again = make_task("reber")
    assert again.training_strings == train and again.test_strings == test
    assert make_task("reber", strings_seed=1).training_strings != train
    assert decode_strings(task.test_set()) == test
    assert decode_strings(task.fixed_set()) == train
    drawn = decode_strings(task.sample(100, gen()))
    assert set(drawn) <= set(train)
    assert decode_strings(task.stopping_set()) == train + test
    rule = task.stopping_rule()
    assert rule.needs_test and rule.max_wrong == 0 and rule.test_size == 512


def test_reber_top_k_rule():
    task = make_task("reber")
    batch = encode_strings(["BTBPVVETE"])
    legal = batch.targets > 0.5
    outputs = torch.where(legal, 1.0, 0.0)
    assert task.evaluate(outputs, batch)[0].item()
    # a legal symbol tied with an illegal one at one step: wrong
    bad = outputs.clone()
    bad[3, 0, 0] = 1.0  # after "BTBP" (legal T, V) the B output as high as the legal ones
    ok, error = task.evaluate(bad, batch)
    assert not ok.item() and error.item() == pytest.approx(1 / 8)
    # only the top k count: one legal symbol high, the other below an illegal one: wrong
    bad = outputs.clone()
    bad[2, 0, 1] = -1.0
    assert not task.evaluate(bad, batch)[0].item()
    # the "next" loss trains towards the actual next symbol
    vectors = task.target_vectors(batch)
    assert vectors[:8, 0].argmax(-1).tolist() == [1, 0, 2, 5, 5, 6, 1, 6]


def test_lag_2a_2b():
    p = 12
    a = make_task("lag", p, variant="2a").sample(B, gen())
    for b in range(B):
        s = symbols_of(a, b)
        assert len(s) == p and s[0] in (0, 1)
        assert s[1:] == list(range(2, p + 1))  # a1..a_{p-1}
        full = s + [s[0]]
        assert a.targets[:, b].tolist() == full[1:]
        assert scored(a, b) == list(range(p))
    bb = make_task("lag", p, variant="2b").sample(400, gen())
    middles = set()
    for b in range(400):
        s = symbols_of(bb, b)
        assert s[0] in (0, 1) and all(2 <= x <= p for x in s[1:])
        middles.update(s[1:])
        # every step trained (the paper: "every next sequence element has to be predicted")
        assert scored(bb, b) == list(range(p)) and bb.targets[:, b].tolist() == s[1:] + [s[0]]
    assert middles == set(range(2, p + 1))


def test_lag_2c():
    q, p = 30, 7
    task = make_task("lag", q, variant="2c", distractors=p)
    assert task.input_size == p + 4 and task.output_size == 2
    batch = task.sample(1000, gen())
    extra = []
    for b in range(1000):
        s = symbols_of(batch, b)
        assert s[0] == 0 and s[1] in (2, 3) and s[-1] == 1
        assert all(4 <= x < p + 4 for x in s[2:-1])
        extra.append(len(s) - 3 - q)
        assert extra[-1] >= 0
        assert scored(batch, b) == [len(s) - 1] and int(batch.targets[len(s) - 1, b]) == s[1] - 2
    mean = sum(extra) / len(extra)
    assert 8.7 < mean < 11.3, mean  # expected full length q + 14 = b, x|y, q + k, e, x|y


def test_lag_evaluate_thresholds():
    task = make_task("lag", 5, variant="2a")
    batch = task.sample(2, gen())
    target = task.target_vectors(batch)
    for delta, ok in ((0.24, True), (0.26, False)):
        out = (target - delta).abs()  # |error| = delta on every unit that should be 0 or 1
        correct, error = task.evaluate(torch.logit(out.clamp(1e-7, 1 - 1e-7)), batch)
        assert correct.tolist() == [ok, ok] and error[0].item() == pytest.approx(delta, abs=1e-4)
    c = make_task("lag", 5, variant="2c")
    batch = c.sample(2, gen())
    target = c.target_vectors(batch)
    for delta, ok in ((0.19, True), (0.21, False)):
        out = torch.logit((target - delta).abs().clamp(1e-7, 1 - 1e-7))
        assert c.evaluate(out, batch)[0].tolist() == [ok, ok]


@pytest.mark.parametrize("variant", ["3a", "3b", "3c"])
def test_two_sequence(variant):
    T, N = 30, 3
    task = make_task("two_sequence", T, variant=variant, signal_steps=N)
    batch = task.sample(1000, gen())
    noise = []
    for b in range(1000):
        n = int(batch.lengths[b])
        assert T <= n <= T + T // 10
        x = batch.inputs[:n, b, 0].tolist()
        label = int(batch.extras["label"][b])
        sign = 1.0 if label == 1 else -1.0
        if variant == "3a":
            assert x[:N] == [sign] * N
        else:
            noise += [v - sign for v in x[:N]]
        noise += x[N:]
        assert scored(batch, b) == [n - 1]
        target = float(batch.targets[n - 1, b, 0])
        clean = {"3c": 0.2 + 0.6 * label}.get(variant, float(label))
        assert float(batch.extras["clean_target"][b]) == pytest.approx(clean)
        if variant != "3c":
            assert target == clean
    variance = sum(v * v for v in noise) / len(noise)
    assert abs(sum(noise) / len(noise)) < 0.02 and 0.18 < variance < 0.22
    if variant == "3c":
        residual = [float(batch.targets[int(n) - 1, b, 0] - batch.extras["clean_target"][b])
                    for b, n in enumerate(batch.lengths)]
        assert 0.08 < sum(r * r for r in residual) / 1000 < 0.12
    # evaluate against the noise-free target: 0.19 right, 0.21 wrong
    clean = batch.extras["clean_target"][:2]
    for delta, ok in ((0.19, True), (0.21, False)):
        out = torch.zeros(batch.steps, 2, 1)
        sub = batch.select([0, 1])
        value = torch.where(clean > 0.5, clean - delta, clean + delta)
        out = out[:sub.steps]
        out[sub.lengths - 1, torch.arange(2), 0] = torch.logit(value)
        assert task.evaluate(out, sub)[0].tolist() == [ok, ok]


def test_two_sequence_stopping_rules():
    st1 = make_task("two_sequence", 20).stopping_rule()
    assert st1.test_size == 256 and st1.max_wrong == 0 and st1.max_mean_error is None
    st2 = make_task("two_sequence", 20, stop="ST2").stopping_rule()
    assert st2.max_mean_error == 0.01
    assert make_task("two_sequence", 20, variant="3c", stop="ST2").stopping_rule(
    ).max_mean_error == 0.015


def check_marked_pairs(batch: Batch, T: int, first_counts_as: float, make_target):
    for b in range(batch.batch_size):
        n = int(batch.lengths[b])
        assert T <= n <= T + T // 10
        values = batch.inputs[:n, b, 0].tolist()
        markers = batch.inputs[:n, b, 1].tolist()
        marked = [t for t, m in enumerate(markers) if m == 1.0]
        assert len(marked) == 2
        m1, m2 = marked
        assert (m1 < 10 and m2 < T // 2 - 1) or (m2 < 10 and m1 < T // 2 - 1)
        assert markers[-1] == -1.0
        assert markers[0] == (1.0 if 0 in marked else -1.0)
        assert all(m == 0.0 for t, m in enumerate(markers[1:-1], 1) if t not in marked)
        x = [first_counts_as if t == 0 else values[t] for t in marked]
        assert scored(batch, b) == [n - 1]
        assert float(batch.targets[n - 1, b, 0]) == pytest.approx(make_target(*x), abs=1e-6)


def test_adding_1997():
    T = 40
    batch = make_task("adding", T).sample(500, gen())
    assert batch.inputs[..., 0].min() >= -1 and batch.inputs[..., 0].max() <= 1
    assert batch.inputs[..., 0].min() < -0.9  # values really span [-1, 1]
    check_marked_pairs(batch, T, 0.0, lambda x1, x2: 0.5 + (x1 + x2) / 4.0)
    assert (batch.extras["positions"][:, 0] == 0).any()  # a marked first step does occur


def test_adding_bai():
    T = 30
    batch = make_task("adding", T, variant="bai").sample(300, gen())
    assert (batch.lengths == T).all()
    for b in range(300):
        values, markers = batch.inputs[:, b, 0].tolist(), batch.inputs[:, b, 1].tolist()
        assert all(0 <= v <= 1 for v in values) and set(markers) <= {0.0, 1.0}
        marked = [t for t, m in enumerate(markers) if m == 1.0]
        assert len(marked) == 2
        assert float(batch.targets[T - 1, b, 0]) == pytest.approx(sum(values[t] for t in marked))
    late = batch.extras["positions"].max(1).values
    assert (late >= T // 2).any()  # Bai's marks may fall anywhere


def test_multiplication():
    T = 40
    batch = make_task("multiplication", T).sample(500, gen())
    assert batch.inputs[..., 0].min() >= 0
    check_marked_pairs(batch, T, 1.0, lambda x1, x2: x1 * x2)
    assert make_task("multiplication", T).stopping_rule().max_wrong == 139
    assert make_task("multiplication", T, stop_errors=13).stopping_rule().max_wrong == 12


def test_adding_evaluate_thresholds():
    task = make_task("adding", 20)
    batch = task.sample(2, gen())
    target = batch.targets[batch.lengths - 1, torch.arange(2), 0]
    for delta, ok in ((0.039, True), (0.041, False)):
        out = torch.zeros(batch.steps, 2, 1)
        value = torch.where(target > 0.5, target - delta, target + delta)
        out[batch.lengths - 1, torch.arange(2), 0] = torch.logit(value)
        correct, error = task.evaluate(out, batch)
        assert correct.tolist() == [ok, ok]
        assert error[0].item() == pytest.approx(delta ** 2, rel=1e-3)


@pytest.mark.parametrize("variant, windows", [("6a", [(10, 20), (50, 60)]),
                                              ("6b", [(10, 20), (33, 43), (66, 76)])])
def test_temporal_order(variant, windows):
    task = make_task("temporal_order", variant=variant)
    batch = task.sample(300, gen())
    E, Bq, X, Y = 0, 1, 6, 7
    for b in range(300):
        s = symbols_of(batch, b)
        assert 100 <= len(s) <= 110 and s[0] == E and s[-1] == Bq
        signals = [(t + 1, x) for t, x in enumerate(s) if x in (X, Y)]  # 1-based steps
        assert len(signals) == len(windows)
        for (step, _), (lo, hi) in zip(signals, windows, strict=True):
            assert lo <= step <= hi
        assert all(2 <= x <= 5 for x in s[1:-1] if x not in (X, Y))
        label = 0
        for _, x in signals:
            label = 2 * label + (x == Y)
        assert scored(batch, b) == [len(s) - 1] and int(batch.targets[len(s) - 1, b]) == label
    # correct when every output's final error is below 0.3
    sub = batch.select([0])
    target = task.target_vectors(sub)[int(sub.lengths[0]) - 1, 0]
    for delta, ok in ((0.29, True), (0.31, False)):
        out = torch.zeros(sub.steps, 1, task.output_size)
        out[-1, 0] = torch.logit((target - delta).abs())
        correct, error = task.evaluate(out, sub)
        assert correct.item() == ok
        assert error.item() == pytest.approx(task.output_size * delta ** 2, rel=1e-3)


def test_dsr_order_by_time():
    task = make_task("dsr")
    batch = task.sample(1000, gen())
    targets, distractors = (2, 4, 7, 8), (3, 5, 6, 9)
    saw_string_sort_case = False
    for b in range(1000):
        s = symbols_of(batch, b)
        assert len(s) == 24 and s[22:] == [0, 1]
        placed = [(t, x) for t, x in enumerate(s[:22]) if x in targets]
        assert len(placed) == 2 and all(x in distractors for x in s[:22] if x not in targets)
        expected = [targets.index(x) for _, x in sorted(placed)]
        assert scored(batch, b) == [22, 23] and batch.targets[22:, b].tolist() == expected
        (t1, _), (t2, _) = placed
        saw_string_sort_case |= str(t1) > str(t2)  # e.g. 5 before 12: Synaptic would swap
    assert saw_string_sort_case
    rule = task.stopping_rule()
    assert isinstance(rule, BlockRule) and rule.block == 1000 and rule.min_rate == 0.95


def test_timing_targets():
    task = make_task("timing", 300)
    batch = task.sample(16, gen())
    for b in range(16):
        pulse = batch.inputs[:, b, 0].tolist()
        level = batch.inputs[:, b, 1].tolist()
        assert pulse[0] == 1.0
        since, n = None, 0
        for t in range(300):
            if pulse[t] == 1.0:
                since, n = 0, round(level[t] * 20)
                assert 0 <= n <= 20
            else:
                since += 1
                assert round(level[t] * 20) == n  # the level holds through the episode
            expected = 0.5 if 1 <= since <= n else 0.0
            assert float(batch.targets[t, b, 0]) == expected
        assert int(batch.extras["episodes"][b]) == int(sum(pulse))
    assert batch.mask.all()
    rule = task.stopping_rule()
    assert rule.window == 24 and rule.max_mean_error == 0.005  # ceil(7000 / 300) sequences


def test_copy_layout_and_baseline():
    T = 15
    task = make_task("copy", T)
    batch = task.sample(B, gen())
    for b in range(B):
        s = symbols_of(batch, b)
        assert len(s) == T + 20
        digits = s[:10]
        assert all(1 <= d <= 8 for d in digits)
        assert s[10:T + 9] == [0] * (T - 1) and s[T + 9] == 9 and s[T + 10:] == [0] * 10
        assert batch.targets[:, b].tolist() == [0] * (T + 10) + digits
    assert batch.mask.all()
    # the memoryless answer (blank right, uniform over digits at recall) scores the baseline
    out = torch.full((T + 20, B, 9), -30.0)
    out[:T + 10, :, 0] = 0.0
    out[T + 10:, :, 1:] = 0.0
    assert task.loss(out, batch).item() == pytest.approx(task.baseline_loss, rel=1e-4)
    assert task.baseline_loss == pytest.approx(10 * math.log(8) / (T + 20))


def test_parity_and_latch():
    parity = make_task("parity", 10)
    batch = parity.sample(300, gen())
    for b in range(300):
        n = int(batch.lengths[b])
        assert 10 <= n <= 20
        x = batch.inputs[:n, b, 0].tolist()
        assert set(x) <= {1.0, -1.0}
        assert float(batch.targets[n - 1, b, 0]) == float(x.count(1.0) % 2)
    latch = make_task("latch", 20)
    batch = latch.sample(300, gen())
    for b in range(300):
        x = batch.inputs[:, b, 0].tolist()
        assert x[0] in (1.0, -1.0)
        assert float(batch.targets[19, b, 0]) == (1.0 if x[0] > 0 else 0.0)
    rest = batch.inputs[1:, :, 0]
    assert 0.17 < rest.var().item() < 0.23


def test_stopping_rules_of_tasks():
    assert isinstance(make_task("lag", 10).stopping_rule(), StreakRule)
    assert make_task("lag", 10, variant="2c").stopping_rule().length == 10_000
    adding = make_task("adding", 20).stopping_rule()
    assert isinstance(adding, WindowRule) and adding.window == 2000
    assert adding.max_wrong == 0 and adding.max_mean_error == 0.01
    order = make_task("temporal_order").stopping_rule()
    assert order.max_mean_error == 0.1 and order.max_wrong == 0
    for name in ("intern", "tasks", "romaji"):
        rule = make_task(name).stopping_rule()
        assert isinstance(rule, TestSetRule) and rule.min_accuracy == 0.99
    # copy stops with a margin over the 99% of fresh sequences that "solved" means
    copy = make_task("copy").stopping_rule()
    assert isinstance(copy, TestSetRule) and copy.min_accuracy == 0.995
    assert copy.test_size == make_task("copy").test_size == 2560
    task = make_task("adding", 20)
    assert task.stopping_rule() is not task.stopping_rule()  # a fresh rule for each run


# -- stopping rules on hand-made results ----------------------------------------------------------

def bools(text: str) -> torch.Tensor:
    """'1101' -> tensor([True, True, False, True])."""
    return torch.tensor([c == "1" for c in text], dtype=torch.bool)


def errs(n: int, value: float = 0.0) -> torch.Tensor:
    return torch.full((n,), value, dtype=torch.float64)


def test_streak_rule_across_batches():
    rule = StreakRule(5)
    assert not rule.update(bools("111"), errs(3))
    assert not rule.update(bools("1011"), errs(4))   # broken: streak is now 2
    assert rule.streak == 2
    assert not rule.update(bools("11"), errs(2))     # 4 in a row
    assert rule.update(bools("1110"), errs(4))      # 5th in a row is the first of this batch
    assert rule.satisfied_at == 3 + 4 + 2 + 1 and rule.sequences == 13
    assert rule.learned_at == 10 - 5  # sequences before the streak began (it began at the 6th)
    assert rule.update(bools("0"), errs(1)) and rule.satisfied_at == 10  # stays done


def test_streak_rule_in_one_batch_and_empty():
    rule = StreakRule(3)
    assert not rule.update(bools(""), errs(0))
    assert rule.update(bools("0110111101"), errs(10))
    assert rule.satisfied_at == 7
    rule = StreakRule(4)
    assert not rule.update(bools("0111"), errs(4))
    assert not rule.update(bools("0111"), errs(4))
    assert rule.update(bools("1"), errs(1)) and rule.satisfied_at == 9


def test_window_rule_all_correct_and_mean():
    rule = WindowRule(4, max_wrong=0, max_mean_error=0.01)
    assert not rule.update(bools("111"), errs(3))        # too few sequences yet
    assert not rule.update(bools("0111"), errs(4))       # window 4..7 ends at 7 with one wrong
    assert rule.update(bools("11"), errs(2))             # window 5..8 is all correct
    assert rule.satisfied_at == 8
    rule = WindowRule(4, max_wrong=0, max_mean_error=0.01)
    high = torch.tensor([0.01, 0.01, 0.01, 0.0101], dtype=torch.float64)  # mean 0.010025
    assert not rule.update(bools("1111"), high)
    assert rule.update(bools("1"), errs(1, 0.0))        # window 2..5: mean 0.0075
    assert rule.satisfied_at == 5


def test_window_rule_thresholds_exact():
    rule = WindowRule(4, max_wrong=None, max_mean_error=0.01)
    assert not rule.update(bools("1111"), errs(4, 0.01))  # a mean of 0.01 is not below 0.01
    assert rule.update(bools("0"), errs(1, 0.0099))      # max_wrong=None: wrong ones allowed
    assert rule.satisfied_at == 5
    inside = WindowRule(2000, max_wrong=139)
    results = bools("0" * 139 + "1" * 1861)
    assert inside.update(results[:1000], errs(1000)) is False
    assert inside.update(results[1000:], errs(1000)) and inside.satisfied_at == 2000
    outside = WindowRule(2000, max_wrong=139)
    results = bools("0" * 140 + "1" * 1860)
    assert not outside.update(results, errs(2000))
    assert outside.update(bools("1"), errs(1)) and outside.satisfied_at == 2001


def test_window_rule_spanning_many_batches():
    rule = WindowRule(10, max_wrong=1)
    stream = "1111011110" + "1111111110" + "0111111111"
    # windows ending at k (1-based) over the stream; compute the first by hand
    first = next(k for k in range(10, len(stream) + 1) if stream[k - 10:k].count("0") <= 1)
    for i in range(0, len(stream), 3):
        rule.update(bools(stream[i:i + 3]), errs(len(stream[i:i + 3])))
    assert rule.satisfied_at == first == 15


def test_block_rule():
    rule = BlockRule(block=4, min_rate=0.75)
    assert not rule.update(bools("110"), errs(3))
    assert not rule.update(bools("010"), errs(3))  # block 1: 1100 -> 0.5
    assert rule.last_rate == 0.5
    assert rule.update(bools("1110"), errs(4))     # block 2: 10 + 11 -> 3/4 at sequence 8
    assert rule.satisfied_at == 8 and rule.last_rate == 0.75
    rule = BlockRule(block=4, min_rate=0.8)
    assert not rule.update(bools("1110" * 3), errs(12))  # never 4/4 ... 0.75 < 0.8
    assert rule.update(bools("11110"), errs(5)) and rule.satisfied_at == 16


def test_test_set_rule():
    rule = TestSetRule(max_wrong=0, max_mean_error=0.01, test_size=256, test_interval=100)
    assert rule.needs_test and not rule.test_due()
    rule.update(bools("1" * 60), errs(60))
    assert not rule.test_due()
    rule.update(bools("1" * 60), errs(60))
    assert rule.test_due()
    assert not rule.check_test(bools("1" * 255 + "0"), errs(256))
    assert not rule.test_due() and rule.last_wrong == 1
    assert not rule.check_test(bools("1" * 256), errs(256, 0.01))   # mean not below 0.01
    assert rule.check_test(bools("1" * 256), errs(256, 0.0099))
    assert rule.satisfied_at == 120 and rule.done
    accuracy = TestSetRule(min_accuracy=0.99)
    assert accuracy.check_test(bools("1" * 99 + "0"), errs(100))
    assert not TestSetRule(min_accuracy=0.99).check_test(bools("1" * 98 + "00"), errs(100))
    with pytest.raises(ValueError, match="takes no test-set check"):
        StreakRule(3).check_test(bools("1"), errs(1))


def test_rule_input_checks_and_describe():
    rule = StreakRule(3)
    with pytest.raises(ValueError, match="same length"):
        rule.update(bools("11"), errs(3))
    with pytest.raises(TypeError, match="bool"):
        rule.update(torch.ones(2), errs(2))
    with pytest.raises(ValueError):
        WindowRule(10, max_wrong=None, max_mean_error=None)
    with pytest.raises(ValueError):
        TestSetRule()
    for r in (StreakRule(10_000), WindowRule(2000, 0, 0.01), WindowRule(2000, 139),
              BlockRule(), TestSetRule(max_wrong=0, test_size=256)):
        assert isinstance(r.describe(), str) and r.describe()
        assert "not yet" in repr(r)
    assert WindowRule(2000, 0, 0.01).describe() == (
        "last 2,000 training sequences: mean error < 0.01 and all correct")
