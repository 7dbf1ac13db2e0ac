"""Many-to-many: a sequence tagger (part-of-speech tags, named entities), one tag per word.

    words (T, B) -> word vectors (T, B, E + 2C)    word embedding + character BiLSTM of each word
                 -> recurrent layer (T, B, D*H)     BiLSTM (any variant), GRU, RNN; D = 2 or 1
                 -> logits (T, B, K)                dropout, linear: a softmax per word

The word-and-character bidirectional LSTM tagger of Plank et al. (2016) and Lample et al.
(2016, without their CRF): the character features give every word, seen or not, a vector from
its spelling; the bidirectional layer gives each word its left and right context.

    >>> model = SequenceTagger(vocab_size=20000, num_tags=17, char_vocab_size=100)
    >>> logits = model(batch.inputs, batch.lengths, batch.extras["chars"],
    ...                batch.extras["char_lengths"])            # (T, B, 17)
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from lstmlab.models.recurrent import canonical_name, make_recurrent
from lstmlab.models.registry import register
from lstmlab.models.words import WordEncoder


@register("tagger")
class SequenceTagger(nn.Module):
    """Word ids (T, B) with lengths (B,) -> tag logits (T, B, K) (zero rows past each length are
    still computed from zero outputs: score only the mask).

    Args:
        vocab_size, num_tags: words (``<unk>`` included) and tags K.
        cell: the recurrent cell, e.g. "lstm" (= lstm:NP), "lstm:CIFG", "gru" (``parse_cell``); the
            character layer uses it too.
        embedding_size, hidden_size, num_layers, bidirectional: E, H per direction, L, D = 2.
        dropout: on the word vectors, between layers and before the output layer.
        char_vocab_size, char_embedding_size, char_hidden_size: character features
            (``WordEncoder``); char_vocab_size 0 for none.
    """

    def __init__(self, vocab_size: int, num_tags: int, cell: str = "lstm",
                 embedding_size: int = 100, hidden_size: int = 128, num_layers: int = 1,
                 bidirectional: bool = True, dropout: float = 0.33, char_vocab_size: int = 0,
                 char_embedding_size: int = 32, char_hidden_size: int = 50) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"a tagger needs at least one tag, got {num_tags}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.cell = canonical_name(cell)
        self.num_tags, self.dropout = num_tags, float(dropout)
        self.words = WordEncoder(vocab_size, embedding_size, char_vocab_size,
                                 char_embedding_size, char_hidden_size, cell=self.cell)
        self.recurrent = make_recurrent(self.cell, self.words.output_size, hidden_size,
                                        num_layers, dropout=dropout if num_layers > 1 else 0.0,
                                        bidirectional=bidirectional)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_tags)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-ready: ``SequenceTagger(**model.config())``."""
        r = self.recurrent
        return {**self.words.config(), "num_tags": self.num_tags, "cell": self.cell,
                "hidden_size": r.hidden_size, "num_layers": r.num_layers,
                "bidirectional": r.bidirectional, "dropout": self.dropout}

    def forward(self, words: Tensor, lengths: Tensor, chars: Tensor | None = None,
                char_lengths: Tensor | None = None) -> Tensor:
        """words (T, B) ids, lengths (B,) in [1, T]; chars (B, T, W) and char_lengths (B, T)
        when the model reads characters. Returns logits (T, B, K)."""
        x = self.drop(self.words(words, chars, char_lengths))
        outputs, _ = self.recurrent(x, lengths=lengths)
        return self.head(self.drop(outputs))
