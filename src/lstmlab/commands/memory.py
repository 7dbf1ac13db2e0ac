"""`lstmlab memory` and `lstmlab gradients`: the memory suite's commands, thin over
``lstmlab.experiments.memory_suite`` (learner, guessing) / ``gradients`` and ``lstmlab.viz``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from lstmlab.commands.options import (
    add_config_options,
    config_defaults,
    config_from_args,
    non_negative_float,
    positive_float,
    positive_int,
)

QUICK_TASKS = ["intern", "adding", "temporal_order:6a"]
QUICK_LEARNERS = "rnn,lstm,guess"
QUICK_BUDGET = 100_000
QUICK_MINUTES = 1.0
DEFAULT_TASKS = ["intern", "adding", "temporal_order:6a", "latch", "two_sequence:3a"]
PLAIN_PROGRESS_SECONDS = 60.0
"""Written to a file or pipe (no progress bar), the command prints a trial's progress line when
it starts and then at most this often, so that the log of a long run shows it is moving."""


def _lags(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"lags are integers separated by commas, got {text!r}") from None


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `memory` and `gradients` to lstmlab's command line."""
    from lstmlab.experiments.memory_trial import Budget

    p = commands.add_parser(
        "memory", help="the memory suite: long-time-lag tasks x learners x seeds",
        description="Train each learner on each memory task for K seeds and report % solved, "
                    "sequences to success, wall time and test errors beside the 1997 paper's "
                    "figure. Ctrl-C stops cleanly and still writes what was measured.")
    p.add_argument("tasks", nargs="*", metavar="TASK",
                   help="task names, with a variant after a colon (temporal_order:6b, lag:2c) or "
                        "a variant alone (2a, 3a, 6b); default: "
                        + " ".join(DEFAULT_TASKS) + f" (--quick: {' '.join(QUICK_TASKS)})")
    p.add_argument("--learners", "--models", default=None, dest="learners",
                   help="comma-separated learners: rnn, rnn:relu, lstm, lstm:VARIANT (CIFG, "
                        "NFG+NP, ...), gru, guess, and lstm1997: the 1997 paper's own network "
                        "and training for each of its experiments (reber, lag, two_sequence, "
                        "adding, multiplication, temporal_order; it ignores --hidden, --batch, "
                        "--lr, --init, --head-init and --loss; lstm1997:full trains it by full "
                        "BPTT) (default rnn,lstm,gru,guess; --quick: "
                        f"{QUICK_LEARNERS})")
    p.add_argument("--lag", type=_lags, default=None,
                   help="the lag/length parameter, or several separated by commas (default: each "
                        "task's own; --quick: 100)")
    p.add_argument("--seeds", "--trials", type=positive_int, default=None, dest="seeds",
                   help="trials per task x learner, one seed each (default 3; --quick: 1)")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="trials in this many parallel processes, one torch thread each "
                        "(default 1); results are identical to --jobs 1")
    p.add_argument("--budget", type=positive_int, default=None,
                   help="training sequences per trial (default "
                        f"{config_defaults(Budget)['sequences']:,}; --quick: "
                        f"{QUICK_BUDGET:,}); guessing counts trials x its fixed set")
    p.add_argument("--minutes", type=positive_float, default=None,
                   help=f"wall-time limit per trial in minutes (default 30; --quick: "
                        f"{QUICK_MINUTES:g})")
    p.add_argument("--quick", action="store_true",
                   help="the demo: intern, adding and temporal_order 6a at lag 100, rnn vs lstm "
                        "vs guessing, one seed each, about 5 minutes on 2 cores")
    p.add_argument("--out", default=None, help="output folder (default runs/memory, --quick: "
                                               "runs/memory-quick)")
    _learner_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="first seed (trials use seed, seed+1, ...)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out: its finished trials are kept, not rerun")
    p.add_argument("--test-size", type=positive_int, default=None,
                   help="fresh test sequences per trial (default 2,560)")
    p.set_defaults(run=memory)

    g = commands.add_parser(
        "gradients", help="gradient flow: ||dLoss/dh_t|| against distance, RNN vs LSTM vs GRU",
        description="Measure the norm of dLoss/dh_t (and dLoss/dc_t for LSTMs) against the "
                    "distance from the scored step, at initialisation and after training, and "
                    "plot the learners on one log-scale chart.")
    g.add_argument("task", metavar="TASK", help="a memory task, e.g. adding, intern, 6a")
    g.add_argument("--lag", type=int, default=None, help="the task's lag/length parameter")
    g.add_argument("--cells", "--models", default="rnn,lstm,gru", dest="cells",
                   help="comma-separated cells (default rnn,lstm,gru)")
    g.add_argument("--train", type=int, default=20_000, dest="train_sequences",
                   help="training sequences before the 'trained' measurement (0: init only; "
                        "default 20,000)")
    g.add_argument("--batch-size", type=positive_int, default=256, dest="measure_batch",
                   help="sequences the gradient norms are averaged over (default 256)")
    _learner_arguments(g, curriculum=False)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", default="runs/gradients", help="output folder (default "
                                                          "runs/gradients)")
    g.set_defaults(run=gradients)


