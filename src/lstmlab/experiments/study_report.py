"""The variant study's report (``lstmlab study report``): from the storage, per task, Greff et
al. (2015)'s analysis of this study's trials, beside their findings.

    >>> report = build_report("sqlite:///study/study.db", "odyssey", "study/report")
    >>> report.agree, report.total          # Greff's findings this study reproduces

Per task (from the COMPLETE trials; diverged and pruned ones are left out):

- Fig. 3: box plots of the test figure per variant over the best ``best_fraction`` of its trials
  (ranked by validation, at least ``min_best``), with Welch's t-test of each variant against
  vanilla (``scipy.stats.ttest_ind(equal_var=False)``); p < ``alpha`` marks a variant
  significantly worse (red) or better (green).
- Fig. 5: the importance of each hyperparameter for the validation figure by fANOVA
  (``optuna.importance.FanovaImportanceEvaluator``, a random forest from scikit-learn), per
  variant and in the mean over variants.
- Fig. 4: the validation figure against the learning rate and against the hidden size (every
  trial, and binned means).
- Fig. 6: the interaction of learning rate and hidden size: a random forest fitted to the
  trials of all variants predicts the figure on a grid of (log lr, log hidden); the share of
  the grid's variance not explained by the two main effects is the interaction's share, as in
  fANOVA with a uniform measure over the grid.
- A table of Greff's findings beside this study's, each marked agrees / differs.

Writes report.md, report.html (images beside it, no external files), report.json and PNGs.
"""

from __future__ import annotations

import html
import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from lstmlab.experiments.study import VARIANT_NAMES, open_storage, quiet_optuna, shown_url
from lstmlab.io import atomic_write_text, writable_folder
from lstmlab.viz.study_plots import importance_bars, interaction_map, marginal_plot, variant_boxes

PARAM_LABELS = {"lr": "learning rate", "hidden": "hidden size", "one_minus_momentum": "momentum",
                "input_noise": "input noise"}
INTERACTION_SMALL = 0.10  # an interaction share below this is "little"


@dataclass
class TrialRecord:
    number: int
    valid: float
    test: float
    params: dict[str, float]


@dataclass
class Finding:
    """One of Greff et al.'s findings, and what this study shows for a task."""

    claim: str
    greff: str
    here: str
    verdict: str  # "agrees", "differs", "not measured"


@dataclass
class TaskReport:
    task: str
    figure: str
    trials: dict[str, int]
    best: dict[str, list[float]]
    welch: dict[str, dict[str, float]]
    marks: dict[str, str]
    importance: dict[str, dict[str, float]]
    mean_importance: dict[str, float]
    interaction: float | None
    findings: list[Finding] = field(default_factory=list)


@dataclass
class Report:
    name: str
    storage: str
    tasks: list[TaskReport]
    out: str

    @property
    def agree(self) -> int:
        return sum(f.verdict == "agrees" for t in self.tasks for f in t.findings)

    @property
    def total(self) -> int:
        return sum(f.verdict != "not measured" for t in self.tasks for f in t.findings)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "agree": self.agree, "total": self.total}


# --- reading the storage ------------------------------------------------------------------------


def load_trials(storage_url: str, name: str
                ) -> dict[str, tuple[dict[str, Any], dict[str, optuna.Study]]]:
    """task -> (the study's record, variant -> its Optuna study), for study ``name``."""
    quiet_optuna()
    storage = open_storage(storage_url)
    tasks: dict[str, tuple[dict[str, Any], dict[str, optuna.Study]]] = {}
    names = optuna.get_all_study_names(storage)
    for full in names:
        parts = full.split("/")
        if len(parts) != 3 or parts[0] != name:
            continue
        study = optuna.load_study(study_name=full, storage=storage)
        record = study.user_attrs.get("lstmlab") or {}
        tasks.setdefault(parts[1], (record, {}))[1][parts[2]] = study
    if not tasks:
        known = sorted({n.split("/")[0] for n in names})
        raise ValueError(f"no study {name!r} in {shown_url(storage_url)}"
                         + (f"; it holds: {', '.join(known)}" if known else " (it is empty)"))
    return tasks


