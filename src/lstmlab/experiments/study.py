"""The variant study of Greff et al. (2015), "LSTM: A Search Space Odyssey": for each LSTM
variant, a random search over the paper's hyperparameter space on one task, shared by any number
of worker processes on any number of machines through one Optuna storage.

    >>> config = StudyConfig(name="odyssey", task="jsb", data="jsb_chorales.json", trials=10,
    ...                      trial_minutes=2.5, workers=2)
    >>> summary = run_study(config)      # the same call on every machine continues one study

Layout in the storage: one Optuna study per (task, variant), named "NAME/TASK/VARIANT", so that
each variant gets exactly ``trials`` trials and Optuna's dashboard shows each search on its
own. Its user attrs hold the search space and the trial settings (``record``); a second run
under the same name must agree with them.

Exactly ``trials`` per variant, however many workers: whoever creates a study (creation is
atomic in the database) puts ``trials`` WAITING trials in its queue; workers only ever claim
WAITING trials (a compare-and-set in the database, so each is run once) and the sampler draws
the point when a worker starts it. A running trial sends heartbeats; one whose worker died
(killed, machine lost) goes stale after ``grace`` seconds and the next worker to look fails it
and queues a retry with the same point (Optuna's ``RetryHeartbeatStaleTrialCallback``); a worker
stopped by Ctrl-C does the same at once. So an interrupted study loses no trial and runs none
twice to completion: rerun the same command and it finishes.

A trial that diverges (a non-finite loss) or is cut by the pruner ends PRUNED: it counts as
one of the ``trials`` and stays out of the analysis, which reads COMPLETE trials only.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import multiprocessing
import os
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.trial import TrialState

from lstmlab.cells import VARIANTS
from lstmlab.experiments.study_trials import (
    TOKEN_TASKS,
    TrialSettings,
    check_task,
    figure_name,
    run_trial,
)

VARIANT_NAMES: tuple[str, ...] = tuple(VARIANTS)
"""Greff et al.'s nine: V (vanilla) and the eight one-change variants."""

SAMPLERS = ("random", "tpe", "qmc")
PRUNERS = ("none", "median", "hyperband")
DEFAULT_FOLDER = "study"


def search_space(task: str) -> dict[str, BaseDistribution]:
    """Greff et al. (2015), section IV: learning rate log-uniform in [1e-6, 1e-2]; LSTM blocks
    per hidden layer log-uniform in [20, 200]; momentum 1 - x with x log-uniform in [0.01, 1]
    (so momentum in [0, 0.99]); input-noise standard deviation uniform in [0, 1]. Tasks whose
    inputs are token ids have no input noise."""
    space: dict[str, BaseDistribution] = {
        "lr": FloatDistribution(1e-6, 1e-2, log=True),
        "hidden": IntDistribution(20, 200, log=True),
        "one_minus_momentum": FloatDistribution(0.01, 1.0, log=True),
    }
    if task not in TOKEN_TASKS:
        space["input_noise"] = FloatDistribution(0.0, 1.0)
    return space


