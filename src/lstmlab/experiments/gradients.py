"""Gradient flow: how much of the loss's gradient reaches a state d steps before the scored step.

For a model and a batch, run the recurrent layer one step at a time through its public API,
passing the state along (``out, state = layer(x[t:t+1], state)``), keep each step's state tensors
(``retain_grad``), read the head from the state, and backpropagate the loss. The gradient then
stored on h_t is the TOTAL derivative dLoss/dh_t (through the head at step t and through every
later step), and on c_t (LSTM) dLoss/dc_t. Its norm against the distance d = (scored step - t)
is the slides' vanishing gradient made visible: a tanh RNN's falls exponentially with d, an
LSTM's cell-state gradient is carried nearly unchanged.

    >>> flow = gradient_flow(model, task, batch)      # distance (D,), h (D,), c (D,) or None
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from lstmlab.experiments.learner import (
    TaskStep,
    fresh_batches,
    learner_optimizer,
    learner_train_config,
)
from lstmlab.experiments.memory_trial import Budget, LearnerConfig
from lstmlab.models.memory import build_memory_model
from lstmlab.models.recurrent import canonical_name
from lstmlab.models.sequence import SequenceModel
from lstmlab.tasks.batch import Batch
from lstmlab.tasks.memory import MemoryTask, make_task
from lstmlab.train.loop import Trainer


@dataclass
class GradientFlow:
    """Mean gradient norms by distance. ``distance[k]`` = k steps before the scored step;
    ``h[k]`` = mean over sequences of ||dLoss_b/dh_t|| (all layers' h of the state), ``c[k]`` the
    same for the LSTM's cell state as the layer returns it, i.e. the gradient carried back
    through the later steps (0 at d = 0; None for RNN and GRU). Loss_b is sequence b's own loss."""

    cell: str
    stage: str  # "init" or "trained"
    distance: list[int]
    h: list[float]
    c: list[float] | None
    trained_sequences: int = 0
    accuracy: float = float("nan")  # training-batch accuracy at the end of training


def _last_scored(batch: Batch) -> Tensor:
    """(B,) the last scored step of each sequence (the reference for distances)."""
    steps = torch.arange(batch.steps).unsqueeze(1).expand_as(batch.mask)
    return torch.where(batch.mask, steps, -1).amax(0)


def state_gradients(model: SequenceModel, task: MemoryTask, batch: Batch
                    ) -> tuple[Tensor, Tensor | None]:
    """Per step and sequence, ||dLoss_b/dh_t|| and ||dLoss_b/dc_t||: (T, B) each (c: None
    unless the model is an LSTM). Loss_b is sequence b's loss (the batch-mean loss times B)."""
    layer = model.recurrent
    x = batch.inputs
    state = None
    hs, cs, tops = [], [], []
    for t in range(batch.steps):
        _, state = layer(x[t:t + 1], state)
        if isinstance(state, tuple):
            h, c = state[0], state[1]
            c.retain_grad()
            cs.append(c)
        else:
            h = state
        h.retain_grad()
        hs.append(h)
        tops.append(h[-1])  # the top layer's output at step t, (B, H)
    outputs = model.head(torch.stack(tops))  # (T, B, O)
    model.zero_grad(set_to_none=True)
    (task.loss(outputs, batch) * batch.batch_size).backward()

    def norms(states: list[Tensor]) -> Tensor:
        grads = torch.stack([s.grad if s.grad is not None else torch.zeros_like(s)
                             for s in states])  # (T, L, B, H)
        return grads.square().sum((1, 3)).sqrt()  # (T, B)

    return norms(hs).detach(), (norms(cs).detach() if cs else None)


def by_distance(norms: Tensor, batch: Batch) -> tuple[list[int], list[float]]:
    """(T, B) norms -> (distances 0..D-1, mean norm at each distance over the sequences whose
    last scored step is at least that far from the start)."""
    last = _last_scored(batch)
    steps = torch.arange(batch.steps).unsqueeze(1)
    distance = last.unsqueeze(0) - steps  # (T, B)
    valid = (distance >= 0) & (last >= 0).unsqueeze(0)
    most = int(distance[valid].max()) if valid.any() else -1
    sums = torch.zeros(most + 1, dtype=torch.float64)
    counts = torch.zeros(most + 1, dtype=torch.float64)
    sums.index_add_(0, distance[valid], norms[valid].double())
    counts.index_add_(0, distance[valid], torch.ones_like(norms[valid], dtype=torch.float64))
    return list(range(most + 1)), (sums / counts.clamp(min=1)).tolist()


def gradient_flow(model: SequenceModel, task: MemoryTask, batch: Batch, stage: str = "init"
                  ) -> GradientFlow:
    """Mean ||dLoss/dh_t|| (and ||dLoss/dc_t||) of ``model`` on ``batch`` against distance."""
    was_training = model.training
    model.eval()
    try:
        h, c = state_gradients(model, task, batch)
    finally:
        model.train(was_training)
    distance, h_mean = by_distance(h, batch)
    c_mean = by_distance(c, batch)[1] if c is not None else None
    return GradientFlow(model.cell, stage,
                        distance, h_mean, c_mean)


def train_for(model: SequenceModel, task: MemoryTask, config: LearnerConfig, budget: Budget,
              seed: int) -> tuple[int, float]:
    """Train ``model`` on fresh batches for the budget (no stopping rule). Returns (sequences
    seen, the last logged training accuracy)."""
    data = torch.Generator().manual_seed(seed)
    train = learner_train_config(config, budget)
    trainer = Trainer(model, train, learner_optimizer(model, config, train))
    result = trainer.run(TaskStep(task, config.loss), fresh_batches(task, config.batch, data))
    accuracy = result.history[-1]["accuracy"] if result.history else float("nan")
    return trainer.state.sequences, accuracy


def gradient_flow_experiment(name: str, options: dict[str, Any], lag: int | None,
                             cells: list[str], config: LearnerConfig | None = None,
                             train_sequences: int = 20_000, measure_batch: int = 256,
                             seed: int = 0, train_seconds: float | None = None
                             ) -> dict[str, Any]:
    """For each cell: gradient flow at initialisation and, when ``train_sequences`` > 0, after
    training on that many sequences. Returns a JSON-ready dict: task, lag, checkpoints (distances
    for a summary table) and flows (``GradientFlow`` dicts)."""
    config = config or LearnerConfig()
    task = make_task(name, lag, **options)
    batch = task.fixed_set(measure_batch, seed=12345)
    flows = []
    for cell in cells:
        model = build_memory_model(task, canonical_name(cell), config.hidden,
                                   init=config.init, head_init=config.head_init,
                                   forget_bias=config.forget_bias,
                                   input_bias=config.input_bias, direct=config.direct,
                                   kernel=config.kernel, seed=seed)
        flows.append(gradient_flow(model, task, batch, "init"))
        if train_sequences > 0:
            seen, accuracy = train_for(model, task, config,
                                       Budget(sequences=train_sequences, seconds=train_seconds),
                                       seed)
            flow = gradient_flow(model, task, batch, "trained")
            flow.trained_sequences, flow.accuracy = seen, accuracy
            flows.append(flow)
    most = max(len(f.distance) for f in flows) - 1
    checkpoints = [d for d in (0, 1, 5, 10, 25, 50, 100, 200, 500, 1000) if d <= most]
    return {"task": task.title, "name": name, "options": options, "lag": task.lag,
            "learner": asdict(config), "measure_batch": measure_batch, "seed": seed,
            "checkpoints": checkpoints, "flows": [asdict(f) for f in flows]}
