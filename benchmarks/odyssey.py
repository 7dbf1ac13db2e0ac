"""The Odyssey study, reduced to one machine: Greff et al. (2015)'s nine LSTM variants, each tuned
by random search over the paper's space on JSB Chorales, analysed as in the paper (Welch's
t-tests on the best trials, fANOVA), with how many of the paper's findings this reproduces.

Reference (Greff et al. 2015, JSB Chorales; 200 trials per variant): no variant significantly
better than vanilla; NFG and NOAF significantly worse; CIFG and NP not significantly worse; the
learning rate the most important hyperparameter, then the hidden size; little interaction.

    .venv/bin/python benchmarks/odyssey.py --trials 10 --trial-minutes 2.5 --workers 2
        # 9 variants x 10 trials: about 2 hours on 2 cores; report in benchmarks/results/odyssey/
    .venv/bin/python benchmarks/odyssey.py --variants V,NP --trials 2 --trial-minutes 0.2
        # a check of the script in minutes
    .venv/bin/python benchmarks/odyssey.py --speedup
        # trials per hour with 1 worker and with 2 on the same 20 fixed-work trials (goal >= 1.8x)

The study lives in --out (SQLite; rerun the same command to continue an interrupted one);
``lstmlab study report --out DIR --study NAME`` redraws the report at any time.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from lm_common import RESULTS, ROOT, data_file
from shapes_common import write_result

GREFF_FINDINGS = [
    "No variant is significantly better than vanilla",
    "NFG (no forget gate) is significantly worse",
    "NOAF (no output activation) is significantly worse",
    "CIFG (coupled gates) is not significantly worse",
    "NP (no peepholes) is not significantly worse",
    "The learning rate is the most important hyperparameter",
    "The hidden size is the second most important",
    "Hyperparameters interact little",
]
SPEEDUP_GOAL = 1.8


def study(args: argparse.Namespace, name: str, out: Path, workers: int, variants: str,
          trials: int, minutes: float, steps: int | None, sampler: str):
    from lstmlab.experiments.study import StudyConfig, run_study

    config = StudyConfig(name=name, task="jsb", data=str(args.data), variants=variants,
                         trials=trials, trial_minutes=minutes, trial_steps=steps,
                         workers=workers, out=str(out), sampler=sampler,
                         patience=args.patience)
    return config, run_study(config)


def full(args: argparse.Namespace) -> None:
    from lstmlab.experiments.study_report import build_report

    out = Path(args.out)
    config, summary = study(args, args.study, out, args.workers, args.variants, args.trials,
                            args.trial_minutes, None, "random")
    print(summary.table())
    report_dir = RESULTS / "odyssey"
    report = build_report(config.storage_url(), config.name, report_dir)
    print("\nGreff et al. (2015), JSB Chorales, 200 trials per variant:")
    for line in GREFF_FINDINGS:
        print(f"  - {line}")
    print("this study:")
    for task in report.tasks:
        for f in task.findings:
            print(f"  [{f.verdict:>12}] {f.claim}: {f.here}")
    print(f"\nGreff's findings reproduced: {report.agree} of {report.total} measured "
          f"({summary.seconds / 60:.1f} min, {args.workers} workers); report in "
          f"{report_dir.relative_to(ROOT)}/report.md")
    write_result("odyssey", {
        "figure": {"findings_agree": report.agree, "findings_measured": report.total,
                   "minutes": summary.seconds / 60},
        "settings": {"task": "jsb", "variants": config.variant_names, "trials": args.trials,
                     "trial_minutes": args.trial_minutes, "workers": args.workers,
                     "patience": args.patience},
        "references": {"Greff et al. 2015": GREFF_FINDINGS},
        "trials": summary.to_dict(), "report": report.to_dict()})


def finished_trials(config) -> list:
    """The study's finished trials, every variant, from the storage."""
    import optuna

    from lstmlab.experiments.study import open_storage, study_name

    storage = open_storage(config.storage_url())
    return [t for v in config.variant_names
            for t in optuna.load_study(study_name=study_name(config.name, "jsb", v),
                                       storage=storage).get_trials()
            if t.datetime_complete is not None]


def speedup(args: argparse.Namespace) -> None:
    """The same trials (QMC points from one seed, a fixed number of updates each) with one
    worker and then two. Two figures: trials per hour from the first trial's start to the last
    one's end (what a user waits for; the last trial may run alone), and the mean seconds a
    trial takes with two workers against one (the cost of sharing the machine, without that
    tail)."""
    base = Path(args.out) / "speedup"
    shutil.rmtree(base, ignore_errors=True)
    rates, seconds = {}, {}
    for workers in (1, 2):
        start = time.perf_counter()
        config, _ = study(args, f"speedup-{workers}", base / f"w{workers}", workers,
                          args.speedup_variants, args.speedup_trials, 60.0,
                          args.speedup_steps, "qmc")
        trials = finished_trials(config)
        begin = min(t.datetime_start for t in trials)
        hours = (max(t.datetime_complete for t in trials) - begin).total_seconds() / 3600
        rates[workers] = len(trials) / hours
        seconds[workers] = sum(t.user_attrs["seconds"] for t in trials) / len(trials)
        print(f"{workers} worker(s): {len(trials)} trials in {hours * 60:.2f} min = "
              f"{rates[workers]:.0f} trials/hour, {seconds[workers]:.1f} s per trial "
              f"({(time.perf_counter() - start) / 60:.2f} min with start-up)", flush=True)
    ratio = rates[2] / rates[1]
    busy = 2 * seconds[1] / seconds[2]
    print(f"\ntwo workers / one: {ratio:.2f}x trials per hour, first start to last end "
          f"(goal >= {SPEEDUP_GOAL}x); {busy:.2f}x from the time per trial (2 x "
          f"{seconds[1]:.1f} s / {seconds[2]:.1f} s)")
    write_result("odyssey_speedup", {
        "figure": {"speedup": ratio, "trials_per_hour": rates,
                   "speedup_from_trial_seconds": busy, "seconds_per_trial": seconds},
        "goal": f">= {SPEEDUP_GOAL}x trials per hour with 2 workers vs 1",
        "settings": {"variants": args.speedup_variants, "trials": args.speedup_trials,
                     "steps_per_trial": args.speedup_steps}})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=10, help="trials per variant (default 10)")
    p.add_argument("--trial-minutes", type=float, default=2.5,
                   help="budget of one trial (default 2.5: 9 x 10 trials in ~2 h on 2 cores)")
    p.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    p.add_argument("--variants", default=None, help="comma-separated (default: all nine)")
    p.add_argument("--patience", type=int, default=5,
                   help="validations (epochs) without a new best before a trial stops")
    p.add_argument("--study", default="odyssey-jsb", help="study name (default odyssey-jsb)")
    p.add_argument("--out", default=str(ROOT / "runs" / "odyssey"),
                   help="study folder (SQLite storage; default runs/odyssey)")
    p.add_argument("--speedup", action="store_true",
                   help="measure trials/hour with 1 worker vs 2 instead")
    p.add_argument("--speedup-variants", default="V,NP")
    p.add_argument("--speedup-trials", type=int, default=10, help="per variant (default 10)")
    p.add_argument("--speedup-steps", type=int, default=6000,
                   help="updates per speedup trial (default 6,000)")
    args = p.parse_args()
    args.data = data_file("jsb_chorales", "jsb_chorales.json")
    speedup(args) if args.speedup else full(args)


if __name__ == "__main__":
    main()
