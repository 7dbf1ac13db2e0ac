"""Random weight guessing as a learner (docs/tasks.md, E; Schmidhuber, Hochreiter, Bengio 2001).

One trial = one guess: draw every weight of a small network (recurrent layer and head, biases
included) uniformly from [-r, r], run it on the task's fixed training set (``task.fixed_set``) and
accept it when it gets every one of those sequences right (the task's own per-sequence rule,
``task.evaluate``). An accepted guess must also get >= 99% of the task's held-out stopping set
right, so a guess that only fits the fixed set (the set is small) does not count as solving the
task; the search then goes on. Count the guesses; "equivalent sequences" = guesses x the fixed set's
size (each guess is tried on the whole set, as a gradient learner's sequences are counted).

    >>> result = guess_trial("latch", {}, 100, seed=0)
    >>> result.guesses, result.solved
"""

from __future__ import annotations

import time
from typing import Any

import torch

from lstmlab.experiments.memory_trial import (
    GUESS,
    Budget,
    LearnerConfig,
    Listener,
    TrialResult,
    evaluate_on,
    test_errors,
)
from lstmlab.init import uniform_
from lstmlab.models.memory import guess_network
from lstmlab.tasks.memory import VALIDATION_SEED, make_task

ACCEPT_ACCURACY = 0.99
"""An accepted guess must also classify this share of the held-out stopping set correctly."""


@torch.no_grad()
def guess_trial(name: str, options: dict[str, Any], lag: int | None, seed: int = 0,
                config: LearnerConfig | None = None, budget: Budget | None = None,
                test_size: int | None = None, listener: Listener | None = None) -> TrialResult:
    """Guess weights until a guess solves the fixed training set (and the held-out check) or the
    budget (guesses, equivalent sequences, seconds) is spent. Ctrl-C ends it with
    ``stopped_by="interrupt"``.

    Returns: a ``TrialResult`` with ``guesses`` made; test errors of the accepted guess
    (or of the last one) on ``test_size`` (2,560) fresh sequences.
    """
    config = config or LearnerConfig()
    budget = budget or Budget()
    task = make_task(name, lag, **options)
    fixed = task.fixed_set(config.guess_set)
    net = guess_network(task, config.guess_cell, config.guess_hidden, config.kernel)
    generator = torch.Generator().manual_seed(seed)
    check = None
    start = time.perf_counter()
    guesses, solved, stopped_by = 0, False, None
    recent = 0  # guesses since the last progress report
    best = 0.0
    try:
        while stopped_by is None:
            uniform_(net, config.guess_range, generator)
            guesses += 1
            recent += 1
            correct, _ = task.evaluate(net(fixed.inputs), fixed)
            best = max(best, float(correct.float().mean()))
            if bool(correct.all()):
                if check is None:
                    check = list(task.test_batches(VALIDATION_SEED, None, batch_size=512))
                held, _ = evaluate_on(net, task, check)
                if float(held.float().mean()) >= ACCEPT_ACCURACY:
                    solved, stopped_by = True, "criterion"
                    break
            elapsed = time.perf_counter() - start
            if budget.guesses is not None and guesses >= budget.guesses:
                stopped_by = "max_guesses"
            elif budget.sequences is not None and guesses * config.guess_set >= budget.sequences:
                stopped_by = "max_sequences"
            elif budget.seconds is not None and elapsed >= budget.seconds:
                stopped_by = "max_seconds"
            if listener is not None and recent >= 50:
                listener({"sequences": guesses * config.guess_set, "guesses": guesses,
                          "accuracy": best, "seconds": elapsed})
                recent = 0
    except KeyboardInterrupt:
        stopped_by = "interrupt"
    seconds = time.perf_counter() - start
    wrong, size = (None, 0) if stopped_by == "interrupt" else test_errors(net, task, test_size)
    sequences = guesses * config.guess_set
    return TrialResult(
        task=task.title, name=name, options=dict(options), lag=task.lag, learner=GUESS, seed=seed,
        solved=solved, sequences=sequences, sequences_to_success=sequences if solved else None,
        sequences_to_criterion=sequences if solved else None,
        seconds=round(seconds, 3), stopped_by=stopped_by, test_errors=wrong, test_size=size,
        guesses=guesses, reference_sequences=task.reference_sequences,
        parameters=sum(p.numel() for p in net.parameters()),
        note=f"{config.guess_cell} H={config.guess_hidden}, weights in "
             f"[-{config.guess_range:g}, {config.guess_range:g}], fixed set of "
             f"{config.guess_set}; best guess {best:.1%} of it right")
