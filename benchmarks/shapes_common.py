"""Shared by the sequence-shape benchmarks (sst2.py, ud_ewt.py, jsb.py): flags, seeds, the
summary beside the references, and the result file.

Each benchmark trains one model per seed under a time budget with the library's own training
function, prints each seed's figure and their mean and spread beside the published references,
and writes ``benchmarks/results/<name>.json`` (figures, settings, machine, command). ``--jobs N``
trains N seeds at once, each in its own process with ``--threads`` torch threads.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from lm_common import ROOT, machine
from rich.console import Console

from lstmlab.commands.options import config_defaults

RESULTS = ROOT / "benchmarks" / "results"


def parser(description: str, defaults: dict[str, Any]) -> argparse.ArgumentParser:
    """--minutes, --seeds, --threads, --no-progress, and one flag per model option (with
    this benchmark's default)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--minutes", type=float, default=defaults.pop("minutes"),
                   help="training-time budget per seed")
    p.add_argument("--epochs", type=float, default=defaults.pop("epochs", None),
                   help="epoch budget per seed (the first budget reached stops)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("--jobs", type=int, default=1, help="seeds trained at once (default 1)")
    p.add_argument("--eval-every", type=int, default=defaults.pop("eval_every", None),
                   help="steps between validations (default one epoch)")
    p.add_argument("--out", default=None, help="run directories under here (default "
                                               "runs/bench-NAME)")
    p.add_argument("--no-progress", action="store_true")
    for name, value in defaults.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            p.add_argument(flag, type=type(value) if value is not None else float,
                           default=value)
    p.set_defaults(option_names=list(defaults))
    return p


def config_options(config: type, **settings: Any) -> dict[str, Any]:
    """A run configuration's fields and defaults as benchmark options (``settings`` replace
    defaults), without the seed and the held-out fraction, which the benchmark sets."""
    options = {name: value for name, value in config_defaults(config).items()
               if name not in ("seed", "valid_fraction")}
    unknown = set(settings) - set(options)
    if unknown:
        raise ValueError(f"{config.__name__} has no fields {sorted(unknown)}")
    return {**options, **settings}


def seeds(args: argparse.Namespace) -> list[int]:
    return [int(s) for s in args.seeds.split(",") if s.strip()]


def run_seeds(name: str, args: argparse.Namespace, trainer: Callable[..., Any],
              **data: Any) -> list[Any]:
    """Train one model per seed: ``trainer(**data, out=..., minutes=..., ..., seed=seed)`` with
    the budgets and model options of ``args``; results in seed order. ``trainer`` is a library
    function (``train_tagger``, ...), so that ``--jobs`` can run it in spawned processes."""
    options = {k: getattr(args, k) for k in args.option_names}
    base = Path(args.out) if args.out else ROOT / "runs" / f"bench-{name}"
    common = {**data, "minutes": args.minutes, "epochs": args.epochs,
              "eval_every": args.eval_every,
              "progress": not args.no_progress and args.jobs == 1, **options}
    runs = [{**common, "out": base / f"seed{seed}", "seed": seed} for seed in seeds(args)]
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}")
    if args.jobs == 1:
        _threads(args.threads)
        return [_one(trainer, run) for run in runs]
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_threads, initargs=(args.threads,)) as pool:
        return list(pool.map(_one, [trainer] * len(runs), runs))


def _threads(count: int) -> None:
    torch.set_num_threads(count)


def _one(trainer: Callable[..., Any], run: dict[str, Any]) -> Any:
    print(f"--- seed {run['seed']} ---", flush=True)
    result = trainer(**run, console=Console(stderr=True))
    print(f"seed {run['seed']}: {result.summary()}", flush=True)
    return result


def spread(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one value), min and max."""
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "runs": len(values)}


def report(title: str, unit: str, values: list[float], references: dict[str, float | None],
           goal: str, fmt: str = "{:.2f}") -> str:
    """Print each seed's figure, their mean +- std, and the references; return the text."""
    s = spread(values)
    lines = [f"\n{title}", f"  this run: {fmt.format(s['mean'])} {unit} +- "
             f"{fmt.format(s['std'])} over {s['runs']} seed(s): "
             + ", ".join(fmt.format(v) for v in values), f"  goal: {goal}"]
    for ref, value in references.items():
        lines.append(f"  {ref}: " + (fmt.format(value) if value is not None else "(see paper)"))
    text = "\n".join(lines)
    print(text)
    return text


def write_result(name: str, document: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, "command": " ".join(shlex.quote(a) for a in sys.argv),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
                **document}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=1, default=str) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path
