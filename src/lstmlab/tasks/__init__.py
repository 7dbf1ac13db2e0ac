"""Data: the memory games (``lstmlab.tasks.memory``) with their stopping rules
(``lstmlab.tasks.stopping``); other data sets live in sibling modules, imported by their own names.

    >>> from lstmlab.tasks import make_task
    >>> task = make_task("lag", lag=100, variant="2c")
"""

from lstmlab.tasks.batch import Batch
from lstmlab.tasks.memory import (
    REFERENCE_SETUPS,
    TASK_NAMES,
    MemoryTask,
    embedded_reber_legal_next,
    is_embedded_reber,
    make_task,
)
from lstmlab.tasks.stopping import (
    BlockRule,
    StoppingRule,
    StreakRule,
    TestSetRule,
    WindowRule,
)

__all__ = ["REFERENCE_SETUPS", "TASK_NAMES", "Batch", "BlockRule", "MemoryTask", "StoppingRule",
           "StreakRule", "TestSetRule", "WindowRule", "embedded_reber_legal_next",
           "is_embedded_reber", "make_task"]
