"""B1 ``reber``: the embedded Reber grammar (Hochreiter & Schmidhuber 1997, Exp. 1).

The Reber grammar, as a graph of states 0..7 (7 = the end), two edges out of each inner state,
each taken with probability 1/2:

    0 -B-> 1      1 -T-> 2   1 -P-> 3      2 -S-> 2   2 -X-> 4      3 -T-> 3   3 -V-> 5
    4 -X-> 3   4 -S-> 6      5 -P-> 4   5 -V-> 6      6 -E-> 7

e.g. BTSSXXTVVE, BPVVE, BTXSE. An embedded Reber string is B, then T or P, then a Reber string,
then the same T or P again, then E (e.g. BTBPVVETE). The symbol after the inner string's E is the
only one that needs a long memory: it repeats the second symbol.

This module holds the grammar (``is_reber``, ``is_embedded_reber``, ``embedded_reber_legal_next``),
the string <-> tensor encoding, and the task.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from lstmlab.tasks.memory.base import (
    FIXED_SEED,
    TEST_SEED,
    Batch,
    MemoryTask,
    one_hot,
    randint,
)
from lstmlab.tasks.stopping import StoppingRule, TestSetRule

REBER_SYMBOLS = "BTPSXVE"
"""The 7 symbols, in input/output line order."""

REBER_GRAPH: dict[int, dict[str, int]] = {
    0: {"B": 1},
    1: {"T": 2, "P": 3},
    2: {"S": 2, "X": 4},
    3: {"T": 3, "V": 5},
    4: {"X": 3, "S": 6},
    5: {"P": 4, "V": 6},
    6: {"E": 7},
}
"""The Reber grammar: state -> {symbol: next state}; state 0 starts, state 7 ends."""
_END_STATE = 7


def is_reber(string: str) -> bool:
    """True when ``string`` is a (plain) Reber string, e.g. "BTSSXXTVVE"."""
    state = 0
    for symbol in string:
        if state == _END_STATE or symbol not in REBER_GRAPH[state]:
            return False
        state = REBER_GRAPH[state][symbol]
    return state == _END_STATE


def is_embedded_reber(string: str) -> bool:
    """True when ``string`` is an embedded Reber string: B, T|P, a Reber string, the same T|P, E."""
    return (len(string) >= 4 and string[0] == "B" and string[1] in "TP"
            and string[-2] == string[1] and string[-1] == "E" and is_reber(string[2:-2]))


def embedded_reber_legal_next(string: str) -> list[frozenset[str]]:
    """For an embedded Reber string of length n, the n - 1 sets of legal next symbols: entry t is
    the set of symbols the grammar allows after reading ``string[:t + 1]``.

    Raises ValueError if ``string`` is not an embedded Reber string.
    """
    if not is_embedded_reber(string):
        raise ValueError(f"not an embedded Reber string: {string!r}")
    branch = string[1]
    legal = [frozenset("TP"), frozenset("B")]
    state = 0
    for symbol in string[2:-2]:
        state = REBER_GRAPH[state][symbol]
        legal.append(frozenset(branch) if state == _END_STATE else frozenset(REBER_GRAPH[state]))
    legal.append(frozenset("E"))
    return legal


# Tensor tables for vectorised generation: for each state, the symbol and next state of edge 0/1
# (states with one edge repeat it; the end state loops on itself and emits nothing).
_EDGES = [(list(REBER_GRAPH[q].items()) * 2)[:2] for q in range(_END_STATE)]
_EDGE_SYMBOL = torch.tensor([[REBER_SYMBOLS.index(s) for s, _ in edges] for edges in _EDGES]
                            + [[-1, -1]])
_EDGE_NEXT = torch.tensor([[n for _, n in edges] for edges in _EDGES]
                          + [[_END_STATE, _END_STATE]])
_EDGE_SYMBOL_FLAT, _EDGE_NEXT_FLAT = _EDGE_SYMBOL.flatten(), _EDGE_NEXT.flatten()  # state*2+coin
_LEGAL = torch.tensor([[s in REBER_GRAPH.get(q, {}) for s in REBER_SYMBOLS]
                       for q in range(_END_STATE + 1)])  # (8, 7); the end state's row is empty


def encode_strings(strings: Sequence[str]) -> Batch:
    """Embedded Reber strings -> a Batch: one-hot inputs, legal-next targets (T, B, 7) float32,
    mask on every step but the last of each string."""
    if not strings:
        raise ValueError("encode_strings needs at least one string")
    steps = max(len(s) for s in strings)
    symbols = [[REBER_SYMBOLS.index(c) for c in s] + [-1] * (steps - len(s)) for s in strings]
    no_next = [0.0] * len(REBER_SYMBOLS)
    legal = [[[float(c in allowed) for c in REBER_SYMBOLS]
              for allowed in embedded_reber_legal_next(s)] + [no_next] * (steps - len(s) + 1)
             for s in strings]
    lengths = torch.tensor([len(s) for s in strings], dtype=torch.long)
    mask = torch.arange(steps).unsqueeze(1) < (lengths - 1).unsqueeze(0)
    return Batch(one_hot(torch.tensor(symbols).T.contiguous(), len(REBER_SYMBOLS)),
                 torch.tensor(legal).transpose(0, 1).contiguous(), mask, lengths)


def decode_strings(batch: Batch) -> list[str]:
    """The strings of a batch made by ``encode_strings`` or ``ReberTask.sample``."""
    index = batch.inputs.argmax(-1)
    return ["".join(REBER_SYMBOLS[int(i)] for i in index[:int(n), b])
            for b, n in enumerate(batch.lengths)]


class ReberTask(MemoryTask):
    """B1 ``reber``: predict the next symbol of embedded Reber strings.

    Inputs: one-hot over the 7 symbols B, T, P, S, X, V, E (I = 7), one symbol per step.
    Targets ((T, B, 7) float32): the multi-hot set of legal next symbols at every step but the last
    (the mask). The loss ("mse_sigmoid", O = 7) trains on the symbol that actually comes next
    (``target="next"``, the 1997 paper's local target) or on the multi-hot legal set
    (``target="legal"``).
    Correct: at every scored step the units with the highest outputs are exactly the legal next
    symbols (with k legal symbols, the top k; every legal output above every illegal one).
    Error: the fraction of scored steps that fail that test.
    Data (1997): 256 training and 256 disjoint test strings, fixed by ``strings_seed``
    (``training_strings`` / ``test_strings``; each set without repeats). ``sample`` draws uniformly
    (with replacement) from the training strings, or fresh grammar strings with ``online=True``.
    Stop: every symbol of every training and test string right: ``stopping_set()`` holds the
    256 + 256 strings, checked by TestSetRule(max_wrong=0).
    lag: the longest embedded string allowed (default 64; longer draws are rejected, which changes
    the distribution by less than 1e-7). Strings are 9 or more symbols long, 12 on average.
    """

    name = "reber"
    default_lag = 64
    min_lag = 9
    lag_reason = "the shortest embedded Reber strings (BTBTXSETE) have 9 symbols"
    loss_kind = "mse_sigmoid"
    input_size = len(REBER_SYMBOLS)
    output_size = len(REBER_SYMBOLS)
    symbols = tuple(REBER_SYMBOLS)
    classes = tuple(REBER_SYMBOLS)
    reference = ("LSTM 1997 Table 1: 100% of 30 trials after 8,440 to 39,740 sequences (best: "
                 "3 blocks x 2 cells, lr 0.5); Elman 0% (>200,000); RTRL some after "
                 "25,000-173,000")
    # Table 1 gives a range over its configurations; the figure to beat is the best one's
    reference_sequences = 8_440

    def __init__(self, lag: int | None = None, strings_seed: int = 0, train_size: int = 256,
                 test_size: int = 256, online: bool = False, target: str = "next") -> None:
        super().__init__(lag)
        if target not in ("next", "legal"):
            raise ValueError(f"reber: target must be 'next' or 'legal', got {target!r}")
        if train_size < 1 or test_size < 1:
            raise ValueError("reber: train_size and test_size must be >= 1")
        self.strings_seed, self.train_size, self.test_size = strings_seed, train_size, test_size
        self.online, self.target = online, target
        self._sets: tuple[list[str], list[str]] | None = None
        self._train_batch: Batch | None = None
        self._test_batch: Batch | None = None

    def lag_meaning(self) -> str:
        return "max length, the longest string allowed"

    # -- strings -------------------------------------------------------------------------------

    def generate_strings(self, count: int, generator: torch.Generator) -> list[str]:
        """``count`` fresh embedded Reber strings drawn from the grammar."""
        return decode_strings(self._generate(count, generator))

    def _fixed_sets(self) -> tuple[list[str], list[str]]:
        if self._sets is None:
            generator = torch.Generator().manual_seed(self.strings_seed)
            seen: dict[str, None] = {}
            need = self.train_size + self.test_size
            for _ in range(20):
                for string in self.generate_strings(2048, generator):
                    seen.setdefault(string, None)
                if len(seen) >= need:
                    break
            else:  # only with a tiny length cap
                raise ValueError(f"reber: found only {len(seen)} distinct strings of length <= "
                                 f"{self.lag}, fewer than the {need} the fixed sets need; raise "
                                 "the lag (max length) or use online=True")
            unique = list(seen)[:need]
            self._sets = unique[:self.train_size], unique[self.train_size:]
        return self._sets

    @property
    def training_strings(self) -> list[str]:
        """The fixed training strings (256 by default, distinct)."""
        return list(self._fixed_sets()[0])

    @property
    def test_strings(self) -> list[str]:
        """The fixed test strings (256 by default, distinct, none among the training strings)."""
        return list(self._fixed_sets()[1])

    def training_set(self) -> Batch:
        """The fixed training strings as one batch."""
        if self._train_batch is None:
            self._train_batch = encode_strings(self._fixed_sets()[0])
        return self._train_batch

    # -- batches -------------------------------------------------------------------------------

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """Training strings drawn uniformly with replacement (fresh grammar strings if online)."""
        if self.online:
            return super().sample(batch_size, generator)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        pick = randint(0, self.train_size - 1, (batch_size,), generator)
        return self.training_set().select(pick)

    def test_set(self, seed: int | None = None, size: int | None = None) -> Batch:
        """With no arguments: the fixed test strings. With a seed or size: fresh grammar strings
        (which may repeat training strings)."""
        if seed is None and size is None:
            if self._test_batch is None:
                self._test_batch = encode_strings(self._fixed_sets()[1])
            return self._test_batch
        return super().test_set(seed=TEST_SEED if seed is None else seed,
                                size=self.test_size if size is None else size)

    def fixed_set(self, size: int | None = None, seed: int | None = None) -> Batch:
        """The fixed training strings (with no arguments), else fresh grammar strings."""
        if size is None and seed is None:
            return self.training_set()
        return super().fixed_set(size=self.train_size if size is None else size,
                                 seed=FIXED_SEED if seed is None else seed)

    def stopping_set(self, rule: StoppingRule | None = None) -> Batch:
        """The 256 training and 256 test strings: the 1997 criterion covers both."""
        train, test = self._fixed_sets()
        return encode_strings(train + test)

    def stopping_batches(self, rule: StoppingRule | None = None,
                         batch_size: int = 512) -> Iterator[Batch]:
        """``stopping_set()`` (the fixed training and test strings) in chunks."""
        both = self.stopping_set()
        for start in range(0, both.batch_size, batch_size):
            yield both.select(slice(start, start + batch_size))

    def report_batches(self, size: int | None = None, batch_size: int = 512) -> Iterator[Batch]:
        """The fixed test strings (none of them a training string) when ``size`` is None or the
        test size; otherwise ``size`` fresh grammar strings (which may repeat training ones)."""
        if size is not None and size != self.test_size:
            yield from super().report_batches(size, batch_size)
            return
        test = self.test_set()
        for start in range(0, test.batch_size, batch_size):
            yield test.select(slice(start, start + batch_size))

    def stopping_rule(self) -> StoppingRule:
        return TestSetRule(max_wrong=0, test_size=self.train_size + self.test_size)

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        """Fresh strings from the grammar, vectorised over the batch."""
        max_inner = self.lag - 4
        inner = torch.full((batch_size, max_inner), -1, dtype=torch.long)
        after = torch.zeros((batch_size, max_inner), dtype=torch.long)  # state after each symbol
        inner_len = torch.zeros(batch_size, dtype=torch.long)
        pending = torch.arange(batch_size)
        while pending.numel():  # draw until every row's string fits (rejection)
            n = pending.numel()
            state = torch.zeros(n, dtype=torch.long)
            coins = randint(0, 1, (max_inner, n), generator)
            sym = torch.empty((max_inner, n), dtype=torch.long)
            states = torch.empty((max_inner, n), dtype=torch.long)
            for t in range(max_inner):  # gather, not fancy indexing: fast under thread contention
                edge = 2 * state + coins[t]
                sym[t] = _EDGE_SYMBOL_FLAT.gather(0, edge)
                state = _EDGE_NEXT_FLAT.gather(0, edge)
                states[t] = state
            fits = state == _END_STATE
            rows = pending[fits]
            inner[rows], after[rows] = sym.T[fits], states.T[fits]
            inner_len[rows] = (sym.T[fits] >= 0).sum(1)
            pending = pending[~fits]
        branch = torch.where(randint(0, 1, (batch_size,), generator) == 0,
                             REBER_SYMBOLS.index("T"), REBER_SYMBOLS.index("P"))
        lengths = inner_len + 4
        steps = int(lengths.max())
        t = torch.arange(steps).unsqueeze(1)                         # (T, 1)
        j = (t - 2).clamp(0, max_inner - 1).expand(steps, batch_size)
        inner_t = inner.T.gather(0, j)                               # (T, B) inner symbol at t
        after_t = after.T.gather(0, j)
        E, B_ = REBER_SYMBOLS.index("E"), REBER_SYMBOLS.index("B")
        symbols = torch.full((steps, batch_size), -1, dtype=torch.long)
        symbols = torch.where(t == 0, B_, symbols)
        symbols = torch.where(t == 1, branch, symbols)
        in_inner = (t >= 2) & (t < inner_len + 2)
        symbols = torch.where(in_inner, inner_t, symbols)
        symbols = torch.where(t == inner_len + 2, branch, symbols)
        symbols = torch.where(t == inner_len + 3, E, symbols)
        legal = torch.zeros((steps, batch_size, len(REBER_SYMBOLS)), dtype=torch.bool)
        legal[0, :, [REBER_SYMBOLS.index("T"), REBER_SYMBOLS.index("P")]] = True
        legal[1, :, B_] = True
        legal |= in_inner.unsqueeze(-1) & _LEGAL[after_t]
        inner_end = in_inner & (after_t == _END_STATE)              # after the inner E: the branch
        legal |= inner_end.unsqueeze(-1) & one_hot(branch.expand(steps, -1), 7).bool()
        legal |= (t == inner_len + 2).unsqueeze(-1) & (torch.arange(7) == E)
        mask = t < lengths - 1
        return Batch(one_hot(symbols, len(REBER_SYMBOLS)), legal.float(), mask, lengths)

    # -- judging -------------------------------------------------------------------------------

    def target_vectors(self, batch: Batch) -> Tensor:
        if self.target == "legal":
            return batch.targets
        following = torch.zeros_like(batch.inputs)
        following[:-1] = batch.inputs[1:]
        return following

    def evaluate(self, outputs: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Correct when at every scored step every legal output beats every illegal one."""
        self.check_outputs(outputs, batch)
        out = outputs.detach().float()
        legal = batch.targets > 0.5
        inf = torch.tensor(float("inf"), device=out.device)
        lowest_legal = torch.where(legal, out, inf).amin(-1)
        highest_illegal = torch.where(legal, -inf, out).amax(-1)
        step_ok = lowest_legal > highest_illegal
        wrong = (~step_ok & batch.mask).sum(0)
        return wrong == 0, wrong.float() / batch.mask.sum(0).clamp(min=1)
