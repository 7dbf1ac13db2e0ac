"""A curriculum on a memory game's lag: short lags first, the target lag once they are learned.

Zaremba & Sutskever 2014 ("Learning to Execute", section 4) train on problems of growing
difficulty. Their "combined" strategy mixes the current level with levels drawn uniformly,
so that what was learned early is not forgotten. Here the difficulty is the lag:

    >>> course = Curriculum("copy", {}, target=100, generator=torch.Generator().manual_seed(0))
    >>> batch = course.sample(32)          # course.task is the task this batch was drawn from
    >>> course.update(correct)             # the batch's per-sequence results, (B,) bool

- levels: ``start``, ``start + step``, ..., ``target`` (by default 10 levels, start = step =
  target / 10, rounded up and at least the task's ``min_lag``);
- each batch is drawn at the current level with probability 1/2, otherwise at a lag uniform over
  ``start``..current (the uniform part stops at the current level: drawing from the whole range,
  as Zaremba & Sutskever's mix does, spends early steps on lags the network cannot learn yet);
- the level goes up once a block of ``window`` sequences drawn at the current level was
  ``threshold`` correct or better, by the task's own rule (default 95% of 320 sequences;
  threshold 0 raises it after every block: a fixed schedule).

Only tasks whose input and output sizes do not depend on the lag qualify (copy, adding, intern,
...; not lag 2a/2b, whose alphabet grows with p).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from lstmlab.tasks.memory import MemoryTask, make_task
from lstmlab.tasks.memory.base import Batch


class Curriculum:
    """Batches of a memory game at lags growing to ``target`` (module docstring).

    Attributes:
        task: the task of the batch ``sample`` drew last. level: the current level (a lag).
        levels: every level in order. promotions: (training sequences seen, new level) per rise.
    """

    def __init__(self, name: str, options: dict[str, Any], target: int,
                 generator: torch.Generator, levels: int = 10, threshold: float = 0.95,
                 window: int = 320) -> None:
        if levels < 1:
            raise ValueError(f"a curriculum needs at least 1 level, got {levels}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"the curriculum's threshold must be in [0, 1], got {threshold}")
        if window < 1:
            raise ValueError(f"the curriculum's window must be >= 1 sequence, got {window}")
        final = make_task(name, target, **options)
        step = max(1, math.ceil(final.lag / levels))
        start = min(final.lag, max(step, final.min_lag))
        self.levels = list(range(start, final.lag, step)) + [final.lag]
        self.name, self.options, self.target = name, dict(options), final.lag
        self._tasks: dict[int, MemoryTask] = {final.lag: final}
        first = self._task_at(self.levels[0])
        if (first.input_size, first.output_size) != (final.input_size, final.output_size):
            raise ValueError(
                f"{final.title}: a curriculum on the lag needs input and output sizes that do "
                f"not depend on it; at lag {first.lag} they are {first.input_size} and "
                f"{first.output_size}, at {final.lag} {final.input_size} and "
                f"{final.output_size}")
        self.threshold, self.window = threshold, window
        self.generator = generator
        self.index = 0
        self.task = final
        self.sequences = 0
        self.promotions: list[tuple[int, int]] = []
        self._at_level = False
        self._right = 0
        self._seen = 0

    def _task_at(self, lag: int) -> MemoryTask:
        if lag not in self._tasks:
            self._tasks[lag] = make_task(self.name, lag, **self.options)
        return self._tasks[lag]

    @property
    def level(self) -> int:
        return self.levels[self.index]

    @property
    def at_target(self) -> bool:
        """True once the curriculum has reached the target lag (it then stays there)."""
        return self.level == self.target

    def sample(self, batch_size: int) -> Batch:
        """A fresh batch at the current level, or (probability 1/2) at a lag uniform over
        start..level; ``self.task`` becomes that lag's task."""
        first, level = self.levels[0], self.level
        at_level = bool(torch.rand((), generator=self.generator) < 0.5)
        lag = level if at_level else int(torch.randint(first, level + 1, (),
                                                       generator=self.generator))
        self._at_level = lag == level  # a uniform draw may land on the level too
        self.task = self._task_at(lag)
        return self.task.sample(batch_size, self.generator)

    def update(self, correct: Tensor) -> None:
        """Feed the last sampled batch's per-sequence results ((B,) bool); raise the level when
        a block of ``window`` sequences at the current level was ``threshold`` right."""
        self.sequences += correct.numel()
        if not self._at_level or self.at_target:
            return
        self._right += int(correct.sum())
        self._seen += correct.numel()
        if self._seen < self.window:
            return
        if self._right >= self.threshold * self._seen:
            self.index += 1
            self.promotions.append((self.sequences, self.level))
        self._right = self._seen = 0

    def describe(self) -> str:
        """The levels and when each was reached, in words."""
        reached = ", ".join(f"{lag} after {seen:,}" for seen, lag in self.promotions)
        return (f"curriculum on the lag {self.levels[0]}..{self.target} in "
                f"{len(self.levels)} levels" + (f"; reached {reached}" if reached else ""))
