"""One-to-many: an image captioner - a convolutional encoder and a recurrent decoder (any cell
of ``lstmlab.cells``), without or with soft attention.

The encoder's grid of L = Hg * Wg feature vectors gets two more channels, the (x, y) of each
place in [-1, 1] (as CoordConv): a feature alone does not say where in the image it is, and
captions say "left of" and "above".

Show and Tell (Vinyals et al. 2015), ``attention="none"``: the image is the decoder's first
input, then the words follow:

    a = the whole grid, flattened                            (B, L * (C + 2))
    s_0 = cell(W_i a, 0)                                      the image step (a fully connected
                                                              image embedding, as the paper's)
    s_t = cell(E y_{t-1}, s_{t-1});  p(y_t) = softmax(W_o h_t)

Show, Attend and Tell (Xu et al. 2015), ``attention="soft"``: the initial state comes from the
mean feature, and every step reads a weighted mean of the grid's L features a_l:

    h_0 = tanh(W_h a_mean), c_0 = tanh(W_c a_mean)
    e_tl = v . tanh(W_a a_l + U_a h_{t-1});  alpha_t = softmax_l(e_t)        (B, L)
    z_t = sigmoid(w_b . h_{t-1}) * sum_l alpha_tl a_l                         gated context (B, C)
    s_t = cell([E y_{t-1}; z_t], s_{t-1});  p(y_t) = softmax(W_o [h_t; z_t])

Xu et al.'s doubly stochastic regularisation, lambda * mean_l (1 - sum_t alpha_tl)^2 (a mean
over the L places where the paper sums, so that lambda does not scale with the grid), asks
every part of the image to be looked at about once over the caption (``attention_penalty``).

Decoding goes through ``lstmlab.models.decoding``: ``start(images)`` gives the state after the
image, and ``step(tokens, state) -> (logits, state)`` is the decoder face that greedy decoding
and beam search take. The state is a dict of tensors with the batch first (beam search picks
rows of each): the cell's state ``rnn``, and with attention the grid ``feats`` (B, L, C), its
projection ``keys`` (B, L, A) and the last step's weights ``alpha`` (B, L).

    >>> model = Captioner(vocab_size=24, cell="lstm", attention="soft")
    >>> logits, alphas = model(images, tokens)                 # (T, B, V), (T, B, L)
    >>> best = beam_search(model, start_tokens, model.start(images), width=3, end_token=eos)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lstmlab.models.image_encoder import ImageEncoder
from lstmlab.models.recurrent import as_hx, canonical_name, cell_state, make_cell
from lstmlab.models.registry import register

ATTENTIONS = ("none", "soft")


def _coordinates(side: int) -> Tensor:
    """(x, y) in [-1, 1] of the places of a side x side grid, row by row: (side * side, 2)."""
    axis = torch.linspace(-1.0, 1.0, side) if side > 1 else torch.zeros(1)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], 1)


def attention_penalty(alphas: Tensor, mask: Tensor) -> Tensor:
    """Xu et al.'s doubly stochastic term: the mean over the batch and the L places of
    (1 - sum_t alpha_tl)^2, over each caption's scored steps. alphas (T, B, L), mask (T, B)."""
    total = (alphas * mask.unsqueeze(2)).sum(0)  # (B, L)
    return ((1.0 - total) ** 2).mean()


