"""Why the 1997 set-up misses lag 2a and 2b here: internal state drift (issue 17).

The paper's network for experiment 2a (``lstmlab.models.lstm1997``, ``SETUPS["2a"]``: one memory
cell and its input gate reading the p + 1 = 101 one-hot inputs, no biases, g the logistic sigmoid,
h the identity, the output units reading the inputs and the cell) is trained exactly as
``lstmlab memory lag:2a --lag 100 --learners lstm1997`` trains it: one sequence per update, plain
gradient descent at the paper's lr 1.0 on half the squared error summed over the sequence, the
cell added once the training error stops decreasing (``GrowWhenStalled``).

Drawn in [-0.2, 0.2] as the paper says, the input gate is about 0.5 and g about 0.5 at every
step, so the cell state climbs by about 0.25 a step: s(T) is about 25 when the cell is added.
The error of the last step reaches the cell's outgoing weights multiplied by s(T), and one update
at lr 1.0 moves them from 0.2 to tens; every output unit then reads tens times s(t), its logistic
output saturates, and squared error through a saturated logistic has no gradient left to undo
it. ``--offsets`` shifts every input-gate weight at the start (0: the paper's initialisation;
-3: the gate nearly shut, the paper's own remedy for drift, section 4, which 2a's bias-free net
can only express through the weights of its one-hot inputs) to show that the drift, not the
memory, is what breaks it.

    python benchmarks/lstm1997_drift.py                      # 2a, seeds 0-2, offsets 0 and -3
    python benchmarks/lstm1997_drift.py --seeds 0 --offsets 0,-2,-3,-4 --sequences 20000
    python benchmarks/lstm1997_drift.py --variant 2b         # the same network on 2b

Prints one row per (offset, seed) beside the paper's figure (LSTM: solved in every trial after
5,040 sequences on average for 2a, 5,680 for 2b).
"""

from __future__ import annotations

import argparse
import time

import torch

from lstmlab.experiments.learner import TaskStep, fresh_batches, learner_setup
from lstmlab.experiments.memory_trial import Budget, LearnerConfig
from lstmlab.models.lstm1997 import LSTM1997
from lstmlab.tasks.memory import make_task
from lstmlab.train.callbacks import Callback, StopWhen
from lstmlab.train.loop import StepOutput, Trainer


def probe_pair(task) -> torch.Tensor:
    """Two sequences of the task, one starting with x, then one with y: inputs (T, 2, I)."""
    batch = task.sample(64, torch.Generator().manual_seed(1))
    first = batch.extras["first"]
    pick = torch.stack([(first == 0).nonzero()[0, 0], (first == 1).nonzero()[0, 0]])
    return batch.inputs[:, pick]


class DriftWatch(Callback):
    """Records the cell state at the last step and the largest cell-to-output weight when the
    cell is added and after the first update with it, and the share of correct sequences."""

    def __init__(self, net: LSTM1997, inputs: torch.Tensor) -> None:
        self.net, self.inputs = net, inputs
        self.added_at: int | None = None
        self.s_end: list[float] = []
        self.w_before = self.w_after = float("nan")
        self.recent: list[float] = []

    def cell_weight(self) -> float:
        return float(self.net.head.weight.detach()[:, 0].abs().max())

    def on_step(self, trainer: Trainer, out: StepOutput) -> None:
        self.recent = (self.recent + [out.metrics["accuracy"]])[-1000:]
        if self.added_at is None and bool(self.net.connected):
            self.added_at = trainer.state.sequences
            self.w_before = self.cell_weight()
            with torch.no_grad():
                self.s_end = [float(v) for v in self.net.steps(self.inputs).s[-1, :, 0]]
        elif self.added_at is not None and self.w_after != self.w_after:  # NaN: not yet
            self.w_after = self.cell_weight()


def run(variant: str, seed: int, offset: float, sequences: int) -> dict:
    task = make_task("lag", 100, variant=variant)
    setup = learner_setup(task, "lstm1997", seed, LearnerConfig(), Budget(sequences=sequences))
    net = setup.net
    with torch.no_grad():
        net.input_gate.weight += offset
    rule = task.stopping_rule()
    watch = DriftWatch(net, probe_pair(task))
    trainer = Trainer(net, setup.train)
    start = time.perf_counter()
    trainer.run(TaskStep(task, setup.loss, rule),
                fresh_batches(task, setup.batch, torch.Generator().manual_seed(seed)),
                [*setup.callbacks, watch, StopWhen(lambda: rule.done)])
    with torch.no_grad():
        s_now = [float(v) for v in net.steps(watch.inputs).s[-1, :, 0]]
    return {"seed": seed, "offset": offset, "added_at": watch.added_at,
            "s_end": watch.s_end, "w_before": watch.w_before, "w_after": watch.w_after,
            "w_now": watch.cell_weight(), "s_now": s_now,
            "recent": sum(watch.recent) / max(len(watch.recent), 1),
            "solved": rule.done, "learned_at": rule.learned_at,
            "sequences": trainer.state.sequences,
            "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=("2a", "2b"), default="2a",
                        help="lag 2a (default) or 2b, p = 100")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--offsets", default="0,-3",
                        help="comma-separated shifts of every input-gate weight (default 0,-3)")
    parser.add_argument("--sequences", type=int, default=20_000,
                        help="training sequences per run (default 20,000: about 4x the paper's)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    offsets = [float(o) for o in args.offsets.split(",")]
    paper = {"2a": 5_040, "2b": 5_680}[args.variant]
    print(f"lag {args.variant}, p = 100, the 1997 set-up (online SGD lr 1.0, SSE, truncated "
          f"gradient); paper: LSTM solved in every trial, {paper:,} sequences on average")
    print(f"{'offset':>6} {'seed':>4} {'cell added':>10} {'s(T) x/y at add':>16} "
          f"{'|w_c| before':>12} {'after 1 update':>14} {'|w_c| end':>9} {'s(T) x/y end':>14} "
          f"{'right, last 1k':>14} {'solved':>10} {'time':>6}")
    for offset in offsets:
        for seed in seeds:
            r = run(args.variant, seed, offset, args.sequences)
            added = "never" if r["added_at"] is None else f"{r['added_at']:,}"
            s_add = "/".join(f"{v:.2f}" for v in r["s_end"]) or "-"
            s_now = "/".join(f"{v:.2f}" for v in r["s_now"])
            solved = f"{r['learned_at']:,}" if r["solved"] else f"no ({r['sequences']:,})"
            print(f"{offset:>6g} {seed:>4} {added:>10} {s_add:>16} {r['w_before']:>12.2f} "
                  f"{r['w_after']:>14.2f} {r['w_now']:>9.2f} {s_now:>14} "
                  f"{100 * r['recent']:>13.1f}% {solved:>10} {r['seconds']:>5.0f}s", flush=True)


if __name__ == "__main__":
    main()
