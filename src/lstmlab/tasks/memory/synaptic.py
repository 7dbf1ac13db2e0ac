"""Synaptic.js's built-in tasks (cazala/synaptic, src/Trainer.js; docs/tasks.md, section C):
``dsr`` (distracted sequence recall) and ``timing``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lstmlab.tasks.memory.base import Batch, MemoryTask, one_hot, randint, two_distinct
from lstmlab.tasks.stopping import BlockRule, StoppingRule, WindowRule

_DSR_TARGETS = (2, 4, 7, 8)
_DSR_DISTRACTORS = (3, 5, 6, 9)
_DSR_PROMPTS = (0, 1)


class DSRTask(MemoryTask):
    """C1 ``dsr``: distracted sequence recall.

    10 symbols one-hot (I = 10, line k = symbol k): targets {2, 4, 7, 8}, distractors
    {3, 5, 6, 9}, prompts {0, 1}. Length L (lag, default 24). Steps 0..L-3 are distractors (uniform)
    except two distinct random positions that carry targets (each uniform over the four, repeats
    allowed); steps L-2 and L-1 are the prompts 0 and 1. At prompt k the target is the k-th target
    symbol in order of appearance (by time, not Synaptic's string sort of the positions), as a class
    0..3 over (2, 4, 7, 8) ((T, B) int64, O = 4, loss "ce"); only the two prompt steps are scored.
    Correct: both prompts' arg-max right. Error: mean cross-entropy over the two prompts.
    (Synaptic scores sigmoid outputs, rounded, at every step; ours scores the prompts only.)
    Stop (Synaptic): a block of 1,000 training sequences with success rate >= 0.95.
    """

    name = "dsr"
    default_lag = 24
    min_lag = 4
    lag_reason = "two target positions and two prompts"
    input_size = 10
    output_size = 4
    symbols = tuple(str(k) for k in range(10))
    classes = tuple(str(k) for k in _DSR_TARGETS)
    reference = ("Synaptic.js Trainer.DSR: stops when the success rate over a block of 1,000 "
                 "sequences reaches 0.95 (length 24, learning rate 0.1, cross-entropy)")

    def lag_meaning(self) -> str:
        return "L, the sequence length"

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        L = self.lag
        S = L - 2
        distractors = torch.tensor(_DSR_DISTRACTORS)[randint(0, 3, (S, batch_size), generator)]
        p1, p2 = two_distinct(S, S, batch_size, generator)
        c1 = randint(0, 3, (batch_size,), generator)
        c2 = randint(0, 3, (batch_size,), generator)
        columns = torch.arange(batch_size)
        targets_symbols = torch.tensor(_DSR_TARGETS)
        prompts = torch.tensor(_DSR_PROMPTS).unsqueeze(1).expand(2, batch_size)
        symbols = torch.cat([distractors, prompts])
        symbols[p1, columns] = targets_symbols[c1]
        symbols[p2, columns] = targets_symbols[c2]
        first = torch.where(p1 < p2, c1, c2)
        second = torch.where(p1 < p2, c2, c1)
        targets = torch.zeros((L, batch_size), dtype=torch.long)
        targets[S], targets[S + 1] = first, second
        mask = torch.zeros((L, batch_size), dtype=torch.bool)
        mask[S:] = True
        positions = torch.stack([torch.minimum(p1, p2), torch.maximum(p1, p2)], 1)
        return Batch(one_hot(symbols, 10), targets, mask,
                     torch.full((batch_size,), L, dtype=torch.long), {"positions": positions})

    def stopping_rule(self) -> StoppingRule:
        return BlockRule(1000, 0.95)


class TimingTask(MemoryTask):
    """C2 ``timing``: hold an output for a given number of steps after a pulse.

    Two input lines (I = 2): a pulse, and a duration level n / 20 (n uniform in 0..20). A sequence
    of T steps (lag, default 1,000) is a run of episodes: an episode starts with a pulse (line 0 = 1
    for one step) and lasts 1 + n + g steps (g uniform in 0..20, the gap); line 1 holds n / 20 for
    the whole episode. Target ((T, B, 1) float32, O = 1, loss "mse" on a linear output): 0.5 at
    the n steps after the pulse, 0 otherwise (the pulse step included). Every step is scored.
    Correct (ours): every step's absolute error below 0.25 (nearer the right level than the other).
    Error: the mean squared error over the steps.
    Stop (after Synaptic, which trains on 7,000 steps with MSE target 0.005): the mean error of the
    last ceil(7,000 / T) training sequences (7,000 steps) below 0.005.
    Episode facts per step are not kept; ``extras["episodes"]`` counts the pulses per sequence.
    """

    name = "timing"
    default_lag = 1000
    input_size = 2
    output_size = 1
    loss_kind = "mse"
    symbols = ("pulse", "duration n/20")
    classes = ("level",)
    reference = ("Synaptic.js Trainer.timingTask: trains on 7,000 steps and tests on 1,000, MSE "
                 "(stops at MSE 0.005 or 200 iterations)")

    def lag_meaning(self) -> str:
        return "T, the sequence length"

    def _generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        T = self.lag
        episodes = T // 8 + 32                 # an episode lasts 21 steps on average, 1 at least
        n = randint(0, 20, (batch_size, episodes), generator)
        gap = randint(0, 20, (batch_size, episodes), generator)
        while True:
            ends = (1 + n + gap).cumsum(1)                        # (B, E) episode ends (exclusive)
            if bool((ends[:, -1] >= T).all()):
                break
            n = torch.cat([n, randint(0, 20, (batch_size, episodes), generator)], 1)
            gap = torch.cat([gap, randint(0, 20, (batch_size, episodes), generator)], 1)
        t = torch.arange(T).unsqueeze(0).expand(batch_size, T).contiguous()
        episode = torch.searchsorted(ends, t, right=True)         # (B, T) episode of each step
        start = torch.where(episode > 0, ends.gather(1, (episode - 1).clamp(min=0)), 0)
        offset = t - start
        duration = n.gather(1, episode)
        inputs = torch.stack([(offset == 0).float(), duration.float() / 20.0], -1)
        target = torch.where((offset >= 1) & (offset <= duration), 0.5, 0.0)
        return Batch(inputs.transpose(0, 1).contiguous(), target.T.unsqueeze(-1).contiguous(),
                     torch.ones((T, batch_size), dtype=torch.bool),
                     torch.full((batch_size,), T, dtype=torch.long),
                     {"episodes": (offset == 0).sum(1)})

    def evaluate(self, outputs: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        self.check_outputs(outputs, batch)
        diff = (outputs.detach().float() - batch.targets)[..., 0]
        mask = batch.mask
        correct = ((diff.abs() < 0.25) | ~mask).all(0)
        error = (diff.square() * mask).sum(0) / mask.sum(0).clamp(min=1)
        return correct, error

    def stopping_rule(self) -> StoppingRule:
        return WindowRule(max(1, math.ceil(7000 / self.lag)), max_wrong=None,
                          max_mean_error=0.005)
