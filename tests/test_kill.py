"""Kill test: `lm train` and the memory suite are killed with SIGKILL at random moments and
resumed until done. Every checkpoint and results file left behind must load, and the resumed
run must end where an uninterrupted one does (bit-exact weights for `lm train`; the same trials
for the suite). `make test` runs a few kills of each; for the goal figure run

    python tests/test_kill.py --kills 100      # 100 kills of each, reports the counts
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import torch

from lstmlab.train import load_checkpoint

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good " \
       "fortune, must be in want of a wife.\n" * 30
LM = ["lm", "train", "--steps", "40", "--eval-every", "2", "--hidden", "16", "--layers", "1",
      "--seq-len", "12", "--batch", "4", "--dropout", "0.1", "--no-progress", "--threads", "1"]
SUITE = ["intern", "latch", "--lag", "5", "--learners", "lstm,guess", "--seeds", "2",
         "--budget", "2000", "--hidden", "8", "--test-size", "128"]
KEYS = ("task", "learner", "seed", "solved", "sequences", "sequences_to_success",
        "test_errors", "guesses")


def _start(argv: list[str], cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "lstmlab", *argv], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    tensors, _ = load_checkpoint(run / "last.json")
    return {k: v for k, v in tensors.items() if k.startswith("model.")}


def _check_lm_files(run: Path) -> None:
    """Whatever a kill left must load: the last and best checkpoints, if written."""
    for name in ("last.json", "best.json"):
        if (run / name).exists():
            load_checkpoint(run / name)  # raises CheckpointError if torn or corrupt


def _suite_trials(out: Path) -> list[tuple]:
    data = json.loads((out / "results.json").read_text())
    return [tuple(t[k] for k in KEYS) for t in data["trials"] if t["stopped_by"] != "interrupt"]


def kill_and_resume(first: list[str], again: list[str], cwd: Path, kills: int, window: float,
                    check, rng: random.Random) -> int:
    """Start ``first``, then ``again`` (a resume) until a run finishes; SIGKILL each of the first
    ``kills`` runs after a random delay in [0, window) s, calling ``check`` after each kill.
    Returns the kills made (a run may finish before its kill)."""
    made, argv = 0, first
    while True:
        process = _start(argv, cwd)
        if made < kills:
            deadline = time.time() + rng.uniform(0, window)
            while time.time() < deadline and process.poll() is None:
                time.sleep(0.01)
            if process.poll() is None:
                process.kill()
                process.wait()
                made += 1
                check()
                argv = again
                continue
        _, err = process.communicate(timeout=600)
        if process.returncode == 0:
            return made
        if "nothing to resume" in err or "no results.json" in err:
            argv = first  # killed before anything was written: start again
            continue
        raise AssertionError(f"run failed ({process.returncode}): {err[-2000:]}")


def _timed_run(argv: list[str], cwd: Path) -> float:
    """Run to the end; its wall time in seconds (the kill window is most of it)."""
    start = time.time()
    process = _start(argv, cwd)
    assert process.wait(timeout=600) == 0, process.stderr.read()[-2000:]
    return time.time() - start


WINDOWS: dict[str, float] = {}  # wall time of the uninterrupted run, by its folder


def lm_kill_test(folder: Path, kills: int, seed: int = 0, whole: Path | None = None) -> int:
    """Kill ``lm train`` up to ``kills`` times, each at a random moment of a run's usual length;
    ``whole`` is an uninterrupted run to compare with (made here when None)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "text.txt"
    text.write_text(TEXT)
    if whole is None:
        whole = folder / "whole"
        WINDOWS[str(whole)] = _timed_run([*LM, str(text), "--out", str(whole)], folder)
    run = folder / "killed"
    made = kill_and_resume([*LM, str(text), "--out", str(run)],
                           ["lm", "train", "--out", str(run), "--resume", "--no-progress",
                            "--threads", "1"],
                           folder, kills, 0.8 * WINDOWS[str(whole)], lambda: _check_lm_files(run),
                           random.Random(seed))
    expected, got = _weights(whole), _weights(run)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected), "resumed weights differ"
    return made


def suite_kill_test(folder: Path, kills: int, seed: int = 0, whole: Path | None = None) -> int:
    """Kill the memory suite up to ``kills`` times; ``whole`` as in ``lm_kill_test``."""
    folder.mkdir(parents=True, exist_ok=True)
    if whole is None:
        whole = folder / "whole"
        WINDOWS[str(whole)] = _timed_run(["memory", *SUITE, "--out", str(whole)], folder)
    out = folder / "killed"

    def check() -> None:
        if (out / "results.json").exists():
            _suite_trials(out)  # a torn results file would not parse

    made = kill_and_resume(["memory", *SUITE, "--out", str(out)],
                           ["memory", *SUITE, "--out", str(out), "--resume"],
                           folder, kills, 0.8 * WINDOWS[str(whole)], check,
                           random.Random(seed))
    assert _suite_trials(out) == _suite_trials(whole)
    return made


def test_lm_train_survives_kills(tmp_path):
    assert lm_kill_test(tmp_path, kills=4) >= 1


def test_memory_suite_survives_kills(tmp_path):
    assert suite_kill_test(tmp_path, kills=4) >= 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=100, help="kills of each (default 100)")
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    import tempfile

    folder = Path(args.folder or tempfile.mkdtemp(prefix="lstmlab-kill-"))
    start = time.time()
    totals = {}
    for name, test in (("lm train", lm_kill_test), ("memory suite", suite_kill_test)):
        made, rounds = 0, 0
        first = folder / f"{name.split()[0]}-0"
        while made < args.kills:  # a round is a whole run, killed until it finishes
            made += test(folder / f"{name.split()[0]}-{rounds}", args.kills - made, seed=rounds,
                         whole=None if rounds == 0 else first / "whole")
            rounds += 1
        totals[name] = (made, rounds)
    lm, suite = totals["lm train"], totals["memory suite"]
    print(f"lm train: {lm[0]} kills in {lm[1]} runs; every checkpoint left behind loaded; each "
          "resumed run's weights bit-identical to the uninterrupted run's")
    print(f"memory suite: {suite[0]} kills in {suite[1]} runs; every results.json left behind "
          "loaded; each resumed run's trials identical to the uninterrupted run's")
    print(f"{lm[0] + suite[0]} kills in {time.time() - start:.0f} s: 0 torn checkpoints, 0 lost "
          "trials")
    return 0


if __name__ == "__main__":
    sys.exit(main())
