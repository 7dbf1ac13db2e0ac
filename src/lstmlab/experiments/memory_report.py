"""The memory suite's report: a rich table for the terminal, and results.json, results.md and
plots (learning curves, success vs lag) in an output folder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from lstmlab.experiments.memory_suite import SuiteResult, Summary, format_count
from lstmlab.experiments.memory_trial import TrialResult, optimizer_used
from lstmlab.io import atomic_write_text

COLUMNS = ("task", "learner", "parameters", "solved", "sequences to success",
           "1997 paper (mean)", "test errors", "time")


def _row(s: Summary) -> list[str]:
    solved = f"{s.solved}/{s.seeds} ({s.percent_solved:.0f}%)"
    if s.median_sequences is None:
        sequences = "-"
    else:
        sequences = format_count(s.median_sequences)
        if s.seeds > 1 and s.min_sequences != s.max_sequences:
            sequences += f" ({format_count(s.min_sequences)}-{format_count(s.max_sequences)})"
        if s.median_guesses is not None:
            sequences += f" = {format_count(s.median_guesses)} guesses"
    reference = format_count(s.reference_sequences) if s.reference_sequences else "-"
    tests = "-" if s.median_test_errors is None else \
        f"{format_count(s.median_test_errors)} / {s.test_size:,}"
    parameters = "-" if s.parameters is None else f"{s.parameters:,}"
    return [s.task, s.learner, parameters, solved, sequences, reference, tests,
            f"{s.seconds:,.0f} s"]


def render_table(summaries: Sequence[Summary], title: str = "Memory suite") -> Table:
    """A rich table: one row per task x lag x learner."""
    table = Table(title=title, caption="sequences to success: median (range) of the solved "
                                       "trials' training sequences until the task's criterion "
                                       "held (lag: until its 10,000-in-a-row streak began; "
                                       "guessing: guesses x fixed set); 1997 paper: its "
                                       "figure, a mean over its trials; parameters: weights "
                                       "and biases; test errors: median over trials, on "
                                       "fresh sequences")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("task", "learner") else "right")
    previous = None
    for s in summaries:
        row = _row(s)
        if s.task == previous:
            row[0] = ""
        elif previous is not None:
            table.add_section()
        previous = s.task
        style = "green" if s.solved == s.seeds else ("red" if s.solved == 0 else "yellow")
        row[3] = f"[{style}]{row[3]}[/]"
        table.add_row(*row)
    return table


def markdown_table(summaries: Sequence[Summary]) -> str:
    """The same table in Markdown."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_row(s)) + " |" for s in summaries]
    return "\n".join(lines)


def schedule_words(learner: dict[str, Any]) -> str:
    """" (cosine)" or " (halved every 2,000 sequences)" for a learner's rate schedule (a
    ``LearnerConfig`` as a dict); "" for a constant rate."""
    if learner.get("schedule") == "cosine":
        return " (cosine)"
    if learner.get("schedule") == "exponential":
        return f" (halved every {learner['half_life']:,} sequences)"
    return ""


def optimizer_words(learner: dict[str, Any]) -> str:
    """"Adam lr 0.01", "AdamW lr 0.003 (halved every 2,000 sequences)": the optimiser a
    learner's settings (a ``LearnerConfig`` as a dict) train with, its rate and schedule."""
    name = optimizer_used(learner.get("optimizer", "adam"), learner.get("input_decay") or 0.0)
    name = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}.get(name, name)
    return f"{name} lr {learner['lr']:g}{schedule_words(learner)}"


def optional_settings(learner: dict[str, Any]) -> str:
    """", forget bias 5, input bias -3, input-weight decay 1" for the optional settings a
    learner's settings (a ``LearnerConfig`` as a dict) set; "" where they set none."""
    biases = "".join(f", {label} {learner[key]:g}" for key, label in
                     (("forget_bias", "forget bias"), ("input_bias", "input bias"))
                     if learner.get(key) is not None)
    decay = learner.get("input_decay") or 0.0
    return biases + (f", input-weight decay {decay:g}" if decay else "")


