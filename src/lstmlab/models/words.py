"""Word representations for text heads: a word embedding, optionally joined by character
features of each word - the last states of a bidirectional recurrent layer read over the word's
characters (Ling et al. 2015, Lample et al. 2016, Plank et al. 2016), which gives unseen and
rare words a representation from their spelling.

    x_t = [ E_word[w_t] ; h_fwd(chars of w_t) ; h_bwd(chars of w_t) ]     (T, B, E + 2*C)

    >>> encoder = WordEncoder(vocab_size=5000, embedding_size=100, char_vocab_size=80)
    >>> x = encoder(batch.inputs, batch.extras["chars"], batch.extras["char_lengths"])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lstmlab.models.recurrent import make_recurrent


class WordEncoder(nn.Module):
    """Word ids (T, B) [+ character ids] -> word vectors (T, B, ``output_size``).

    Args:
        vocab_size: words, ``<unk>`` included.
        embedding_size: E, the word embedding width.
        char_vocab_size: characters, ``<unk>`` included; 0 for no character features.
        char_embedding_size, char_hidden_size: the character embedding width and C, the units
            of each direction of the character layer.
        cell: the character layer's cell, e.g. "lstm", "lstm:CIFG", "gru" (``parse_cell``).
    """

    def __init__(self, vocab_size: int, embedding_size: int = 100, char_vocab_size: int = 0,
                 char_embedding_size: int = 25, char_hidden_size: int = 25,
                 cell: str = "lstm") -> None:
        super().__init__()
        if vocab_size < 1 or embedding_size < 1:
            raise ValueError(f"vocab_size and embedding_size must be positive, got {vocab_size} "
                             f"and {embedding_size}")
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.char_vocab_size = char_vocab_size
        self.output_size = embedding_size
        if char_vocab_size:
            self.char_embedding = nn.Embedding(char_vocab_size, char_embedding_size)
            self.char_layer = make_recurrent(cell, char_embedding_size, char_hidden_size,
                                             bidirectional=True)
            self.output_size += 2 * char_hidden_size

    def forward(self, words: Tensor, chars: Tensor | None = None,
                char_lengths: Tensor | None = None) -> Tensor:
        """words (T, B) ids; chars (B, T', W) and char_lengths (B, T') with T' >= T (as the
        batch made them; 0 characters past a sentence's end). Returns (T, B, output_size)."""
        x = self.embedding(words)
        if not self.char_vocab_size:
            return x
        if chars is None or char_lengths is None:
            raise ValueError("this model reads characters: pass the batch's extras 'chars' and "
                             "'char_lengths'")
        steps, rows = words.shape
        lengths = char_lengths[:, :steps].T.reshape(-1)  # (T*B,), time-major like words
        present = lengths > 0
        index = present.nonzero().squeeze(1)
        flat = chars[:, :steps].transpose(0, 1).reshape(steps * rows, -1)[index]  # (N, W)
        kept = lengths[index]
        width = int(kept.max()) if kept.numel() else 1
        spelled = self.char_embedding(flat[:, :width].T)  # (W, N, Ec)
        _, state = self.char_layer(spelled, lengths=kept)
        h = state[0] if isinstance(state, tuple) else state  # (2, N, C): forward, backward
        features = torch.cat([h[0], h[1]], dim=1)  # (N, 2C)
        out = features.new_zeros(steps * rows, features.shape[1])
        out = out.index_copy(0, index, features).reshape(steps, rows, -1)
        return torch.cat([x, out], dim=2)

    def config(self) -> dict[str, Any]:
        c = {"vocab_size": self.embedding.num_embeddings,
             "embedding_size": self.embedding.embedding_dim,
             "char_vocab_size": self.char_vocab_size}
        if self.char_vocab_size:
            c.update(char_embedding_size=self.char_embedding.embedding_dim,
                     char_hidden_size=self.char_layer.hidden_size)
        return c
