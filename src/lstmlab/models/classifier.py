"""Many-to-one: a text classifier (sentiment analysis and the like).

    words (T, B) -> word vectors (T, B, E [+ 2C])       embedding [+ character features]
                 -> recurrent layer (T, B, D*H)          RNN / LSTM (any variant) / GRU, D = 1 or 2
                 -> pooled (B, D*H)                      last | max | mean | attention
                 -> logits (B, K)                        dropout, linear

Pooling over each text's own steps (``lengths``; padding never counts):

- ``last``: the final state of each direction - the forward state at the text's last word and
  the backward state at its first word;
- ``max`` / ``mean``: the elementwise maximum / mean of the outputs over the words;
- ``attention``: sum_t a_t o_t with a = softmax_t(v . tanh(W o_t + b)) (Yang et al. 2016's
  word attention, one query vector).

    >>> model = TextClassifier(vocab_size=16000, num_classes=2, cell="lstm:CIFG")
    >>> logits = model(batch.inputs, batch.lengths)          # (B, 2)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lstmlab.models.recurrent import canonical_name, make_recurrent
from lstmlab.models.registry import register
from lstmlab.models.words import WordEncoder

POOLINGS = ("last", "max", "mean", "attention")


def pool(outputs: Tensor, lengths: Tensor, how: str, state: Any = None,
         num_directions: int = 1, attention: nn.Module | None = None) -> Tensor:
    """Pool a recurrent layer's outputs (T, B, D*H) over each sequence's ``lengths`` (B,) into
    (B, D*H); ``state`` is the layer's final state (for "last"), ``attention`` a module mapping
    (T, B, D*H) to scores (T, B, 1) (for "attention")."""
    steps = outputs.shape[0]
    valid = (torch.arange(steps, device=outputs.device).unsqueeze(1)
             < lengths.to(outputs.device).unsqueeze(0))  # (T, B)
    if how == "last":
        h = state[0] if isinstance(state, tuple) else state  # (L*D, B, H)
        return torch.cat(list(h[-num_directions:]), dim=1)
    if how == "max":
        return outputs.masked_fill(~valid.unsqueeze(2), float("-inf")).max(0).values
    if how == "mean":
        total = (outputs * valid.unsqueeze(2)).sum(0)
        return total / lengths.to(outputs.device).unsqueeze(1).to(outputs.dtype)
    if how == "attention":
        scores = attention(outputs).squeeze(2).masked_fill(~valid, float("-inf"))  # (T, B)
        weights = torch.softmax(scores, dim=0)
        return (weights.unsqueeze(2) * outputs).sum(0)
    raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {how!r}")


@register("classifier")
class TextClassifier(nn.Module):
    """Word ids (T, B) with lengths (B,) -> class logits (B, K).

    Args:
        vocab_size, num_classes: words (``<unk>`` included) and classes K.
        cell: the recurrent cell, e.g. "lstm" (= lstm:NP), "lstm:CIFG", "gru", "rnn"
            (``parse_cell``).
        embedding_size, hidden_size, num_layers: E, H per direction, L.
        bidirectional: read the text both ways (D = 2).
        dropout: on the word vectors, between layers and on the pooled vector.
        pooling: "last", "max", "mean" or "attention" (see the module).
        char_vocab_size, char_embedding_size, char_hidden_size: character features of each word
            (``WordEncoder``); char_vocab_size 0 for none.
    """

    def __init__(self, vocab_size: int, num_classes: int, cell: str = "lstm",
                 embedding_size: int = 128, hidden_size: int = 128, num_layers: int = 1,
                 bidirectional: bool = True, dropout: float = 0.5, pooling: str = "max",
                 char_vocab_size: int = 0, char_embedding_size: int = 16,
                 char_hidden_size: int = 32) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.cell = canonical_name(cell)
        self.num_classes, self.pooling, self.dropout = num_classes, pooling, float(dropout)
        self.words = WordEncoder(vocab_size, embedding_size, char_vocab_size,
                                 char_embedding_size, char_hidden_size, cell=self.cell)
        self.recurrent = make_recurrent(self.cell, self.words.output_size, hidden_size,
                                        num_layers, dropout=dropout if num_layers > 1 else 0.0,
                                        bidirectional=bidirectional)
        width = hidden_size * (2 if bidirectional else 1)
        self.attention = (nn.Sequential(nn.Linear(width, width), nn.Tanh(),
                                        nn.Linear(width, 1, bias=False))
                          if pooling == "attention" else None)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_classes)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-ready: ``TextClassifier(**model.config())``."""
        r = self.recurrent
        return {**self.words.config(), "num_classes": self.num_classes,
                "cell": self.cell, "hidden_size": r.hidden_size,
                "num_layers": r.num_layers, "bidirectional": r.bidirectional,
                "dropout": self.dropout, "pooling": self.pooling}

    def forward(self, words: Tensor, lengths: Tensor, chars: Tensor | None = None,
                char_lengths: Tensor | None = None) -> Tensor:
        """words (T, B) ids, lengths (B,) in [1, T]; chars (B, T, W) and char_lengths (B, T)
        when the model reads characters. Returns logits (B, K)."""
        x = self.drop(self.words(words, chars, char_lengths))
        outputs, state = self.recurrent(x, lengths=lengths)
        pooled = pool(outputs, lengths, self.pooling, state, self.recurrent.num_directions,
                      self.attention)
        return self.head(self.drop(pooled))


@register("classifier_ensemble")
class ClassifierEnsemble(nn.Module):
    """K text classifiers of one architecture, trained apart, whose class probabilities are
    averaged: words (T, B), lengths (B,) -> log of the members' mean probabilities (B, K), so
    that softmax of the output is the averaged distribution and its arg-max the ensemble's vote.

    Args:
        members: how many classifiers. **member: ``TextClassifier``'s arguments, the same for
            every member.

        >>> ensemble = ClassifierEnsemble.of([model_a, model_b, model_c])
        >>> probabilities = ensemble(batch.inputs, batch.lengths).softmax(-1)   # (B, K)
    """

    def __init__(self, members: int, **member: Any) -> None:
        super().__init__()
        if isinstance(members, bool) or not isinstance(members, int) or members < 1:
            raise ValueError(f"an ensemble needs at least 1 member, got {members!r}")
        self.members = nn.ModuleList(TextClassifier(**member) for _ in range(members))
        self.num_classes = self.members[0].num_classes
        self.cell = self.members[0].cell

    @classmethod
    def of(cls, models: list[TextClassifier]) -> ClassifierEnsemble:
        """An ensemble holding copies of ``models``' weights (all of one configuration)."""
        if not models:
            raise ValueError("an ensemble needs at least 1 member, got none")
        configs = [m.config() for m in models]
        if any(c != configs[0] for c in configs[1:]):
            raise ValueError("the members of an ensemble must share one configuration")
        ensemble = cls(len(models), **configs[0])
        for member, model in zip(ensemble.members, models, strict=True):
            member.load_state_dict(model.state_dict())
        return ensemble.train(models[0].training)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-ready: ``ClassifierEnsemble(**model.config())``."""
        return {"members": len(self.members), **self.members[0].config()}

    def forward(self, words: Tensor, lengths: Tensor, chars: Tensor | None = None,
                char_lengths: Tensor | None = None) -> Tensor:
        """As ``TextClassifier.forward``; returns log mean probabilities (B, K)."""
        probabilities = torch.stack([member(words, lengths, chars, char_lengths).softmax(-1)
                                     for member in self.members]).mean(0)
        return probabilities.log()
