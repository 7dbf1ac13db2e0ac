"""Parallel text for translation: line-aligned source and target files, tokenizers (a plain
regex word tokenizer, or sentencepiece subwords trained on the training files), vocabularies
with start and end symbols, and batches of padded source and target.

    >>> pairs = read_parallel("train.de.gz", "train.en.gz")          # Pair(source, target, line)
    >>> tokenizer = WordTokenizer(lowercase=True)
    >>> tokenizer.tokenize("A man's T-shirt.")     # ['a', 'man', "'s", 't', '-', 'shirt', '.']
    >>> tokenizer.detokenize(['a', 'man', "'s", 't', '-', 'shirt', '.'])   # "a man's t-shirt."
    >>> sub = SubwordTokenizer.train(texts, kind="bpe", vocab_size=8000)   # sentencepiece
    >>> vocab = build_vocabulary(token_lists, min_freq=2)                 # <unk>, <s>, <eos>, ...
    >>> batch = translation_batch([src_ids...], [tgt_ids...])

A translation batch is time-major like every ``Batch``: ``inputs`` (S, B) source ids with
``lengths`` (B,) source lengths; ``targets`` (T, B) the target ids followed by ``<eos>``, with
``mask`` (T, B) marking them (T may differ from S); ``extras["target_lengths"]`` (B,). The
decoder reads ``<s>`` then the targets shifted by one step (``decoder_inputs``). Padding is id 0
(``<unk>``), never read: the encoder uses ``lengths`` and the loss uses ``mask``.

The "tutorial protocol" of the published Multi30k figures scores lower-cased word tokens:
``protocol_tokens`` is ``WordTokenizer(lowercase=True)`` (see its rules), applied alike to the
output and the reference.
"""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lstmlab.tasks.batch import Batch
from lstmlab.tasks.files import DataError, PathLike, at, read_lines
from lstmlab.tasks.text import EOS, UNK, Vocabulary

BOS = "<s>"
SUBWORD_KINDS = ("bpe", "unigram")


# --- parallel files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One sentence pair: source and target text (stripped), and its line in both files."""

    source: str
    target: str
    line: int


def read_parallel(source: PathLike, target: PathLike, what: str = "train") -> list[Pair]:
    """The sentence pairs of two line-aligned UTF-8 files (plain or gzip).

    A final newline is no line. Errors (``DataError``) name the files and the line: different
    line counts, and a pair with an empty side (a translation of nothing, or of something into
    nothing, teaches nothing and is most likely a misalignment)."""
    src_lines, tgt_lines = read_lines(source, f"{what} source"), read_lines(target,
                                                                             f"{what} target")
    src_lines, tgt_lines = _drop_final_newline(src_lines), _drop_final_newline(tgt_lines)
    if len(src_lines) != len(tgt_lines):
        raise DataError(f"{what} files are not line-aligned: {source} has {len(src_lines):,} "
                        f"lines, {target} has {len(tgt_lines):,}; expected one translation a "
                        "line in both")
    pairs = []
    for number, (s, t) in enumerate(zip(src_lines, tgt_lines, strict=True), 1):
        s, t = s.strip(), t.strip()
        if not s or not t:
            empty = [str(path) for path, text in ((source, s), (target, t)) if not text]
            raise DataError(at(" / ".join(empty), number, f"empty {what} sentence; expected "
                               "a sentence on every line of both files"))
        pairs.append(Pair(s, t, number))
    return pairs


def _drop_final_newline(lines: list[str]) -> list[str]:
    return lines[:-1] if lines and lines[-1] == "" else lines


# --- tokenizers --------------------------------------------------------------------------------

# English clitics split off as spaCy does ("don't" -> "do n't", "man's" -> "man 's"); then words
# (letters, digits, underscore) and every other non-space character on its own
_WORD = re.compile(r"\w+?(?=n't\b)|n't\b|'(?:s|re|ve|ll|m|d)\b|\w+|[^\w\s]",
                   re.IGNORECASE | re.UNICODE)
_NO_SPACE_BEFORE = set(".,!?;:%)]}") | {"'s", "n't", "'re", "'ve", "'ll", "'m", "'d", "..."}
_NO_SPACE_AFTER = set("([{")


class WordTokenizer:
    """The default tokenizer: no training, no library. ``tokenize`` splits English clitics
    ('s, n't, 're, 've, 'll, 'm, 'd), runs of word characters, and every other non-space
    character (punctuation, hyphens) as its own token; ``lowercase`` lower-cases first.

    ``detokenize`` joins tokens with spaces except before closing punctuation and clitics,
    after opening brackets, around a hyphen between two words, and inside pairs of quotes."""

    kind = "words"

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = bool(lowercase)

    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text.lower() if self.lowercase else text)

    def detokenize(self, tokens: Sequence[str]) -> str:
        out, quote_open = "", False
        for i, token in enumerate(tokens):
            space = bool(out)
            prev = tokens[i - 1] if i else ""
            if token in _NO_SPACE_BEFORE or prev in _NO_SPACE_AFTER:
                space = False
            elif token == "-" or prev == "-":  # "t - shirt" -> "t-shirt" (the split we made)
                nxt = tokens[i + 1] if token == "-" and i + 1 < len(tokens) else ""
                word_before, word_after = prev[-1:].isalnum(), nxt[:1].isalnum()
                space = not (word_before and word_after) if token == "-" else \
                    not (i >= 2 and tokens[i - 2][-1:].isalnum() and token[:1].isalnum())
            elif token in ('"', "'"):
                space = space and not quote_open
                quote_open = not quote_open
            elif prev in ('"', "'") and quote_open:
                space = False
            out += (" " if space else "") + token
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "lowercase": self.lowercase}


