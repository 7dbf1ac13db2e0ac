"""The variant study: workers sharing one study through SQLite (and PostgreSQL where its
binaries are installed), an interrupted study finished by a rerun, the report from a stored
study, and clear errors on bad input. Trials are tiny (a short adding game, a few dozen steps)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from lstmlab.cli import main
from lstmlab.experiments.study import (
    StudyConfig,
    open_storage,
    prepare_study,
    run_study,
    search_space,
    study_name,
)
from lstmlab.experiments.study_report import build_report

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(autouse=True)
def plain_fused_loop(monkeypatch):
    """The PyTorch fused loop, not the C++ one: no extension to build or load in each worker
    process (the study runs either)."""
    monkeypatch.setenv("LSTMLAB_COMPILED", "0")


def tiny(tmp_path: Path, **changes) -> StudyConfig:
    options = dict(name="tiny", task="adding", lag=12, variants="V,NP", trials=2,
                   trial_minutes=0.5, trial_steps=30, out=str(tmp_path / "study"),
                   heartbeat=1, grace=3)
    options.update(changes)
    return StudyConfig(**options)


def trials_of(config: StudyConfig, variant: str) -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(config.storage_url())
    return optuna.load_study(study_name=study_name(config.name, config.task, variant),
                             storage=storage).get_trials()


def assert_complete_once(config: StudyConfig) -> None:
    """Every variant: each queued slot finished exactly once, nothing left queued or running."""
    for variant in config.variant_names:
        trials = trials_of(config, variant)
        done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert sorted(t.user_attrs["slot"] for t in done) == list(range(config.trials))
        assert not [t for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]
        for t in done:
            if t.state == TrialState.COMPLETE:
                assert t.value == t.user_attrs["valid"] and t.user_attrs["test"] > 0
                assert set(t.params) == set(search_space("adding"))


def test_two_workers_share_one_study(tmp_path):
    config = tiny(tmp_path, workers=2)
    summary = run_study(config, say=lambda text: None)
    assert summary.finished
    assert_complete_once(config)
    assert not [t for v in config.variant_names for t in trials_of(config, v)
                if t.state == TrialState.FAIL]


def test_killed_worker_then_rerun_loses_and_repeats_nothing(tmp_path):
    config = tiny(tmp_path, variants="V", trial_steps=None, trial_minutes=0.05, patience=100)
    prepare_study(config)
    command = [sys.executable, "-m", "lstmlab", "study", "run", "--study", config.name,
               "--task", "adding", "--lag", "12", "--variants", "V", "--trials", "2",
               "--trial-minutes", "0.05", "--patience", "100", "--out", config.out,
               "--heartbeat", "1", "--grace", "3"]
    worker = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": SRC},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not any(t.state == TrialState.RUNNING for t in trials_of(config, "V")):
            assert time.monotonic() < deadline, "the worker never started a trial"
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGKILL)  # dies mid-trial: no chance to record anything
        worker.wait()
    running = [t for t in trials_of(config, "V") if t.state == TrialState.RUNNING]
    assert len(running) == 1
    killed = running[0]

    run_study(config, say=lambda text: None)  # the same study again: it finishes
    trials = trials_of(config, "V")
    assert_complete_once(config)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [killed.number]
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    # the same point again (the worker may have died before it had drawn every parameter)
    assert all(retry[0].params[name] == value for name, value in killed.params.items())


def _stored_study(tmp_path: Path) -> str:
    """A study written straight into the storage: NFG clearly worse than V, NP like V, the
    learning rate driving the figure."""
    url = f"sqlite:///{tmp_path / 'stored.db'}"
    storage = open_storage(url)
    space = {"lr": FloatDistribution(1e-6, 1e-2, log=True),
             "hidden": IntDistribution(20, 200, log=True)}
    record = {"space": {}, "settings": {"task": "adding"}, "trials": 12,
              "figure": "task loss"}
    for variant, offset in (("V", 0.0), ("NFG", 1.0), ("NP", 0.0)):
        study = optuna.create_study(study_name=f"stored/adding/{variant}", storage=storage)
        study.set_user_attr("lstmlab", record)
        for k in range(12):
            lr = 10 ** (-6 + 4 * k / 11)
            hidden = [20, 45, 90, 200][k % 4]
            value = 2.0 + offset - 0.25 * (k / 11) * 4 + 0.01 * (k % 4) + 0.003 * (k % 3)
            study.add_trial(optuna.create_trial(
                params={"lr": lr, "hidden": hidden}, distributions=space, value=value,
                user_attrs={"test": value + 0.01}))
    return url


def test_report_from_a_stored_study(tmp_path):
    url = _stored_study(tmp_path)
    report = build_report(url, "stored", tmp_path / "report", best_fraction=0.25)
    out = tmp_path / "report"
    for name in ("report.md", "report.html", "report.json", "adding_boxes.png",
                 "adding_importance.png", "adding_marginal_lr.png", "adding_interaction.png"):
        assert (out / name).stat().st_size > 0, name
    (task,) = report.tasks
    assert task.marks == {"NFG": "worse"}
    verdicts = {f.claim.split(":")[0]: f.verdict for f in task.findings}
    assert verdicts["NFG"] == "agrees" and verdicts["NP"] == "agrees"
    assert verdicts["NOAF"] == "not measured"
    assert verdicts["The learning rate is the most important hyperparameter"] == "agrees"
    assert max(task.mean_importance, key=task.mean_importance.get) == "lr"
    text = (out / "report.md").read_text()
    assert "| NFG " in text and "agrees" in text and "![" in text
    assert "<img src=\"adding_boxes.png\"" in (out / "report.html").read_text()


def test_bad_input_gets_one_line(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown variant"):
        tiny(tmp_path, variants="V,XYZ")
    with pytest.raises(ValueError, match="unknown task 'nonsense'"):
        tiny(tmp_path, task="nonsense")
    with pytest.raises(ValueError, match="--task jsb needs --data"):
        tiny(tmp_path, task="jsb")
    assert main(["study", "run", "--storage", "postgresql://me:secret@127.0.0.1:1/none",
                 "--lag", "12", "--trials", "1"]) == 2
    message = capsys.readouterr().err
    assert "postgresql://me:***@127.0.0.1:1/none" in message and "secret" not in message
    assert main(["study", "run", "--storage", "mysql://u@127.0.0.1:1/db", "--lag", "12"]) == 2
    assert "driver" in capsys.readouterr().err

    config = tiny(tmp_path)
    prepare_study(config)
    with pytest.raises(ValueError, match="no completed trial"):  # only queued trials so far
        build_report(config.storage_url(), config.name, tmp_path / "r")
    with pytest.raises(ValueError, match="no study 'other'.*it holds: tiny"):
        build_report(config.storage_url(), "other", tmp_path / "r")
    with pytest.raises(ValueError, match="another search space.*minutes: stored 0.5, asked 1"):
        prepare_study(tiny(tmp_path, trial_minutes=1.0))
    assert main(["study", "report", "--out", str(tmp_path / "nowhere")]) == 2
    assert "no study.db" in capsys.readouterr().err


# --- PostgreSQL ---------------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A PostgreSQL server of our own on a loopback port (as user nobody when we are root:
    postgres refuses to run as root); its URL."""
    binaries = _postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (no initdb on PATH or in "
                    "/usr/lib/postgresql/*/bin); .ci/run installs Debian's postgresql")
    # not under pytest's tmp_path: user nobody could not enter its private parent folders
    home = Path(tempfile.mkdtemp(prefix="lstmlab-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(home, "nobody")
        prefix = ["runuser", "-u", "nobody", "--"]
    data, port = home / "data", _free_port()
    subprocess.run(prefix + [str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
                             "--auth=trust", "--no-sync"], check=True, capture_output=True)
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(prefix + [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                             str(home / "log"), "-w", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                 "stop"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_two_workers_share_a_study_through_postgresql(tmp_path, postgres):
    pytest.importorskip("psycopg2")
    config = tiny(tmp_path, storage=postgres, workers=2)
    summary = run_study(config, say=lambda text: None)
    assert summary.finished
    assert_complete_once(config)


# --- the training hooks the study trains with ---------------------------------------------------


def test_input_noise_nesterov_and_patience():
    import torch

    from lstmlab.experiments.supervised import fit
    from lstmlab.tasks.batch import Batch
    from lstmlab.train.loop import StepOutput, TrainConfig

    seen = []

    def step(model, batch):
        seen.append(batch.inputs.clone())
        return StepOutput((model(batch.inputs) ** 2).mean(), batch.batch_size)

    def batches():
        while True:
            yield Batch(torch.zeros(3, 2, 4), torch.zeros(3, 2))

    model = torch.nn.Linear(4, 1)
    config = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, input_noise=0.5,
                         max_steps=50, progress=False)
    worse = iter(range(100))  # every validation worse than the first
    run = fit(model, config, step, batches(), error=lambda m: next(worse), eval_every=2,
              patience=3)
    assert run.train.stopped_by == "callback" and run.train.state.step == 8  # 1 + 3 checks
    noise = torch.cat(seen)
    assert 0.4 < float(noise.std()) < 0.6  # the clean inputs were zeros
    seen.clear()
    fit(torch.nn.Linear(4, 1), TrainConfig(max_steps=2, progress=False), step, batches(),
        error=lambda m: 1.0, eval_every=1)
    assert all(float(x.abs().max()) == 0 for x in seen)  # no noise unless asked
    with pytest.raises(ValueError, match="nesterov needs optimizer 'sgd' and a momentum"):
        TrainConfig(optimizer="sgd", nesterov=True)


_CLAIMER = """
import sys, optuna
from lstmlab.experiments.study import _claim
url, name, out = sys.argv[1:]
optuna.logging.set_verbosity(optuna.logging.WARNING)
storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
study = optuna.load_study(study_name=name, storage=storage)
taken = []
while (trial_id := _claim(storage, study)) is not None:
    taken.append(trial_id)
open(out, "w").write(" ".join(map(str, taken)))
"""


def test_sqlite_workers_claim_each_queued_trial_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'claims.db'}"
    study = optuna.create_study(study_name="claims", storage=url)
    for _ in range(40):
        study.enqueue_trial({})
    outs = [tmp_path / f"taken{k}.txt" for k in range(3)]
    workers = [subprocess.Popen([sys.executable, "-c", _CLAIMER, url, "claims", str(out)],
                                env={**os.environ, "PYTHONPATH": SRC}) for out in outs]
    assert all(w.wait(timeout=120) == 0 for w in workers)
    taken = [int(t) for out in outs for t in out.read_text().split()]
    assert sorted(taken) == sorted({t._trial_id for t in study.get_trials()})  # each exactly once