def hyperparameters(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's sampled values as training settings: lr, hidden, momentum, input_noise."""
    return {"lr": params["lr"], "hidden": int(params["hidden"]),
            "momentum": 1.0 - params["one_minus_momentum"],
            "input_noise": params.get("input_noise", 0.0)}


def parse_variants(text: str | None) -> tuple[str, ...]:
    """ "V,NP,CIFG" -> ("V", "NP", "CIFG"); None or "all": Greff's nine."""
    if text is None or text.strip().lower() == "all":
        return VARIANT_NAMES
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    lookup = {v.upper(): v for v in VARIANT_NAMES}
    unknown = [v for v in names if v.upper() not in lookup]
    if unknown or not names:
        raise ValueError(f"unknown variant(s) {', '.join(unknown) or repr(text)}: choose from "
                         f"{', '.join(VARIANT_NAMES)} (comma-separated)")
    if len(set(names)) != len(names):
        raise ValueError(f"variants repeat: {text}")
    return tuple(lookup[v.upper()] for v in names)


@dataclass
class StudyConfig:
    """A study run.

    Attributes:
        name: the study's name in the storage (its Optuna studies are NAME/TASK/VARIANT).
        task: "jsb", "tinyshakespeare", "ewt" or a memory game ("adding", "6a", ...).
        variants: comma-separated variant names (None: Greff's nine).
        trials: trials per variant. trial_minutes: wall-clock budget of one trial.
        patience: validations without a new best before a trial stops early.
        storage: an Optuna storage URL (None: SQLite ``study.db`` in ``out``), e.g.
            postgresql://user:password@host/db for many machines.
        out: the study folder (the default storage, and the report's default place).
        workers: local worker processes, one torch thread each.
        sampler: "random" (Greff's random search), "tpe" or "qmc". pruner: "none", "median",
            "hyperband" (reads each validation).
        data, lag, batch, seed, trial_steps: the task's data, a memory game's length,
            sequences per update, the seed of every trial's initialisation (and of the qmc
            sampler), a budget of updates per trial (see ``TrialSettings``).
        heartbeat, grace: seconds between a running trial's heartbeats, and without one before
            it counts as interrupted.
    """

    name: str = "odyssey"
    task: str = "adding"
    variants: str | None = None
    trials: int = 10
    trial_minutes: float = 2.0
    patience: int = 5
    storage: str | None = None
    out: str = DEFAULT_FOLDER
    workers: int = 1
    sampler: str = "random"
    pruner: str = "none"
    data: str | None = None
    lag: int | None = None
    batch: int | None = None
    seed: int = 0
    trial_steps: int | None = None
    heartbeat: int = 10
    grace: int = 60

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"study name must be non-empty and without '/', got {self.name!r}")
        check_task(self.task)
        parse_variants(self.variants)
        for name in ("trials", "workers", "heartbeat", "grace"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.grace <= self.heartbeat:
            raise ValueError(f"grace ({self.grace} s) must exceed heartbeat ({self.heartbeat} s)")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got "
                             f"{self.sampler!r}")
        if self.pruner not in PRUNERS:
            raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}")
        self.settings()  # checks minutes, patience, data

    @property
    def variant_names(self) -> tuple[str, ...]:
        return parse_variants(self.variants)

    def storage_url(self) -> str:
        return self.storage or default_storage(self.out)

    def settings(self) -> TrialSettings:
        return TrialSettings(self.task, self.trial_minutes, self.patience, self.data, self.lag,
                             self.batch, self.seed, steps=self.trial_steps)

    def record(self) -> dict[str, Any]:
        """What must agree between runs of one study (stored in each Optuna study)."""
        settings = self.settings().record()
        settings.pop("data")  # machines may keep the data in different places
        return {"space": {k: distribution_to_json(d) for k, d in search_space(self.task).items()},
                "settings": settings, "trials": self.trials, "figure": figure_name(self.task)}


def default_storage(folder: str) -> str:
    return f"sqlite:///{os.path.abspath(os.path.join(folder, 'study.db'))}"


def study_name(name: str, task: str, variant: str) -> str:
    return f"{name}/{task}/{variant}"


# --- the storage --------------------------------------------------------------------------------


def shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _driver_hint(url: str, module: str | None) -> str:
    scheme = url.split(":", 1)[0]
    if scheme.startswith("postgresql"):
        return (f"the Python driver {module or 'psycopg'} (psycopg or psycopg2: pip install "
                "psycopg2-binary)")
    if scheme.startswith("mysql"):
        return f"the Python driver {module or 'pymysql'} (pip install pymysql)"
    return f"the Python module {module}" if module else "a SQLAlchemy driver for it"


