"""Plots of the memory suite (matplotlib, Agg backend: no display needed).

    learning_curves(results, path)      training loss / accuracy against sequences seen
    success_vs_lag(summaries, path)     % of trials solved against the lag, one line per learner
    gradient_flow_plot(flows, path)     ||dLoss/dh_t|| against distance from the scored step, log y

Each function writes a PNG and returns its path. Inputs are plain data (the suite's results and
summaries, or dicts), so the plots can be redrawn from results.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

_COLOURS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green", "guess": "tab:gray",
            "lstm1997": "tab:purple"}


def _save(fig, path: Path) -> Path:
    """Lay out, write and close a figure; returns its path."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def colour(model: str) -> str | None:
    """A stable colour per learner kind (rnn red, lstm blue, gru green, guess grey, lstm1997
    purple)."""
    return _COLOURS.get(model) or _COLOURS.get(model.split(":")[0])


def _get(item: Any, key: str) -> Any:
    return item[key] if isinstance(item, dict) else getattr(item, key)


def learning_curves(results: Sequence[Any], path: str | Path, metric: str = "accuracy") -> Path:
    """One panel per task: the training ``metric`` (per-batch accuracy, or "loss") of every
    gradient-learner trial against training sequences seen; a dot marks where the task's
    criterion held. ``results``: TrialResult objects or their dicts."""
    path = Path(path)
    tasks: list[str] = []
    for r in results:
        if _get(r, "task") not in tasks and _get(r, "curve"):
            tasks.append(_get(r, "task"))
    columns = min(3, max(1, len(tasks)))
    rows = max(1, -(-len(tasks) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        labelled = set()
        for r in results:
            curve = _get(r, "curve")
            if _get(r, "task") != task or not curve:
                continue
            model = _get(r, "learner")
            xs = [p["sequences"] for p in curve]
            ys = [p.get(metric, float("nan")) for p in curve]
            ax.plot(xs, ys, color=colour(model), alpha=0.8, lw=1,
                    label=None if model in labelled else model)
            labelled.add(model)
            if _get(r, "solved") and _get(r, "sequences_to_success") is not None:
                ax.plot([_get(r, "sequences_to_success")], [ys[-1]], "o", color=colour(model))
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("training sequences")
        ax.set_ylabel(f"training {metric}")
        if metric == "loss":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def success_vs_lag(summaries: Sequence[Any], path: str | Path) -> Path:
    """One panel per task name (and variant): % of trials solved against the lag, one line per
    learner. ``summaries``: Summary objects or their dicts."""
    path = Path(path)
    groups: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for s in summaries:
        options = _get(s, "options")
        key = _get(s, "name") + (f" {options['variant']}" if options.get("variant") else "")
        percent = 100.0 * _get(s, "solved") / max(1, _get(s, "seeds"))
        groups.setdefault(key, {}).setdefault(_get(s, "learner"), []).append(
            (_get(s, "lag"), percent))
    columns = min(3, max(1, len(groups)))
    rows = max(1, -(-len(groups) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    markers = "osD^v<>"
    for ax, (task, models) in zip(axes.flat, groups.items(), strict=False):
        lags = sorted({p[0] for points in models.values() for p in points})
        if len(lags) == 1:  # one lag: a bar per learner says more than a lone dot
            names = list(models)
            heights = [models[m][0][1] for m in names]
            bars = ax.bar(range(len(names)), heights, color=[colour(m) for m in names])
            ax.bar_label(bars, labels=[f"{h:.0f}%" for h in heights], fontsize=8)
            ax.set_xticks(range(len(names)), names, fontsize=8)
            ax.set_xlabel(f"learner (lag {lags[0]})")
        else:
            # larger markers first, so a learner hidden under another still shows its rim
            for k, (model, points) in enumerate(models.items()):
                points.sort()
                ax.plot([p[0] for p in points], [p[1] for p in points], "-",
                        marker=markers[k % len(markers)], markersize=9 - 1.5 * (k % 4),
                        color=colour(model), label=model, zorder=2 + k, alpha=0.9)
            ax.set_xlabel("lag")
            if lags[-1] / max(1, lags[0]) >= 10:
                ax.set_xscale("log")
            ax.legend(fontsize=8)
        ax.set_title(task, fontsize=10)
        ax.set_ylabel("% of trials solved")
        ax.set_ylim(-5, 110)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def gradient_flow_plot(flows: Sequence[Any], path: str | Path, title: str = "") -> Path:
    """||dLoss/dh_t|| (solid) and, for LSTMs, ||dLoss/dc_t|| (dotted) against the distance from
    the scored step, on a log scale; one panel per stage ("init", "trained").

    ``flows``: GradientFlow objects or dicts with cell, stage, distance (D,), h (D,), c (D,) or
    None (norms averaged over the batch). Zeros (e.g. dL/dc at distance 0, which only the later
    steps carry) are left out of the log-scale lines."""
    path = Path(path)
    stages = []
    for f in flows:
        if _get(f, "stage") not in stages:
            stages.append(_get(f, "stage"))
    fig, axes = plt.subplots(1, len(stages), figsize=(6 * len(stages), 4.2), squeeze=False,
                             sharey=True)
    for ax, stage in zip(axes.flat, stages, strict=True):
        for f in flows:
            if _get(f, "stage") != stage:
                continue
            model, distance = _get(f, "cell"), list(_get(f, "distance"))
            h = [v if v > 0 else float("nan") for v in _get(f, "h")]
            ax.plot(distance, h, color=colour(model), label=f"{model}: dL/dh")
            c = _get(f, "c")
            if c is not None:
                ax.plot(distance, [v if v > 0 else float("nan") for v in c], ":",
                        color=colour(model),
                        label=f"{model}: dL/dc")
        ax.set_yscale("log")
        ax.set_xlabel("distance from the scored step (steps back)")
        ax.set_title(f"{title} - {stage}" if title else stage, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes.flat[0].set_ylabel("gradient norm (mean over sequences)")
    return _save(fig, path)
