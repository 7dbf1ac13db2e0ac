"""The memory suite: every learner on every long-time-lag task for several seeds; % of trials
solved, sequences to success, wall time and test errors beside the 1997 paper's figure.

    >>> runs = plan(["adding", "6a"], ["rnn", "lstm", "guess"], [100])
    >>> result = run_suite(runs, seeds=3, jobs=2)       # trials in 2 processes, same results
    >>> result.summaries[0].percent_solved

Trials are independent (each draws from its own seed), so ``jobs`` > 1 runs them in parallel
processes, one torch thread each, with results identical to the serial run, in the same order.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import torch

from lstmlab.experiments.guessing import guess_trial
from lstmlab.experiments.learner import train_trial
from lstmlab.experiments.memory_trial import (
    GUESS,
    LSTM1997_LEARNER,
    Budget,
    LearnerConfig,
    Listener,
    TrialResult,
    check_learner,
)
from lstmlab.models.lstm1997 import setup_of
from lstmlab.tasks.memory import MemoryTask, make_task, parse_task


@dataclass
class Summary:
    """Per task x lag x learner, over its trials."""

    task: str
    name: str
    options: dict[str, Any]
    lag: int
    learner: str
    seeds: int
    solved: int
    median_sequences: float | None  # of the solved trials
    min_sequences: int | None
    max_sequences: int | None
    median_guesses: float | None  # guessing: median guesses of the solved trials
    seconds: float  # total wall time of the trials
    median_test_errors: float | None
    test_size: int
    reference_sequences: int | None
    reference: str
    parameters: int | None = None  # the first trial's network

    @property
    def percent_solved(self) -> float:
        return 100.0 * self.solved / self.seeds if self.seeds else 0.0


def summarise(results: list[TrialResult], tasks: dict[tuple, MemoryTask] | None = None
              ) -> list[Summary]:
    """Group trials by (task, lag, learner), in order of first appearance."""
    groups: dict[tuple, list[TrialResult]] = {}
    for r in results:
        groups.setdefault((r.task, r.learner), []).append(r)
    out = []
    for (_, learner), rs in groups.items():
        first = rs[0]
        won = [r.sequences_to_success for r in rs
               if r.solved and r.sequences_to_success is not None]
        guesses = [r.guesses for r in rs if r.solved and r.guesses is not None]
        tests = [r.test_errors for r in rs if r.test_errors is not None]
        task = make_task(first.name, first.lag, **first.options)
        out.append(Summary(
            task=first.task, name=first.name, options=first.options, lag=first.lag, learner=learner,
            seeds=len(rs), solved=sum(r.solved for r in rs),
            median_sequences=statistics.median(won) if won else None,
            min_sequences=min(won) if won else None, max_sequences=max(won) if won else None,
            median_guesses=statistics.median(guesses) if guesses else None,
            seconds=sum(r.seconds for r in rs),
            median_test_errors=statistics.median(tests) if tests else None,
            test_size=max((r.test_size for r in rs), default=0),
            reference_sequences=task.reference_sequences, reference=task.reference,
            parameters=first.parameters))
    return out


@dataclass
class SuiteRun:
    """One suite entry: a task configuration and a learner."""

    name: str
    options: dict[str, Any]
    lag: int | None
    learner: str


MAX_LAG = 100_000
"""The longest lag the suite accepts: a batch of 32 sequences of 100,000 steps is already
hundreds of MB of one-hot inputs for most tasks."""


def plan(tasks: list[str], learners: list[str], lags: list[int | None]) -> list[SuiteRun]:
    """Every task x lag x learner, checked up front (bad names and lags raise ValueError)."""
    if not tasks:
        raise ValueError("name at least one task")
    if not learners:
        raise ValueError("name at least one learner (e.g. --learners rnn,lstm,guess)")
    for lag in lags:
        if lag is not None and not 1 <= lag <= MAX_LAG:
            raise ValueError(f"--lag {lag:,} is outside 1..{MAX_LAG:,}: the suite trains on "
                             "whole sequences of that length")
    runs = []
    learners = [check_learner(m) for m in learners]
    for text in tasks:
        name, options = parse_task(text)
        for lag in lags:
            task = make_task(name, lag, **options)  # raises on a lag too short, a bad variant
            if any(m.partition(":")[0] == LSTM1997_LEARNER for m in learners):
                setup_of(task)  # raises for a task the 1997 paper has no set-up for
            runs.extend(SuiteRun(name, options, task.lag, m) for m in learners)
    return runs


@dataclass
class SuiteResult:
    """What a suite run measured (everything, also when interrupted)."""

    results: list[TrialResult]
    summaries: list[Summary]
    interrupted: bool
    seconds: float
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "interrupted": self.interrupted,
                "seconds": round(self.seconds, 2),
                "summary": [asdict(s) | {"percent_solved": s.percent_solved}
                            for s in self.summaries],
                "trials": [asdict(r) for r in self.results]}



def run_trial(run: SuiteRun, seed: int, config: LearnerConfig, budget: Budget,
              test_size: int | None = None, listener: Listener | None = None) -> TrialResult:
    """One entry of the suite for one seed, by the learner it names."""
    trial = guess_trial if run.learner == GUESS else train_trial
    return trial(run.name, run.options, run.lag, *([] if run.learner == GUESS else [run.learner]),
                 seed, config, budget, test_size, listener)


def run_key(run: SuiteRun, seed: int) -> tuple:
    """What identifies a trial: the entry (task, options, lag, learner) and its seed."""
    return (run.name, tuple(sorted(run.options.items())), run.lag, run.learner, seed)


def trial_key(result: TrialResult) -> tuple:
    """``run_key`` of a finished trial."""
    return (result.name, tuple(sorted(result.options.items())), result.lag, result.learner,
            result.seed)


def _expected_length(run: SuiteRun) -> int:
    """A rank for scheduling, longest first: the Elman RNN, which the suite expects to fail and
    so to run to its budget, then the 1997 set-up (one sequence per update), the GRU and the
    LSTMs, then weight guessing (cheap guesses)."""
    kind = run.learner.split(":")[0]
    return {"rnn": 0, LSTM1997_LEARNER: 1, "gru": 2, "lstm": 3}.get(kind, 4)


def _run_in_worker(run: SuiteRun, seed: int, config: LearnerConfig, budget: Budget,
                   test_size: int | None) -> TrialResult:
    torch.set_num_threads(1)
    try:
        return run_trial(run, seed, config, budget, test_size)
    except KeyboardInterrupt:  # the parent stops the suite; say so instead of a traceback
        raise SystemExit(130) from None


def finished_trials(trials: Sequence[TrialResult]) -> list[TrialResult]:
    """The trials of an earlier run that a resumed one keeps: all but the interrupted ones,
    which it runs again."""
    return [r for r in trials if r.stopped_by != "interrupt"]


def run_suite(runs: list[SuiteRun], seeds: int = 3, config: LearnerConfig | None = None,
              budget: Budget | None = None, seed: int = 0, test_size: int | None = None,
              on_start: Callable[[SuiteRun, int], None] | None = None,
              on_trial: Callable[[TrialResult], None] | None = None,
              listener: Listener | None = None, jobs: int = 1,
              done: list[TrialResult] = ()) -> SuiteResult:
    """Run every entry for ``seeds`` seeds (seed, seed + 1, ...), in ``jobs`` processes (1: in
    this one; results come back in the serial order either way). Trials found in ``done``
    (finished trials of an interrupted run: same entry and seed) are not run again; their
    results take their places. Ctrl-C (or SIGTERM, turned into KeyboardInterrupt by the
    caller) ends the suite cleanly: the trials finished so far are returned."""
    for name, value in (("seeds", seeds), ("jobs", jobs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    config = config or LearnerConfig()
    budget = budget or Budget()
    start = time.perf_counter()
    results: list[TrialResult] = []
    interrupted = False
    finished = {trial_key(r): r for r in finished_trials(done)}
    work = [(run, seed + k) for run in runs for k in range(seeds)]
    try:
        if jobs == 1:
            for run, trial_seed in work:
                if on_start is not None:
                    on_start(run, trial_seed - seed)
                result = finished.get(run_key(run, trial_seed)) or run_trial(
                    run, trial_seed, config, budget, test_size, listener)
                results.append(result)
                if on_trial is not None:
                    on_trial(result)
                if result.stopped_by == "interrupt":
                    raise KeyboardInterrupt
        else:
            pool = ProcessPoolExecutor(max_workers=jobs)
            try:
                futures: list = [None] * len(work)
                # longest first: the trials likely to run to their budget start first, so the
                # processes finish together (results still come back in the serial order)
                for k in sorted(range(len(work)), key=lambda k: _expected_length(work[k][0])):
                    run, trial_seed = work[k]
                    if run_key(run, trial_seed) not in finished:
                        futures[k] = pool.submit(_run_in_worker, run, trial_seed, config,
                                                 budget, test_size)
                for (run, trial_seed), future in zip(work, futures, strict=True):
                    if on_start is not None:
                        on_start(run, trial_seed - seed)
                    result = (finished[run_key(run, trial_seed)] if future is None
                              else future.result())
                    results.append(result)
                    if on_trial is not None:
                        on_trial(result)
            except BaseException:
                # stop now: no waiting for the running trials (they are lost, the rest kept)
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown()
    except KeyboardInterrupt:
        interrupted = True
    return SuiteResult(results, summarise(results), interrupted, time.perf_counter() - start,
                       suite_settings(runs, seeds, config, budget, seed, jobs))


def suite_settings(runs: list[SuiteRun], seeds: int, config: LearnerConfig, budget: Budget,
                   seed: int = 0, jobs: int = 1) -> dict[str, Any]:
    """What a suite run was asked to do (results.json's "settings")."""
    return {"seeds": seeds, "seed": seed, "jobs": jobs, "learner": asdict(config),
            "budget": asdict(budget), "threads": torch.get_num_threads(),
            "runs": [asdict(r) for r in runs]}


def format_count(value: float | None) -> str:
    """12345.0 -> "12,345"; None -> "-"."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:,.0f}"

