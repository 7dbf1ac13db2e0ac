"""A trained language model's loss on a text: nats, bits per character, perplexity; and the one way
a language model is read back from its run directory.

    >>> evaluate("runs/shakespeare", "some.txt").bits     # bits per token
    >>> loaded = load_language_model("runs/shakespeare")  # model, vocabulary, checkpoint JSON

Units: losses are in nats per token (natural log). Where the tokens are characters we also give
bits per character = nats / ln 2; at word level, perplexity = exp(nats per word).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lstmlab.models.language import LanguageModel
from lstmlab.models.registry import load_saved
from lstmlab.tasks.text import UNK, EvalSpans, Vocabulary, is_char_like, read_text, tokenize
from lstmlab.train import CheckpointError

LN2 = math.log(2)


def describe_loss(nats: float, char_like: bool) -> str:
    """'1.402 nats/char = 2.023 bits/char' or '4.70 nats/word, perplexity 110.2'."""
    if char_like:
        return f"{nats:.4f} nats/char = {nats / LN2:.4f} bits/char"
    return f"{nats:.4f} nats/word, perplexity {math.exp(min(nats, 700)):.2f}"


@dataclass
class LoadedModel:
    """A language model read from a checkpoint, in eval mode, with its vocabulary, the run's
    record (``lm``: configuration, corpus, source) and the checkpoint's path."""

    model: LanguageModel
    vocab: Vocabulary
    lm: dict[str, Any]
    path: Path

    @property
    def char_like(self) -> bool:
        return is_char_like(self.vocab)


def load_language_model(path: str | Path) -> LoadedModel:
    """Read a language model saved by ``lm train`` (``lstmlab.load`` of kind
    "language_model", with its vocabulary): a run directory (its best checkpoint, else its
    last), or a checkpoint's .json file. Checkpoints of the previous format load too. A
    missing, corrupt or foreign checkpoint raises ``CheckpointError`` (a ValueError) with a
    one-line reason."""
    saved = load_saved(path, kind="language_model")
    try:
        vocab = Vocabulary.from_dict(saved.extra["vocabulary"])
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{saved.path}: no usable vocabulary ({error})") from None
    if saved.model.vocab_size != len(vocab):
        raise CheckpointError(f"{saved.path}: the model predicts {saved.model.vocab_size} "
                              f"symbols but the vocabulary has {len(vocab)}")
    return LoadedModel(saved.model, vocab, dict(saved.extra.get("lm", {})), saved.path)


@torch.no_grad()
def evaluate_ids(model: LanguageModel, ids: Tensor, batch_size: int = 16, seq_len: int = 100
                 ) -> float:
    """Mean cross-entropy in nats per predicted token of ids (N,): every token but the first is
    predicted once, each from at least 500 tokens of history (``EvalSpans``). ``batch_size``
    (rows at once) and ``seq_len`` (window) change the speed, not the figure. Leaves the model
    in the mode it was in."""
    was_training = model.training
    model.eval()
    device = model.decoder.weight.device
    try:
        spans = EvalSpans(ids, batch_size=batch_size, seq_len=seq_len, device=device)
        total = 0.0
        for windows in spans:
            state = None
            for inputs, targets in windows:
                loss, state = model.loss(inputs, targets, state, reduction="sum")
                total += loss.item()
        return total / spans.num_targets
    finally:
        model.train(was_training)


@dataclass
class EvalResult:
    """The loss of a model on a text.

    Attributes:
        nats: mean cross-entropy per predicted token (nats). tokens: tokens predicted.
        unknown: tokens of the text mapped to ``<unk>``. char_like: tokens are characters.
        skipped: tokens left out as unknown (``skip_unknown``).
    """

    nats: float
    tokens: int
    unknown: int
    char_like: bool
    level: str
    skipped: int = 0

    @property
    def bits(self) -> float:
        """Bits per token (bits per character for character tokens)."""
        return self.nats / LN2

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nats, 700))

    def to_dict(self) -> dict[str, Any]:
        return {"nats_per_token": self.nats, "bits_per_token": self.bits,
                "perplexity": self.perplexity, "tokens": self.tokens, "unknown": self.unknown,
                "level": self.level, "char_like": self.char_like, "skipped": self.skipped}

    def summary(self) -> str:
        unit = "char" if self.char_like else "word"
        unknown = f"; {self.unknown:,} mapped to {UNK}" if self.unknown else ""
        if self.skipped:
            unknown += f"; {self.skipped:,} unknown {unit}s left out"
        return (f"{self.tokens:,} {unit}s: {self.nats:.4f} nats/{unit}, {self.bits:.4f} "
                f"bits/{unit}, perplexity {self.perplexity:.2f}{unknown}")


def known_tokens(vocab: Vocabulary, text: str, where: str, skip_unknown: bool = False
                 ) -> tuple[list[str], int]:
    """The tokens of ``text`` the model can read, and how many were left out. Symbols outside
    the vocabulary become ``<unk>`` where it has one; otherwise they are left out with
    ``skip_unknown`` (counted), or a ValueError names them and the option."""
    tokens = tokenize(text, vocab.level)
    if vocab.unk_id is not None:
        return tokens, 0
    kept = [t for t in tokens if t in vocab]
    if len(kept) < len(tokens) and not skip_unknown:
        message = vocab._unknown_message(tokens).split(". Remove them")[0]
        raise ValueError(f"{where}: {message}. Remove them, or pass --skip-unknown "
                         "(skip_unknown=True) to leave them out; their count is reported")
    return kept, len(tokens) - len(kept)


def evaluate(checkpoint: str | Path, file: str | Path | None = None, *, text: str | None = None,
             batch_size: int = 16, seq_len: int = 100, skip_unknown: bool = False
             ) -> EvalResult:
    """Loss of a checkpoint's model on a UTF-8 file (or ``text``): nats, bits per token and
    perplexity. Symbols outside the vocabulary become ``<unk>`` where it has one; otherwise
    ``skip_unknown`` leaves them out (``EvalResult.skipped``), else a ValueError names them.
    ``batch_size`` and ``seq_len`` change the speed, not the figure."""
    if (file is None) == (text is None):
        raise ValueError("evaluate needs a file or a text (one of them)")
    loaded = load_language_model(checkpoint)
    if file is not None:
        text = read_text(file, "evaluation")
    where = f"evaluation file {file}" if file is not None else "evaluation text"
    tokens, skipped = known_tokens(loaded.vocab, text, where, skip_unknown)
    ids = torch.tensor(loaded.vocab.lookup(tokens), dtype=torch.long)
    if len(ids) < 2:
        raise ValueError(f"{where} has {len(ids)} token(s); evaluation needs at least 2")
    unknown = 0
    if loaded.vocab.unk_id is not None:
        unknown = int((ids == loaded.vocab.unk_id).sum()) - tokenize(text, loaded.vocab.level
                                                                      ).count(UNK)
    nats = evaluate_ids(loaded.model, ids, batch_size, seq_len)
    return EvalResult(nats, len(ids) - 1, unknown, loaded.char_like, loaded.vocab.level, skipped)


