"""A recurrent language model: embedding -> lstmlab RNN / LSTM (any variant) / GRU -> decoder.

char-rnn (Karpathy 2015) at character level and Zaremba et al. (2014) at word level:

    >>> model = LanguageModel(vocab_size=65, cell="lstm", hidden_size=512, num_layers=2)
    >>> logits, state = model(inputs)            # inputs (T, B) ids -> logits (T, B, V)
    >>> logits, state = model(next_inputs, model.detach_state(state))   # the next window
    >>> for token_id in model.generate(prime_ids, 200, temperature=0.8, top_k=10, seed=0):
    ...     print(vocab.decode([token_id]), end="", flush=True)
    >>> decoding.beam_search(model.stepper(), start_ids, width=5, max_length=50)  # any decoding

The recurrent state is carried from one window to the next (truncated BPTT: detached between
windows, so gradients stop at the window's start). Losses are in nats per token
(F.cross_entropy); bits per character = nats / ln 2, perplexity = exp(nats per word).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.cells import RecurrentCell, cell_from_layer
from lstmlab.models import decoding
from lstmlab.models.decoding import check_sampling as check_sampling  # re-exported
from lstmlab.models.decoding import sample_logits as sample_logits  # re-exported
from lstmlab.models.recurrent import canonical_name, make_recurrent
from lstmlab.models.registry import register

State = Tensor | tuple[Tensor, ...]


@register("language_model")
class LanguageModel(nn.Module):
    """Next-token model: ids (T, B) -> logits (T, B, V), carrying the recurrent state.

    Args:
        vocab_size: V, the number of symbols.
        cell: the recurrent cell, e.g. "lstm" (= "lstm:NP", torch.nn.LSTM's cell), "lstm:CIFG",
            "gru", "rnn" (see ``parse_cell``).
        hidden_size: H, units per recurrent layer.
        num_layers: L, stacked recurrent layers.
        embedding_size: E, the embedding width; default H (needed for ``tie_weights``).
        dropout: dropout probability on the embeddings, between recurrent layers and before
            the decoder (Zaremba et al.'s placement); 0 for none.
        tie_weights: share the embedding matrix with the decoder (Press & Wolf 2017; Inan et
            al. 2017); needs E == H.
        init_range: if given, every parameter starts uniform in [-init_range, init_range]
            (Zaremba's 0.1); otherwise embedding N(0, 1), torch.nn's default elsewhere, and the
            LSTM's forget-gate bias of 1.
    """

    def __init__(self, vocab_size: int, cell: str = "lstm", hidden_size: int = 512,
                 num_layers: int = 2, embedding_size: int | None = None, dropout: float = 0.0,
                 tie_weights: bool = False, init_range: float | None = None) -> None:
        super().__init__()
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.cell = canonical_name(cell)
        embedding_size = hidden_size if embedding_size is None else embedding_size
        if tie_weights and embedding_size != hidden_size:
            raise ValueError(f"tied weights share the embedding with the decoder, so the "
                             f"embedding size ({embedding_size}) must equal the hidden size "
                             f"({hidden_size}); drop --tie or make them equal")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding_size = embedding_size
        self.dropout = float(dropout)
        self.tie_weights = bool(tie_weights)
        self.init_range = init_range
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.drop = nn.Dropout(dropout)
        self.recurrent = make_recurrent(self.cell, embedding_size, hidden_size, num_layers,
                                        dropout=dropout if num_layers > 1 else 0.0)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        if init_range is not None:
            if not init_range > 0:
                raise ValueError(f"init_range must be positive, got {init_range}")
            for p in self.parameters():
                nn.init.uniform_(p, -init_range, init_range)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-ready: ``LanguageModel(**model.config())``."""
        return {"vocab_size": self.vocab_size, "cell": self.cell,
                "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "embedding_size": self.embedding_size, "dropout": self.dropout,
                "tie_weights": self.tie_weights, "init_range": self.init_range}

    def num_parameters(self) -> int:
        """Trainable parameters, a tied matrix counted once."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, inputs: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Logits for the token after each input.

        Args:
            inputs: token ids (T, B), time-major (a BatchStream window).
            state: the recurrent state from the previous window (None: zeros); for an LSTM
                (h, c), each (L, B, H), otherwise h (L, B, H).

        Returns:
            (logits (T, B, V), final state). Detach the state (``detach_state``) before
            feeding it to the next training window.
        """
        if inputs.dim() != 2:
            raise ValueError(f"inputs must be token ids shaped (T, B), got shape "
                             f"{tuple(inputs.shape)}")
        x = self.embedding(inputs)  # (T, B, E)
        if self.dropout:
            x = self.drop(x)
        output, state = self.recurrent(x, state)  # (T, B, H)
        if self.dropout:
            output = self.drop(output)
        return self.decoder(output), state

    def loss(self, inputs: Tensor, targets: Tensor, state: State | None = None,
             reduction: str = "mean") -> tuple[Tensor, State]:
        """Cross-entropy of ``targets`` (T, B) in nats (mean per token, or "sum"), and the final
        state. Targets equal to -100 (``IGNORE_INDEX``) are not scored."""
        logits, state = self(inputs, state)
        loss = F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1),
                               reduction=reduction)
        return loss, state

    @staticmethod
    def detach_state(state: State | None) -> State | None:
        """The same state cut off from the graph (truncated BPTT between windows)."""
        if state is None:
            return None
        if isinstance(state, Tensor):
            return state.detach()
        return tuple(s.detach() for s in state)

    def stepper(self) -> LanguageStepper:
        """The model one token at a time (a ``decoding`` decoder), on cells that share this
        model's parameters: ``step(tokens (B,), state) -> (logits (B, V), state)``."""
        return LanguageStepper(self)

    @torch.no_grad()
    def generate(self, prime: Sequence[int] | Tensor, length: int, *, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 generator: torch.Generator | None = None) -> Iterator[int]:
        """Sample ``length`` token ids after ``prime``, one at a time (a generator: stream them).

        Each next id is drawn from softmax(logits / temperature), restricted to the ``top_k``
        most likely ids when given (top_k=1 is greedy decoding, deterministic) and then to the
        smallest most-likely set of probability >= ``top_p`` (``lstmlab.models.decoding``).
        The recurrent layers run as cells, one step per token (``stepper``).

        Args:
            prime: at least one token id to start from (their text is not yielded again).
            length: ids to generate.
            temperature: > 0; below 1 sharper (more conservative), above 1 flatter.
            top_k: keep only the k most likely ids (k >= 1; None: all).
            top_p: keep the most likely ids up to this much probability (0 < p <= 1; None: all).
            seed: seeds a private generator, so the same seed gives the same text.
            generator: or a torch.Generator to draw from (takes precedence over seed).
        """
        check_sampling(length, temperature, top_k, top_p)
        ids = torch.as_tensor(prime, dtype=torch.long).reshape(-1)
        if ids.numel() == 0:
            raise ValueError("generation needs at least one prime token")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(f"prime ids must be in [0, {self.vocab_size}), got "
                             f"{ids.min().item()}..{ids.max().item()}")
        device = self.decoder.weight.device
        if generator is None:
            generator = torch.Generator(device=device)
            generator.manual_seed(seed if seed is not None else torch.seed())
        was_training = self.training
        self.eval()
        try:
            stepper = self.stepper()
            ids = ids.to(device).unsqueeze(1)  # (T, 1): one sequence
            state = stepper.advance(ids[:-1])  # the last prime id is the first step's input
            for token in decoding.stream(stepper, ids[-1], state, steps=length,
                                         temperature=temperature, top_k=top_k, top_p=top_p,
                                         generator=generator):
                yield int(token)
        finally:
            self.train(was_training)


class LanguageStepper:
    """A language model one token at a time, for ``lstmlab.models.decoding``.

    The recurrent layers become cells (``lstmlab.cells``) that share the model's parameters, so
    a step costs one cell step per layer instead of a layer call. It decodes as the model in
    eval mode (no dropout).

    State: None (zeros) or a tuple with each layer's cell state - h (B, H) for RNN and GRU,
    (h, c) for an LSTM ((h, c, gates) for FGR) - unlike ``LanguageModel.forward``'s (L, B, H).
    """

    def __init__(self, model: LanguageModel) -> None:
        layer = model.recurrent
        if layer.bidirectional:
            raise ValueError("a bidirectional layer cannot run one token at a time")
        self.embedding = model.embedding
        self.decoder = model.decoder
        self.cells: list[RecurrentCell] = [cell_from_layer(layer, k, share=True)
                                           for k in range(layer.num_layers)]

    def _layers(self, x: Tensor, state: tuple | None) -> tuple[Tensor, tuple]:
        """x (B, E) through every layer's cell: the last layer's h (B, H) and the new state."""
        new = []
        for cell, s in zip(self.cells, state or (None,) * len(self.cells), strict=True):
            s = cell(x, s)
            new.append(s)
            x = s if isinstance(s, Tensor) else s[0]
        return x, tuple(new)

    def step(self, tokens: Tensor, state: tuple | None = None) -> tuple[Tensor, tuple]:
        """Logits (B, V) of the token after ``tokens`` (B,), and the state after them."""
        h, state = self._layers(self.embedding(tokens), state)
        return self.decoder(h), state

    def advance(self, tokens: Tensor, state: tuple | None = None) -> tuple | None:
        """The state after reading ``tokens`` (T, B) (no logits computed); T may be 0."""
        for x in self.embedding(tokens):
            _, state = self._layers(x, state)
        return state