def _records(study: optuna.Study) -> list[TrialRecord]:
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        test = t.user_attrs.get("test")
        out.append(TrialRecord(t.number, float(t.value),
                               float(t.value if test is None else test), dict(t.params)))
    return out


# --- the analysis -------------------------------------------------------------------------------


def best_trials(records: list[TrialRecord], fraction: float, minimum: int) -> list[TrialRecord]:
    """The best ``fraction`` of trials by validation figure, at least ``minimum`` (or all)."""
    count = min(len(records), max(minimum, math.ceil(fraction * len(records))))
    return sorted(records, key=lambda r: r.valid)[:count]


def welch(best: dict[str, list[float]], alpha: float) -> tuple[dict[str, dict[str, float]],
                                                             dict[str, str]]:
    """Welch's t-test of each variant's figures against vanilla's: {variant: {t, p, mean}}
    and the marks "worse" / "better" where p < alpha."""
    from scipy.stats import ttest_ind

    tests, marks = {}, {}
    base = best.get("V", [])
    for variant, values in best.items():
        if variant == "V" or len(values) < 2 or len(base) < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # identical samples: p is nan
            t, p = ttest_ind(values, base, equal_var=False)
        tests[variant] = {"t": float(t), "p": float(p), "mean": float(np.mean(values)),
                          "vanilla_mean": float(np.mean(base))}
        if math.isfinite(p) and p < alpha:
            marks[variant] = "worse" if np.mean(values) > np.mean(base) else "better"
    return tests, marks


def fanova(study: optuna.Study, seed: int = 0) -> dict[str, float] | None:
    """fANOVA importances of the study's hyperparameters (None with fewer than 3 trials or no
    variance)."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 3 or len({t.value for t in complete}) < 2:
        return None
    try:
        found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed))
    except (RuntimeError, ValueError):
        return None
    return {k: float(v) for k, v in found.items()}


def interaction_share(records: list[TrialRecord], seed: int = 0, size: int = 24
                      ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray] | None:
    """The lr x hidden interaction's share of the predicted figure's variance on a grid (see
    the module), with the grid and its axes; None with fewer than 6 trials."""
    from sklearn.ensemble import RandomForestRegressor

    if len(records) < 6:
        return None
    x = np.array([[math.log(r.params["lr"]), math.log(r.params["hidden"])] for r in records])
    y = np.array([r.valid for r in records])
    forest = RandomForestRegressor(n_estimators=64, min_samples_leaf=2, random_state=seed)
    forest.fit(x, y)
    lrs = np.linspace(x[:, 0].min(), x[:, 0].max(), size)
    hs = np.linspace(x[:, 1].min(), x[:, 1].max(), size)
    grid = forest.predict(np.array([[a, b] for b in hs for a in lrs])).reshape(size, size)
    total = grid.var()
    if total <= 0:
        return None
    mains = grid.mean(0, keepdims=True) + grid.mean(1, keepdims=True) - grid.mean()
    return float((grid - mains).var() / total), grid, np.exp(lrs), np.exp(hs)


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("agrees" if ok else "differs")


def findings(task: TaskReport) -> list[Finding]:
    """Greff et al.'s findings, point by point, for one task of this study."""
    measured = set(task.best)
    out = []

    def p_of(v: str) -> str:
        w = task.welch.get(v)
        return "-" if w is None else f"p = {w['p']:.3g}"

    better = [v for v, m in task.marks.items() if m == "better"]
    out.append(Finding("No variant is significantly better than vanilla",
                       "none better on any task (p < 0.05)",
                       f"better: {', '.join(better) or 'none'}",
                       _verdict(None if not task.welch else not better)))
    for v, what in (("NFG", "removing the forget gate"), ("NOAF", "removing the output "
                                                                   "activation")):
        ok = None if v not in measured or v not in task.welch else task.marks.get(v) == "worse"
        out.append(Finding(f"{v}: {what} hurts significantly", "worse on every task",
                           f"{task.marks.get(v, 'no significant difference')} ({p_of(v)})",
                           _verdict(ok)))
    for v, what in (("CIFG", "coupling input and forget gates"), ("NP", "removing peepholes")):
        ok = None if v not in measured or v not in task.welch else task.marks.get(v) != "worse"
        out.append(Finding(f"{v}: {what} costs nothing significant", "not significantly worse",
                           f"{task.marks.get(v, 'no significant difference')} ({p_of(v)})",
                           _verdict(ok)))
    ranked = sorted(task.mean_importance, key=task.mean_importance.get, reverse=True)
    shown = ", ".join(f"{PARAM_LABELS.get(p, p)} {task.mean_importance[p]:.2f}" for p in ranked)
    out.append(Finding("The learning rate is the most important hyperparameter",
                       "most important on every task", shown or "-",
                       _verdict(ranked[0] == "lr" if ranked else None)))
    out.append(Finding("The hidden size comes second", "second most important",
                       shown or "-",
                       _verdict(ranked[1] == "hidden" if len(ranked) > 1 else None)))
    share = task.interaction
    out.append(Finding("Hyperparameters interact little (learning rate x hidden size)",
                       "small interactions; tune each on its own",
                       "-" if share is None else f"interaction share {share:.0%}",
                       _verdict(None if share is None else share < INTERACTION_SMALL)))
    return out


