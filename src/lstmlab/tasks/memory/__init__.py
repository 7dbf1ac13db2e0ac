"""The memory games: seeded generators of long-time-lag tasks of docs/tasks.md, each with its own
correctness rule and stopping rule.

    >>> task = make_task("adding", lag=100)
    >>> batch = task.sample(32, torch.Generator().manual_seed(0))
    >>> batch.inputs.shape                     # (T, B, I), time-major, T <= 110
    >>> loss = task.loss(head_outputs, batch)  # head_outputs: (T, B, task.output_size)
    >>> correct, error = task.evaluate(head_outputs, batch)
    >>> rule = task.stopping_rule(); rule.update(correct, error)

| name | variants | I | O | targets | loss | stop |
|---|---|---|---|---|---|---|
| intern | | N+D+1 | N | class at the query | ce | >= 99% test (ours) |
| tasks | | 2 | K+1 (1) | open count class (value) | ce (mse) | >= 99% test (ours) |
| romaji | | latin+51 | latin+1 | letters then end | ce | >= 99% test (ours) |
| reber | | 7 | 7 | legal next set (T,B,7) | mse_sigmoid | all train+test strings right |
| lag | 2a 2b 2c | p+1 / p+4 | p+1 / 2 | next symbol class | mse_sigmoid | 10,000 in a row |
| two_sequence | 3a 3b 3c | 1 | 1 | value at the end | mse_sigmoid | ST1 / ST2 on 256 |
| adding | 1997 bai | 2 | 1 | value at the end | mse_sigmoid / mse | last 2,000 |
| multiplication | | 2 | 1 | value at the end | mse_sigmoid | < 140 wrong of 2,000 |
| temporal_order | 6a 6b | 8 | 4 / 8 | class at the end | mse_sigmoid | last 2,000 |
| dsr | | 10 | 4 | classes at the prompts | ce | block of 1,000 >= 0.95 |
| timing | | 2 | 1 | level at every step | mse | mean error of 7,000 steps |
| copy | | 10 | 9 | digits at the end | ce | >= 99% test (ours) |
| parity | | 1 | 1 | 1/0 at the end | mse_sigmoid | >= 99% test (ours) |
| latch | | 1 | 1 | 1/0 at the end | mse_sigmoid | >= 99% test (ours) |
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from lstmlab.tasks.memory.base import (
    FIXED_SEED,
    LOSS_KINDS,
    TEST_SEED,
    UNIT,
    VALIDATION_SEED,
    Batch,
    MemoryTask,
)
from lstmlab.tasks.memory.games import InternTask, RomajiTask, TasksTask
from lstmlab.tasks.memory.literature import CopyTask, LatchTask, ParityTask
from lstmlab.tasks.memory.lstm1997 import (
    AddingTask,
    LagTask,
    MultiplicationTask,
    TemporalOrderTask,
    TwoSequenceTask,
)
from lstmlab.tasks.memory.reber import (
    REBER_GRAPH,
    REBER_SYMBOLS,
    ReberTask,
    decode_strings,
    embedded_reber_legal_next,
    encode_strings,
    is_embedded_reber,
    is_reber,
)
from lstmlab.tasks.memory.synaptic import DSRTask, TimingTask

TASKS: dict[str, type[MemoryTask]] = {
    "intern": InternTask,
    "tasks": TasksTask,
    "romaji": RomajiTask,
    "reber": ReberTask,
    "lag": LagTask,
    "two_sequence": TwoSequenceTask,
    "adding": AddingTask,
    "multiplication": MultiplicationTask,
    "temporal_order": TemporalOrderTask,
    "dsr": DSRTask,
    "timing": TimingTask,
    "copy": CopyTask,
    "parity": ParityTask,
    "latch": LatchTask,
}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)

REFERENCE_SETUPS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("reber", {}),
    ("lag", {"variant": "2a", "lag": 100}),
    ("lag", {"variant": "2b", "lag": 100}),
    ("lag", {"variant": "2c", "lag": 50}),
    ("lag", {"variant": "2c", "lag": 100}),
    ("lag", {"variant": "2c", "lag": 200}),
    ("lag", {"variant": "2c", "lag": 500}),
    ("lag", {"variant": "2c", "lag": 1000}),
    ("two_sequence", {"variant": "3a", "lag": 100, "signal_steps": 3}),
    ("two_sequence", {"variant": "3a", "lag": 100, "signal_steps": 1}),
    ("two_sequence", {"variant": "3a", "lag": 1000, "signal_steps": 3}),
    ("adding", {"lag": 100}),
    ("adding", {"lag": 500}),
    ("adding", {"lag": 1000}),
    ("adding", {"variant": "bai", "lag": 600}),
    ("multiplication", {"lag": 100}),
    ("multiplication", {"lag": 100, "stop_errors": 13}),
    ("temporal_order", {"variant": "6a"}),
    ("temporal_order", {"variant": "6b"}),
    ("dsr", {}),
    ("timing", {}),
    ("copy", {"lag": 1000}),
    ("parity", {}),
    ("latch", {}),
)
"""The configurations docs/tasks.md quotes a reference figure for: (name, make_task options)."""


def make_task(name: str, lag: int | None = None, **options: Any) -> MemoryTask:
    """The memory game ``name`` with length/lag parameter ``lag`` (None: the task's default).

    Options are the task class's keyword arguments, e.g. ``variant="2c"`` for "lag",
    ``stop="ST2"`` for "two_sequence", ``variant="bai"`` for "adding".

    Raises:
        ValueError: unknown name (the message lists the valid ones), unknown option, or a lag too
            short for the task (the message gives the minimum).
    """
    if name not in TASKS:
        raise ValueError(f"unknown memory task {name!r}; valid names: {', '.join(TASK_NAMES)}")
    cls = TASKS[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "lag")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {', '.join(unknown)}; valid options: "
                         f"{', '.join(accepted) or 'none'}")
    return cls(lag, **options)


# "6a" is short for ("temporal_order", {"variant": "6a"}), and so on.
TASK_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    **{v: ("lag", {"variant": v}) for v in ("2a", "2b", "2c")},
    **{v: ("two_sequence", {"variant": v}) for v in ("3a", "3b", "3c")},
    **{v: ("temporal_order", {"variant": v}) for v in ("6a", "6b")},
}


def parse_task(text: str) -> tuple[str, dict[str, Any]]:
    """A task as users write it: "adding", "temporal_order:6a", "lag:2c", "adding:bai", or a
    variant alone ("2a", "3a", "6b"). Returns (name, make_task options); unknown names raise
    ValueError listing the valid ones."""
    text = text.strip()
    if text in TASK_ALIASES:
        name, options = TASK_ALIASES[text]
        return name, dict(options)
    name, _, variant = text.partition(":")
    if name not in TASK_NAMES:
        raise ValueError(f"unknown memory task {text!r}; valid names: {', '.join(TASK_NAMES)} "
                         f"(a variant after a colon, e.g. temporal_order:6b, or alone: "
                         f"{', '.join(TASK_ALIASES)})")
    return name, ({"variant": variant} if variant else {})


def probe(task: MemoryTask, sequences: int = 256, seed: int = 0) -> Batch:
    """The fixed sample a learner's initialisation reads the task from (``build_memory_model``
    draws it once: for lag 2c at q=1000 it is a gigabyte of one-hot inputs)."""
    return task.sample(sequences, torch.Generator().manual_seed(seed))


__all__ = [
    "FIXED_SEED", "LOSS_KINDS", "REBER_GRAPH", "REBER_SYMBOLS", "REFERENCE_SETUPS",
    "TASKS", "TASK_ALIASES",
    "TASK_NAMES", "TEST_SEED", "UNIT", "VALIDATION_SEED", "AddingTask", "Batch", "CopyTask",
    "DSRTask", "InternTask", "LagTask", "LatchTask", "MemoryTask", "MultiplicationTask",
    "ParityTask", "ReberTask", "RomajiTask", "TasksTask", "TemporalOrderTask", "TimingTask",
    "TwoSequenceTask", "decode_strings", "embedded_reber_legal_next", "encode_strings",
    "is_embedded_reber", "is_reber", "make_task", "parse_task", "probe",
]
