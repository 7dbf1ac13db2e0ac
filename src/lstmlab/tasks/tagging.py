"""Many-to-many data: sentences of tagged words (part-of-speech tags, named entities...).

Two formats, detected from the file (``format="auto"``) or forced:

- ``"conllu"``: CoNLL-U (Universal Dependencies): one word a line in 10 tab-separated columns
  ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC, ``#`` comment lines, a blank line after
  each sentence. The tag is UPOS by default (``column``: a column name or its number, 1-10).
  Multi-word token lines (ID "3-4") and empty nodes (ID "5.1") are not words of the gold
  tokenisation: they are skipped and counted.
- ``"conll"``: one token a line, ``token<TAB>tag`` (whitespace-separated if the line has no
  tab), sentences separated by blank lines; with more columns (CoNLL-2003's
  ``token POS chunk NER``) the tag is the last one unless ``column`` says otherwise.
  ``-DOCSTART-`` lines are skipped and counted.

Auto-detection: a ``.conllu`` name, or a first word line with 10 tab-separated columns, means
CoNLL-U; anything else is CoNLL. Gzip is read by its magic bytes. Every bad line is an error
naming the file and the line.

    >>> data = read_tagged("ud_english_ewt/en_ewt-ud-train.conllu.gz")
    >>> s = data.sentences[0]
    >>> s.words[:3], s.tags[:3]
    (('Al', '-', 'Zaman'), ('PROPN', 'PUNCT', 'PROPN'))
    >>> batch = tagging_batch(vocab, [vocab.encode(s.words)], [[tag_ids...]])
    >>> batch.targets            # (T, B) tag ids; batch.mask: every word of every sentence
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lstmlab.tasks.batch import Batch
from lstmlab.tasks.files import DataError, PathLike, at, read_lines
from lstmlab.tasks.words import Encoded, WordVocabulary

FORMATS = ("auto", "conllu", "conll")
CONLLU_COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps",
                  "misc")
DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class Sentence:
    """Words with their tags, and the line of each word in its file."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    lines: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.words)


@dataclass
class TaggedData:
    """The sentences of one file, how it was read, and the lines skipped by the format's
    rules (by kind: "multi-word tokens", "empty nodes", "-DOCSTART- lines")."""

    path: str
    format: str
    column: str
    sentences: list[Sentence]
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def words(self) -> int:
        return sum(len(s) for s in self.sentences)

    def tag_counts(self) -> Counter[str]:
        return Counter(t for s in self.sentences for t in s.tags)

    def summary(self) -> str:
        skipped = "; ".join(f"{n:,} {kind} skipped" for kind, n in self.skipped.items() if n)
        return (f"{self.path} ({self.format}, tags from column {self.column}): "
                f"{len(self):,} sentences, {self.words:,} words, {len(self.tag_counts())} tags"
                + (f"; {skipped}" if skipped else ""))


def _is_word_line(line: str) -> bool:
    return bool(line.strip()) and not line.startswith("#")


def detect_format(path: PathLike, lines: Sequence[str]) -> str:
    """"conllu" for a ``.conllu`` (or ``.conllu.gz``) name or a first word line of 10
    tab-separated columns; otherwise "conll"."""
    name = Path(path).name.lower()
    if name.endswith((".conllu", ".conllu.gz")):
        return "conllu"
    for line in lines:
        if _is_word_line(line):
            return "conllu" if len(line.split("\t")) == 10 else "conll"
    return "conll"


def conllu_column(column: str | int | None) -> tuple[int, str]:
    """(0-based index, name) of a CoNLL-U column given by name ("upos") or number (4)."""
    if column is None:
        return 3, "UPOS"
    text = str(column).strip().lower()
    if text.isdigit() and 1 <= int(text) <= 10:
        index = int(text) - 1
    elif text in CONLLU_COLUMNS:
        index = CONLLU_COLUMNS.index(text)
    else:
        raise ValueError(f"a CoNLL-U column is a name ({', '.join(CONLLU_COLUMNS)}) or a number "
                         f"1-10, got {column!r}")
    if index < 2:
        raise ValueError(f"column {CONLLU_COLUMNS[index].upper()} cannot be the tag (it is the "
                         "word's id or form)")
    return index, CONLLU_COLUMNS[index].upper()


