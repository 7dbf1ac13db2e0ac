"""Training losses over a task's scored steps.

``training_loss`` is the scalar a memory-game learner minimises: the task's own loss
(``task.loss``, as the 1997 paper trains: squared error of logistic outputs, or cross-entropy)
or binary cross-entropy for tasks with logistic outputs. Success is always judged by the task's
own rule, whatever the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lstmlab.tasks.batch import Batch
from lstmlab.tasks.memory import MemoryTask

LOSSES = ("task", "bce")


def training_loss(task: MemoryTask, outputs: torch.Tensor, batch: Batch, kind: str = "task"
                  ) -> torch.Tensor:
    """The scalar the optimiser minimises: ``task.loss`` or, with kind "bce" on a task with
    logistic outputs, binary cross-entropy in nats summed over units, mean over the scored steps
    (outputs (T, B, O) raw head outputs)."""
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {kind!r}")
    if kind == "bce" and task.loss_kind == "mse_sigmoid":
        task.check_outputs(outputs, batch)
        targets = task.target_vectors(batch).to(outputs.dtype)
        per_step = F.binary_cross_entropy_with_logits(outputs, targets, reduction="none").sum(-1)
        return per_step[batch.mask].mean()
    return task.loss(outputs, batch)
