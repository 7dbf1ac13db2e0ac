"""Hochreiter & Schmidhuber 1997, "Long Short-Term Memory", section 5 (docs/tasks.md, section B):
``lag`` (Exp. 2), ``two_sequence`` (Exp. 3), ``adding`` (Exp. 4), ``multiplication`` (Exp. 5),
``temporal_order`` (Exp. 6). The embedded Reber grammar (Exp. 1) is in ``reber.py``.

The 1997 networks have logistic sigmoid output units trained on squared error, so these tasks use
loss "mse_sigmoid": the head's raw outputs go through a sigmoid, the squared error is summed over
the output units and averaged over the scored steps. Step numbers below are 0-based unless a range
is quoted from the paper (the paper counts from 1).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from lstmlab.tasks.memory.base import (
    Batch,
    MemoryTask,
    at_last_step,
    last_step_mask,
    lengths_between,
    masked_max,
    one_hot,
    randint,
    step_mask,
    two_distinct,
    uniform,
)
from lstmlab.tasks.stopping import StoppingRule, StreakRule, TestSetRule, WindowRule


def _check_variant(task: str, variant: str, valid: tuple[str, ...]) -> str:
    if variant not in valid:
        raise ValueError(f"{task}: unknown variant {variant!r}; valid variants: {', '.join(valid)}")
    return variant


# -- Exp. 2: noise-free and noisy long time lags -------------------------------------------------

_TABLE_2 = {"2a": 5_040, "2b": 5_680}
_TABLE_3 = {(50, 50): 30_000, (100, 100): 31_000, (200, 200): 33_000, (500, 500): 38_000,
            (1000, 1000): 49_000}


class LagTask(MemoryTask):
    """B2 ``lag``: noise-free and noisy long time lags (1997 Exp. 2), variants 2a, 2b, 2c.

    2a (lag = p, length p): the sequences (y, a1, ..., a_{p-1}, y) and (x, a1, ..., a_{p-1}, x)
    over p + 1 one-hot symbols (lines: 0 = x, 1 = y, 1 + i = a_i). The first p symbols are the
    inputs; at step t the target is symbol t + 1, the next one, as a class ((T, B) int64), scored
    at every step; only the last (x or y again) needs memory. O = p + 1, loss "mse_sigmoid" against
    the one-hot next symbol.
    2b: as 2a, but a1..a_{p-1} are drawn uniformly with replacement from the p - 1 a-symbols (no
    local regularity). As the paper says, "again, every next sequence element has to be
    predicted": every step is trained towards the symbol that actually comes next (a random
    a-symbol in the middle, which the best net can only predict as 1 / (p - 1) on each a-unit),
    but success is judged "at sequence end" only, where the target is x or y.
    Correct: max absolute error of the sigmoid outputs over all units, below 0.25, over every step
    (2a) or at the last step (2b); the error returned is that maximum.
    2c (lag = q, ``distractors`` = p, default q): b, then x or y, then q + k random distractors
    (uniform over p symbols), then e; the target at the e step is the x or y (2 outputs: class 0 =
    x, 1 = y), error only there. k is geometric with mean ``extra_mean`` = 10, so that b, x|y, the
    q + k distractors, e and the final x|y have expected length q + 14 (ours; docs/tasks.md, B2).
    Input lines: 0 = b, 1 = e, 2 = x, 3 = y, 4.. = distractors (I = p + 4). Correct: both outputs'
    absolute error below 0.2 (error: the larger of the two).
    Stop: 10,000 successive training sequences correct (StreakRule).
    """

    name = "lag"
    loss_kind = "mse_sigmoid"

    def __init__(self, lag: int | None = None, variant: str = "2a",
                 distractors: int | None = None, extra_mean: float = 10.0) -> None:
        self.variant = _check_variant("lag", variant, ("2a", "2b", "2c"))
        self.min_lag = 1 if variant == "2c" else 2
        self.lag_reason = "" if variant == "2c" else "x or y, at least one a-symbol"
        super().__init__(lag)
        if variant == "2c":
            self.distractors = self.lag if distractors is None else distractors
            if self.distractors < 1:
                raise ValueError(f"lag 2c: distractors (p) must be >= 1, got {self.distractors}")
            if extra_mean < 0:
                raise ValueError(f"lag 2c: extra_mean must be >= 0, got {extra_mean}")
            self.extra_mean = extra_mean
            self.input_size = self.distractors + 4
            self.output_size = 2
            self.symbols = ("b", "e", "x", "y") + tuple(f"a{i}" for i in
                                                       range(1, self.distractors + 1))
            self.classes = ("x", "y")
            key = (self.lag, self.distractors)
            self.reference_sequences = _TABLE_3.get(key)
            self.reference = ("LSTM 1997 Table 3 (2c), sequences to success: (q, p) = (50,50) "
                              "30,000; (100,100) 31,000; (200,200) 33,000; (500,500) 38,000; "
                              "(1000,1000) 49,000")
        else:
            if distractors is not None:
                raise ValueError("lag: distractors (p) is an option of variant 2c only; for "
                                 "2a/2b the lag is p")
            self.input_size = self.output_size = self.lag + 1
            self.symbols = ("x", "y") + tuple(f"a{i}" for i in range(1, self.lag))
            self.classes = self.symbols
            self.reference_sequences = _TABLE_2[variant] if self.lag == 100 else None
            self.reference = (f"LSTM 1997 Table 2 ({variant}), p=100: 100% of trials after "
                              f"{_TABLE_2[variant]:,} sequences"
                              + ("; BPTT and RTRL 0% after 5,000,000" if variant == "2a" else ""))

    def lag_meaning(self) -> str:
        if self.variant == "2c":
            return "q, the fixed part of the distractor run"
        return "p, the sequence length and lag"

    @property
    def title(self) -> str:
        if self.variant == "2c":
            return f"lag 2c (q = {self.lag}, p = {self.distractors})"
        return f"lag {self.variant} (p = {self.lag})"

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        if self.variant == "2c":
            return self._generate_2c(batch_size, generator)
        p = self.lag
        first = randint(0, 1, (batch_size,), generator)          # 0 = x, 1 = y
        if self.variant == "2a":
            middle = (torch.arange(1, p) + 1).unsqueeze(1).expand(p - 1, batch_size)
        else:
            middle = randint(2, p, (p - 1, batch_size), generator)
        sequence = torch.cat([first.unsqueeze(0), middle, first.unsqueeze(0)])  # (p + 1, B)
        mask = torch.ones((p, batch_size), dtype=torch.bool)  # 2a and 2b: every step trained
        return Batch(one_hot(sequence[:p], p + 1), sequence[1:].clone(), mask,
                     torch.full((batch_size,), p, dtype=torch.long), {"first": first})

    def _generate_2c(self, batch_size: int, generator: torch.Generator) -> Batch:
        q, p = self.lag, self.distractors
        which = randint(0, 1, (batch_size,), generator)           # 0 = x, 1 = y
        u = torch.rand(batch_size, generator=generator, dtype=torch.float64)
        if self.extra_mean > 0:
            success = 1.0 / (1.0 + self.extra_mean)              # P(e) at each extra step
            k = torch.floor(torch.log1p(-u) / math.log1p(-success)).long()
        else:
            k = torch.zeros(batch_size, dtype=torch.long)
        lengths = q + k + 3                                       # b, x|y, q + k distractors, e
        steps = int(lengths.max())
        t = torch.arange(steps).unsqueeze(1)
        symbols = 4 + randint(0, p - 1, (steps, batch_size), generator)
        symbols = torch.where(t == 0, 0, symbols)
        symbols = torch.where(t == 1, 2 + which, symbols)
        symbols = torch.where(t == lengths - 1, 1, symbols)
        symbols = torch.where(t >= lengths, -1, symbols)
        mask = last_step_mask(lengths, steps)
        targets = torch.where(mask, which, 0)
        return Batch(one_hot(symbols, self.input_size), targets, mask, lengths,
                     {"extra": k, "which": which})

    def evaluate(self, outputs: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Error: max |sigmoid(output) - target| over units and the judged steps (2a, 2c: the
        scored steps; 2b: the last step, the only predictable one); correct when below 0.25 (2a,
        2b) or 0.2 (2c)."""
        self.check_outputs(outputs, batch)
        abs_error = (torch.sigmoid(outputs.detach().float())
                     - self.target_vectors(batch)).abs().amax(-1)
        judged = last_step_mask(batch.lengths, batch.steps) if self.variant == "2b" else batch.mask
        error = masked_max(abs_error, judged)
        return error < (0.2 if self.variant == "2c" else 0.25), error

    def stopping_rule(self) -> StoppingRule:
        return StreakRule(10_000)


