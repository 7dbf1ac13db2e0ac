"""Data-parallel training speed: tokens/s of `lstmlab lm train` under torchrun with N CPU
processes (one torch thread each) against one process with one thread, in the same run.

    python benchmarks/lm_ddp.py [--processes 2] [--steps 40] [--hidden 512]

Both train the same model on the same global batch (Tiny Shakespeare, shipped) for the same
number of steps, without validation; tokens/s is the run's own figure (training only). Goal:
>= 1.7x with 2 processes on a 2-core machine. Writes benchmarks/results/lm_ddp.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
GOAL = 1.7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(processes: int, args: argparse.Namespace, folder: Path) -> dict:
    out = folder / f"run-{processes}"
    report = folder / f"run-{processes}.json"
    command = ["-m", "lstmlab", "lm", "train", "--out", str(out), "--steps", str(args.steps),
               "--eval-every", str(10 * args.steps), "--eval-tokens", "1000",
               "--hidden", str(args.hidden), "--layers", "2", "--embedding", "64",
               "--batch", str(args.batch), "--threads", "1", "--no-progress",
               "--json", str(report)]
    if processes > 1:
        command = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                   "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *command]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, *command], check=True, env=env, capture_output=True)
    return json.loads(report.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        one = train(1, args, Path(folder))
        many = train(args.processes, args, Path(folder))
    ratio = many["tokens_per_second"] / one["tokens_per_second"]
    print(f"2x{args.hidden} char LSTM, batch {args.batch} x 100, {args.steps} steps:")
    print(f"  1 process, 1 thread:          {one['tokens_per_second']:,.0f} tokens/s")
    print(f"  {args.processes} processes (torchrun, gloo): {many['tokens_per_second']:,.0f} "
          f"tokens/s")
    print(f"  speed-up {ratio:.2f}x (goal >= {GOAL}x: {'met' if ratio >= GOAL else 'missed'})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lm_ddp.json").write_text(json.dumps(
        {"processes": args.processes, "steps": args.steps, "hidden": args.hidden,
         "batch": args.batch, "one": one["tokens_per_second"],
         "many": many["tokens_per_second"], "speedup": ratio, "goal": GOAL}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