def analyse_task(task: str, record: dict[str, Any], studies: dict[str, optuna.Study],
                 out: Path, *, best_fraction: float, min_best: int, alpha: float
                 ) -> tuple[TaskReport, list[tuple]]:
    """The analysis and figures of one task; returns its report and its blocks."""
    figure = record.get("figure", "figure")
    order = [v for v in VARIANT_NAMES if v in studies] + sorted(set(studies) - set(VARIANT_NAMES))
    records = {v: _records(studies[v]) for v in order}
    trials = {v: len(r) for v, r in records.items()}
    best = {v: [r.test for r in best_trials(records[v], best_fraction, min_best)]
            for v in order if records[v]}
    tests, marks = welch(best, alpha)
    importance = {v: imp for v in order if (imp := fanova(studies[v])) is not None}
    params = sorted({p for imp in importance.values() for p in imp})
    mean_importance = {p: float(np.mean([imp.get(p, 0.0) for imp in importance.values()]))
                       for p in params}
    pooled = [r for v in order for r in records[v]]
    inter = interaction_share(pooled)
    report = TaskReport(task, figure, trials, best, tests, marks, importance, mean_importance,
                        None if inter is None else inter[0])
    report.findings = findings(report)

    blocks: list[tuple] = [("h2", f"Task {task}: {figure}, lower is better")]
    blocks.append(("p", "Trials completed per variant: "
                        + ", ".join(f"{v} {n}" for v, n in trials.items())
                        + f". Settings: {json.dumps(record.get('settings', {}))}."))
    if best:
        png = variant_boxes(best, out / f"{task}_boxes.png", ylabel=f"test {figure}",
                            title=f"{task}: best trials (Fig. 3)", marks=marks)
        blocks.append(("img", png.name, "box plots per variant (Greff Fig. 3)"))
        rows = [[v, str(len(best[v])), f"{np.mean(best[v]):.4g}", f"{np.std(best[v]):.3g}",
                 f"{tests[v]['p']:.3g}" if v in tests else "-", marks.get(v, "")]
                for v in best]
        blocks.append(("table", ["variant", "best trials", "mean", "std",
                                 "Welch p vs V", f"p < {alpha}"], rows))
    if importance:
        png = importance_bars({v: {PARAM_LABELS.get(p, p): x for p, x in imp.items()}
                               for v, imp in importance.items()},
                              out / f"{task}_importance.png",
                              title=f"{task}: fANOVA importance (Greff Fig. 5)")
        blocks.append(("img", png.name, "hyperparameter importance (Greff Fig. 5)"))
        rows = [[v] + [f"{imp.get(p, 0.0):.2f}" for p in params]
                for v, imp in importance.items()]
        rows.append(["mean"] + [f"{mean_importance[p]:.2f}" for p in params])
        blocks.append(("table", ["variant"] + [PARAM_LABELS.get(p, p) for p in params], rows))
    for param in ("lr", "hidden"):
        points = {v: ([r.params[param] for r in records[v]], [r.valid for r in records[v]])
                  for v in order if records[v]}
        if points:
            png = marginal_plot(points, out / f"{task}_marginal_{param}.png",
                                xlabel=PARAM_LABELS[param], ylabel=f"validation {figure}",
                                title=f"{task}: {PARAM_LABELS[param]} (Greff Fig. 4)")
            blocks.append(("img", png.name, f"marginal of the {PARAM_LABELS[param]}"))
    if inter is not None:
        share, grid, lrs, hs = inter
        png = interaction_map(grid, lrs, hs, out / f"{task}_interaction.png",
                              xlabel="learning rate", ylabel="hidden size",
                              title=f"{task}: lr x hidden, interaction share {share:.0%} "
                                    "(Greff Fig. 6)",
                              points=([r.params["lr"] for r in pooled],
                                      [r.params["hidden"] for r in pooled]))
        blocks.append(("img", png.name, "learning rate x hidden size"))
    agree = sum(f.verdict == "agrees" for f in report.findings)
    total = sum(f.verdict != "not measured" for f in report.findings)
    blocks.append(("h3", f"Greff et al.'s findings: {agree} of {total} agree"))
    blocks.append(("table", ["finding", "Greff et al. 2015", "this study", "verdict"],
                   [[f.claim, f.greff, f.here, f.verdict] for f in report.findings]))
    return report, blocks