def read_tagged(path: PathLike, format: str = "auto", column: str | int | None = None,
                what: str = "data") -> TaggedData:
    """Read tagged sentences (see the module's formats); ``column`` picks the tag column;
    ``what`` names the file's role in messages ("train", "valid", ...)."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    lines = read_lines(path, what)
    if format == "auto":
        format = detect_format(path, lines)
    reader = _read_conllu if format == "conllu" else _read_conll
    data = reader(path, lines, column)
    if not data.sentences:
        raise DataError(f"{what} file {path} holds no sentences")
    return data


class _Builder:
    """Collects the words of the sentence being read; a sentence whose lines held no words
    (all skipped) is an error."""

    def __init__(self, path: PathLike) -> None:
        self.path, self.sentences = path, []
        self.words: list[str] = []
        self.tags: list[str] = []
        self.lines: list[int] = []
        self.start: int | None = None  # first line of the current sentence's block

    def line(self, number: int) -> None:
        if self.start is None:
            self.start = number

    def add(self, word: str, tag: str, number: int) -> None:
        self.words.append(word)
        self.tags.append(tag)
        self.lines.append(number)

    def end(self) -> None:
        if self.start is None:
            return
        if not self.words:
            raise DataError(at(self.path, self.start, "a sentence with no words (its lines were "
                                                      "all comments or skipped tokens)"))
        self.sentences.append(Sentence(tuple(self.words), tuple(self.tags), tuple(self.lines)))
        self.words, self.tags, self.lines, self.start = [], [], [], None


def _read_conllu(path: PathLike, lines: Sequence[str], column: str | int | None) -> TaggedData:
    index, name = conllu_column(column)
    skipped = {"multi-word tokens": 0, "empty nodes": 0}
    build = _Builder(path)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            build.end()
            continue
        if line.startswith("#"):
            if not build.words:  # comments belong to the sentence that follows
                build.line(number)
                continue
        build.line(number)
        fields = line.split("\t")
        if len(fields) != 10:
            raise DataError(at(path, number, f"{len(fields)} tab-separated columns, expected 10 "
                                             "(CoNLL-U: ID FORM LEMMA UPOS XPOS FEATS HEAD "
                                             "DEPREL DEPS MISC)"))
        word_id = fields[0]
        if "-" in word_id:
            skipped["multi-word tokens"] += 1
            continue
        if "." in word_id:
            skipped["empty nodes"] += 1
            continue
        if not word_id.isdigit():
            raise DataError(at(path, number, f"the ID column holds {word_id!r}, expected a word "
                                             "number (or a range 3-4, or an empty node 5.1)"))
        word, tag = fields[1], fields[index].strip()
        if not word:
            raise DataError(at(path, number, "an empty FORM column: expected the word"))
        if not tag:
            raise DataError(at(path, number, f"an empty {name} column: expected the tag"))
        build.add(word, tag, number)
    build.end()
    return TaggedData(str(path), "conllu", name, build.sentences, skipped)


def _read_conll(path: PathLike, lines: Sequence[str], column: str | int | None) -> TaggedData:
    build = _Builder(path)
    width: int | None = None
    tag_index: int | None = None
    skipped = {"-DOCSTART- lines": 0}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            build.end()
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if fields[0] == DOCSTART:
            skipped["-DOCSTART- lines"] += 1
            continue
        if width is None:
            width = len(fields)
            if width < 2:
                raise DataError(at(path, number, "one column, expected token<TAB>tag"))
            tag_index = _conll_column(column, width, path, number)
        if len(fields) != width:
            raise DataError(at(path, number, f"{len(fields)} columns, expected {width} like the "
                                             "lines before (token<TAB>tag)"))
        if not fields[0] or not fields[tag_index]:
            raise DataError(at(path, number, "an empty token or tag: expected token<TAB>tag"))
        build.line(number)
        build.add(fields[0], fields[tag_index], number)
    build.end()
    return TaggedData(str(path), "conll", str((tag_index or 0) + 1), build.sentences, skipped)


def _conll_column(column: str | int | None, width: int, path: PathLike, number: int) -> int:
    if column is None:
        return width - 1
    text = str(column).strip()
    if not text.isdigit() or not 2 <= int(text) <= width:
        raise DataError(at(path, number, f"the tag column of a CoNLL file is a number from 2 to "
                                         f"{width} (its lines have {width} columns), got "
                                         f"{column!r}"))
    return int(text) - 1


def tag_indices(sentences: Sequence[Sentence], tags: Sequence[str], path: str = "data"
                ) -> list[list[int]]:
    """Each sentence's tag ids; a tag outside ``tags`` (one training never saw) is an error
    naming the file and line."""
    index = {t: i for i, t in enumerate(tags)}
    out = []
    for s in sentences:
        ids = []
        for tag, number in zip(s.tags, s.lines, strict=True):
            if tag not in index:
                shown = ", ".join(tags[:20]) + (" ..." if len(tags) > 20 else "")
                raise DataError(at(path, number, f"tag {tag!r} was never seen in training "
                                                 f"(the model knows {shown})"))
            ids.append(index[tag])
        out.append(ids)
    return out


def tagging_batch(vocab: WordVocabulary, sentences: Sequence[Sequence[str] | Encoded],
                  tags: Sequence[Sequence[int]] | None = None) -> Batch:
    """A batch of sentences with their tag ids (None: zeros, for prediction): inputs and
    targets (T, B), every word of every sentence scored (the mask is the lengths')."""
    batch = vocab.batch(sentences)
    if tags is not None:
        if len(tags) != batch.batch_size:
            raise ValueError(f"{batch.batch_size} sentences but {len(tags)} tag sequences")
        for b, (ids, n) in enumerate(zip(tags, batch.lengths.tolist(), strict=True)):
            if len(ids) != n:
                raise ValueError(f"sentence {b} has {n} words but {len(ids)} tags")
            batch.targets[:n, b] = torch.tensor(list(ids), dtype=torch.long)
    return batch
