"""Shared by the language-model benchmarks (lm_*.py): flags, data paths, result files.

Each benchmark trains with ``lstmlab.experiments.lm_train.train_language_model`` under a time
budget, prints what it measured beside its reference, and writes
``benchmarks/results/lm_<name>.json`` (the figures, the settings, the machine, the command).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATA = Path(os.environ.get("LSTMLAB_DATA", ROOT.parent / "shared" / "data"))


def data_file(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        sys.exit(f"benchmark data not found: {path} (set LSTMLAB_DATA to the shared/data "
                 "folder)")
    return path


def parser(description: str, defaults: dict[str, Any]) -> argparse.ArgumentParser:
    """Flags common to the training benchmarks, with this benchmark's defaults."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--minutes", type=float, default=defaults.pop("minutes"),
                   help="training-time budget")
    p.add_argument("--epochs", type=float, default=defaults.pop("epochs", None),
                   help="epoch budget (the first budget reached stops)")
    p.add_argument("--threads", type=int, default=defaults.pop("threads", 2),
                   help="torch threads (1 is faster on a machine whose cores are busy)")
    p.add_argument("--out", default=None, help="run directory (default runs/bench-NAME)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--eval-every", type=int, default=defaults.pop("eval_every", None))
    p.add_argument("--eval-tokens", type=int, default=defaults.pop("eval_tokens", None),
                   help="validate on this many tokens during training (the end uses all)")
    p.add_argument("--no-progress", action="store_true")
    for name, value in defaults.items():
        flag = "--" + name.replace("_", "-")
        kind = type(value) if value is not None and not isinstance(value, bool) else float
        if isinstance(value, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            p.add_argument(flag, type=kind, default=value)
    p.set_defaults(option_names=list(defaults))
    return p


def machine() -> dict[str, Any]:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}


def write_result(name: str, document: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, "command": " ".join(shlex.quote(a) for a in sys.argv),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
                **document}
    path = RESULTS / f"lm_{name}.json"
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def train(name: str, source: Path | str | None, args: argparse.Namespace,
          fixed: dict[str, Any] | None = None):
    """Run train_language_model with the benchmark's flags; returns the LMTrainResult."""
    from rich.console import Console

    from lstmlab.experiments.lm_train import train_language_model

    torch.set_num_threads(args.threads)
    options = {k: getattr(args, k) for k in args.option_names}
    options.update(fixed or {})
    out = args.out or str(ROOT / "runs" / f"bench-{name}")
    if not args.resume and Path(out, "last.json").exists():
        sys.exit(f"{out} already holds a run: pass --resume to continue it, or --out elsewhere")
    return train_language_model(source, out=out, resume=args.resume, minutes=args.minutes,
                                epochs=args.epochs, eval_every=args.eval_every,
                                eval_tokens=args.eval_tokens, progress=not args.no_progress,
                                console=Console(stderr=True), **options)
