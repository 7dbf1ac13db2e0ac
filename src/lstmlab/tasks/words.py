"""Sentences of words as model inputs: the word vocabulary (minimum frequency, ``<unk>``), the
character vocabulary for character features of each word, and padded batches of word ids.

    >>> words = WordVocabulary.build(train_sentences, min_freq=2, chars=True)
    >>> batch = words.batch([["a", "fine", "film"], ["dull"]], targets=..., mask=...)
    >>> batch.inputs                     # (T, B) word ids, T = 3, B = 2; <unk> for unseen words
    >>> batch.extras["chars"]            # (B, T, W) character ids of each word, W its longest
    >>> batch.extras["char_lengths"]     # (B, T) characters per word, 0 past the sentence

Both vocabularies are ``lstmlab.tasks.text.Vocabulary`` objects (word and char level) with the
unknown symbol ``<unk>`` at id 0; padding uses id 0 too, and models read ``lengths`` (and
``char_lengths``), never the padding. Whitespace inside a token (possible in CoNLL-U) becomes
"_" so that every token is one vocabulary symbol.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lstmlab.tasks.batch import Batch
from lstmlab.tasks.text import UNK, Vocabulary


@dataclass(frozen=True)
class Encoded:
    """One sentence's ids: words (N,) and, with characters, each word's character ids."""

    words: tuple[int, ...]
    chars: tuple[tuple[int, ...], ...] | None = None


def clean_token(token: str) -> str:
    """A token as one vocabulary symbol: inner whitespace becomes "_"."""
    return "_".join(token.split()) or "_"


@dataclass(frozen=True)
class WordVocabulary:
    """Word ids and, optionally, character ids for a model's inputs.

    Attributes:
        words: word-level vocabulary, ``<unk>`` first, then by decreasing training count
            (ties alphabetical).
        chars: character vocabulary (``<unk>`` first, then by code point), or None when the
            model reads no character features.
        lowercase: words are lowercased before lookup (characters keep their case).
    """

    words: Vocabulary
    chars: Vocabulary | None = None
    lowercase: bool = False

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], *, min_freq: int = 1,
              chars: bool = False, lowercase: bool = False,
              max_size: int | None = None) -> WordVocabulary:
        """The vocabularies of training ``sentences`` (lists of tokens): words seen at least
        ``min_freq`` times (at most ``max_size`` of them, the most frequent), every character."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        counts: Counter[str] = Counter()
        char_counts: Counter[str] = Counter()
        for sentence in sentences:
            for token in sentence:
                token = clean_token(token)
                counts[token.lower() if lowercase else token] += 1
                if chars:
                    char_counts.update(token)
        kept = sorted((w for w, n in counts.items() if n >= min_freq and w != UNK),
                      key=lambda w: (-counts[w], w))
        if max_size is not None:
            kept = kept[: max(0, max_size - 1)]
        words = Vocabulary("word", (UNK, *kept))
        char_vocab = None
        if chars:
            char_vocab = Vocabulary("char", (UNK, *sorted(c for c in char_counts
                                                          if not c.isspace())))
        return cls(words, char_vocab, lowercase)

    def word_ids(self, tokens: Sequence[str]) -> list[int]:
        cleaned = [clean_token(t) for t in tokens]
        return self.words.lookup([t.lower() for t in cleaned] if self.lowercase else cleaned)

    def char_ids(self, token: str) -> list[int]:
        if self.chars is None:
            raise ValueError("this vocabulary has no characters (built with chars=False)")
        return self.chars.lookup(list(clean_token(token)))

    def encode(self, tokens: Sequence[str]) -> Encoded:
        """The ids of one sentence (encode a data set once, then batch it many times)."""
        if not tokens:
            raise ValueError("a sentence needs at least one word")
        chars = None if self.chars is None else tuple(tuple(self.char_ids(t)) for t in tokens)
        return Encoded(tuple(self.word_ids(tokens)), chars)

    def batch(self, sentences: Sequence[Sequence[str] | Encoded], targets: Tensor | None = None,
              mask: Tensor | None = None, extras: dict[str, Tensor] | None = None) -> Batch:
        """A padded batch of sentences (token lists or ``encode``'s results): inputs (T, B)
        word ids, lengths (B,), and with a character vocabulary extras "chars" (B, T, W) and
        "char_lengths" (B, T).

        ``targets`` (T, B) and ``mask`` (T, B) are the caller's (default: zeros, and every
        word scored); ``extras`` are added to the batch's."""
        if not sentences:
            raise ValueError("a batch needs at least one sentence")
        encoded = [s if isinstance(s, Encoded) else self.encode(s) for s in sentences]
        steps = max(len(e.words) for e in encoded)
        inputs = torch.tensor([list(e.words) + [0] * (steps - len(e.words)) for e in encoded],
                              dtype=torch.long).T.contiguous()
        lengths = torch.tensor([len(e.words) for e in encoded], dtype=torch.long)
        more = dict(extras or {})
        if self.chars is not None:
            if any(e.chars is None for e in encoded):
                raise ValueError("sentences encoded without characters cannot fill a batch "
                                 "that needs them")
            longest = max(len(w) for e in encoded for w in e.chars)
            pad_word = [0] * longest
            chars = [[list(w) + [0] * (longest - len(w)) for w in e.chars]
                     + [pad_word] * (steps - len(e.chars)) for e in encoded]
            char_lengths = [[len(w) for w in e.chars] + [0] * (steps - len(e.chars))
                            for e in encoded]
            more.update(chars=torch.tensor(chars, dtype=torch.long),
                        char_lengths=torch.tensor(char_lengths, dtype=torch.long))
        if targets is None:
            targets = torch.zeros(steps, len(encoded), dtype=torch.long)
        return Batch(inputs, targets, mask, lengths, more)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``from_dict`` inverts it."""
        return {"words": self.words.to_dict(),
                "chars": None if self.chars is None else self.chars.to_dict(),
                "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WordVocabulary:
        chars = d.get("chars")
        return cls(Vocabulary.from_dict(d["words"]),
                   None if chars is None else Vocabulary.from_dict(chars),
                   bool(d.get("lowercase", False)))

    def summary(self) -> str:
        text = f"{len(self.words):,} words"
        if self.chars is not None:
            text += f", {len(self.chars):,} characters"
        return text + (" (lowercased)" if self.lowercase else "")
