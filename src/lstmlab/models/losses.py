"""Training losses over a task's scored steps.

``training_loss`` is the scalar a memory-game learner minimises: the task's own loss
(``task.loss``: squared error of logistic outputs, as the 1997 networks had, or cross-entropy;
the mean over the batch's scored steps), binary cross-entropy for tasks with logistic outputs,
or "sse", the 1997 paper's own objective: half the squared error summed over every scored step
of a sequence (appendix A.1: the error of output unit k is f'(net_k)(t_k - y_k), eq. 19, and a
weight's change is the sum of every time step's contribution), so that its learning rates apply
as published. Success is always judged by the task's own rule, whatever the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lstmlab.tasks.batch import Batch
from lstmlab.tasks.memory import MemoryTask

LOSSES = ("task", "bce", "sse")


def training_loss(task: MemoryTask, outputs: torch.Tensor, batch: Batch, kind: str = "task"
                  ) -> torch.Tensor:
    """The scalar the optimiser minimises (outputs (T, B, O) raw head outputs):

        "task"  ``task.loss``;
        "bce"   on a task with logistic outputs, binary cross-entropy in nats summed over units,
                mean over the scored steps (other tasks: ``task.loss``);
        "sse"   on a task with squared error (logistic or linear outputs), 1/2 (y - t)^2 summed
                over units and over each sequence's scored steps, mean over the sequences.
    """
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {kind!r}")
    if kind == "sse":
        if task.loss_kind == "ce":
            raise ValueError(f"loss 'sse' is a squared error; {task.title} is trained on "
                             "cross-entropy (loss kind 'ce')")
        task.check_outputs(outputs, batch)
        predicted = task.predict(outputs)
        squared = (predicted - task.target_vectors(batch).to(predicted.dtype)).square().sum(-1)
        return 0.5 * squared[batch.mask].sum() / batch.batch_size
    if kind == "bce" and task.loss_kind == "mse_sigmoid":
        task.check_outputs(outputs, batch)
        targets = task.target_vectors(batch).to(outputs.dtype)
        per_step = F.binary_cross_entropy_with_logits(outputs, targets, reduction="none").sum(-1)
        return per_step[batch.mask].mean()
    return task.loss(outputs, batch)
