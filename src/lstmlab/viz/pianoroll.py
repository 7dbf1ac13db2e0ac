"""A piano roll as a picture (matplotlib, Agg backend: no display needed).

    >>> pianoroll_png(roll, "piece.png", primed=16)     # roll (T, 88); time runs left to right
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402

LOWEST = 21  # MIDI pitch of the roll's first key (A0)


def pianoroll_png(roll: Tensor, path: str | Path, primed: int = 0,
                  title: str | None = None) -> Path:
    """Draw a (T, K) roll, keys bottom to top, with a line after the ``primed`` frames that
    were given rather than generated; the view is cropped to the keys that sound."""
    keys = roll.shape[1]
    sounding = roll.sum(0).nonzero().flatten().tolist()
    low, high = (min(sounding), max(sounding)) if sounding else (0, keys - 1)
    low, high = max(0, low - 2), min(keys - 1, high + 2)
    fig, ax = plt.subplots(figsize=(max(6.0, roll.shape[0] / 12), 4))
    ax.imshow(roll[:, low:high + 1].T.numpy(), origin="lower", aspect="auto", cmap="Greys",
              interpolation="nearest", extent=(-0.5, roll.shape[0] - 0.5, LOWEST + low - 0.5,
                                               LOWEST + high + 0.5))
    if primed:
        ax.axvline(primed - 0.5, color="tab:red", linewidth=1, label="end of the prime")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel("MIDI pitch")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
