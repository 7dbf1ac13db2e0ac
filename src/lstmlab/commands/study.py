"""`lstmlab study ...`: the LSTM variant study of Greff et al. (2015) (run, report, status).

    lstmlab study run --task jsb --data jsb_chorales.json --trials 10 --trial-minutes 2.5 \\
        --workers 2                                       # one machine, SQLite in ./study
    lstmlab study run --task jsb --data ... --storage postgresql://u:p@host/db --study big
                                                          # the same line on every machine
    lstmlab study report --study big --storage postgresql://u:p@host/db

Each subcommand calls one function of ``lstmlab.experiments.study`` / ``study_report``; the run
options and their defaults come from ``StudyConfig``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lstmlab.commands.options import (
    add_config_options,
    clear_file_errors,
    config_from_args,
    positive_float,
    positive_int,
)


@clear_file_errors
def run(args: argparse.Namespace) -> None:
    from lstmlab.experiments.study import StudyConfig, run_study, shown_url

    config = config_from_args(StudyConfig, args)
    print(f"study {config.name!r}: task {config.task}, variants "
          f"{', '.join(config.variant_names)}, {config.trials} trials each, "
          f"{config.trial_minutes:g} min per trial, {config.workers} worker(s); storage "
          f"{shown_url(config.storage_url())}", flush=True)
    summary = run_study(config)
    print(summary.table())
    if not summary.finished:
        print("some trials are still queued or running elsewhere; rerun to help finish them")
    print(f"report: lstmlab study report --study {config.name}"
          + (f" --storage {shown_url(config.storage_url())}" if args.storage
             else f" --out {config.out}"))
    if args.json:
        Path(args.json).write_text(json.dumps(summary.to_dict(), indent=1))


@clear_file_errors
def status(args: argparse.Namespace) -> None:
    from lstmlab.experiments.study import summaries

    for summary in summaries(_storage(args), args.name):
        print(summary.table())


def _storage(args: argparse.Namespace) -> str:
    from lstmlab.experiments.study import default_storage

    if args.storage:
        return args.storage
    if not (Path(args.out) / "study.db").exists():
        raise ValueError(f"--out {args.out}: no study.db in it (give the study's folder, or "
                         "--storage URL)")
    return default_storage(args.out)


@clear_file_errors
def report(args: argparse.Namespace) -> None:
    from lstmlab.experiments.study_report import build_report

    out = args.report or str(Path(args.out) / "report")
    result = build_report(_storage(args), args.name, out, best_fraction=args.best_fraction,
                          min_best=args.min_best, alpha=args.alpha)
    for task in result.tasks:
        print(f"{task.task}: " + ", ".join(f"{v} {n}" for v, n in task.trials.items())
              + " completed trials")
        for f in task.findings:
            print(f"  [{f.verdict}] {f.claim}: {f.here}")
    print(f"Greff et al.'s findings reproduced: {result.agree} of {result.total} measured")
    print(f"report: {out}/report.md and {out}/report.html")


def _fraction(text: str) -> float:
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``lstmlab study run|report|status``."""
    from lstmlab.experiments.study import PRUNERS, SAMPLERS, VARIANT_NAMES, StudyConfig

    study = commands.add_parser(
        "study", help="Greff et al.'s LSTM variant study: random search per variant, shared "
                      "by workers and machines (Optuna), and its report",
        description="LSTM: A Search Space Odyssey, rerun: for each LSTM variant a random "
                    "search over learning rate, hidden size, momentum and input noise on one "
                    "task; the report compares the variants (Welch's t-test) and the "
                    "hyperparameters (fANOVA) beside the paper's findings.")
    sub = study.add_subparsers(dest="study_command", required=True)

    def common(p: argparse.ArgumentParser, run_options: bool) -> None:
        helps = {"name": "the study's name in the storage",
                 "storage": "Optuna storage URL, e.g. postgresql://user:pw@host/db; none: "
                            "SQLite OUT/study.db",
                 "out": "the study folder (default storage and report)"}
        if run_options:
            helps.update({
                "task": "jsb, tinyshakespeare, ewt, or a memory game (adding, 6a, ...)",
                "variants": f"comma-separated, from {','.join(VARIANT_NAMES)}; none: all "
                            "nine",
                "trials": "trials per variant",
                "trial_minutes": "wall-clock budget of one trial",
                "patience": "validations without a new best before a trial stops",
                "workers": "local worker processes (one torch thread each)",
                "sampler": "Optuna sampler (random: Greff's random search)",
                "pruner": "Optuna pruner, fed each validation",
                "data": "jsb: the JSB Chorales JSON; ewt: the UD English EWT folder",
                "lag": "a memory game's length",
                "batch": "sequences per update; none: 1 for jsb (as Greff), else the "
                         "task's own",
                "seed": "initialisation seed of every trial (and the qmc sampler's)",
                "trial_steps": "a budget of updates per trial besides the minutes",
                "heartbeat": "seconds between a running trial's heartbeats",
                "grace": "seconds without a heartbeat before a trial counts as interrupted"})
        add_config_options(p, StudyConfig, helps,
                           flags={"name": "--study"},
                           types={"trial_minutes": positive_float, "lag": positive_int,
                                  "batch": positive_int, "seed": int,
                                  "trial_steps": positive_int},
                           choices={"sampler": SAMPLERS, "pruner": PRUNERS})

    p = sub.add_parser("run", help="run (or continue) a study: N trials per variant",
                       description="Create the study if it is new (or check that its stored "
                                   "search space and settings are these), then run queued "
                                   "trials until none is left. Every machine sharing a "
                                   "--storage runs the same line; a rerun continues an "
                                   "interrupted study.")
    common(p, True)
    p.add_argument("--json", help="also write the summary as JSON here")
    p.set_defaults(run=run)

    p = sub.add_parser("status", help="trials per state and variant")
    common(p, False)
    p.set_defaults(run=status)

    p = sub.add_parser("report", help="Markdown + HTML report with plots from the storage",
                       description="Per task: box plots of the test figure over each "
                                   "variant's best trials with Welch's t-tests against "
                                   "vanilla, fANOVA importance of the hyperparameters, the "
                                   "learning-rate and hidden-size marginals and their "
                                   "interaction, and Greff et al.'s findings beside this "
                                   "study's.")
    common(p, False)
    p.add_argument("--report", help="folder for the report (default OUT/report)")
    p.add_argument("--best-fraction", type=_fraction, default=0.1,
                   help="fraction of each variant's trials (best by validation) in the box "
                        "plots and t-tests (default 0.1, as Greff)")
    p.add_argument("--min-best", type=positive_int, default=3,
                   help="at least this many trials per variant there (default 3)")
    p.add_argument("--alpha", type=_fraction, default=0.05,
                   help="significance level of the t-tests (default 0.05)")
    p.set_defaults(run=report)
