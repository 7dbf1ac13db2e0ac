"""Shared by the sequence-shape benchmarks (sst2.py, ud_ewt.py, jsb.py): flags, seeds, the
summary beside the references, and the result file.

Each benchmark trains one model per seed under a time budget with the library's own training
function, prints each seed's figure and their mean and spread beside the published references,
and writes ``benchmarks/results/<name>.json`` (figures, settings, machine, command).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lm_common import ROOT, machine

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
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
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


def seeds(args: argparse.Namespace) -> list[int]:
    return [int(s) for s in args.seeds.split(",") if s.strip()]


def run_seeds(name: str, args: argparse.Namespace,
              train: Callable[[int, Path, dict[str, Any]], Any]) -> list[Any]:
    """Call ``train(seed, out, options)`` for each seed (one thread count, one run at a time)."""
    torch.set_num_threads(args.threads)
    options = {k: getattr(args, k) for k in args.option_names}
    base = Path(args.out) if args.out else ROOT / "runs" / f"bench-{name}"
    results = []
    for seed in seeds(args):
        print(f"--- seed {seed} ---", flush=True)
        results.append(train(seed, base / f"seed{seed}", {**options, "seed": seed}))
    return results


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