# -- Exp. 3: noise and signal on the same channel -------------------------------------------------

_TABLE_4 = {(100, 3): 27_380, (100, 1): 58_370, (1000, 3): 446_850}


class TwoSequenceTask(MemoryTask):
    """B3 ``two_sequence``: Bengio et al.'s 2-sequence problem (1997 Exp. 3), variants 3a-3c.

    One input line (I = 1). Length drawn uniformly from [T, T + T // 10] (lag = T). Class 1:
    the first N steps (``signal_steps``, default 3) carry +1; class 2: -1. Every later step is
    Gaussian noise (mean 0, variance 0.2). 3b (and 3c) add the same noise to the first N steps.
    Target at the last step ((T, B, 1) float32, O = 1, loss "mse_sigmoid"): 1.0 for class 1 and 0.0
    for class 2; in 3c 0.8 / 0.2 plus target noise (mean 0, variance 0.1), the noise-free target
    being kept in ``extras["clean_target"]`` (also for 3a/3b, equal to the target there).
    Correct: |sigmoid(output) - noise-free target| < 0.2; error: that absolute error.
    Stop: ST1 (default): none of 256 held-out sequences misclassified; ST2 (``stop="ST2"``): ST1
    and their mean absolute error below 0.01 (3c: below 0.015, the mean output within 0.015 of the
    true target).
    """

    name = "two_sequence"
    loss_kind = "mse_sigmoid"
    input_size = 1
    output_size = 1
    symbols = ("signal + noise",)
    classes = ("class 1",)

    def __init__(self, lag: int | None = None, variant: str = "3a", signal_steps: int = 3,
                 stop: str = "ST1") -> None:
        self.variant = _check_variant("two_sequence", variant, ("3a", "3b", "3c"))
        if signal_steps < 1:
            raise ValueError(f"two_sequence: signal_steps (N) must be >= 1, got {signal_steps}")
        if stop not in ("ST1", "ST2"):
            raise ValueError(f"two_sequence: stop must be 'ST1' or 'ST2', got {stop!r}")
        self.signal_steps, self.stop = signal_steps, stop
        self.min_lag = signal_steps + 1
        self.lag_reason = f"N = {signal_steps} signal steps and at least one noise step"
        super().__init__(lag)
        key = (self.lag, signal_steps)
        self.reference_sequences = _TABLE_4.get(key) if variant == "3a" else None
        self.reference = ("LSTM 1997 Table 4 (3a), sequences to ST1: T=100, N=3: 27,380; T=100, "
                          "N=1: 58,370; T=1000, N=3: 446,850 (3a and 3b are solved faster by "
                          "random weight guessing)")

    def lag_meaning(self) -> str:
        return "T, the shortest length"

    @property
    def title(self) -> str:
        return f"two_sequence {self.variant} (T = {self.lag}, N = {self.signal_steps})"

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        T, N = self.lag, self.signal_steps
        lengths = lengths_between(T, T + T // 10, batch_size, generator)
        steps = int(lengths.max())
        label = randint(0, 1, (batch_size,), generator)            # 1 = class 1 (+1)
        sign = 2.0 * label.float() - 1.0
        x = torch.randn((steps, batch_size), generator=generator) * math.sqrt(0.2)
        if self.variant == "3a":
            x[:N] = sign
        else:
            x[:N] += sign
        x = torch.where(step_mask(lengths, steps), x, 0.0)
        mask = last_step_mask(lengths, steps)
        if self.variant == "3c":
            clean = 0.2 + 0.6 * label.float()
            target = clean + torch.randn(batch_size, generator=generator) * math.sqrt(0.1)
        else:
            clean = target = label.float()
        targets = torch.where(mask, target, 0.0).unsqueeze(-1)
        return Batch(x.unsqueeze(-1), targets, mask, lengths,
                     {"label": label, "clean_target": clean})

    def evaluate(self, outputs: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        self.check_outputs(outputs, batch)
        out = at_last_step(torch.sigmoid(outputs.detach().float()), batch.lengths)[:, 0]
        error = (out - batch.extras["clean_target"]).abs()
        return error < 0.2, error

    def stopping_rule(self) -> StoppingRule:
        mean = None if self.stop == "ST1" else (0.015 if self.variant == "3c" else 0.01)
        return TestSetRule(max_wrong=0, max_mean_error=mean, test_size=256)


# -- Exp. 4 and 5: adding and multiplication ------------------------------------------------------

def _marked_pair(T: int, batch_size: int, generator: torch.Generator
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """1997 placement: lengths in [T, T + T // 10]; one mark among the first 10 steps, another
    among the first T // 2 - 1 steps, distinct. Returns (lengths, p1, p2), 0-based."""
    lengths = lengths_between(T, T + T // 10, batch_size, generator)
    p1, p2 = two_distinct(10, T // 2 - 1, batch_size, generator)
    return lengths, p1, p2


def _pair_inputs(values: Tensor, lengths: Tensor, p1: Tensor, p2: Tensor,
                 end_markers: bool) -> Tensor:
    """(T, B, 2) inputs: [value, marker]; markers 1 at p1, p2; -1 at the first and last steps
    (unless marked) when ``end_markers``; zero past each length."""
    steps, batch_size = values.shape
    valid = step_mask(lengths, steps)
    marker = torch.zeros((steps, batch_size))
    if end_markers:
        marker[0] = -1.0
        marker[lengths - 1, torch.arange(batch_size)] = -1.0
    marker[p1, torch.arange(batch_size)] = 1.0
    marker[p2, torch.arange(batch_size)] = 1.0
    return torch.stack([torch.where(valid, values, 0.0), marker], -1)


_TABLE_7 = {100: (74_000, 1), 500: (209_000, 0), 1000: (853_000, 1)}


class AddingTask(MemoryTask):
    """B4 ``adding``: the adding problem (1997 Exp. 4), and Bai et al.'s variant.

    1997 (``variant="1997"``): two input lines per step, [value, marker] (I = 2); values uniform in
    [-1, 1]; length uniform in [T, T + T // 10] (lag = T). One step among the first 10 and another
    among the first T // 2 - 1 (distinct) are marked 1; the first and last steps carry marker -1
    (the first keeps 1 if marked); all others 0. If step 0 is marked its value X counts as 0.
    Target at the last step ((T, B, 1) float32, O = 1, loss "mse_sigmoid"): 0.5 + (X1 + X2) / 4.
    ``variant="bai"`` (Bai et al. 2018): values uniform in [0, 1], markers in {0, 1} at two distinct
    steps anywhere, fixed length T, target X1 + X2 in [0, 2], loss "mse" on a linear output.
    Correct: absolute error below 0.04. Error: the squared error.
    Stop: over the last 2,000 training sequences, mean (squared) error below 0.01 and all correct.
    Positions of the marks: ``extras["positions"]`` (B, 2).
    """

    name = "adding"
    input_size = 2
    output_size = 1
    symbols = ("value", "marker")
    classes = ("sum",)

    def __init__(self, lag: int | None = None, variant: str = "1997") -> None:
        self.variant = _check_variant("adding", variant, ("1997", "bai"))
        self.min_lag = 11 if variant == "1997" else 2
        self.lag_reason = ("one mark among the first 10 steps and one among the first T // 2 - 1, "
                           "distinct and before the last step" if variant == "1997"
                           else "two distinct marked steps")
        super().__init__(lag)
        if variant == "1997":
            self.loss_kind = "mse_sigmoid"
            self.reference_sequences = _TABLE_7.get(self.lag, (None, None))[0]
            self.reference = ("LSTM 1997 Table 7: T=100: 74,000 sequences, 1 of 2,560 test "
                              "sequences wrong; T=500: 209,000, 0 wrong; T=1000: 853,000, 1 wrong")
        else:
            self.loss_kind = "mse"
            self.reference = ("Bai et al. 2018 Table 1, T=600: LSTM MSE 0.164, not solved "
                              "(always answering 1 gives about 0.167)")

    def lag_meaning(self) -> str:
        return "T, the shortest length"

    @property
    def title(self) -> str:
        return f"{self.name}{' (bai)' if self.variant == 'bai' else ''} (T = {self.lag})"

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        T = self.lag
        if self.variant == "bai":
            lengths = torch.full((batch_size,), T, dtype=torch.long)
            p1, p2 = two_distinct(T, T, batch_size, generator)
            values = torch.rand((T, batch_size), generator=generator)
            inputs = _pair_inputs(values, lengths, p1, p2, end_markers=False)
            x1, x2 = values[p1, torch.arange(batch_size)], values[p2, torch.arange(batch_size)]
            target = x1 + x2
        else:
            lengths, p1, p2 = _marked_pair(T, batch_size, generator)
            values = uniform(-1.0, 1.0, (int(lengths.max()), batch_size), generator)
            inputs = _pair_inputs(values, lengths, p1, p2, end_markers=True)
            x1 = torch.where(p1 == 0, 0.0, values[p1, torch.arange(batch_size)])
            x2 = torch.where(p2 == 0, 0.0, values[p2, torch.arange(batch_size)])
            target = 0.5 + (x1 + x2) / 4.0
        mask = last_step_mask(lengths, inputs.shape[0])
        targets = torch.where(mask, target, 0.0).unsqueeze(-1)
        return Batch(inputs, targets, mask, lengths, {"positions": torch.stack([p1, p2], 1)})

    def evaluate(self, outputs: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        self.check_outputs(outputs, batch)
        out = at_last_step(self.predict(outputs.detach().float()), batch.lengths)[:, 0]
        target = at_last_step(batch.targets, batch.lengths)[:, 0]
        return (out - target).abs() < 0.04, (out - target).square()

    def stopping_rule(self) -> StoppingRule:
        return WindowRule(2000, max_wrong=0, max_mean_error=0.01)


class MultiplicationTask(AddingTask):
    """B5 ``multiplication`` (1997 Exp. 5): as adding (1997 layout) but values uniform in [0, 1],
    target X1 * X2 ((T, B, 1) float32, loss "mse_sigmoid"), and a marked step 0 counts as X = 1.
    Correct: absolute error below 0.04. Error: the squared error.
    Stop: fewer than ``stop_errors`` (default 140; the paper also uses 13) wrong among the last
    2,000 training sequences.
    """

    name = "multiplication"
    classes = ("product",)

    def __init__(self, lag: int | None = None, stop_errors: int = 140) -> None:
        if stop_errors < 1:
            raise ValueError(f"multiplication: stop_errors must be >= 1, got {stop_errors}")
        super().__init__(lag, variant="1997")
        self.variant = None
        self.stop_errors = stop_errors
        self.reference_sequences = None
        if self.lag == 100:
            self.reference_sequences = {140: 482_000, 13: 1_273_000}.get(stop_errors)
        self.reference = ("LSTM 1997 Table 8, T=100: 482,000 sequences, 139 of 2,560 wrong "
                          "(stopped at < 140 errors in the last 2,000); 1,273,000 sequences, 14 "
                          "wrong (at < 13)")

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        lengths, p1, p2 = _marked_pair(self.lag, batch_size, generator)
        values = torch.rand((int(lengths.max()), batch_size), generator=generator)
        inputs = _pair_inputs(values, lengths, p1, p2, end_markers=True)
        x1 = torch.where(p1 == 0, 1.0, values[p1, torch.arange(batch_size)])
        x2 = torch.where(p2 == 0, 1.0, values[p2, torch.arange(batch_size)])
        mask = last_step_mask(lengths, inputs.shape[0])
        targets = torch.where(mask, x1 * x2, 0.0).unsqueeze(-1)
        return Batch(inputs, targets, mask, lengths, {"positions": torch.stack([p1, p2], 1)})

    def stopping_rule(self) -> StoppingRule:
        return WindowRule(2000, max_wrong=self.stop_errors - 1)


# -- Exp. 6: temporal order -----------------------------------------------------------------------

_SIGNAL_WINDOWS = {"6a": ((10, 20), (50, 60)), "6b": ((10, 20), (33, 43), (66, 76))}
_TABLE_9 = {"6a": 31_390, "6b": 571_100}


class TemporalOrderTask(MemoryTask):
    """B6 ``temporal_order`` (1997 Exp. 6), variants 6a (2 signals, 4 classes) and 6b (3, 8).

    8 symbols one-hot (I = 8), lines 0..7 = E, B, a, b, c, d, X, Y. Length uniform in
    [T, T + T // 10] (lag = T; the paper's T = 100 gives 100..110). Step 1 (the paper counts from 1)
    is E, the last step B (the query), every other step one of a, b, c, d, except the signal steps,
    which carry X or Y: 6a at t1 in [10, 20] and t2 in [50, 60]; 6b at t1 in [10, 20], t2 in
    [33, 43], t3 in [66, 76] (the windows scale with T / 100 for other T).
    Target at the last step: the order of the signals as a class ((T, B) int64), XX=0, XY=1, YX=2,
    YY=3 (6b: XXX=0 .. YYY=7, X the 0 bit, first signal most significant); O = 4 (6b: 8), loss
    "mse_sigmoid" against the one-hot class (local output units, as the paper).
    Correct: every output unit's final absolute error below 0.3. Error: the squared error summed
    over the output units at the last step.
    Stop: over the last 2,000 training sequences, mean error below 0.1 and all correct.
    Positions of the signals (0-based): ``extras["positions"]`` (B, 2 or 3).
    """

    name = "temporal_order"
    loss_kind = "mse_sigmoid"
    min_lag = 20
    lag_reason = "the signal windows must stay apart and inside the sequence"
    input_size = 8
    symbols = ("E", "B", "a", "b", "c", "d", "X", "Y")

    def __init__(self, lag: int | None = None, variant: str = "6a") -> None:
        self.variant = _check_variant("temporal_order", variant, ("6a", "6b"))
        super().__init__(lag)
        self.signals = len(_SIGNAL_WINDOWS[variant])
        self.output_size = 2 ** self.signals
        self.classes = tuple("".join(c) for c in itertools.product("XY", repeat=self.signals))
        self.windows = tuple((int(self.lag * lo / 100 + 0.5), int(self.lag * hi / 100 + 0.5))
                             for lo, hi in _SIGNAL_WINDOWS[variant])
        self.reference_sequences = _TABLE_9[variant] if self.lag == 100 else None
        self.reference = ("LSTM 1997 Table 9: 6a 31,390 sequences (1 of 2,560 wrong); 6b 571,100 "
                          "sequences (2 of 2,560 wrong)")

    def lag_meaning(self) -> str:
        return "T, the shortest length"

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        lengths = lengths_between(self.lag, self.lag + self.lag // 10, batch_size, generator)
        steps = int(lengths.max())
        symbols = 2 + randint(0, 3, (steps, batch_size), generator)
        symbols[0] = 0
        symbols[lengths - 1, torch.arange(batch_size)] = 1
        label = torch.zeros(batch_size, dtype=torch.long)
        positions = []
        for lo, hi in self.windows:
            where = randint(lo, hi, (batch_size,), generator) - 1     # paper's 1-based step
            signal = randint(0, 1, (batch_size,), generator)           # 0 = X, 1 = Y
            symbols[where, torch.arange(batch_size)] = 6 + signal
            label = 2 * label + signal
            positions.append(where)
        symbols = torch.where(step_mask(lengths, steps), symbols, -1)
        mask = last_step_mask(lengths, steps)
        targets = torch.where(mask, label, 0)
        return Batch(one_hot(symbols, 8), targets, mask, lengths,
                     {"positions": torch.stack(positions, 1), "label": label})

    def evaluate(self, outputs: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        self.check_outputs(outputs, batch)
        out = at_last_step(torch.sigmoid(outputs.detach().float()), batch.lengths)
        target = at_last_step(self.target_vectors(batch), batch.lengths)
        diff = out - target
        return (diff.abs() < 0.3).all(-1), diff.square().sum(-1)

    def stopping_rule(self) -> StoppingRule:
        return WindowRule(2000, max_wrong=0, max_mean_error=0.1)