def _sentencepiece():
    try:
        import sentencepiece
    except ImportError:
        raise ValueError("--subwords needs sentencepiece: pip install 'lstmlab[translate]'") \
            from None
    return sentencepiece


class SubwordTokenizer:
    """Subword units (BPE or unigram) by sentencepiece, trained on the training text; the model
    travels as bytes (``to_dict`` keeps them base64-encoded, so a checkpoint carries it).
    ``lowercase`` lower-cases before training and before every tokenisation."""

    def __init__(self, model: bytes, kind: str, lowercase: bool = False) -> None:
        spm = _sentencepiece()
        if kind not in SUBWORD_KINDS:
            raise ValueError(f"subwords must be one of {', '.join(SUBWORD_KINDS)}, got {kind!r}")
        self.model, self.kind, self.lowercase = model, kind, bool(lowercase)
        self.processor = spm.SentencePieceProcessor(model_proto=model)

    @classmethod
    def train(cls, texts: Iterable[str], kind: str = "bpe", vocab_size: int = 8000,
              lowercase: bool = False, seed: int = 0) -> SubwordTokenizer:
        """Train sentencepiece on ``texts`` (sentences); ``vocab_size`` pieces (at most what
        the text allows: asking for too many is an error that says how many fit)."""
        spm = _sentencepiece()

        if kind not in SUBWORD_KINDS:
            raise ValueError(f"subwords must be one of {', '.join(SUBWORD_KINDS)}, got {kind!r}")
        texts = [t.lower() if lowercase else t for t in texts]
        buffer = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(texts), model_writer=buffer, model_type=kind,
                vocab_size=vocab_size, character_coverage=1.0,
                bos_id=-1, eos_id=-1, unk_id=0, minloglevel=2, num_threads=1,
                hard_vocab_limit=True)
        except RuntimeError as error:
            message = str(error).strip().splitlines()[-1] if str(error).strip() else "failed"
            raise ValueError(f"sentencepiece could not train {vocab_size:,} {kind} pieces on "
                             f"this text ({message}); try a smaller --vocab-size") from None
        return cls(buffer.getvalue(), kind, lowercase)

    def tokenize(self, text: str) -> list[str]:
        return self.processor.encode(text.lower() if self.lowercase else text, out_type=str)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return self.processor.decode([t for t in tokens if t not in (UNK, BOS, EOS)])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "lowercase": self.lowercase,
                "model": base64.b64encode(self.model).decode("ascii")}


Tokenizer = WordTokenizer | SubwordTokenizer


def tokenizer_from_dict(d: dict[str, Any]) -> Tokenizer:
    """The tokenizer of a ``to_dict()`` dict (as kept in a checkpoint's extra)."""
    if d.get("kind") == "words":
        return WordTokenizer(d.get("lowercase", False))
    return SubwordTokenizer(base64.b64decode(d["model"]), d["kind"], d.get("lowercase", False))


def protocol_tokens(text: str) -> list[str]:
    """The tokens of the "tutorial protocol": ``WordTokenizer(lowercase=True)``."""
    return _PROTOCOL.tokenize(text)


_PROTOCOL = WordTokenizer(lowercase=True)


# --- vocabularies and batches ------------------------------------------------------------------


def build_vocabulary(sentences: Iterable[Sequence[str]], min_freq: int = 1,
                     max_size: int | None = None) -> Vocabulary:
    """``<unk>``, ``<s>``, ``<eos>``, then the tokens seen at least ``min_freq`` times, most
    frequent first (ties alphabetical), at most ``max_size`` symbols in all."""
    if min_freq < 1:
        raise ValueError(f"min-freq must be at least 1, got {min_freq}")
    counts: Counter[str] = Counter()
    for tokens in sentences:
        counts.update(tokens)
    specials = (UNK, BOS, EOS)
    kept = sorted((w for w, n in counts.items() if n >= min_freq and w not in specials),
                  key=lambda w: (-counts[w], w))
    if max_size is not None:
        kept = kept[: max(0, max_size - len(specials))]
    return Vocabulary("word", (*specials, *kept))


def decoder_inputs(targets: Tensor, bos: int) -> Tensor:
    """The decoder's inputs (T, B) for teacher forcing: ``<s>``, then ``targets`` (T, B) moved
    one step later (the last target, ``<eos>`` or padding, is never an input)."""
    return torch.cat([targets.new_full((1, targets.shape[1]), bos), targets[:-1]])


def translation_batch(sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]] | None,
                      eos: int) -> Batch:
    """A batch of source id lists and target id lists (``<eos>`` is appended to each target;
    None: no targets, for translating). See the module's note on the layout."""
    if not sources:
        raise ValueError("a batch needs at least one sentence")
    if any(len(s) == 0 for s in sources):
        raise ValueError("every source sentence needs at least one token")
    steps = max(len(s) for s in sources)
    inputs = torch.tensor([list(s) + [0] * (steps - len(s)) for s in sources],
                          dtype=torch.long).T.contiguous()
    lengths = torch.tensor([len(s) for s in sources], dtype=torch.long)
    rows = [list(t) + [eos] for t in targets] if targets is not None else [[eos]] * len(sources)
    if len(rows) != len(sources):
        raise ValueError(f"{len(sources)} sources but {len(rows)} targets")
    longest = max(len(r) for r in rows)
    target = torch.tensor([r + [0] * (longest - len(r)) for r in rows], dtype=torch.long).T
    target_lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    mask = torch.arange(longest).unsqueeze(1) < target_lengths.unsqueeze(0)
    return Batch(inputs, target.contiguous(), mask, lengths, {"target_lengths": target_lengths})