def _with_driver(url: str) -> str:
    """postgresql:// means psycopg (3) to SQLAlchemy 2.1; use psycopg2 where only it is
    installed (lstmlab's study extra installs psycopg2-binary)."""
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def open_storage(url: str, heartbeat: int = 10, grace: int = 60) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage with heartbeats; a clear ValueError naming the URL (without its
    password) when it cannot be reached or its driver is missing."""
    if url.startswith("sqlite:///"):
        folder = os.path.dirname(url[len("sqlite:///"):])
        if folder:
            os.makedirs(folder, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback()
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):  # many processes write: wait for the lock, not fail
            kwargs["connect_args"] = {"timeout": 120}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            return optuna.storages.RDBStorage(_with_driver(url), engine_kwargs=kwargs,
                                              heartbeat_interval=heartbeat, grace_period=grace,
                                              heartbeat_stale_trial_callback=retry)
        except ImportError as error:  # Optuna re-raises the driver's ModuleNotFoundError
            module = getattr(error, "name", None) or getattr(error.__cause__, "name", None)
            raise ValueError(f"--storage {shown_url(url)}: needs {_driver_hint(url, module)}"
                             ) from None
        except Exception as error:  # sqlalchemy's connection and URL errors
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise ValueError(f"--storage {shown_url(url)}: cannot open it ({first})") from None


def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(stored) | set(wanted)):
        if key == "settings":
            a, b = stored.get(key, {}), wanted.get(key, {})
            out += [f"{k}: stored {a.get(k)!r}, asked {b.get(k)!r}"
                    for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif stored.get(key) != wanted.get(key):
            out.append(f"{key}: stored {stored.get(key)!r}, asked {wanted.get(key)!r}")
    return out


def _wait_for_record(study: optuna.Study, storage: optuna.storages.BaseStorage,
                     seconds: float) -> dict[str, Any] | None:
    """The record of a study another process may be creating right now."""
    deadline = time.monotonic() + seconds
    while True:
        record = study.user_attrs.get("lstmlab")
        if record is not None and study.user_attrs.get("ready"):
            return record
        if time.monotonic() > deadline:
            return record
        time.sleep(0.5)
        study = optuna.load_study(study_name=study.study_name, storage=storage)


def prepare_study(config: StudyConfig) -> list[str]:
    """Create (or check) the Optuna studies of ``config`` and queue their trials; returns their
    names. Refuses a name already used with another space or other settings."""
    quiet_optuna()
    url = config.storage_url()
    storage = open_storage(url, config.heartbeat, config.grace)
    wanted = config.record()
    existing = set(optuna.get_all_study_names(storage))
    names = [study_name(config.name, config.task, v) for v in config.variant_names]
    for name in names:  # check every existing one before creating any
        if name not in existing:
            continue
        study = optuna.load_study(study_name=name, storage=storage)
        stored = _wait_for_record(study, storage, config.grace)
        if stored is None:
            raise ValueError(f"{name} exists in {shown_url(url)} but is no lstmlab study; choose "
                             "another --study name")
        diff = _differences(stored, wanted)
        if diff:
            raise ValueError(f"study {config.name!r} in {shown_url(url)} exists with another "
                             f"search space or settings ({'; '.join(diff)}); start a new one with "
                             "another --study NAME (or --storage), or rerun with the stored "
                             "settings")
    for name in names:
        try:
            study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=name, storage=storage)
            if _wait_for_record(study, storage, config.grace) is None:  # creator died: finish
                _queue(study, wanted, config.trials)
            continue
        _queue(study, wanted, config.trials)
    return names


def _queue(study: optuna.Study, record: dict[str, Any], trials: int) -> None:
    study.set_user_attr("lstmlab", record)
    have = {t.user_attrs.get("slot") for t in study.get_trials(deepcopy=False)}
    for slot in range(trials):
        if slot not in have:
            study.enqueue_trial({}, user_attrs={"slot": slot})
    study.set_user_attr("ready", True)


# --- a worker -----------------------------------------------------------------------------------


def _sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    # Random and TPE take no fixed seed: workers sharing a study must not draw the same
    # points. QMC's points follow the study's sample count, so one seed gives every worker
    # (and every rerun) the same sequence of points without repeats.
    if name == "tpe":
        return optuna.samplers.TPESampler()
    if name == "qmc":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(seed=seed)
    return optuna.samplers.RandomSampler()


def _pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


class _Heartbeat:
    """Records a running trial's heartbeat every ``interval`` seconds in a thread."""

    def __init__(self, storage: optuna.storages.RDBStorage, trial_id: int, interval: int
                 ) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.is_set():
            self.storage.record_heartbeat(self.trial_id)
            self.stop.wait(self.interval)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()