def _learner_arguments(p: argparse.ArgumentParser, curriculum: bool = True) -> None:
    """The gradient learner's options (``LearnerConfig``); ``curriculum``: offer --curriculum
    (a memory-suite trial's; `gradients` trains on the task's own lag)."""
    from lstmlab.experiments.memory_trial import SCHEDULES, LearnerConfig
    from lstmlab.models.losses import LOSSES

    helps = {
        "hidden": "hidden units",
        "batch": "sequences per training step",
        "lr": "Adam learning rate",
        "schedule": "learning rate: constant, cosine to 0 over each trial's sequence budget "
                    "(--budget), or exponential, halved every --half-life sequences",
        "half_life": "training sequences per halving of the rate, with --schedule exponential",
        "init": "gate-bias initialisation of LSTM/GRU: chrono (Tallec & Ollivier 2018) or the "
                "layer default (forget bias 1)",
        "head_init": "the head's bias, for tasks with logistic outputs: each output's log-odds "
                     "prior, or torch.nn's initialisation",
        "forget_bias": "the LSTM's forget-gate bias with --init default; none: the layer's own, "
                       "1",
        "input_bias": "added to the LSTM's input-gate bias after initialisation (a gate that "
                      "starts nearly shut: the 1997 paper's remedy for state drift)",
        "input_decay": "weight decay (AdamW's, decoupled) on the recurrent layer's input "
                       "weights alone: inputs that carry nothing keep equal, small weights "
                       "instead of drifting apart under Adam (lag 2b's random middle)",
        "direct": "the outputs also read each step's inputs (the 1997 paper's layout for its "
                  "experiment 2: the recurrent layer is left with what the input cannot tell)",
        "clip": "the gradient's global norm is clipped to this",
        "loss": "what is minimised: the task's own loss (the mean over scored steps), for tasks "
                "with logistic outputs binary cross-entropy, or sse, the 1997 paper's half "
                "squared error summed over each sequence's scored steps (success is judged by "
                "the task's rule either way)",
        "curriculum": "train on lags growing to the task's (10 levels, each reached when 95%% of "
                      "the sequences at the level below are right; half of each level's "
                      "batches at shorter lags; Zaremba & Sutskever 2014), for tasks judged on "
                      "held-out sequences such as copy; every sequence, of any lag, counts",
        "device": "cpu or cuda",
    }
    if not curriculum:
        del helps["curriculum"]
    add_config_options(p, LearnerConfig, helps, choices={
        "init": ("chrono", "default"), "head_init": ("prior", "default"), "loss": LOSSES,
        "schedule": SCHEDULES}, types={"lr": positive_float, "clip": positive_float,
                                              "forget_bias": float, "input_bias": float,
                                              "input_decay": non_negative_float,
                                              "half_life": positive_int})
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch threads per process (default 1: small models are fastest on one)")


def _learner_config(args: argparse.Namespace, **extra: Any):
    from lstmlab.experiments.memory_trial import LearnerConfig

    return config_from_args(LearnerConfig, args, **extra)


