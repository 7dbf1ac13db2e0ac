"""The three games of the lecture slides (docs/tasks.md, section A): intern, tasks, romaji.

No paper gives figures for these; their criteria are ours: >= 99% of a fresh test set correct.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lstmlab.tasks.memory.base import (
    Batch,
    MemoryTask,
    evaluate_classes,
    one_hot,
    randint,
)

_NAMES = ("Anna", "Ben", "Chiara", "Dmitri", "Emeka", "Fatima", "Goro", "Hana", "Ines", "Jonas",
          "Kiri", "Lena", "Mateo", "Noor", "Oskar", "Priya")
_OURS = "no published figure (lecture-slide game); criterion (ours): >= 99% of the test set correct"


class InternTask(MemoryTask):
    """A1 ``intern``: "What is the name of the intern?"

    Layout (length T + 2, lag = T): step 0 shows a name (one of N symbols), steps 1..T are
    distractors (uniform over a separate alphabet of D symbols), step T+1 is the query symbol.
    Inputs: one-hot over N + D + 1 lines: names 0..N-1, distractors N..N+D-1, query N+D.
    Target: the name, as a class 0..N-1 at the query step only ((T, B) int64; loss "ce").
    Correct: the arg-max at the query step is the name. Error: cross-entropy there.
    Stop (ours): >= 99% of a 2,560-sequence held-out set correct.
    """

    name = "intern"
    min_lag = 0
    reference = _OURS

    def __init__(self, lag: int | None = None, names: int = 8, distractors: int = 8) -> None:
        if not 2 <= names <= len(_NAMES):
            raise ValueError(f"intern: names must be in [2, {len(_NAMES)}], got {names}")
        if distractors < 1:
            raise ValueError(f"intern: distractors must be >= 1, got {distractors}")
        super().__init__(lag)
        self.names, self.distractors = names, distractors
        self.input_size = names + distractors + 1
        self.output_size = names
        self.classes = _NAMES[:names]
        self.symbols = self.classes + tuple(f"d{k}" for k in range(distractors)) + ("?",)

    def lag_meaning(self) -> str:
        return "T, distractor steps between name and query"

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        T, N, D = self.lag, self.names, self.distractors
        steps = T + 2
        names = randint(0, N - 1, (batch_size,), generator)
        symbols = N + randint(0, D - 1, (steps, batch_size), generator)
        symbols[0] = names
        symbols[-1] = N + D
        targets = torch.zeros((steps, batch_size), dtype=torch.long)
        targets[-1] = names
        mask = torch.zeros((steps, batch_size), dtype=torch.bool)
        mask[-1] = True
        return Batch(one_hot(symbols, self.input_size), targets, mask,
                     torch.full((batch_size,), steps, dtype=torch.long), {"name": names})


class TasksTask(MemoryTask):
    """A2 ``tasks``: "Day 1: +5 new tasks, day 2: -3 done, +2 new, ..."; how many are open?

    Layout (length T + 1, lag = T days): steps 0..T-1 are days, step T is the query.
    Inputs, 2 lines: line 0 = the day's net signed count of new (+) minus finished (-) tasks,
    divided by ``max_change``; line 1 = 1 at the query step. A day is non-empty with probability
    ``p_active`` (most days are distractor days with count 0); a non-empty day's count is drawn
    uniformly from the non-zero values in [-min(open, max_change), min(capacity - open,
    max_change)], so the running sum of open tasks stays in 0..capacity (K) and is never negative.
    Target at the query step: the number of open tasks, as a class 0..K ((T, B) int64, loss "ce",
    O = K + 1), or with ``regression=True`` the value open / K ((T, B, 1) float32, loss "mse",
    O = 1, correct when |output * K - open| < 0.5, error the squared error).
    Correct (classes): the arg-max is the count. Stop (ours): >= 99% exact on the held-out set.
    """

    name = "tasks"
    reference = _OURS

    def __init__(self, lag: int | None = None, capacity: int = 9, max_change: int = 5,
                 p_active: float = 0.1, regression: bool = False) -> None:
        if capacity < 1 or max_change < 1:
            raise ValueError(f"tasks: capacity and max_change must be >= 1, got {capacity}, "
                             f"{max_change}")
        if not 0.0 < p_active <= 1.0:
            raise ValueError(f"tasks: p_active must be in (0, 1], got {p_active}")
        super().__init__(lag)
        self.capacity, self.max_change, self.p_active = capacity, max_change, p_active
        self.regression = regression
        self.input_size = 2
        self.output_size = 1 if regression else capacity + 1
        self.loss_kind = "mse" if regression else "ce"
        self.symbols = ("count / max_change", "query")
        self.classes = ("open / capacity",) if regression else tuple(map(str, range(capacity + 1)))

    def lag_meaning(self) -> str:
        return "T, days before the query"

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        T, K, m = self.lag, self.capacity, self.max_change
        active = torch.rand((T, batch_size), generator=generator) < self.p_active
        draw = torch.rand((T, batch_size), generator=generator)
        counts = torch.zeros((T, batch_size), dtype=torch.long)
        open_ = torch.zeros(batch_size, dtype=torch.long)
        for t in range(T):
            low = -open_.clamp(max=m)
            high = (K - open_).clamp(max=m)
            pick = low + (draw[t] * (high - low)).long().clamp(max=high - low - 1)  # skip 0 below
            delta = torch.where(pick >= 0, pick + 1, pick)
            delta = torch.where(active[t], delta, 0)
            counts[t] = delta
            open_ += delta
        steps = T + 1
        inputs = torch.zeros((steps, batch_size, 2))
        inputs[:T, :, 0] = counts.float() / m
        inputs[T, :, 1] = 1.0
        mask = torch.zeros((steps, batch_size), dtype=torch.bool)
        mask[T] = True
        if self.regression:
            targets = torch.zeros((steps, batch_size, 1))
            targets[T, :, 0] = open_.float() / K
        else:
            targets = torch.zeros((steps, batch_size), dtype=torch.long)
            targets[T] = open_
        return Batch(inputs, targets, mask, torch.full((batch_size,), steps, dtype=torch.long),
                     {"open": open_})

    def evaluate(self, outputs: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Classes: arg-max right, error cross-entropy. Regression: |output * K - open| < 0.5,
        error the squared error of output against open / K."""
        self.check_outputs(outputs, batch)
        if not self.regression:
            return evaluate_classes(outputs, batch)
        T = batch.steps - 1
        out = outputs.detach()[T, :, 0].float()
        target = batch.targets[T, :, 0]
        return (out * self.capacity - target * self.capacity).abs() < 0.5, (out - target).square()


