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

# the sequence-shape data sets: labelled texts, tagged sentences, piano rolls
from lstmlab.tasks.files import DataError  # noqa: E402
from lstmlab.tasks.music import Piece, music_batch, read_pieces  # noqa: E402
from lstmlab.tasks.sentiment import classification_batch, read_labelled  # noqa: E402
from lstmlab.tasks.tagging import read_tagged, tagging_batch  # noqa: E402
from lstmlab.tasks.words import WordVocabulary  # noqa: E402

__all__ += ["DataError", "Piece", "WordVocabulary", "classification_batch", "music_batch",
            "read_labelled", "read_pieces", "read_tagged", "tagging_batch"]
