"""Optional TensorBoard logging for the training loop (``pip install 'lstmlab[tensorboard]'``).

    >>> board = TensorBoardLog("runs/lm/tensorboard")
    >>> board.start(trainer)           # a resumed trainer's earlier points are not written again
    >>> trainer.run(step, on_step=lambda t, out: board.log_history(t))
    >>> board.scalar("valid/loss_nats", 1.52, trainer.state.step)
    >>> board.close()

The tensorboard package is imported only when a log is opened; without it a ValueError says how
to install it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class TensorBoardLog:
    """Writes the trainer's history points and any scalars as TensorBoard events.

    Args:
        log_dir: the folder for the event files (``tensorboard --logdir`` it).
        purge_step: on a resumed run, the step it resumes from: events after it (written by
            the interrupted run after its last checkpoint) are dropped.
    """

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:  # tensorboard is an optional extra
            raise ValueError("TensorBoard logging needs the tensorboard package: "
                             "pip install 'lstmlab[tensorboard]' (or pip install tensorboard)"
                             ) from error
        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(str(self.log_dir), purge_step=purge_step)
        self._logged = 0  # number of the trainer's history points already written

    def log_history(self, trainer: Any, prefix: str = "train") -> None:
        """Write the trainer's history points not written yet (loss, metrics, lr, tokens/s)."""
        history = trainer.history
        previous = history[self._logged - 1] if self._logged else None
        for point in history[self._logged:]:
            step = int(point["step"])
            for name, value in point.items():
                if name not in {"step", "sequences", "tokens", "seconds"}:
                    self.writer.add_scalar(f"{prefix}/{name}", value, step)
            if previous is not None and point["seconds"] > previous["seconds"]:
                speed = (point["tokens"] - previous["tokens"]) / (point["seconds"]
                                                                  - previous["seconds"])
                if speed > 0:
                    self.writer.add_scalar(f"{prefix}/tokens_per_second", speed, step)
            previous = point
        self._logged = len(history)

    def start(self, trainer: Any) -> None:
        """Mark the trainer's current history as already written (call before ``run``)."""
        self._logged = len(trainer.history)

    def scalar(self, name: str, value: float, step: int) -> None:
        self.writer.add_scalar(name, value, step)

    def text(self, name: str, text: str, step: int) -> None:
        self.writer.add_text(name, text, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
