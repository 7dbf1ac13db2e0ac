"""The attention matrix of one translated sentence as a picture: source tokens across, output
tokens down, each cell the weight (0-1) the decoder gave that source token for that output."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def plot_attention(weights: np.ndarray, source: Sequence[str], target: Sequence[str],
                   path: str | Path, title: str | None = None) -> Path:
    """Write a PNG of ``weights`` (T, S) - rows the ``target`` tokens, columns the ``source``
    tokens - to ``path``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = np.asarray(weights, dtype=float)
    if weights.shape != (len(target), len(source)):
        raise ValueError(f"attention weights are {weights.shape}, expected (target tokens "
                         f"{len(target)}, source tokens {len(source)})")
    width = max(4.0, 0.45 * len(source) + 2)
    height = max(3.0, 0.4 * len(target) + 1.5)
    fig, ax = plt.subplots(figsize=(width, height))
    image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)), labels=list(source), rotation=60, ha="right")
    ax.set_yticks(range(len(target)), labels=list(target))
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.04, label="attention weight")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
    return path
