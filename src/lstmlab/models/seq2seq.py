"""Sequence to sequence: an encoder-decoder translator with optional attention.

    source ids (S, B) -> embedding (S, B, E) -> bidirectional encoder (S, B, 2H)  RNN/LSTM/GRU
    decoder initial state: (h_0, c_0) = split(W_b [h_fwd; h_bwd]), h_0 through tanh
    for each target step t, from the previous token y_{t-1} (``<s>`` first):
        x_t  = [embed(y_{t-1}); h~_{t-1}]          input feeding (Luong et al. 2015); h~_0 = 0
        h_t, c_t = LSTMCell(x_t, (h_{t-1}, c_{t-1}))   any LSTM variant (``lstmlab.cells``)
        c_t' = attention(h_t, encoder outputs)     additive / general / dot (``attention.py``)
        h~_t = dropout(tanh(W_c [h_t; c_t']))      the attentional vector (A,)
        logits_t = W_o h~_t                        (V,); W_o = the target embedding if tied

Attention ``none`` is Sutskever et al. (2014)'s model: the decoder knows the source only
through its initial state, and h~_t = dropout(tanh(W_c h_t)). "bahdanau" is the additive score
of Bahdanau et al. (2015) and "luong" the general score of Luong et al. (2015), both in Luong's
attentional decoder above; "dot" is Luong's dot score (decoder size = 2 x encoder size). With
tied embeddings A = E (the output matrix is the target embedding), else A = the decoder size.

The model is a ``decoder`` for ``lstmlab.models.decoding`` (greedy, beam search):

    >>> decoder, state = model.start(source, lengths)           # encode once
    >>> hyps = beam_search(decoder, bos_tokens, state, width=5, end_token=eos)
    >>> logits, weights = model(source, lengths, decoder_inputs, return_attention=True)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lstmlab.cells import LSTMCell
from lstmlab.models.attention import Attention
from lstmlab.models.decoding import select_state
from lstmlab.models.recurrent import canonical_name, make_recurrent, parse_cell
from lstmlab.models.registry import register

# the user's name of an attention -> its score (None: no attention)
ATTENTIONS = {"none": None, "bahdanau": "additive", "luong": "general", "dot": "dot"}


@register("translator")
class Translator(nn.Module):
    """Source ids (S, B) with lengths (B,) and decoder inputs (T, B) -> logits (T, B, V).

    Args:
        source_vocab_size, target_vocab_size: symbols of each side (specials included).
        cell: the encoder's cell: "lstm" (= lstm:NP), "lstm:CIFG", ..., "gru", "rnn".
        decoder_cell: the decoder's LSTM, "lstm" or "lstm:VARIANT" (an ``LSTMCell``).
        embedding_size: E, both sides' token vectors.
        hidden_size: H, the encoder's units per direction (its outputs are 2H wide).
        decoder_size: the decoder's units.
        layers: encoder layers.
        attention: "none", "bahdanau", "luong" or "dot" (see the module).
        input_feeding: feed h~_{t-1} into the decoder's input (with attention only).
        dropout: on embeddings, between encoder layers, and on h~_t.
        tie_embeddings: the output layer uses the target embedding matrix.
    """

    def __init__(self, source_vocab_size: int, target_vocab_size: int, cell: str = "lstm",
                 decoder_cell: str = "lstm", embedding_size: int = 256, hidden_size: int = 256,
                 decoder_size: int = 512, layers: int = 1, attention: str = "luong",
                 input_feeding: bool = True, dropout: float = 0.3,
                 tie_embeddings: bool = False) -> None:
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got "
                             f"{attention!r}")
        kind, variant = parse_cell(decoder_cell)
        if kind != "lstm":
            raise ValueError(f"the decoder is an LSTM (lstm or lstm:VARIANT), got "
                             f"{decoder_cell!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.cell, self.decoder_cell = canonical_name(cell), canonical_name(decoder_cell)
        self.attention, self.dropout = attention, float(dropout)
        self.input_feeding = bool(input_feeding) and attention != "none"
        self.tie_embeddings = bool(tie_embeddings)
        self.embedding_size, self.hidden_size, self.decoder_size = (embedding_size, hidden_size,
                                                                    decoder_size)
        self.layers = layers
        memory = 2 * hidden_size
        self.attentional_size = embedding_size if tie_embeddings else decoder_size

        self.source_embedding = nn.Embedding(source_vocab_size, embedding_size)
        self.encoder = make_recurrent(self.cell, embedding_size, hidden_size, layers,
                                      dropout=dropout if layers > 1 else 0.0,
                                      bidirectional=True)
        self.bridge = nn.Linear(memory, 2 * decoder_size)
        self.target_embedding = nn.Embedding(target_vocab_size, embedding_size)
        feed = self.attentional_size if self.input_feeding else 0
        self.decoder = LSTMCell(embedding_size + feed, decoder_size, variant=variant)
        score = ATTENTIONS[attention]
        self.attend = Attention(score, decoder_size, memory) if score else None
        self.combine = nn.Linear(decoder_size + (memory if score else 0), self.attentional_size)
        self.out = nn.Linear(self.attentional_size, target_vocab_size)
        if tie_embeddings:
            self.out.weight = self.target_embedding.weight
        self.drop = nn.Dropout(dropout)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-ready: ``Translator(**model.config())``."""
        return {"source_vocab_size": self.source_embedding.num_embeddings,
                "target_vocab_size": self.target_embedding.num_embeddings,
                "cell": self.cell, "decoder_cell": self.decoder_cell,
                "embedding_size": self.embedding_size, "hidden_size": self.hidden_size,
                "decoder_size": self.decoder_size, "layers": self.layers,
                "attention": self.attention, "input_feeding": self.input_feeding,
                "dropout": self.dropout, "tie_embeddings": self.tie_embeddings}

    # --- encoding ------------------------------------------------------------------------------

    def encode(self, source: Tensor, lengths: Tensor) -> dict[str, Any]:
        """The decoder's first state for source ids (S, B) of ``lengths`` (B,): the LSTM state
        ``cell`` ((B, Hd) each), the fed vector ``feed`` (B, A) = 0, and the encoder's
        ``memory`` (B, S, 2H) with its attention ``keys`` and ``mask`` (B, S); ``row`` (B,) is
        each row's sentence (for ``TranslationDecoder.select_state``)."""
        outputs, final = self.encoder(self.drop(self.source_embedding(source)), lengths=lengths)
        h = final[0] if isinstance(final, tuple) else final  # (L*2, B, H)
        both = torch.cat([h[-2], h[-1]], dim=1)  # the top layer's forward and backward ends
        h0, c0 = self.bridge(both).chunk(2, dim=1)
        cell = (torch.tanh(h0), c0)
        if self.decoder.spec.gate_recurrence:  # FGR carries its gate history
            cell += (h0.new_zeros(h0.shape[0], self.decoder.state_widths["gates"]),)
        memory = outputs.transpose(0, 1)  # (B, S, 2H)
        steps = memory.shape[1]
        mask = torch.arange(steps, device=memory.device).unsqueeze(0) \
            < lengths.to(memory.device).unsqueeze(1)
        return {"cell": cell, "feed": memory.new_zeros(memory.shape[0], self.attentional_size),
                "memory": memory, "keys": self.attend.keys(memory) if self.attend else memory,
                "mask": mask, "row": torch.arange(memory.shape[0], device=memory.device)}

    # --- decoding ------------------------------------------------------------------------------

    def advance(self, tokens: Tensor, state: dict[str, Any]
                ) -> tuple[Tensor, dict[str, Any], Tensor | None]:
        """One decoder step from the previous tokens (B,): the attentional vector h~_t (B, A),
        the new state, and the attention weights (B, S) (None without attention)."""
        x = self.drop(self.target_embedding(tokens))
        if self.input_feeding:
            x = torch.cat([x, state["feed"]], dim=1)
        cell = self.decoder(x, state["cell"])
        h = cell[0]
        weights = None
        if self.attend is not None:
            context, weights = self.attend(h, state["keys"], state["memory"], state["mask"])
            h = torch.cat([h, context], dim=1)
        out = self.drop(torch.tanh(self.combine(h)))
        return out, {**state, "cell": tuple(cell), "feed": out}, weights

    def forward(self, source: Tensor, lengths: Tensor, decoder_inputs: Tensor, *,
                return_attention: bool = False):
        """Teacher forcing: source (S, B), lengths (B,), decoder_inputs (T, B) (``<s>`` then
        the targets but the last) -> logits (T, B, V); with ``return_attention`` also the
        weights (T, B, S) (zeros without attention)."""
        state = self.encode(source, lengths)
        outs, weights = [], []
        for t in range(decoder_inputs.shape[0]):
            out, state, w = self.advance(decoder_inputs[t], state)
            outs.append(out)
            if return_attention:
                weights.append(w if w is not None else state["mask"].float() * 0)
        logits = self.out(torch.stack(outs))
        return (logits, torch.stack(weights)) if return_attention else logits

    def start(self, source: Tensor, lengths: Tensor) -> tuple[TranslationDecoder, dict[str, Any]]:
        """A decoder for ``lstmlab.models.decoding`` and its first state for these sources."""
        return TranslationDecoder(self), self.encode(source, lengths)


class TranslationDecoder:
    """``step(tokens (K,), state) -> (logits (K, V), state)`` over a translator, and a
    ``select_state`` that re-gathers the encoder's memory only when the rows' sentences change
    (a beam search reorders hypotheses within each sentence: the memory stays as it is)."""

    def __init__(self, model: Translator) -> None:
        self.model = model

    def step(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        out, state, _ = self.model.advance(tokens, state)
        return self.model.out(out), state

    def select_state(self, state: dict[str, Any], index: Tensor) -> dict[str, Any]:
        index = index.to(state["row"].device)
        rows = state["row"].index_select(0, index)
        picked = {"cell": select_state(state["cell"], index),
                  "feed": state["feed"].index_select(0, index), "row": rows}
        if rows.shape == state["row"].shape and torch.equal(rows, state["row"]):
            fixed = {k: state[k] for k in ("memory", "keys", "mask")}  # the same sentences
        else:
            fixed = {k: state[k].index_select(0, index) for k in ("memory", "keys", "mask")}
        return {**picked, **fixed}
