"""Stopping rules: when has a learner solved a memory game?

Each rule is fed, in training order, every training batch's per-sequence results from
``MemoryTask.evaluate``: ``correct`` (B,) bool and ``error`` (B,) float. It counts sequences, not
batches, so a streak or a window can end in the middle of a batch; ``satisfied_at`` is the exact
1-based number of the training sequence at which the criterion first held, and ``sequences`` is
how many have been fed in all (the whole last batch included, as "a batch of 32 counts 32").

Rules, with the criteria of docs/tasks.md they serve:

    StreakRule(n)               n successive training sequences correct
                                (lag 2a/2b: max abs error < 0.25; 2c: both outputs' error < 0.2)
    WindowRule(w, max_wrong, max_mean_error)
                                over the last w training sequences: at most max_wrong wrong and mean
                                error < max_mean_error (adding: w=2000, 0 wrong, mean < 0.01;
                                temporal order: mean < 0.1; multiplication: fewer than 140 wrong)
    BlockRule(block, min_rate)  a block of `block` consecutive sequences (blocks start at 0, block,
                                2*block, ...) with success rate >= min_rate (dsr: 1000, 0.95)
    TestSetRule(...)            a check on a fixed set of held-out sequences: at most max_wrong
                                wrong, accuracy >= min_accuracy, mean error < max_mean_error
                                (two_sequence ST1/ST2, reber, the ">= 99%" rules)

A training loop uses them like this:

    rule = task.stopping_rule()
    check = task.stopping_set() if rule.needs_test else None
    while not rule.done:
        ...                                        # forward, loss, backward, step
        rule.update(*task.evaluate(outputs, batch))
        if rule.needs_test and rule.test_due():
            rule.check_test(*task.evaluate(model(check.inputs), check))

The rules are pure bookkeeping on CPU tensors: no model, no task, no randomness.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _results(correct: Tensor, error: Tensor) -> tuple[Tensor, Tensor]:
    """Check and normalise one batch of per-sequence results to CPU (bool, float64) vectors."""
    correct = torch.as_tensor(correct).detach().cpu()
    error = torch.as_tensor(error).detach().cpu()
    if correct.dim() != 1 or error.dim() != 1 or correct.shape != error.shape:
        raise ValueError("correct and error must be 1-D tensors of the same length (one value per "
                         f"sequence), got shapes {tuple(correct.shape)} and {tuple(error.shape)}")
    if correct.dtype != torch.bool:
        raise TypeError(f"correct must be a bool tensor, got {correct.dtype}")
    return correct, error.to(torch.float64)


class StoppingRule:
    """Base class. ``update`` is fed training results; test rules also take ``check_test``.

    Attributes:
        needs_test: the rule is decided on a held-out set (``check_test``), not on training results.
        test_size: the size of that set (None where the task decides).
        test_interval: for test rules, training sequences between two checks (``test_due``).
        sequences: training sequences fed so far.
        satisfied_at: the training sequence (1-based count) at which the criterion first held, or
            None. For test rules it is the number of training sequences seen at the passing check.
        proof: training sequences the rule needs after the task is learned to confirm it (a
            streak's length; 0 for the others); ``learned_at`` leaves them out.
    """

    needs_test: bool = False
    proof: int = 0
    test_size: int | None = None
    test_interval: int = 1000

    def __init__(self) -> None:
        self.sequences = 0
        self.satisfied_at: int | None = None
        self._last_check = 0

    @property
    def learned_at(self) -> int | None:
        """Training sequences seen before the confirming run began: ``satisfied_at - proof``
        (None while unsatisfied). For a streak rule, the sequences before the streak."""
        return None if self.satisfied_at is None else self.satisfied_at - self.proof

    @property
    def done(self) -> bool:
        """True once the criterion has held (it stays True)."""
        return self.satisfied_at is not None

    def update(self, correct: Tensor, error: Tensor) -> bool:
        """Feed one training batch's per-sequence results, in order; True once the rule holds."""
        correct, error = _results(correct, error)
        if not self.done:
            hit = self._scan(correct, error)
            if hit is not None:
                self.satisfied_at = self.sequences + hit + 1
        self.sequences += correct.numel()
        return self.done

    def _scan(self, correct: Tensor, error: Tensor) -> int | None:
        """Consume a batch; the 0-based index within it where the criterion first holds."""
        return None

    def test_due(self) -> bool:
        """For test rules: True when ``test_interval`` training sequences have passed since the
        last ``check_test`` (or since the start)."""
        return (self.needs_test and not self.done
                and self.sequences - self._last_check >= self.test_interval)

    def check_test(self, correct: Tensor, error: Tensor) -> bool:
        """Judge the held-out set's per-sequence results; True once the rule holds."""
        raise ValueError(f"{type(self).__name__} is decided on training sequences and takes no "
                         "test-set check (needs_test is False)")

    def describe(self) -> str:
        """The criterion, in words."""
        raise NotImplementedError

    def __repr__(self) -> str:
        state = f"satisfied at {self.satisfied_at:,}" if self.done else "not yet"
        return f"<{type(self).__name__}: {self.describe()}; {self.sequences:,} seen, {state}>"


class StreakRule(StoppingRule):
    """``length`` successive training sequences all correct (the 1997 Exp. 2 rule, 10,000)."""

    def __init__(self, length: int = 10_000) -> None:
        if length < 1:
            raise ValueError(f"streak length must be >= 1, got {length}")
        super().__init__()
        self.length = length
        self.streak = 0  # correct sequences in a row at the end of what was fed

    @property
    def proof(self) -> int:
        """The streak itself confirms the task was learned."""
        return self.length

    def _scan(self, correct: Tensor, error: Tensor) -> int | None:
        n = correct.numel()
        if n == 0:
            return None
        index = torch.arange(n)
        # streak ending at j: j - (last wrong position <= j), or carried-in streak + j + 1
        last_wrong = torch.where(correct, -1, index).cummax(0).values
        streak = torch.where(last_wrong >= 0, index - last_wrong, self.streak + index + 1)
        self.streak = int(streak[-1])
        hits = (streak >= self.length).nonzero()
        return int(hits[0]) if hits.numel() else None

    def describe(self) -> str:
        return f"{self.length:,} successive training sequences correct"


class WindowRule(StoppingRule):
    """Over the last ``window`` training sequences: at most ``max_wrong`` wrong (None: any) and
    mean error strictly below ``max_mean_error`` (None: no error condition).

    The window slides one sequence at a time and needs ``window`` sequences before it can hold.
    1997 Exp. 4 (adding): window 2000, max_wrong 0, max_mean_error 0.01. "Fewer than 140 errors in
    the last 2,000" (Exp. 5) is max_wrong=139.
    """

    def __init__(self, window: int = 2000, max_wrong: int | None = 0,
                 max_mean_error: float | None = None) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if max_wrong is None and max_mean_error is None:
            raise ValueError("a window rule needs max_wrong, max_mean_error or both")
        super().__init__()
        self.window = window
        self.max_wrong = max_wrong
        self.max_mean_error = max_mean_error
        self._correct = torch.zeros(0, dtype=torch.bool)  # the last window-1 results fed
        self._error = torch.zeros(0, dtype=torch.float64)

    def _scan(self, correct: Tensor, error: Tensor) -> int | None:
        carried = self._correct.numel()
        all_correct = torch.cat([self._correct, correct])
        all_error = torch.cat([self._error, error])
        keep = self.window - 1
        self._correct = all_correct[max(0, all_correct.numel() - keep):]
        self._error = all_error[max(0, all_error.numel() - keep):]
        if all_correct.numel() < self.window:
            return None
        # window k covers all_*[k : k + window] and ends at batch index k + window - 1 - carried
        ok = torch.ones(all_correct.numel() - self.window + 1, dtype=torch.bool)
        if self.max_wrong is not None:
            wrong = (~all_correct).unfold(0, self.window, 1).sum(1)
            ok &= wrong <= self.max_wrong
        if self.max_mean_error is not None:
            ok &= all_error.unfold(0, self.window, 1).mean(1) < self.max_mean_error
        hits = ok.nonzero()
        return int(hits[0]) + self.window - 1 - carried if hits.numel() else None

    def describe(self) -> str:
        parts = []
        if self.max_mean_error is not None:
            parts.append(f"mean error < {self.max_mean_error:g}")
        if self.max_wrong == 0:
            parts.append("all correct")
        elif self.max_wrong is not None:
            parts.append(f"at most {self.max_wrong:,} wrong")
        return f"last {self.window:,} training sequences: " + " and ".join(parts)


class BlockRule(StoppingRule):
    """A block of ``block`` consecutive training sequences with success rate >= ``min_rate``.

    Blocks do not overlap: sequences 1..block, block+1..2*block, ... (Synaptic.js's DSR counts its
    success rate this way and stops at the end of a block).
    """

    def __init__(self, block: int = 1000, min_rate: float = 0.95) -> None:
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        super().__init__()
        self.block = block
        self.min_rate = min_rate
        self._block_correct = 0  # correct so far in the open block
        self.last_rate: float | None = None  # success rate of the last completed block

    def _scan(self, correct: Tensor, error: Tensor) -> int | None:
        start = 0
        n = correct.numel()
        in_block = self.sequences % self.block
        while start < n:
            take = min(self.block - in_block, n - start)
            self._block_correct += int(correct[start:start + take].sum())
            in_block += take
            start += take
            if in_block == self.block:
                self.last_rate = self._block_correct / self.block
                self._block_correct, in_block = 0, 0
                if self.last_rate >= self.min_rate:
                    return start - 1
        return None

    def describe(self) -> str:
        return (f"success rate >= {self.min_rate:g} over a block of {self.block:,} training "
                "sequences")


class TestSetRule(StoppingRule):
    """A check on a fixed held-out set: at most ``max_wrong`` wrong, accuracy >= ``min_accuracy``
    and mean error strictly below ``max_mean_error`` (each None: not required).

    ST1 of 1997 Exp. 3 is TestSetRule(max_wrong=0, test_size=256); ST2 adds max_mean_error=0.01.
    The ">= 99% on the test set" criteria are TestSetRule(min_accuracy=0.99).
    """

    needs_test = True
    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, max_wrong: int | None = None, min_accuracy: float | None = None,
                 max_mean_error: float | None = None, test_size: int | None = None,
                 test_interval: int = 1000) -> None:
        if max_wrong is None and min_accuracy is None and max_mean_error is None:
            raise ValueError("a test-set rule needs max_wrong, min_accuracy or max_mean_error")
        if test_interval < 1:
            raise ValueError(f"test_interval must be >= 1, got {test_interval}")
        super().__init__()
        self.max_wrong = max_wrong
        self.min_accuracy = min_accuracy
        self.max_mean_error = max_mean_error
        self.test_size = test_size
        self.test_interval = test_interval
        self.checks = 0
        self.last_accuracy: float | None = None
        self.last_wrong: int | None = None
        self.last_mean_error: float | None = None

    def check_test(self, correct: Tensor, error: Tensor) -> bool:
        correct, error = _results(correct, error)
        if correct.numel() == 0:
            raise ValueError("check_test needs at least one test sequence")
        self.checks += 1
        self._last_check = self.sequences
        self.last_wrong = int((~correct).sum())
        self.last_accuracy = float(correct.double().mean())
        self.last_mean_error = float(error.mean())
        ok = True
        if self.max_wrong is not None:
            ok &= self.last_wrong <= self.max_wrong
        if self.min_accuracy is not None:
            ok &= self.last_accuracy >= self.min_accuracy
        if self.max_mean_error is not None:
            ok &= self.last_mean_error < self.max_mean_error
        if ok and not self.done:
            self.satisfied_at = self.sequences
        return self.done

    def describe(self) -> str:
        parts = []
        if self.max_wrong == 0:
            parts.append("none wrong")
        elif self.max_wrong is not None:
            parts.append(f"at most {self.max_wrong:,} wrong")
        if self.min_accuracy is not None:
            parts.append(f"accuracy >= {self.min_accuracy:.4g}")
        if self.max_mean_error is not None:
            parts.append(f"mean error < {self.max_mean_error:g}")
        size = f"{self.test_size:,} " if self.test_size else ""
        return f"test set of {size}held-out sequences: " + " and ".join(parts)


__all__ = ["BlockRule", "StoppingRule", "StreakRule", "TestSetRule", "WindowRule"]
