"""Why the 1997 set-up misses the embedded Reber grammar here: state drift and a cell made into a
bias (issue 17).

The paper's network for experiment 1 (``lstmlab.models.lstm1997``, ``SETUPS["1"]``: 3 memory
blocks of 2 cells, the gates biased, the output units reading the cells only and without biases,
276 weights) is trained exactly as ``lstmlab memory reber --learners lstm1997`` trains it: one
training string per update, plain gradient descent at lr 0.5 on half the squared error summed
over the string, the truncated gradient. After training, the 512 strings of the stopping set (the
256 training and 256 test strings) are read once and the script prints where they go wrong - the
step that must repeat the branch symbol T|P (the long dependency) or the local predictions of the
grammar - with the mean |s| of the cell states 12 steps in (the mean string has 12 symbols) and
the mean input-gate activation over every step.

Variants: "paper" (the set-up as the paper gives it, next-symbol targets); "legal" (trained
towards the multi-hot set of legal next symbols, the task's ``target="legal"``); "biases" (the
cells and the output units get biases too, 289 weights: ``bias="all"``).

    python benchmarks/reber1997_drift.py                           # seeds 0-2, the 3 variants
    python benchmarks/reber1997_drift.py --variants paper --seeds 0 --sequences 50000

Prints one row per (variant, seed) beside the paper's figure (3 blocks x 2 cells, lr 0.5: solved
in all 30 trials, 8,440 sequences on average).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from lstmlab.experiments.learner import HeldOutCheck, TaskStep, fresh_batches, learner_setup
from lstmlab.experiments.memory_trial import Budget, LearnerConfig
from lstmlab.models.lstm1997 import LSTM1997, SETUPS, build_lstm1997
from lstmlab.tasks.memory import make_task
from lstmlab.train.callbacks import StopWhen
from lstmlab.train.loop import Trainer

VARIANTS = ("paper", "legal", "biases")


def diagnose(net: LSTM1997, task) -> dict:
    """Where the stopping set's strings go wrong, and the cells' drift."""
    batch = task.stopping_set()
    with torch.no_grad():
        trace = net.steps(batch.inputs)
    out, legal = trace.outputs, batch.targets > 0.5
    inf = torch.tensor(float("inf"))
    lowest_legal = torch.where(legal, out, inf).amin(-1)
    highest_illegal = torch.where(legal, -inf, out).amax(-1)
    wrong = (lowest_legal <= highest_illegal) & batch.mask                   # (T, B)
    t = torch.arange(batch.steps).unsqueeze(1)
    branch = t == batch.lengths - 3        # the step whose next symbol repeats the branch
    alive = torch.arange(batch.steps).unsqueeze(1) < batch.lengths           # (T, B)
    gates = trace.y_in[alive]
    at12 = trace.s[12][alive[12]]
    return {"strings_wrong": int(wrong.any(0).sum()), "strings": batch.batch_size,
            "branch_wrong": int((wrong & branch).sum()),
            "local_wrong": int((wrong & ~branch).sum()),
            "s12": float(at12.abs().mean()), "s12_max_cell": float(at12.abs().mean(0).max()),
            "input_gate": float(gates.mean())}


def run(variant: str, seed: int, sequences: int) -> dict:
    task = make_task("reber", target="legal" if variant == "legal" else "next")
    setup = learner_setup(task, "lstm1997", seed, LearnerConfig(), Budget(sequences=sequences))
    if variant == "biases":  # the paper's set-up with biases on the cells and output units
        setup.net = build_lstm1997(task, seed, setup=replace(SETUPS["1"], bias="all"))
    rule = task.stopping_rule()
    # the suite's own check on the stopping set (the 256 training and 256 test strings)
    check = HeldOutCheck(rule, task, list(task.stopping_batches(rule, 512)))
    trainer = Trainer(setup.net, setup.train)
    start = time.perf_counter()
    trainer.run(TaskStep(task, setup.loss, rule),
                fresh_batches(task, setup.batch, torch.Generator().manual_seed(seed)),
                [check, StopWhen(lambda: rule.done)])
    return {"variant": variant, "seed": seed, "solved": rule.done,
            "learned_at": rule.learned_at, "sequences": trainer.state.sequences,
            "weights": setup.net.num_weights, "seconds": time.perf_counter() - start,
            **diagnose(setup.net, task)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, of {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--sequences", type=int, default=30_000,
                        help="training strings per run (default 30,000: 3.6x the paper's mean)")
    args = parser.parse_args()
    variants = args.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            parser.error(f"--variants: unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    print("embedded Reber, the 1997 set-up of experiment 1 (3 blocks x 2 cells, online SGD lr "
          "0.5, SSE, truncated gradient); paper: solved in 30 of 30 trials, 8,440 sequences on "
          "average")
    print(f"{'variant':>7} {'seed':>4} {'weights':>7} {'solved':>13} {'strings wrong':>13} "
          f"{'branch steps wrong':>18} {'local steps wrong':>17} {'mean |s| at t=12':>16} "
          f"{'(largest cell)':>14} {'input gate':>10} {'time':>5}")
    for variant in variants:
        for seed in seeds:
            r = run(variant, seed, args.sequences)
            solved = f"{r['learned_at']:,}" if r["solved"] else f"no ({r['sequences']:,})"
            print(f"{variant:>7} {seed:>4} {r['weights']:>7} {solved:>13} "
                  f"{r['strings_wrong']:>9}/{r['strings']} {r['branch_wrong']:>18} "
                  f"{r['local_wrong']:>17} {r['s12']:>16.1f} {r['s12_max_cell']:>14.1f} "
                  f"{r['input_gate']:>10.2f} {r['seconds']:>4.0f}s", flush=True)


if __name__ == "__main__":
    main()