@contextlib.contextmanager
def _claim_lock(storage: optuna.storages.RDBStorage):
    """Optuna's compare-and-set of a trial's state reads and writes in one transaction with
    SELECT ... FOR UPDATE, which PostgreSQL honours and SQLite ignores: two processes can both
    read WAITING and both take the trial. A SQLite study's workers share its file system, so they
    take turns through a file lock beside the database."""
    url = storage.url
    if not url.startswith("sqlite:///"):
        yield
        return
    with open(url[len("sqlite:///"):] + ".claim.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _claim(storage: optuna.storages.RDBStorage, study: optuna.Study) -> int | None:
    """Take one WAITING trial of ``study`` (compare-and-set: each is taken once)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    with _claim_lock(storage):
        for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            try:
                if storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                    return trial_id
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
    return None


def _fail_and_retry(storage: optuna.storages.RDBStorage, study: optuna.Study,
                    trial: optuna.Trial, trial_id: int, why: str) -> None:
    """An interrupted trial: FAIL, and a WAITING copy with the same point queued (once: only
    the process that failed it gets here)."""
    trial.set_user_attr("interrupted", why[:300])
    study.tell(trial, state=TrialState.FAIL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.RetryHeartbeatStaleTrialCallback()(study, storage.get_trial(trial_id))


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    assert isinstance(dist, FloatDistribution)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


def _run_one(storage: optuna.storages.RDBStorage, study: optuna.Study, trial_id: int,
             config: StudyConfig, variant: str, say: Any) -> None:
    trial = optuna.Trial(study, trial_id)
    settings = config.settings()
    with _Heartbeat(storage, trial_id, config.heartbeat):
        params = {n: _suggest(trial, n, d) for n, d in search_space(config.task).items()}

        def on_validation(step: int, value: float) -> None:
            trial.report(value, step)
            if config.pruner != "none" and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step}")

        head = f"{config.task} {variant} trial {trial.number}"
        try:
            outcome = run_trial(settings, variant, hyperparameters(params), on_validation)
        except optuna.TrialPruned as why:
            study.tell(trial, state=TrialState.PRUNED)
            say(f"{head}: {why}")
            return
        except FloatingPointError as error:
            trial.set_user_attr("diverged", str(error)[:300])
            study.tell(trial, state=TrialState.PRUNED)
            say(f"{head}: diverged")
            return
        except KeyboardInterrupt:
            _fail_and_retry(storage, study, trial, trial_id, "interrupted (Ctrl-C)")
            raise
        except BaseException as error:
            _fail_and_retry(storage, study, trial, trial_id, repr(error))
            raise
        trial.set_user_attr("valid", outcome.valid)
        trial.set_user_attr("test", outcome.test)
        trial.set_user_attr("seconds", round(outcome.seconds, 2))
        trial.set_user_attr("steps", outcome.steps)
        trial.set_user_attr("stopped_by", outcome.stopped_by)
        for key, value in outcome.extra.items():
            trial.set_user_attr(key, value)
        study.tell(trial, outcome.valid)
        test = "" if outcome.test is None else f", test {outcome.test:.4g}"
        say(f"{head}: valid {outcome.valid:.4g}{test} ({outcome.seconds / 60:.1f} min, "
            f"{outcome.stopped_by}) lr {params['lr']:.2g} hidden {params['hidden']}")


def warm_up(variants: tuple[str, ...]) -> None:
    """Load every variant's kernels (the fused loop is compiled C++, built or loaded on first
    use: seconds, under load a minute) and the optimiser's imports before any trial, so that
    no trial's time budget pays for them."""
    import torch

    from lstmlab.layers import LSTM

    for variant in variants:
        layer = LSTM(2, 2, variant=variant)
        out, _ = layer(torch.zeros(2, 1, 2, requires_grad=True))
        out.sum().backward()
        torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.5, nesterov=True).step()


