"""Text corpora for language models: vocabularies, train/valid/test splits, and batches for
truncated backpropagation through time (BPTT), as in char-rnn and Zaremba et al. (2014).

    >>> corpus = Corpus.default()                 # Tiny Shakespeare, shipped inside lstmlab
    >>> stream = BatchStream(corpus.train, batch_size=32, seq_len=100)
    >>> for inputs, targets in stream:            # the rest of one epoch; both (T, B) = (100, 32)
    ...     ...
    >>> for windows in EvalSpans(corpus.valid, batch_size=16):  # rows of spans, independent
    ...     ...                                   # sum the losses, divide by num_targets

Tokens come at one of two levels:

- ``"char"``: every character is a token (char-rnn, nanoGPT's shakespeare_char); a line break is
  the character "\\n".
- ``"word"``: whitespace-separated words, and every line break is the symbol ``<eos>``: Zaremba's
  PTB reader, ``text.replace("\\n", " <eos> ").split()``. A line of k words is k + 1 tokens.
  PTB's character files, whose symbols are separated by spaces, load at this level too.

A vocabulary has an unknown symbol exactly when ``<unk>`` is one of its symbols (PTB's word files
already contain ``<unk>``; that same symbol is reused). Text to encode that holds symbols outside
the vocabulary maps them to ``<unk>`` where there is one, and otherwise raises a ValueError that
names them.

Batches are time-major: inputs and targets are (T, B) LongTensors of token ids, T the window
length (seq_len) and B the batch size, and targets[t, b] is the token after inputs[t, b].
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from lstmlab.io import atomic_write_text

Level = Literal["char", "word"]
LEVELS: tuple[str, ...] = ("char", "word")
UNK = "<unk>"  # the unknown symbol, at either level
EOS = "<eos>"  # end of line, word level only
IGNORE_INDEX = -100  # target id not scored in EvalSpans: F.cross_entropy's default ignore_index

DEFAULT_CORPUS = "tinyshakespeare"
"""Name of the corpus shipped inside lstmlab (``default_corpus_text()``)."""
_DEFAULT_CORPUS_FILE = "tinyshakespeare.txt.gz"
_VOCAB_FORMAT = "lstmlab.vocabulary"

PathLike = str | os.PathLike[str]


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"level must be 'char' or 'word', got {level!r}")


def tokenize(text: str, level: Level) -> list[str]:
    """The tokens of ``text``: its characters ("char"), or its whitespace-separated words with
    ``<eos>`` for every line break ("word"; a last line without "\\n" gets no ``<eos>``)."""
    _check_level(level)
    if level == "char":
        return list(text)
    return text.replace("\n", f" {EOS} ").split()


# ----------------------------------------------------------------------------------------------
# Vocabulary


@dataclass(frozen=True)
class Vocabulary:
    """The symbols of a corpus and their ids (id = position in ``symbols``).

    Build one from text with ``Vocabulary.build``; the order of the symbols is deterministic:
    at char level sorted by code point (nanoGPT's ids), at word level by decreasing count with
    ties in alphabetical order (the TensorFlow PTB reader's ids); a special symbol that the text
    lacks comes last.

    Attributes:
        level: "char" or "word" (see ``tokenize``).
        symbols: the symbols; at char level single characters, plus ``<unk>`` if present.
    """

    level: Level
    symbols: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_level(self.level)
        symbols = tuple(self.symbols)
        object.__setattr__(self, "symbols", symbols)
        if not symbols:
            raise ValueError("a vocabulary needs at least one symbol")
        for s in symbols:  # before indexing: a symbol may be unhashable
            if not isinstance(s, str) or not s:
                raise ValueError(f"vocabulary symbols must be non-empty strings, got {s!r}")
            if self.level == "char" and len(s) != 1 and s != UNK:
                raise ValueError(f"a char-level symbol must be one character (or {UNK}), "
                                 f"got {s!r}")
            if self.level == "word" and s.split() != [s]:
                raise ValueError(f"a word-level symbol cannot contain whitespace, got {s!r}")
        index = {s: i for i, s in enumerate(symbols)}
        if len(index) != len(symbols):
            dupes = [s for s, n in Counter(symbols).items() if n > 1]
            raise ValueError(f"repeated vocabulary symbols: {dupes[:5]!r}")
        object.__setattr__(self, "_index", index)

    @classmethod
    def build(cls, text: str, level: Level = "char", *, unk: bool | None = None,
              max_size: int | None = None) -> Vocabulary:
        """The vocabulary of ``text``.

        Args:
            level: "char" or "word".
            unk: include ``<unk>`` for symbols unseen in ``text``. None (default) means yes at
                word level, no at char level (char-rnn's closed character set). A word text
                that already contains ``<unk>`` (PTB) keeps it either way.
            max_size: keep at most this many symbols, specials included: the most frequent
                ones (ties alphabetical); the rest become ``<unk>``, which this needs.
        """
        _check_level(level)
        if unk is None:
            unk = level == "word"
        counts = Counter(tokenize(text, level))
        if level == "char":
            ordered = sorted(counts)
        else:
            ordered = sorted(counts, key=lambda s: (-counts[s], s))
        specials = [EOS] if level == "word" else []
        if unk or UNK in counts:
            specials.append(UNK)
        regular = [s for s in ordered if s not in specials]
        if max_size is not None and len(regular) + len(specials) > max_size:
            if UNK not in specials:
                raise ValueError(f"max_size={max_size} leaves symbols out, which needs an "
                                 f"unknown symbol: pass unk=True")
            if max_size <= len(specials):
                raise ValueError(f"max_size={max_size} leaves no room beside {specials}")
            by_count = sorted(regular, key=lambda s: (-counts[s], s))
            kept = set(by_count[: max_size - len(specials)])
            ordered = [s for s in ordered if s in kept or s in specials]
        missing = [s for s in specials if s not in counts]
        return cls(level, tuple(ordered + missing))

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._index

    def __repr__(self) -> str:
        specials = [s for s in (EOS, UNK) if s in self._index]
        return (f"Vocabulary(level={self.level!r}, size={len(self)}, "
                f"specials={specials}, first={list(self.symbols[:8])!r})")

    def index(self, symbol: str) -> int:
        """The id of ``symbol``; KeyError if it is not in the vocabulary."""
        return self._index[symbol]

    @property
    def unk_id(self) -> int | None:
        """The id of ``<unk>``, or None if the vocabulary has no unknown symbol."""
        return self._index.get(UNK)

    @property
    def eos_id(self) -> int | None:
        """The id of ``<eos>`` (word level), else None."""
        return self._index.get(EOS) if self.level == "word" else None

    def lookup(self, tokens: Sequence[str]) -> list[int]:
        """The ids of ``tokens``, with the unknown-symbol rule of ``encode``."""
        index, unk = self._index, self.unk_id
        if unk is not None:
            return [index.get(t, unk) for t in tokens]
        try:
            return [index[t] for t in tokens]
        except KeyError:
            raise ValueError(self._unknown_message(tokens)) from None

    def encode(self, text: str) -> Tensor:
        """Token ids of ``text``, a LongTensor (N,).

        Symbols not in the vocabulary become ``<unk>`` if it has one; otherwise a ValueError
        names the first few of them, most frequent first, with their counts.
        """
        return torch.tensor(self.lookup(tokenize(text, self.level)), dtype=torch.long)

    def decode(self, ids: Tensor | Iterable[int]) -> str:
        """The text of token ids (any shape; read in order). Char level joins the characters;
        word level separates words by one space and writes ``<eos>`` as a line break."""
        ids = ids.reshape(-1).tolist() if isinstance(ids, Tensor) else [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < len(self)]
        if bad:
            raise ValueError(f"token ids out of range for a vocabulary of {len(self)}: "
                             f"{bad[:5]}")
        words = [self.symbols[i] for i in ids]
        if self.level == "char":
            return "".join(words)
        pieces: list[str] = []
        for w in words:
            if w == EOS:
                pieces.append("\n")
            else:
                if pieces and pieces[-1] != "\n":
                    pieces.append(" ")
                pieces.append(w)
        return "".join(pieces)

    def _unknown_message(self, tokens: Sequence[str]) -> str:
        unknown = Counter(t for t in tokens if t not in self._index)
        kind = "character" if self.level == "char" else "word"
        shown = ", ".join(f"{s!r} ({n}x)" for s, n in unknown.most_common(5))
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        return (f"{len(unknown)} unknown {kind}{'s' * (len(unknown) > 1)} "
                f"({sum(unknown.values())} occurrences) not in the vocabulary of {len(self)} "
                f"symbols, which has no {UNK}: {shown}{more}. Remove them, or build the "
                f"vocabulary with unk=True to map them to {UNK}")

    # JSON: a plain dict, never a pickle

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``Vocabulary.from_dict`` inverts it."""
        return {"format": _VOCAB_FORMAT, "version": 1, "level": self.level,
                "symbols": list(self.symbols)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vocabulary:
        """The vocabulary of a ``to_dict()`` dict."""
        if not isinstance(d, dict) or d.get("format") != _VOCAB_FORMAT:
            raise ValueError(f"not an lstmlab vocabulary (expected format {_VOCAB_FORMAT!r})")
        if d.get("version") != 1:
            raise ValueError(f"unsupported vocabulary version {d.get('version')!r}")
        level, symbols = d.get("level"), d.get("symbols")
        if not isinstance(level, str) or not isinstance(symbols, list):
            raise ValueError("a vocabulary needs a 'level' string and a 'symbols' list")
        return cls(level, tuple(symbols))

    def save(self, path: PathLike) -> None:
        """Write the vocabulary as UTF-8 JSON, atomically (``lstmlab.io.atomic_write_text``)."""
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: PathLike) -> Vocabulary:
        """Read a vocabulary written by ``save``; anything else is a ValueError naming the
        file."""
        try:
            data = json.loads(Path(path).read_bytes().decode("utf-8"))
            return cls.from_dict(data)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise ValueError(f"vocabulary file {path} is not lstmlab vocabulary JSON "
                             f"({type(error).__name__})") from None
        except ValueError as error:
            raise ValueError(f"vocabulary file {path}: {error}") from None


# ----------------------------------------------------------------------------------------------
# Files and the shipped corpus


def read_text(path: PathLike, what: str = "text") -> str:
    """The text of a UTF-8 file, with "\\r\\n" and "\\r" line breaks made "\\n" (as Python's text
    mode does) and a leading byte-order mark dropped.

    Raises FileNotFoundError for a missing file, and ValueError for an empty (or all-whitespace)
    file or one that is not UTF-8 (naming the byte offset and line). ``what`` names the file's
    role in the messages ("train", "valid", ...).
    """
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise IsADirectoryError(f"{what} file {path} is a directory")
        raise FileNotFoundError(f"{what} file not found: {path}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ValueError(f"{what} file {path} is not UTF-8 text: invalid byte "
                         f"0x{data[err.start]:02x} at byte offset {err.start} (line {line})"
                         ) from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ValueError(f"{what} file {path} is empty" + " (only whitespace)" * bool(text))
    return text


def default_corpus_text() -> str:
    """Tiny Shakespeare, shipped gzip-compressed inside lstmlab (``DEFAULT_CORPUS``).

    char-rnn's ``input.txt``: 1,115,394 characters of ASCII text, 40,000 lines, 65 distinct
    characters; public-domain Shakespeare assembled by the MIT-licensed char-rnn. Needs no
    network and no data directory.
    """
    blob = (resources.files("lstmlab") / "data" / _DEFAULT_CORPUS_FILE).read_bytes()
    return gzip.decompress(blob).decode("utf-8")


# ----------------------------------------------------------------------------------------------
# Corpus


def _split(ids: Tensor, valid_fraction: float, name: str) -> tuple[Tensor, Tensor]:
    """The first 1 - valid_fraction of ``ids`` and the rest (nanoGPT: int(n * 0.9))."""
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be between 0 and 1, got {valid_fraction}")
    n = len(ids)
    n_train = int(n * (1 - valid_fraction))
    for split, size in (("validation", n - n_train), ("training", n_train)):
        if size < 2:
            raise ValueError(f"{name}: valid_fraction={valid_fraction} of {n} tokens leaves "
                             f"{size} token(s) for {split}, which needs at least 2 (an input "
                             f"and its target); use a longer text or another valid_fraction")
    return ids[:n_train], ids[n_train:]


def _encode_split(vocab: Vocabulary, text: str, path: Path, what: str) -> Tensor:
    try:
        ids = vocab.encode(text)
    except ValueError as err:
        raise ValueError(f"{what} file {path}: {err}") from None
    if len(ids) < 2:
        raise ValueError(f"{what} file {path} has {len(ids)} token(s); it needs at least 2")
    return ids


@dataclass
class Corpus:
    """A tokenized corpus: a vocabulary and the token ids of each split, LongTensors (N,).

    Attributes:
        vocab: the vocabulary (built from the training text, or the whole single text).
        train, valid: token ids of the training and validation splits.
        test: token ids of the test split, or None (a single text has none).
        name: where it came from ("tinyshakespeare", a file's stem, a directory's name).
    """

    vocab: Vocabulary
    train: Tensor
    valid: Tensor
    test: Tensor | None = None
    name: str = "text"

    @classmethod
    def from_text(cls, text: str, level: Level = "char", *, valid_fraction: float = 0.1,
                  unk: bool | None = None, max_size: int | None = None,
                  name: str = "text") -> Corpus:
        """One text split by position: the first 1 - valid_fraction of its tokens train, the
        rest validate (nanoGPT's Tiny Shakespeare split). The vocabulary is the whole text's,
        as in nanoGPT. ``unk`` and ``max_size`` as in ``Vocabulary.build``."""
        vocab = Vocabulary.build(text, level, unk=unk, max_size=max_size)
        train, valid = _split(vocab.encode(text), valid_fraction, name)
        return cls(vocab, train, valid, None, name)

    @classmethod
    def from_file(cls, path: PathLike, level: Level = "char", *, valid_fraction: float = 0.1,
                  unk: bool | None = None, max_size: int | None = None) -> Corpus:
        """One UTF-8 file, split by position as in ``from_text``."""
        text = read_text(path)
        return cls.from_text(text, level, valid_fraction=valid_fraction, unk=unk,
                             max_size=max_size, name=Path(path).stem)

    @classmethod
    def from_files(cls, train: PathLike, valid: PathLike, test: PathLike | None = None,
                   level: Level = "char", *, unk: bool | None = None,
                   max_size: int | None = None, name: str | None = None) -> Corpus:
        """A corpus split into files (PTB: ``ptb.train.txt``, ``ptb.valid.txt``,
        ``ptb.test.txt``). The vocabulary is built from the training file only; valid and test
        symbols outside it follow the unknown-symbol rule of ``Vocabulary.encode``."""
        paths = {"train": Path(train), "valid": Path(valid)}
        if test is not None:
            paths["test"] = Path(test)
        texts = {what: read_text(p, what) for what, p in paths.items()}
        vocab = Vocabulary.build(texts["train"], level, unk=unk, max_size=max_size)
        ids = {what: _encode_split(vocab, texts[what], paths[what], what) for what in paths}
        return cls(vocab, ids["train"], ids["valid"], ids.get("test"),
                   name or paths["train"].parent.name)

    @classmethod
    def from_dir(cls, directory: PathLike, level: Level = "char", *, prefix: str | None = None,
                 unk: bool | None = None, max_size: int | None = None) -> Corpus:
        """The files ``{prefix}train.txt``, ``{prefix}valid.txt`` (or ``val.txt``) and, if
        present, ``{prefix}test.txt`` of a directory (``split_files``). Without ``prefix`` the
        directory must hold exactly one ``*train.txt``. PTB: ``from_dir(d, "word",
        prefix="ptb.")``; its character files: ``from_dir(d, "word", prefix="ptb.char.",
        unk=False)``."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"corpus directory not found: {directory}")
        try:
            found = split_files(directory / f"{prefix}train.txt" if prefix else directory)
        except ValueError as error:  # several *train.txt files
            raise ValueError(f"{error}; or pass prefix= to choose (e.g. prefix='ptb.')"
                             ) from None
        if found is None or found[1] is None:
            stem = found[0].name.removesuffix("train.txt") if found else prefix or ""
            raise FileNotFoundError(f"{directory}: no {stem}valid.txt (or {stem}val.txt) "
                                    f"beside {stem}train.txt")
        train, valid, test = found
        return cls.from_files(train, valid, test, level, unk=unk, max_size=max_size,
                              name=directory.name)

    @classmethod
    def default(cls, level: Level = "char", *, valid_fraction: float = 0.1,
                unk: bool | None = None, max_size: int | None = None) -> Corpus:
        """The shipped corpus, Tiny Shakespeare, split as in ``from_text`` (at char level and
        the default fraction: 1,003,854 training and 111,540 validation characters, 65 symbols,
        exactly nanoGPT's shakespeare_char)."""
        return cls.from_text(default_corpus_text(), level, valid_fraction=valid_fraction,
                             unk=unk, max_size=max_size, name=DEFAULT_CORPUS)

    @property
    def level(self) -> Level:
        return self.vocab.level

    def splits(self) -> dict[str, Tensor]:
        """The splits that exist, by name: train, valid and perhaps test."""
        parts = {"train": self.train, "valid": self.valid, "test": self.test}
        return {k: v for k, v in parts.items() if v is not None}

    def split(self, name: str) -> Tensor:
        """One split's token ids by name ("train", "valid", "test")."""
        splits = self.splits()
        if name not in splits:
            raise KeyError(f"corpus {self.name!r} has no {name!r} split; it has "
                           f"{', '.join(splits)}")
        return splits[name]

    def summary(self) -> str:
        """One line: name, level, vocabulary size and split sizes in tokens."""
        sizes = ", ".join(f"{k} {len(v):,}" for k, v in self.splits().items())
        return f"{self.name} ({self.level} level): {len(self.vocab):,} symbols; tokens: {sizes}"


def split_files(path: PathLike) -> tuple[Path, Path | None, Path | None] | None:
    """The split files a path stands for, (train, valid, test) with None for a missing one; or
    None when ``path`` is a plain text file (to be split by position).

    A directory must hold exactly one ``*train.txt``; a file named ``...train.txt`` goes with
    ``...valid.txt`` (or ``...val.txt``) and ``...test.txt`` beside it (e.g.
    ``ptb/ptb.char.train.txt``). The one place lstmlab looks for split files.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*train.txt"))
        if len(found) != 1:
            names = ", ".join(p.name for p in found) or "none"
            raise (ValueError if found else FileNotFoundError)(
                f"{path} should hold one *train.txt file (found: {names}); name the training "
                f"file itself, e.g. {path / 'ptb.train.txt'}")
        path = found[0]
    if not path.name.endswith("train.txt"):
        return None
    prefix = path.name.removesuffix("train.txt")
    valid = next((v for v in (path.with_name(f"{prefix}valid.txt"),
                              path.with_name(f"{prefix}val.txt")) if v.is_file()), None)
    test = path.with_name(f"{prefix}test.txt")
    return path, valid, test if test.is_file() else None


def load_corpus(source: PathLike | None = None, level: Level = "char", *,
                valid_fraction: float = 0.1, unk: bool | None = None,
                max_size: int | None = None) -> Corpus:
    """The corpus a user names: nothing for the shipped default (Tiny Shakespeare), a directory
    of split files or a ``...train.txt`` beside its ``...valid.txt`` (``split_files``), or one
    text file whose last ``valid_fraction`` validates (``Corpus.from_file``)."""
    if source is None:
        return Corpus.default(level, valid_fraction=valid_fraction, unk=unk, max_size=max_size)
    found = split_files(source)
    if found is not None and found[1] is not None:
        train, valid, test = found
        return Corpus.from_files(train, valid, test, level, unk=unk, max_size=max_size,
                                 name=train.name.removesuffix(".train.txt"))
    if Path(source).is_dir():
        raise FileNotFoundError(f"{source}: no *valid.txt (or *val.txt) beside "
                                f"{found[0].name}")
    return Corpus.from_file(source, level, valid_fraction=valid_fraction, unk=unk,
                            max_size=max_size)


def is_char_like(vocab: Vocabulary) -> bool:
    """True when the tokens are characters: char level, or word level where every symbol but
    ``<eos>``/``<unk>`` is one character (PTB's ``ptb.char.*`` files). Losses are then given
    in bits per character rather than perplexity."""
    if vocab.level == "char":
        return True
    return all(len(s) == 1 for s in vocab.symbols if s not in (EOS, UNK))


# ----------------------------------------------------------------------------------------------
# Batches for truncated BPTT


def _as_ids(data: Tensor) -> Tensor:
    if not isinstance(data, Tensor) or data.dim() != 1:
        raise ValueError("token ids must be a 1-D tensor")
    return data.long()


class BatchStream:
    """Contiguous training batches for truncated BPTT, in order and resumable.

    The N token ids are laid out as B parallel rows of L = (N - 1) // B consecutive tokens:
    row b's inputs are ids[b*L : (b+1)*L] and its targets the same shifted by one,
    ids[b*L + 1 : (b+1)*L + 1]. Step k of an epoch is the window of columns [k*T, (k+1)*T), so
    row b of window k+1 continues row b of window k: carry the recurrent state from one window
    to the next (detached) and reset it at the start of each epoch. An epoch has L // T full
    windows; the < B tokens beyond B*L + 1 and the last L - (L // T) * T columns are not
    trained on (char-rnn and Zaremba drop them too). For an exact loss over a split use
    ``EvalSpans``.

    Iterating yields the rest of the current epoch; the next loop starts the next epoch:

        >>> stream = BatchStream(corpus.train, batch_size=20, seq_len=35)
        >>> while stream.epoch < 13:
        ...     state = None                          # a new epoch starts from zeros
        ...     for inputs, targets in stream:        # each (T, B) = (35, 20)
        ...         ...

    The position moves on as each window is handed out, so ``state_dict()`` taken in the loop
    body resumes with the window after it. (To continue bit for bit, also keep the recurrent
    state, or restart it from zeros at a small cost.)

    Args:
        data: token ids, (N,).
        batch_size: B, the number of parallel rows.
        seq_len: T, the window length in tokens (the BPTT truncation).
        device: where the windows are produced; the laid-out ids are moved there once.
    """

    def __init__(self, data: Tensor, batch_size: int, seq_len: int, *,
                 device: torch.device | str | None = None) -> None:
        data = _as_ids(data)
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
        n = len(data)
        row_len = (n - 1) // batch_size
        if row_len < seq_len:
            raise ValueError(f"{n:,} tokens are too few for batch_size={batch_size} and "
                             f"seq_len={seq_len}: one batch needs B*T + 1 = "
                             f"{batch_size * seq_len + 1:,}")
        used = batch_size * row_len
        self.inputs = data[:used].view(batch_size, row_len).to(device)    # (B, L)
        self.targets = data[1:used + 1].view(batch_size, row_len).to(device)  # (B, L)
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.num_tokens = n
        self.steps_per_epoch = row_len // seq_len
        self.epoch = 0  # epochs completed
        self.step = 0  # windows of the current epoch handed out, 0 <= step < steps_per_epoch

    def __len__(self) -> int:
        """Windows in one epoch."""
        return self.steps_per_epoch

    def __repr__(self) -> str:
        return (f"BatchStream(tokens={self.num_tokens}, batch_size={self.batch_size}, "
                f"seq_len={self.seq_len}, steps_per_epoch={self.steps_per_epoch}, "
                f"epoch={self.epoch}, step={self.step})")

    @property
    def offset(self) -> int:
        """Column of the next window in every row: step * seq_len tokens."""
        return self.step * self.seq_len

    @property
    def tokens_per_epoch(self) -> int:
        """Target tokens trained on per epoch: B * T * steps_per_epoch."""
        return self.batch_size * self.seq_len * self.steps_per_epoch

    def window(self, step: int) -> tuple[Tensor, Tensor]:
        """Window ``step`` of any epoch: (inputs, targets), each (T, B), time-major."""
        if not 0 <= step < self.steps_per_epoch:
            raise IndexError(f"step {step} outside 0..{self.steps_per_epoch - 1}")
        cols = slice(step * self.seq_len, (step + 1) * self.seq_len)
        return self.inputs[:, cols].t().contiguous(), self.targets[:, cols].t().contiguous()

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        """The remaining windows of the current epoch, in order."""
        epoch = self.epoch
        while self.epoch == epoch:
            batch = self.window(self.step)
            self.step += 1
            if self.step == self.steps_per_epoch:
                self.epoch, self.step = self.epoch + 1, 0
            yield batch

    def state_dict(self) -> dict[str, int]:
        """The position (epoch, step, offset = step * seq_len) and the layout it belongs to;
        plain ints, JSON-ready."""
        return {"epoch": self.epoch, "step": self.step, "offset": self.offset,
                "batch_size": self.batch_size, "seq_len": self.seq_len,
                "num_tokens": self.num_tokens}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume at the position of ``state_dict()``; the layout (batch size, window length,
        number of tokens) must be the same, or the position would mean other data."""
        for key in ("batch_size", "seq_len", "num_tokens"):
            if state[key] != getattr(self, key):
                raise ValueError(f"cannot resume: the saved stream has {key}={state[key]}, "
                                 f"this one {getattr(self, key)}")
        epoch, step = int(state["epoch"]), int(state["step"])
        if epoch < 0 or not 0 <= step < self.steps_per_epoch:
            raise ValueError(f"invalid stream position epoch={epoch}, step={step}")
        if "offset" in state and state["offset"] != step * self.seq_len:
            raise ValueError(f"inconsistent stream state: offset {state['offset']} is not "
                             f"step {step} * seq_len {self.seq_len}")
        self.epoch, self.step = epoch, step


def count_targets(data: Tensor) -> int:
    """Tokens predicted when evaluating all of ``data``: every token but the first (N - 1).
    Divide a summed loss (nats) by this for nats per token; bits per token = nats / ln 2,
    perplexity = exp(nats per token)."""
    return max(len(data) - 1, 0)


class EvalSpans:
    """All of a split, once, for a loss that does not depend on how it is batched.

    Every token but the first is a target exactly once. The N - 1 targets are cut into spans of
    ``span`` in order; span k is one row that starts from a zero state ``context`` tokens
    before the span (fewer at the start of the text), reads them without scoring them, then
    predicts the span's tokens. Rows are independent of each other, so running B of them at
    once (``batch_size``) or cutting them into windows of T (``seq_len``, the state carried)
    changes the speed, not the figure. Each token is predicted from at least ``context`` tokens
    of history (all of it in the first span), close to the whole history that a single pass
    over the text gives, at (span + context) / span of its cost.

    Iterating yields groups of at most B rows; each group is a list of (inputs, targets)
    windows (T, B) to run in order from a zero state. Targets not scored (the context, the
    padding of the last row) are ``IGNORE_INDEX`` (-100, ignored by F.cross_entropy), so the
    summed cross-entropy over everything divided by ``num_targets`` is nats per token.

    Args:
        data: token ids (N,), N >= 2.
        batch_size: B, rows run at once. seq_len: T, the window length.
        span, context: targets per row, and unscored tokens read before them.
        device: where the windows are made.
    """

    def __init__(self, data: Tensor, batch_size: int = 16, seq_len: int = 100, *,
                 span: int = 1500, context: int = 500,
                 device: torch.device | str | None = None) -> None:
        data = _as_ids(data)
        if batch_size < 1 or seq_len < 1 or span < 1 or context < 0:
            raise ValueError(f"batch_size, seq_len and span must be >= 1 and context >= 0, got "
                             f"{batch_size}, {seq_len}, {span}, {context}")
        self.num_targets = count_targets(data)
        if self.num_targets < 1:
            raise ValueError(f"evaluation needs at least 2 tokens, got {len(data)}")
        rows = -(-self.num_targets // span)
        width = span + min(context, (rows - 1) * span)
        self.inputs = data.new_zeros(rows, width)
        self.targets = data.new_full((rows, width), IGNORE_INDEX)
        for k in range(rows):
            first = k * span  # the first target of the span is data[first + 1]
            last = min(first + span, self.num_targets)
            start = max(0, first - context)
            n = last - start
            self.inputs[k, :n] = data[start:last]
            self.targets[k, first - start:n] = data[first + 1:last + 1]
        self.inputs, self.targets = self.inputs.to(device), self.targets.to(device)
        self.batch_size, self.seq_len = batch_size, seq_len

    def __len__(self) -> int:
        """Number of row groups."""
        return -(-self.inputs.shape[0] // self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[Tensor, Tensor]]]:
        for group in range(0, self.inputs.shape[0], self.batch_size):
            rows = slice(group, group + self.batch_size)
            inputs, targets = self.inputs[rows], self.targets[rows]
            yield [(inputs[:, t:t + self.seq_len].t().contiguous(),
                    targets[:, t:t + self.seq_len].t().contiguous())
                   for t in range(0, inputs.shape[1], self.seq_len)]
