"""Many-to-one data: one labelled text a line (sentiment analysis, topic labels...).

Two formats, detected from the file (``format="auto"``) or forced:

- ``"sst"``: ``<label> <text>``, the label the first whitespace-separated field (SST-2 as Kim
  2014 distributes it: ``1 a gripping , funny film .``);
- ``"tsv"``: ``<label>\\t<text>``, everything before the first tab the label.

Auto-detection reads the first non-blank line: a tab makes the file TSV, otherwise SST. Labels
are any strings; texts are split on whitespace into words. Blank lines are skipped (and
counted); every other bad line is an error naming the file and the line.

    >>> data = read_labelled("sst2/stsa.binary.train")
    >>> data.examples[0].label, data.examples[0].words[:3]
    ('1', ('a', 'stirring', ','))
    >>> batch = classification_batch(vocab, [encoded...], labels=[1, 0, ...])
    >>> batch.extras["labels"]           # (B,) class indices

A classification batch is time-major like every ``Batch``: inputs (T, B) word ids with their
lengths; the class index sits in ``targets`` at each text's last word, which is the one scored
step of the ``mask`` (many-to-one), and in ``extras["labels"]`` (B,).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lstmlab.tasks.batch import Batch
from lstmlab.tasks.files import DataError, PathLike, at, read_lines
from lstmlab.tasks.words import Encoded, WordVocabulary

FORMATS = ("auto", "sst", "tsv")


@dataclass(frozen=True)
class Example:
    """One labelled text: its label, its words, and the line of the file it came from."""

    label: str
    words: tuple[str, ...]
    line: int = 0


@dataclass
class LabelledData:
    """The examples of one file, the format they were read in, and blank lines skipped."""

    path: str
    format: str
    examples: list[Example]
    blank_lines: int = 0

    def __len__(self) -> int:
        return len(self.examples)

    def label_counts(self) -> Counter[str]:
        return Counter(e.label for e in self.examples)

    def summary(self) -> str:
        counts = ", ".join(f"{label} {n:,}" for label, n in sorted(self.label_counts().items()))
        blank = f"; {self.blank_lines:,} blank lines skipped" if self.blank_lines else ""
        return f"{self.path} ({self.format}): {len(self):,} texts ({counts}){blank}"


def detect_format(lines: Sequence[str]) -> str:
    """"tsv" when the first non-blank line holds a tab, else "sst"."""
    for line in lines:
        if line.strip():
            return "tsv" if "\t" in line else "sst"
    return "sst"


def parse_line(line: str, format: str) -> tuple[str, str]:
    """(label, text) of one non-blank line in ``format`` ("sst" or "tsv"); ValueError says
    what is missing."""
    if format == "tsv":
        if "\t" not in line:
            raise ValueError("no tab: expected <label><TAB><text>")
        label, _, text = line.partition("\t")
        label = label.strip()
        if not label:
            raise ValueError("no label before the tab: expected <label><TAB><text>")
    else:
        parts = line.strip().split(None, 1)
        label, text = parts[0], parts[1] if len(parts) > 1 else ""
    if not text.strip():
        raise ValueError(f"label {label!r} without text: expected "
                         + ("<label><TAB><text>" if format == "tsv" else "<label> <text>"))
    return label, text


def read_labelled(path: PathLike, format: str = "auto", what: str = "data") -> LabelledData:
    """Read one labelled text a line (see the module's formats); ``what`` names the file's role
    in messages ("train", "valid", "test")."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    lines = read_lines(path, what)
    if format == "auto":
        format = detect_format(lines)
    examples, blank = [], 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            blank += number < len(lines)  # the empty string after a final newline is no line
            continue
        try:
            label, text = parse_line(line, format)
        except ValueError as error:
            hint = (" (the file reads as TSV because its first line has a tab; pass "
                    "--format sst if it is not)" if format == "tsv" and "no tab" in str(error)
                    else "")
            raise DataError(at(path, number, f"{error}{hint}")) from None
        examples.append(Example(label, tuple(text.split()), number))
    if not examples:
        raise DataError(f"{what} file {path} holds no labelled texts")
    return LabelledData(str(path), format, examples, blank)


def split_examples(examples: Sequence[Example], fraction: float, seed: int = 0
                   ) -> tuple[list[Example], list[Example]]:
    """(rest, held out): a deterministic random ``fraction`` of the examples held out (at least
    one, and one left), the same for the same examples and seed."""
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction}")
    if len(examples) < 2:
        raise ValueError(f"cannot split {len(examples)} example(s) into training and "
                         "validation; give --valid")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    count = min(len(examples) - 1, max(1, round(fraction * len(examples))))
    held = sorted(order[:count])
    rest = sorted(order[count:])
    return [examples[i] for i in rest], [examples[i] for i in held]


def label_indices(examples: Sequence[Example], labels: Sequence[str], path: str = "data"
                  ) -> list[int]:
    """The class index of each example's label; a label outside ``labels`` (one training never
    saw) is an error naming the file and line."""
    index = {label: i for i, label in enumerate(labels)}
    out = []
    for e in examples:
        if e.label not in index:
            shown = ", ".join(labels[:10]) + (" ..." if len(labels) > 10 else "")
            raise DataError(at(path, e.line, f"label {e.label!r} was never seen in training "
                                             f"(the model knows {shown})"))
        out.append(index[e.label])
    return out


def classification_batch(vocab: WordVocabulary, texts: Sequence[Sequence[str] | Encoded],
                         labels: Sequence[int] | None = None) -> Batch:
    """A batch of texts (token lists or ``vocab.encode`` results) with their class indices
    (None: all 0, for prediction): see the module's note on the layout."""
    batch = vocab.batch(texts)
    rows = batch.batch_size
    classes = torch.tensor(list(labels) if labels is not None else [0] * rows, dtype=torch.long)
    if classes.numel() != rows:
        raise ValueError(f"{rows} texts but {classes.numel()} labels")
    last = batch.lengths - 1
    targets = torch.zeros_like(batch.inputs)
    targets[last, torch.arange(rows)] = classes
    mask = torch.zeros(batch.inputs.shape, dtype=torch.bool)
    mask[last, torch.arange(rows)] = True
    return Batch(batch.inputs, targets, mask, batch.lengths, {**batch.extras, "labels": classes})
