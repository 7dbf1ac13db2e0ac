"""The memory suite loses nothing: results.json holds every finished trial as it goes, SIGTERM
stops like Ctrl-C, --resume keeps finished trials and ends where an uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import time

ARGS = ["intern", "latch", "--lag", "5", "--learners", "lstm,guess", "--seeds", "2",
        "--budget", "3000", "--hidden", "8", "--test-size", "256"]
KEYS = ("task", "learner", "seed", "solved", "sequences", "sequences_to_success", "test_errors",
        "guesses")


def _lstmlab(*argv, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "lstmlab", "memory", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _trials(folder, finished_only=False):
    data = json.loads((folder / "results.json").read_text())
    return [tuple(t[k] for k in KEYS) for t in data["trials"]
            if not finished_only or t["stopped_by"] != "interrupt"]


def test_sigterm_then_resume_ends_where_a_whole_run_ends(tmp_path):
    whole = _lstmlab(*ARGS, "--out", str(tmp_path / "whole"))
    assert whole.wait(timeout=300) == 0, whole.stderr.read()[-2000:]
    expected = _trials(tmp_path / "whole")
    assert len(expected) == 8

    part = tmp_path / "part"
    run = _lstmlab(*ARGS, "--out", str(part))
    deadline = time.time() + 240
    while time.time() < deadline:  # wait for the first finished trial on disk
        if (part / "results.json").exists() and _trials(part, finished_only=True):
            break
        time.sleep(0.05)
    run.send_signal(signal.SIGTERM)
    run.wait(timeout=120)
    kept = _trials(part, finished_only=True)  # an interrupted trial is recorded as such
    assert 1 <= len(kept) < 8 and kept == expected[:len(kept)]

    resumed = _lstmlab(*ARGS, "--out", str(part), "--resume")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    assert f"{len(kept)} finished trial(s) of" in " ".join(out.split())  # not the interrupted
    assert _trials(part) == expected


def test_existing_results_need_resume(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    run = _lstmlab(*ARGS, "--out", str(tmp_path))
    _, err = run.communicate(timeout=120)
    assert run.returncode == 2 and "already holds results; pass --resume" in err
    run = _lstmlab(*ARGS, "--out", str(tmp_path), "--resume")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 2 and "is not a memory-suite results file" in err