def memory(args: argparse.Namespace) -> None:
    """Plan, run, print and write the suite (results.json, results.md, plots)."""
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from lstmlab.experiments import memory_suite as suite
    from lstmlab.experiments.memory_report import (
        optimizer_words,
        optional_settings,
        render_table,
        write_report,
    )
    from lstmlab.experiments.memory_trial import Budget

    quick = args.quick
    tasks = args.tasks or (QUICK_TASKS if quick else DEFAULT_TASKS)
    if args.learners is None:
        args.learners = QUICK_LEARNERS if quick else "rnn,lstm,gru,guess"
    learners = [m for m in args.learners.split(",") if m.strip()]
    lags = args.lag or ([100] if quick else [None])
    seeds = args.seeds or (1 if quick else 3)
    budget = Budget(
        sequences=args.budget or (QUICK_BUDGET if quick else config_defaults(Budget)["sequences"]),
        seconds=60 * (args.minutes or (QUICK_MINUTES if quick else 30.0)))
    config = _learner_config(args)
    runs = suite.plan(tasks, learners, lags)
    from lstmlab.experiments.learner import check_fits

    for learner in {run.learner for run in runs}:
        check_fits(learner, config)  # raises where an option does not fit the network
    if config.curriculum:
        from lstmlab.experiments.learner import curriculum_for
        from lstmlab.experiments.memory_trial import GUESS

        for run in runs:
            if run.learner != GUESS:
                curriculum_for(run.name, run.options, run.lag)  # raises where it does not fit
    out = Path(args.out or ("runs/memory-quick" if quick else "runs/memory"))
    if quick and args.out is None and not args.resume:  # the demo starts afresh every time
        (out / "results.json").unlink(missing_ok=True)
    done = _prepare_out(out, args.resume)
    kept = suite.finished_trials(done)
    torch.set_num_threads(args.threads)

    console = Console()
    if not console.is_terminal:  # piped: keep the table's columns whole
        console.width = max(console.width, 160)
    console.print(f"[bold]lstmlab memory[/]: {len(runs)} task x lag x learner entries x {seeds} "
                  f"seed(s); budget per trial {budget.sequences:,} sequences or "
                  f"{budget.seconds / 60:g} min; H={config.hidden}, batch {config.batch}, "
                  f"{optimizer_words(vars(config))}, "
                  f"init {config.init}{optional_settings(vars(config))}, head {config.head_init}, "
                  f"{'direct inputs to outputs, ' if config.direct else ''}"
                  f"loss {config.loss}{', curriculum' if config.curriculum else ''}"
                  + ("" if not any(r.learner.startswith("lstm1997") for r in runs) else
                     " (lstm1997: the 1997 paper's settings for each task)")
                  + f"; {torch.get_num_threads()} thread(s) x {args.jobs} process(es)")
    total = len(runs) * seeds
    worst = -(-total // args.jobs) * budget.seconds  # whole rounds of --jobs trials
    console.print(f"{total} trial(s), each at most {budget.seconds / 60:g} min: at most "
                  f"{_duration(worst)} with {args.jobs} process(es)"
                  + (f"; {len(kept)} finished trial(s) of {out} are kept" if kept else ""))
    progress = Progress(TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                        TextColumn("{task.fields[status]}"), console=console, transient=True)
    state: dict[str, Any] = {"bar": None, "label": "", "printed": None}

    def on_start(run: suite.SuiteRun, k: int) -> None:
        lag = f" lag {run.lag}" if run.lag is not None else ""
        variant = f" {run.options['variant']}" if run.options.get("variant") else ""
        state["label"] = f"{run.name}{variant}{lag} / {run.learner} / seed {args.seed + k}"
        state["printed"] = None  # each trial's first point is printed
        progress.update(state["bar"], description=state["label"], status="")

    def listener(point: dict[str, Any]) -> None:
        parts = [f"{int(point['sequences']):,} seq"]
        if "guesses" in point:
            parts.append(f"{int(point['guesses']):,} guesses, best {point['accuracy']:.0%}")
        else:
            parts += [f"loss {point['loss']:.4f}", f"acc {point.get('accuracy', 0):.2f}"]
        if point["seconds"] > 0:
            parts.append(f"{point['sequences'] / point['seconds']:,.0f} seq/s")
        parts.append(f"{point['seconds']:.0f}s")
        progress.update(state["bar"], status="  ".join(parts))
        now = time.monotonic()
        if not console.is_terminal and (state["printed"] is None
                                        or now - state["printed"] >= PLAIN_PROGRESS_SECONDS):
            state["printed"] = now
            progress.console.print(f"  {state['label']}: {'  '.join(parts)}")

    started = time.time()
    finished: list[suite.TrialResult] = []

    def settings() -> dict[str, Any]:
        command = ("lstmlab memory " + " ".join(sys.argv[2:])
                   if sys.argv and Path(sys.argv[0]).name == "lstmlab" else None)
        return {**suite.suite_settings(runs, seeds, config, budget, args.seed, args.jobs),
                "command": command,
                "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))}

    def on_trial(result: suite.TrialResult) -> None:
        finished.append(result)
        partial = suite.SuiteResult(finished, suite.summarise(finished), True,
                                    time.time() - started, settings())
        write_report(partial, out, plots=False)  # results.json/md hold every finished trial
        progress.advance(state["bar"])
        verdict = "[green]solved[/]" if result.solved else f"[red]{result.stopped_by}[/]"
        at = f" at {result.sequences_to_success:,} sequences" if result.solved else ""
        if result.solved and result.sequences_to_criterion != result.sequences_to_success:
            at += f" (criterion held at {result.sequences_to_criterion:,})"
        guesses = f" ({result.guesses:,} guesses)" if result.guesses is not None else ""
        tests = (f", {result.test_errors:,}/{result.test_size:,} test errors"
                 if result.test_errors is not None else "")
        progress.console.print(f"  {result.task} / {result.learner} / seed {result.seed}: "
                               f"{verdict}{at}{guesses}{tests} ({result.seconds:.1f}s)")

    previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops as Ctrl-C does
    try:
        with progress:
            state["bar"] = progress.add_task("starting", total=total, status="")
            result = suite.run_suite(runs, seeds, config, budget, args.seed, args.test_size,
                                     on_start, on_trial, listener, jobs=args.jobs, done=done)
    finally:
        signal.signal(signal.SIGTERM, previous)
    result.settings.update(settings())
    console.print(render_table(result.summaries, title="Memory suite"))
    if result.interrupted:
        console.print("[yellow]interrupted: the results above are what was measured so far[/]")
    paths = write_report(result, out)
    console.print("wrote " + ", ".join(str(p) for p in paths))
    if result.interrupted:
        raise KeyboardInterrupt  # exit 130; --resume continues


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _prepare_out(out: Path, resume: bool) -> list:
    """Check the output folder before any training: a folder we can write into, not holding
    another run's results unless resuming. Returns the finished trials to keep (--resume)."""
    from lstmlab.experiments.memory_report import read_results
    from lstmlab.io import writable_folder

    writable_folder(out)
    results = out / "results.json"
    if not results.exists():
        if resume:
            raise ValueError(f"nothing to resume in {out}: it has no results.json")
        return []
    if not resume:
        raise ValueError(f"{out} already holds results; pass --resume to continue that run "
                         "(finished trials are kept), or choose another --out")
    return read_results(results)[0]


def gradients(args: argparse.Namespace) -> None:
    """Measure and plot gradient flow for each model on one task."""
    import torch
    from rich.console import Console

    from lstmlab.experiments.gradients import gradient_flow_experiment
    from lstmlab.experiments.memory_trial import check_learner
    from lstmlab.tasks.memory import parse_task
    from lstmlab.viz.plots import gradient_flow_plot

    name, options = parse_task(args.task)
    cells = [check_learner(m) for m in args.cells.split(",") if m.strip()]
    if not cells or any(c == "guess" or c.startswith("lstm1997") for c in cells):
        raise ValueError("--cells takes the cells of gradient learners (rnn, lstm, "
                         "lstm:VARIANT, gru); guess and lstm1997 are learners of the memory "
                         "suite only")
    if args.train_sequences < 0:
        raise ValueError(f"--train must be >= 0 sequences, got {args.train_sequences}")
    torch.set_num_threads(args.threads)
    console = Console()
    with console.status(f"measuring gradient flow on {args.task} ..."):
        report = gradient_flow_experiment(name, options, args.lag, cells,
                                          _learner_config(args), args.train_sequences,
                                          args.measure_batch, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"gradients-{args.task.replace(':', '-')}-{report['lag']}"
    png = gradient_flow_plot(report["flows"], out / f"{stem}.png", title=report["task"])
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    from rich.table import Table

    table = Table(title=f"gradient flow, {report['task']}: mean ||dLoss/dh_t||")
    distances = report["checkpoints"]
    table.add_column("model / stage")
    for d in distances:
        table.add_column(f"d={d}", justify="right")
    for f in report["flows"]:
        by_distance = dict(zip(f["distance"], f["h"], strict=True))
        table.add_row(f"{f['cell']} ({f['stage']})",
                      *[f"{by_distance[d]:.1e}" if d in by_distance else "-" for d in distances])
    console.print(table)
    for f in report["flows"]:
        if f["stage"] == "trained":
            console.print(f"{f['cell']}: after {f['trained_sequences']:,} training sequences, "
                          f"training accuracy {f['accuracy']:.1%}")
    console.print(f"wrote {png} and {out / (stem + '.json')}")