_LATIN = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DISTRACTORS = (tuple("あいうえおかきくけこ")      # hiragana
                + tuple("日月火水木金土山川田")    # kanji
                + tuple("अआइईउकखगघच")            # Devanagari
                + tuple("αβγδεζηθλπ")            # Greek
                + tuple("бгджзилпфц"))           # Cyrillic
_END = "<end>"


class RomajiTask(MemoryTask):
    """A3 ``romaji``: "Read romaji only."

    Layout (length T + 1 + R, lag = T, R = max_letters + 1): steps 0..T-1 are a stream in which n
    steps (n uniform in [min_letters, max_letters], at random distinct positions) carry a Latin
    letter (uniform over ``latin`` letters, repeats allowed) and every other step a distractor from
    other scripts (kana, kanji, Devanagari, Greek, Cyrillic; 50 symbols); step T is the recall
    prompt; steps T+1..T+R are recall steps with no input (all zeros).
    Inputs: one-hot over latin + 50 + 1 lines: letters, distractors, prompt.
    Target at recall step T+1+k: the k-th Latin letter in order of appearance (class 0..latin-1)
    for k < n, then the end/blank class (= latin) for the remaining steps ((T, B) int64, loss "ce",
    O = latin + 1). All R recall steps are scored.
    Correct: every recall step's arg-max right (all letters recalled in order, then end).
    Stop (ours): >= 99% of the held-out set fully correct.
    """

    name = "romaji"
    default_lag = 50
    reference = _OURS

    def __init__(self, lag: int | None = None, min_letters: int = 3, max_letters: int = 6,
                 latin: int = 26) -> None:
        if not 1 <= min_letters <= max_letters:
            raise ValueError(f"romaji: need 1 <= min_letters <= max_letters, got {min_letters}, "
                             f"{max_letters}")
        if not 2 <= latin <= len(_LATIN):
            raise ValueError(f"romaji: latin must be in [2, 26], got {latin}")
        self.min_letters, self.max_letters, self.latin = min_letters, max_letters, latin
        self.min_lag = max_letters
        self.lag_reason = f"room for max_letters = {max_letters} Latin letters"
        super().__init__(lag)
        self.recall_steps = max_letters + 1
        self.input_size = latin + len(_DISTRACTORS) + 1
        self.output_size = latin + 1
        self.symbols = _LATIN[:latin] + _DISTRACTORS + ("<recall>",)
        self.classes = _LATIN[:latin] + (_END,)

    def lag_meaning(self) -> str:
        return "T, stream steps before the recall prompt"

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        T, R, L = self.lag, self.recall_steps, self.latin
        n = randint(self.min_letters, self.max_letters, (batch_size,), generator)
        keys = torch.rand((batch_size, T), generator=generator)
        order = keys.argsort(1)                         # a random permutation of 0..T-1 per row
        chosen = torch.arange(T).unsqueeze(0) < n.unsqueeze(1)
        is_latin = torch.zeros((batch_size, T), dtype=torch.bool).scatter_(1, order, chosen)
        letters = randint(0, L - 1, (batch_size, T), generator)
        others = L + randint(0, len(_DISTRACTORS) - 1, (batch_size, T), generator)
        stream = torch.where(is_latin, letters, others)
        # the letters in order of appearance: stable-sort Latin positions first
        order = torch.sort((~is_latin).to(torch.int8), dim=1, stable=True).indices
        in_order = letters.gather(1, order)[:, :R]
        if in_order.shape[1] < R:
            in_order = torch.cat([in_order, in_order.new_zeros((batch_size, R - T))], 1)
        k = torch.arange(R).unsqueeze(0)
        recall = torch.where(k < n.unsqueeze(1), in_order, L)  # (B, R)
        steps = T + 1 + R
        symbols = torch.full((steps, batch_size), -1, dtype=torch.long)
        symbols[:T] = stream.T
        symbols[T] = L + len(_DISTRACTORS)
        targets = torch.zeros((steps, batch_size), dtype=torch.long)
        targets[T + 1:] = recall.T
        mask = torch.zeros((steps, batch_size), dtype=torch.bool)
        mask[T + 1:] = True
        return Batch(one_hot(symbols, self.input_size), targets, mask,
                     torch.full((batch_size,), steps, dtype=torch.long), {"letters": n})
