"""Attention over a memory of encoder states: which source positions a decoder reads now.

For a query q (B, Q) (the decoder's state) and a memory m_s (B, S, M) (the encoder's outputs),
a score e_s per position, a softmax over the positions of each row's own length, and the
context c = sum_s a_s m_s:

    additive (Bahdanau et al. 2015):   e_s = v . tanh(W_q q + W_m m_s)          (size A)
    general  (Luong et al. 2015):      e_s = q . (W_m m_s)                       (W_m: Q x M)
    dot      (Luong et al. 2015):      e_s = q . m_s                             (Q = M)

    a = softmax_s(e) over the unmasked positions,   c = sum_s a_s m_s   (B, M)

The memory's side (W_m m_s) does not depend on the query, so it is computed once per sentence
(``keys``) and every decoder step reuses it. Everything is batch-first (B, ...) so that a beam
search can pick rows of it along dim 0.

    >>> attention = Attention("additive", query_size=512, memory_size=512)
    >>> keys = attention.keys(memory)                         # (B, S, K), once
    >>> context, weights = attention(query, keys, memory, mask)   # (B, M), (B, S)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

ATTENTION_SCORES = ("additive", "general", "dot")


class Attention(nn.Module):
    """Scores, weights and context of one query against a memory (see the module).

    Args:
        score: "additive", "general" or "dot".
        query_size, memory_size: Q and M; "dot" needs them equal.
        attention_size: A, the hidden size of the additive score (default: Q).
    """

    def __init__(self, score: str, query_size: int, memory_size: int,
                 attention_size: int | None = None) -> None:
        super().__init__()
        if score not in ATTENTION_SCORES:
            raise ValueError(f"attention score must be one of {', '.join(ATTENTION_SCORES)}, "
                             f"got {score!r}")
        if score == "dot" and query_size != memory_size:
            raise ValueError(f"dot attention needs the decoder's hidden size ({query_size}) to "
                             f"equal the encoder's output size ({memory_size}: 2 x its hidden "
                             "size when bidirectional); use general or additive attention")
        self.score = score
        if score == "additive":
            size = attention_size or query_size
            self.query = nn.Linear(query_size, size, bias=False)
            self.memory = nn.Linear(memory_size, size)
            self.v = nn.Linear(size, 1, bias=False)
        elif score == "general":
            self.memory = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """The memory's side of the score, (B, S, M) -> (B, S, K): W_m m for additive and
        general, m itself for dot."""
        return memory if self.score == "dot" else self.memory(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor
                ) -> tuple[Tensor, Tensor]:
        """query (B, Q), keys (B, S, K) from ``keys``, memory (B, S, M), mask (B, S) bool
        (True: a real position; each row has at least one). Returns the context (B, M) and the
        weights (B, S), zero where masked."""
        if self.score == "additive":
            scores = self.v(torch.tanh(keys + self.query(query).unsqueeze(1))).squeeze(2)
        else:
            scores = torch.bmm(keys, query.unsqueeze(2)).squeeze(2)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        return context, weights
