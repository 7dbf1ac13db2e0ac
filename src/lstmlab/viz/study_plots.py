"""Plots of the variant study (matplotlib, Agg backend), after Greff et al. (2015):

    variant_boxes(figures, path, ...)         Fig. 3: the test figure per variant, best trials
    importance_bars(importances, path, ...)   Fig. 5: fANOVA importance per hyperparameter
    marginal_plot(xs, ys, path, ...)          Fig. 4: the figure against one hyperparameter
    interaction_map(grid, xs, ys, path, ...)  Fig. 6: the figure over two hyperparameters

Inputs are plain numbers; each function writes a PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def variant_boxes(figures: dict[str, Sequence[float]], path: str | Path, *, ylabel: str,
                  title: str, marks: dict[str, str] | None = None) -> Path:
    """One box per variant (in the given order) of its figures; ``marks`` colours a variant's
    box: "worse" red, "better" green (significant against vanilla), else grey."""
    names = list(figures)
    colours = {"worse": "tab:red", "better": "tab:green"}
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(names), 4))
    boxes = ax.boxplot([list(figures[n]) for n in names], patch_artist=True, widths=0.6)
    ax.set_xticks(range(1, len(names) + 1), names)
    for name, box in zip(names, boxes["boxes"], strict=True):
        box.set_facecolor(colours.get((marks or {}).get(name, ""), "lightgrey"))
    for k, name in enumerate(names, start=1):
        ys = list(figures[name])
        ax.scatter(np.full(len(ys), k) + np.linspace(-0.12, 0.12, len(ys)), ys, s=8,
                   color="black", zorder=3)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, Path(path))


def importance_bars(importances: dict[str, dict[str, float]], path: str | Path, *,
                    title: str) -> Path:
    """Grouped bars: for each variant (groups), each hyperparameter's importance (bars)."""
    variants = list(importances)
    params = sorted({p for v in importances.values() for p in v})
    fig, ax = plt.subplots(figsize=(1.5 + 0.9 * len(variants), 4))
    width = 0.8 / max(1, len(params))
    for k, param in enumerate(params):
        ax.bar(np.arange(len(variants)) + k * width - 0.4 + width / 2,
               [importances[v].get(param, 0.0) for v in variants], width, label=param)
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylabel("fANOVA importance (fraction of variance)")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, Path(path))


def marginal_plot(points: dict[str, tuple[Sequence[float], Sequence[float]]],
                  path: str | Path, *, xlabel: str, ylabel: str, title: str,
                  log_x: bool = True) -> Path:
    """The figure against one hyperparameter: every trial as a dot per variant, and the mean
    of all variants' trials in bins of x (with one standard deviation shaded)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    all_x, all_y = [], []
    for variant, (xs, ys) in points.items():
        ax.scatter(xs, ys, s=10, alpha=0.6, label=variant)
        all_x += list(xs)
        all_y += list(ys)
    if len(all_x) >= 4:
        x, y = np.asarray(all_x, float), np.asarray(all_y, float)
        edges = (np.geomspace(x.min(), x.max(), 9) if log_x and x.min() > 0
                 else np.linspace(x.min(), x.max(), 9))
        which = np.clip(np.digitize(x, edges) - 1, 0, len(edges) - 2)
        centres, means, stds = [], [], []
        for b in range(len(edges) - 1):
            inside = y[which == b]
            if inside.size:
                centres.append(np.sqrt(edges[b] * edges[b + 1]) if log_x
                               else (edges[b] + edges[b + 1]) / 2)
                means.append(inside.mean())
                stds.append(inside.std())
        means_a, stds_a = np.asarray(means), np.asarray(stds)
        ax.plot(centres, means_a, color="black", lw=2, label="mean (binned)")
        ax.fill_between(centres, means_a - stds_a, means_a + stds_a, color="black", alpha=0.1)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=3)
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def interaction_map(grid: np.ndarray, xs: np.ndarray, ys: np.ndarray, path: str | Path, *,
                    xlabel: str, ylabel: str, title: str, points: tuple | None = None) -> Path:
    """A heat map of ``grid`` (len(ys), len(xs)): the predicted figure over two
    hyperparameters (log axes), with the trials as dots."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    mesh = ax.pcolormesh(xs, ys, grid, shading="auto", cmap="viridis_r")
    fig.colorbar(mesh, ax=ax, label="predicted figure (lower is better)")
    if points is not None:
        ax.scatter(points[0], points[1], s=8, color="white", edgecolor="black", lw=0.3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return _save(fig, Path(path))
