"""Text from a trained language model: a prime, then tokens sampled one at a time.

    >>> for piece in sample("runs/shakespeare", prime="ROMEO:", length=300, temperature=0.8):
    ...     print(piece, end="", flush=True)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from lstmlab.experiments.lm_eval import load_language_model
from lstmlab.models.decoding import check_sampling
from lstmlab.tasks.text import EOS, UNK, Vocabulary, tokenize


def _prime_ids(vocab: Vocabulary, prime: str | None) -> Tensor:
    if prime:
        try:
            ids = vocab.encode(prime)
        except ValueError:
            unknown = sorted({t for t in tokenize(prime, vocab.level) if t not in vocab})
            kind = "characters" if vocab.level == "char" else "words"
            shown = ", ".join(repr(t) for t in unknown[:10])
            raise ValueError(f"the prime has {len(unknown)} {kind} that the model's vocabulary "
                             f"lacks and it has no {UNK} to stand for them: {shown}"
                             f"{' ...' if len(unknown) > 10 else ''}; remove them") from None
        if len(ids):
            return ids
    # no prime: start as at the beginning of a line
    start = "\n" if vocab.level == "char" else EOS
    return torch.tensor([vocab.index(start) if start in vocab else 0])


def sample(checkpoint: str | Path, prime: str | None = None, length: int = 500, *,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           seed: int | None = None
           ) -> Iterator[str]:
    """Stream generated text from a checkpoint, one token's text at a time.

    The prime is not repeated in the output. At word level each word is followed by a space
    and ``<eos>`` becomes a line break. Arguments are checked before anything is generated:
    temperature > 0, top_k >= 1, top_p in (0, 1], length >= 0, and a prime whose symbols the
    vocabulary lacks (with no ``<unk>``) raises a ValueError naming them.
    """
    check_sampling(length, temperature, top_k, top_p)  # before the checkpoint is read
    loaded = load_language_model(checkpoint)
    vocab = loaded.vocab
    ids = _prime_ids(vocab, prime)
    tokens = loaded.model.generate(ids, length, temperature=temperature, top_k=top_k,
                                   top_p=top_p, seed=seed)

    def pieces() -> Iterator[str]:
        if vocab.level == "word" and prime and not prime[-1].isspace():
            yield " "  # the first word must not run into the prime's last one
        for token_id in tokens:
            symbol = vocab.symbols[token_id]
            if vocab.level == "char":
                yield symbol
            else:
                yield "\n" if symbol == EOS else symbol + " "

    return pieces()