def work(config: StudyConfig, worker: int = 0, say: Any = print) -> int:
    """One worker: claim queued trials of the study's variants (the variant with the fewest
    started trials first, so a study stopped early is balanced) until none is left and none is
    running anywhere; returns the trials this worker finished."""
    import torch

    torch.set_num_threads(1)
    warm_up(config.variant_names)
    quiet_optuna()
    storage = open_storage(config.storage_url(), config.heartbeat, config.grace)
    studies = {v: optuna.load_study(study_name=study_name(config.name, config.task, v),
                                    storage=storage, sampler=_sampler(config.sampler, config.seed),
                                    pruner=_pruner(config.pruner))
               for v in config.variant_names}
    done = 0
    while True:
        order, running = [], False
        for variant, study in studies.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)  # queues retries of dead workers' trials
            states = [t.state for t in study.get_trials(deepcopy=False)]
            running = running or TrialState.RUNNING in states
            if TrialState.WAITING in states:
                started = sum(s in (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
                              for s in states)
                order.append((started, variant))
        claimed = None
        for _, variant in sorted(order, key=lambda o: (o[0], VARIANT_NAMES.index(o[1]))):
            trial_id = _claim(storage, studies[variant])
            if trial_id is not None:
                claimed = (variant, trial_id)
                break
        if claimed is None:
            if not running:
                return done
            time.sleep(min(2.0, config.heartbeat))  # a running trial may still fail: wait
            continue
        variant, trial_id = claimed
        _run_one(storage, studies[variant], trial_id, config, variant,
                 lambda text: say(f"[worker {worker}] {text}"))
        done += 1


def _worker_main(config: StudyConfig, worker: int) -> None:
    try:
        work(config, worker, lambda text: print(text, flush=True))
    except KeyboardInterrupt:
        pass
    except ValueError as error:  # bad input found in a trial: one line, not a traceback
        print(f"[worker {worker}] {error}", flush=True)
        raise SystemExit(2) from None


# --- the whole run ------------------------------------------------------------------------------


@dataclass
class VariantCount:
    variant: str
    complete: int
    pruned: int
    failed: int
    waiting: int
    running: int
    best_valid: float | None


@dataclass
class StudySummary:
    name: str
    task: str
    storage: str
    trials: int
    counts: list[VariantCount] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def finished(self) -> bool:
        return all(c.complete + c.pruned == self.trials and not c.waiting and not c.running
                   for c in self.counts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        lines = [f"study {self.name!r}, task {self.task}, {self.trials} trials per variant "
                 f"({shown_url(self.storage)})",
                 f"{'variant':8} {'complete':>8} {'pruned':>6} {'failed':>6} {'queued':>6} "
                 f"{'running':>7} {'best valid':>10}"]
        for c in self.counts:
            best = "-" if c.best_valid is None else f"{c.best_valid:.4g}"
            lines.append(f"{c.variant:8} {c.complete:8} {c.pruned:6} {c.failed:6} "
                         f"{c.waiting:6} {c.running:7} {best:>10}")
        return "\n".join(lines)


def summaries(storage_url: str, name: str) -> list[StudySummary]:
    """Per task of study ``name``: counts of trials per state and the best validation figure,
    per variant."""
    quiet_optuna()
    storage = open_storage(storage_url)
    found: dict[str, dict[str, optuna.Study]] = {}
    names = optuna.get_all_study_names(storage)
    for full in names:
        parts = full.split("/")
        if len(parts) == 3 and parts[0] == name:
            found.setdefault(parts[1], {})[parts[2]] = optuna.load_study(study_name=full,
                                                                         storage=storage)
    if not found:
        known = sorted({n.split("/")[0] for n in names})
        raise ValueError(f"no study {name!r} in {shown_url(storage_url)}"
                         + (f"; it holds: {', '.join(known)}" if known else " (it is empty)"))
    out = []
    for task, studies in sorted(found.items()):
        order = sorted(studies, key=lambda v: (v not in VARIANT_NAMES,
                                               VARIANT_NAMES.index(v) if v in VARIANT_NAMES
                                               else 0, v))
        trials = max(int(s.user_attrs.get("lstmlab", {}).get("trials", 0))
                     for s in studies.values())
        summary = StudySummary(name, task, storage_url, trials)
        for variant in order:
            listed = studies[variant].get_trials(deepcopy=False)
            count = {s: sum(t.state == s for t in listed) for s in TrialState}
            values = [t.value for t in listed if t.state == TrialState.COMPLETE]
            summary.counts.append(VariantCount(
                variant, count[TrialState.COMPLETE], count[TrialState.PRUNED],
                count[TrialState.FAIL], count[TrialState.WAITING], count[TrialState.RUNNING],
                min(values) if values else None))
        out.append(summary)
    return out


def run_study(config: StudyConfig, say: Any = print) -> StudySummary:
    """Prepare the study and run ``config.workers`` local workers until its queue is empty
    (``work``); several workers are spawned processes with one torch thread each."""
    start = time.perf_counter()
    prepare_study(config)
    if config.workers == 1:
        work(config, 0, say)
    else:
        os.environ["OMP_NUM_THREADS"] = "1"  # the spawned workers inherit it
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_worker_main, args=(config, k), daemon=False)
                     for k in range(config.workers)]
        for p in processes:
            p.start()
        try:
            for p in processes:
                p.join()
        except KeyboardInterrupt:  # the workers got the same Ctrl-C: let them record it
            for p in processes:
                p.join()
            raise
        failed = [k for k, p in enumerate(processes) if p.exitcode != 0]
        if failed:
            raise ValueError(f"worker(s) {', '.join(map(str, failed))} stopped with an error "
                               "(see above); rerun the same command to continue the study")
    summary = next(s for s in summaries(config.storage_url(), config.name)
                   if s.task == config.task)
    summary.counts = [c for c in summary.counts if c.variant in config.variant_names]
    summary.seconds = time.perf_counter() - start
    return summary