@register("captioner")
class Captioner(nn.Module):
    """Images (B, 3, S, S) and caption tokens (T, B) -> next-token logits (T, B, V).

    Args:
        vocab_size: V, the caption words with ``<unk>`` and ``<eos>``.
        cell: the decoder's cell, "lstm" (= lstm:NP), "lstm:CIFG", "gru", "rnn", ...
        attention: "none" (Show and Tell) or "soft" (Show, Attend and Tell).
        embedding, hidden, attention_size: word vector size E, decoder units H, attention
            width A.
        channels, strides: the encoder's blocks (``ImageEncoder``).
        image_size: S, the side in pixels the model reads (inputs are resized to it).
        dropout: before the output layer.
    """

    def __init__(self, vocab_size: int, cell: str = "lstm", attention: str = "none",
                 embedding: int = 64, hidden: int = 256, attention_size: int = 64,
                 channels: Sequence[int] = (32, 64, 128, 128),
                 strides: Sequence[int] = (2, 2, 2, 1),
                 image_size: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got "
                             f"{attention!r}")
        if vocab_size < 2:
            raise ValueError(f"a caption vocabulary needs at least 2 words, got {vocab_size}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.vocab_size, self.cell_name = vocab_size, canonical_name(cell)
        self.attention, self.image_size, self.dropout_p = attention, image_size, float(dropout)
        self.embedding_size, self.hidden_size = embedding, hidden
        self.attention_size = attention_size
        self.encoder = ImageEncoder(channels, strides)
        width = self.encoder.out_channels + 2  # the features and their (x, y)
        side = self.encoder.grid_size(image_size)
        self.register_buffer("coords", _coordinates(side), persistent=False)
        self.embed = nn.Embedding(vocab_size, embedding)
        self.drop = nn.Dropout(dropout)
        if attention == "none":
            self.image_in = nn.Linear(side * side * width, embedding)
            self.cell = make_cell(self.cell_name, embedding, hidden)
            self.out = nn.Linear(hidden, vocab_size)
        else:
            self.cell = make_cell(self.cell_name, embedding + width, hidden)
            learned = min(2, len(self.cell.state_widths))  # h and c; FGR's gate history is 0
            self.init_state = nn.ModuleList(nn.Linear(width, hidden) for _ in range(learned))
            self.att_feat = nn.Linear(width, attention_size)
            self.att_hidden = nn.Linear(hidden, attention_size, bias=False)
            self.att_score = nn.Linear(attention_size, 1, bias=False)
            self.gate = nn.Linear(hidden, 1)
            self.out = nn.Linear(hidden + width, vocab_size)

    def config(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "cell": self.cell_name,
                "attention": self.attention, "embedding": self.embedding_size,
                "hidden": self.hidden_size, "attention_size": self.attention_size,
                **self.encoder.config(), "image_size": self.image_size,
                "dropout": self.dropout_p}

    # --- the decoder face -----------------------------------------------------------------------

    def start(self, images: Tensor) -> dict[str, Tensor | tuple]:
        """The decoder's state after seeing ``images`` (B, 3, S, S), before the first word."""
        grid = self.encoder(images)  # (B, C, Hg, Wg)
        feats = grid.flatten(2).transpose(1, 2)  # (B, L, C)
        if feats.shape[1] != self.coords.shape[0]:
            raise ValueError(f"this captioner reads {self.image_size}x{self.image_size} images, "
                             f"got {tuple(images.shape[2:])}")
        feats = torch.cat([feats, self.coords.expand(feats.shape[0], -1, -1)], 2)
        if self.attention == "none":
            return {"rnn": cell_state(self.cell(self.image_in(feats.flatten(1))))}
        mean = feats.mean(1)
        rnn = [torch.tanh(layer(mean)) for layer in self.init_state]
        widths = list(self.cell.state_widths.values())
        rnn += [mean.new_zeros(mean.shape[0], w) for w in widths[len(rnn):]]
        alpha = feats.new_full(feats.shape[:2], 1.0 / feats.shape[1])
        return {"rnn": tuple(rnn), "feats": feats, "keys": self.att_feat(feats), "alpha": alpha}

    def step(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """One word: tokens (B,) and the state -> logits (B, V) of the next word, new state."""
        x = self.embed(tokens)
        if self.attention == "none":
            rnn = cell_state(self.cell(x, as_hx(state["rnn"])))
            return self.out(self.drop(rnn[0])), {"rnn": rnn}
        h = state["rnn"][0]
        scores = self.att_score(torch.tanh(state["keys"] + self.att_hidden(h).unsqueeze(1)))
        alpha = torch.softmax(scores.squeeze(2), dim=1)  # (B, L)
        context = torch.sigmoid(self.gate(h)) * torch.bmm(alpha.unsqueeze(1),
                                                           state["feats"]).squeeze(1)
        rnn = cell_state(self.cell(torch.cat([x, context], 1), as_hx(state["rnn"])))
        logits = self.out(self.drop(torch.cat([rnn[0], context], 1)))
        return logits, {"rnn": rnn, "feats": state["feats"], "keys": state["keys"],
                        "alpha": alpha}

    def forward(self, images: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: images (B, 3, S, S), tokens (T, B) (the start token first) ->
        logits (T, B, V) and, with attention, the weights (T, B, L) (else None)."""
        state = self.start(images)
        logits, alphas = [], []
        for t in range(tokens.shape[0]):
            out, state = self.step(tokens[t], state)
            logits.append(out)
            if "alpha" in state:
                alphas.append(state["alpha"])
        return torch.stack(logits), torch.stack(alphas) if alphas else None

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(Hg, Wg) of the attention weights for this model's image size."""
        side = self.encoder.grid_size(self.image_size)
        return side, side
