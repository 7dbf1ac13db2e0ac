"""The memory suite in parallel: `lstmlab memory --quick --jobs N` against `--jobs 1`, in the same
run; wall time of each and whether the results are identical (they must be).

    python benchmarks/memory_jobs.py [--jobs 2]

Goal: >= 1.7x faster with 2 jobs on a 2-core machine. Writes benchmarks/results/memory_jobs.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
GOAL = 1.7
KEYS = ("task", "learner", "seed", "solved", "sequences_to_success", "guesses")


def run(jobs: int, folder: Path, extra: list[str]) -> tuple[float, list]:
    out = folder / f"jobs-{jobs}"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lstmlab", "memory", "--quick", "--jobs", str(jobs),
                    "--out", str(out), *extra], check=True, capture_output=True)
    seconds = time.perf_counter() - start
    trials = json.loads((out / "results.json").read_text())["trials"]
    return seconds, [[t[k] for k in KEYS] for t in trials]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--learners", default="rnn,lstm,guess",
                        help="learners (default: the quick suite's). The RNN runs into the "
                             "1-minute cap, so its sequences seen (not compared) depend on "
                             "the machine's speed")
    args = parser.parse_args()
    extra = ["--learners", args.learners]
    with tempfile.TemporaryDirectory() as folder:
        serial, a = run(1, Path(folder), extra)
        parallel, b = run(args.jobs, Path(folder), extra)
    ratio = serial / parallel
    print(f"lstmlab memory --quick --learners {args.learners}: --jobs 1 {serial:.1f} s, "
          f"--jobs {args.jobs} {parallel:.1f} s: {ratio:.2f}x (goal >= {GOAL}x: "
          f"{'met' if ratio >= GOAL else 'missed'}); results identical: {a == b}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory_jobs.json").write_text(json.dumps(
        {"jobs": args.jobs, "learners": args.learners, "serial_seconds": serial,
         "parallel_seconds": parallel, "speedup": ratio, "identical": a == b,
         "trials": a}, indent=1))
    return 0 if a == b else 1


if __name__ == "__main__":
    sys.exit(main())