def write_report(result: SuiteResult, out: str | Path, plots: bool = True) -> list[Path]:
    """Write results.json and results.md (each atomically), and with ``plots``
    learning_curves.png and success_vs_lag.png, into ``out`` (created if missing). Returns the
    paths written. The suite calls it after every trial (without plots), so the files always
    hold every finished trial."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    data = out / "results.json"
    atomic_write_text(data, json.dumps(result.to_dict(), indent=1))
    paths.append(data)
    s = result.settings
    learner, budget = s["learner"], s["budget"]
    notes = [
        "# Memory suite results", "",
        f"Command: `{s.get('command') or 'lstmlab memory (library call)'}`" + "  ",
        f"Started {s.get('started', '?')}; {result.seconds:,.0f} s in all; "
        f"{s['threads']} torch thread(s)." + (" **Interrupted**: partial results." if
                                                 result.interrupted else ""), "",
        f"Learners: H={learner['hidden']}, batch {learner['batch']}, "
        f"{optimizer_words(learner)}, "
        f"clip {learner['clip']}, init {learner['init']}"
        + optional_settings(learner)
        + f"{', the inputs read by the outputs too' if learner.get('direct') else ''}, loss "
        f"{learner.get('loss', 'task')}, head {learner.get('head_init', 'default')}"
        f"{', curriculum on the lag' if learner.get('curriculum') else ''}; guessing: "
        f"{learner['guess_cell']} H={learner['guess_hidden']}, weights in "
        f"[-{learner['guess_range']:g}, {learner['guess_range']:g}], fixed set of "
        f"{learner['guess_set']} sequences. Budget per trial: "
        f"{format_count(budget['sequences']) if budget['sequences'] else 'unlimited'} sequences, "
        f"{(budget['seconds'] or 0) / 60:g} min; {s['seeds']} seed(s) from {s['seed']}.", "",
        markdown_table(result.summaries), "",
        "Sequences to success count every training sequence seen until the task's own criterion "
        "(docs/tasks.md) first held - for lag 2a/2b/2c, whose criterion is 10,000 correct "
        "sequences in a row, until that streak began, as the 1997 paper counts (its 2a figure, "
        "5,040, is below the streak's length); the 1997 paper's figure is for its online learner. "
        "Test errors "
        "are the median, over trials, of wrong sequences among fresh test sequences.", "",
        "References:", ""]
    seen = set()
    for summary in result.summaries:
        if summary.task not in seen:
            seen.add(summary.task)
            notes.append(f"- {summary.task}: {summary.reference}")
    paper_setups = {r.task: r.note for r in result.results if r.learner.startswith("lstm1997")}
    if paper_setups:
        notes += ["", "lstm1997 (the 1997 paper's own network, initialisation, learning rate and "
                  "online training; the options above are the other learners'):", ""]
        notes += [f"- {task}: {note}" for task, note in paper_setups.items()]
    notes += ["", "![learning curves](learning_curves.png)", "",
              "![success vs lag](success_vs_lag.png)", ""]
    md = out / "results.md"
    atomic_write_text(md, "\n".join(notes))
    paths.append(md)
    if plots:
        from lstmlab.viz.plots import learning_curves, success_vs_lag

        paths.append(learning_curves(result.results, out / "learning_curves.png"))
        paths.append(success_vs_lag(result.summaries, out / "success_vs_lag.png"))
    return paths


def read_results(path: str | Path) -> tuple[list[TrialResult], dict]:
    """The trials and settings of a results.json written by ``write_report``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        fields = set(TrialResult.__dataclass_fields__)
        trials = [TrialResult(**{k: v for k, v in t.items() if k in fields})
                  for t in data["trials"]]
        return trials, data["settings"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a memory-suite results file ({error}); move it away "
                         "or choose another --out") from None
