"""Why lag 2b is solved late: each sequence's random middle shifts its timing (issue 17).

In 2b (p = 100) the last step is the only predictable one: the net must know from time alone
that the sequence is over, and answer x or y there. Trained with the settings that solve 2a
(``benchmarks/memory_suite.py --only lag-2b-100-direct``: Adam, no weight decay, the rate
annealed by a cosine over the budget), the trained net times the last step sharply on most
sequences but answers too weakly on a few. The cause shown here: the recurrent layer's input
weights of the 99 a-symbols, which carry no information, drift apart under Adam (it moves every
weight by steps of the order of the rate, whatever its gradient's size), and their sum over a
sequence's random middle shifts that sequence's count of steps. Replacing each a-symbol's
input weights by the mean over the 99 (nothing else changed) removes the shift; weight decay on
the input weights (``--input-decay``) keeps them together during training.

For each recipe and seed: train as ``lstmlab memory lag:2b --lag 100`` does with that recipe,
then score 2,560 fresh sequences with the trained net, and again with its a-symbol input weights
averaged. Columns: wrong sequences; the spread (standard deviation over sequences) of the right
output's log-odds at the last step; the spread of the a-symbol input weights across symbols.

    python benchmarks/lag2b_timing.py                  # both recipes, seeds 0-2 (about 5 min)
    python benchmarks/lag2b_timing.py --recipes adam --seeds 0
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn

from lstmlab.experiments.learner import TaskStep, fresh_batches, learner_setup
from lstmlab.experiments.memory_trial import Budget, LearnerConfig
from lstmlab.tasks.memory import make_task
from lstmlab.train.callbacks import StopWhen
from lstmlab.train.loop import Trainer

BASE = dict(direct=True, init="default", forget_bias=5.0, batch=2, clip=0.1, lr=0.003)
# (learner settings, sequence budget): the suite's lag-2b-100-direct and lag-2b-100-decay rows
RECIPES = {
    "adam": (LearnerConfig(**BASE, input_bias=-3.0, schedule="cosine"), 15_680),
    "decay": (LearnerConfig(**BASE, input_decay=1.0, schedule="exponential", half_life=2_000),
              30_000),
}
FIRST_A = 2  # input lines: 0 = x, 1 = y, 2.. = the a-symbols


def averaged(net: nn.Module) -> nn.Module:
    """A copy of ``net`` whose a-symbols all have the mean a-symbol's recurrent input weights."""
    net = copy.deepcopy(net)
    with torch.no_grad():
        weights = net.recurrent.weight_ih_l0
        weights[:, FIRST_A:] = weights[:, FIRST_A:].mean(1, keepdim=True)
    return net


def score(net: nn.Module, task, batch) -> tuple[int, float]:
    """(wrong sequences, std over sequences of the right output's log-odds at the last step)."""
    with torch.no_grad():
        outputs = net(batch.inputs)
    right, _ = task.evaluate(outputs, batch)
    first = batch.extras["first"]
    logit = outputs[-1, torch.arange(len(first)), first]
    return int((~right).sum()), float(logit.std())


def run(recipe: str, seed: int, test: int) -> dict:
    task = make_task("lag", 100, variant="2b")
    config, sequences = RECIPES[recipe]
    setup = learner_setup(task, "lstm:NOAF", seed, config, Budget(sequences=sequences))
    rule = task.stopping_rule()
    trainer = Trainer(setup.net, setup.train, setup.optimizer)
    start = time.perf_counter()
    trainer.run(TaskStep(task, setup.loss, rule),
                fresh_batches(task, setup.batch, torch.Generator().manual_seed(seed)),
                [StopWhen(lambda: rule.done)])
    net = setup.net.eval()
    batch = task.sample(test, torch.Generator().manual_seed(10_000 + seed))
    a_weights = net.recurrent.weight_ih_l0.detach()[:, FIRST_A:]
    return {"trained": score(net, task, batch), "averaged": score(averaged(net), task, batch),
            "spread": float(a_weights.std(1).mean()), "solved": rule.done,
            "learned_at": rule.learned_at, "sequences": trainer.state.sequences,
            "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default="adam,decay",
                        help=f"comma-separated, of {', '.join(RECIPES)} (default both)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--test", type=int, default=2_560, help="fresh sequences scored")
    args = parser.parse_args()
    torch.set_num_threads(1)
    recipes = args.recipes.split(",")
    for recipe in recipes:
        if recipe not in RECIPES:
            parser.error(f"--recipes: unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    print(f"lag 2b, p = 100, lstm:NOAF; {args.test:,} fresh sequences scored after training; "
          "paper: LSTM solved in every trial, 5,680 sequences on average")
    print(f"{'recipe':>6} {'seed':>4} {'solved at':>16} {'wrong':>6} {'logit sd':>8} "
          f"{'wrong, a-weights averaged':>25} {'logit sd':>8} {'a-weight spread':>15} {'time':>6}")
    for recipe in recipes:
        for seed in [int(s) for s in args.seeds.split(",")]:
            r = run(recipe, seed, args.test)
            solved = f"{r['learned_at']:,}" if r["solved"] else f"no ({r['sequences']:,})"
            (wrong, sd), (wrong_avg, sd_avg) = r["trained"], r["averaged"]
            print(f"{recipe:>6} {seed:>4} {solved:>16} {wrong:>6} {sd:>8.2f} {wrong_avg:>25} "
                  f"{sd_avg:>8.2f} {r['spread']:>15.3f} {r['seconds']:>5.0f}s", flush=True)


if __name__ == "__main__":
    main()