# --- writing ------------------------------------------------------------------------------------


def _markdown(blocks: list[tuple]) -> str:
    lines = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "img":
            lines += [f"![{block[2]}]({block[1]})", ""]
        elif kind == "table":
            header, rows = block[1], block[2]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(r) + " |" for r in rows]
            lines.append("")
    return "\n".join(lines)


def _html(blocks: list[tuple], title: str) -> str:
    e = html.escape
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{e(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{e(block[1])}</p>")
        elif kind == "img":
            body.append(f'<p><img src="{e(block[1])}" alt="{e(block[2])}"></p>')
        elif kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td class='{e(c)}'>{e(c)}</td>" for c in r)
                           + "</tr>" for r in block[2])
            body.append(f"<table><tr>{head}</tr>{rows}</table>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:.2em .5em}.agrees,.better{background:#dfd}.differs,.worse{background:#fdd}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{e(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def build_report(storage_url: str, name: str, out: str | Path, *, best_fraction: float = 0.1,
                 min_best: int = 3, alpha: float = 0.05) -> Report:
    """Analyse study ``name`` and write its report into ``out`` (see the module)."""
    if not 0 < best_fraction <= 1:
        raise ValueError(f"best-fraction must be in (0, 1], got {best_fraction}")
    if min_best < 2:
        raise ValueError(f"min-best must be at least 2 (a t-test needs two), got {min_best}")
    tasks = load_trials(storage_url, name)
    if not any(s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
               for _, studies in tasks.values() for s in studies.values()):
        raise ValueError(f"study {name!r} in {shown_url(storage_url)} has no completed trial yet: "
                         "run `lstmlab study run` first (or wait for its workers)")
    folder = writable_folder(out)
    blocks: list[tuple] = [("h1", f"Variant study {name!r}: LSTM variants after Greff et al. "
                                  "(2015)")]
    blocks.append(("p", f"Storage: {shown_url(storage_url)}. Box plots and t-tests: the best "
                        f"{best_fraction:.0%} of each variant's trials by validation (at least "
                        f"{min_best}), Welch's t-test against vanilla V at p < {alpha}. "
                        "Importance: fANOVA of the validation figure. Lower is better."))
    reports = []
    for task in sorted(tasks):
        record, studies = tasks[task]
        report, task_blocks = analyse_task(task, record, studies, folder,
                                           best_fraction=best_fraction, min_best=min_best,
                                           alpha=alpha)
        reports.append(report)
        blocks += task_blocks
    result = Report(name, shown_url(storage_url), reports, str(folder))
    blocks.insert(1, ("p", f"Greff et al.'s findings reproduced: {result.agree} of "
                           f"{result.total} measured."))
    atomic_write_text(folder / "report.md", _markdown(blocks))
    atomic_write_text(folder / "report.html", _html(blocks, f"Variant study {name}"))
    atomic_write_text(folder / "report.json", json.dumps(result.to_dict(), indent=1) + "\n")
    return result
