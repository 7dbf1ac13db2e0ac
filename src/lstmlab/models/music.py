"""Many-to-many, multi-label: a polyphonic music model that predicts the next piano-roll frame.

    frames (T, B, 88) -> recurrent layer (T, B, H) -> dropout, linear -> logits (T, B, 88)

    P(key k down at step t+1 | frames <= t) = sigmoid(logits[t, :, k]), the 88 keys independent
    given the history (the RNN baselines of Boulanger-Lewandowski et al. 2012, Chung et al. 2014
    and Bai et al. 2018). Loss per frame: the sum over keys of the binary cross-entropy, nats.

    >>> model = MusicModel(cell="lstm", hidden_size=256)
    >>> logits, state = model(batch.inputs, batch.lengths)          # (T, B, 88)
    >>> roll = model.generate(prime_roll, steps=64, temperature=1.0, seed=0)   # (T0 + 64, 88)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lstmlab.models.recurrent import canonical_name, make_recurrent
from lstmlab.models.registry import register

State = Tensor | tuple[Tensor, ...]


@register("music")
class MusicModel(nn.Module):
    """Piano-roll frames (T, B, K) -> logits of the next frame's keys (T, B, K).

    Args:
        keys: K, the roll's width (88 piano keys).
        cell: the recurrent cell, e.g. "lstm" (= lstm:NP), "lstm:CIFG", "gru" (``parse_cell``).
        hidden_size, num_layers: H and L of the recurrent layer.
        dropout: between layers and before the output layer (none on the input frames).
    """

    def __init__(self, keys: int = 88, cell: str = "lstm", hidden_size: int = 256,
                 num_layers: int = 1, dropout: float = 0.3) -> None:
        super().__init__()
        if keys < 1:
            raise ValueError(f"keys must be positive, got {keys}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.cell = canonical_name(cell)
        self.keys, self.dropout = keys, float(dropout)
        self.recurrent = make_recurrent(self.cell, keys, hidden_size, num_layers,
                                        dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, keys)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-ready: ``MusicModel(**model.config())``."""
        return {"keys": self.keys, "cell": self.cell,
                "hidden_size": self.recurrent.hidden_size,
                "num_layers": self.recurrent.num_layers, "dropout": self.dropout}

    def forward(self, frames: Tensor, lengths: Tensor | None = None,
                state: State | None = None) -> tuple[Tensor, State]:
        """frames (T, B, K) in {0, 1}; lengths (B,) (None: all T); state from a previous call
        (None: zeros). Returns (logits (T, B, K) of the frames that follow, final state)."""
        outputs, state = self.recurrent(frames, state, lengths=lengths)
        return self.head(self.drop(outputs)), state

    @torch.no_grad()
    def generate(self, prime: Tensor | None, steps: int, *, temperature: float = 1.0,
                 seed: int | None = None) -> Tensor:
        """Sample ``steps`` frames after ``prime`` (T0, K) (None: one silent frame), each key
        drawn independently with probability sigmoid(logit / temperature); returns the prime
        followed by the new frames, (T0 + steps, K). Runs in eval mode (no dropout)."""
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        device = self.head.weight.device
        if prime is None:
            prime = torch.zeros(1, self.keys)
        if prime.dim() != 2 or prime.shape[1] != self.keys or prime.shape[0] < 1:
            raise ValueError(f"prime must be a roll (T0 >= 1, {self.keys}), got "
                             f"{tuple(prime.shape)}")
        generator = torch.Generator(device=device)
        generator.manual_seed(seed if seed is not None else torch.seed())
        was_training = self.training
        self.eval()
        try:
            frames = [f for f in prime.to(device, torch.float32)]
            logits, state = self(torch.stack(frames).unsqueeze(1))
            last = logits[-1, 0]
            for _ in range(steps):
                probabilities = torch.sigmoid(last / temperature)
                frame = (torch.rand(probabilities.shape, generator=generator, device=device)
                         < probabilities).float()
                frames.append(frame)
                logits, state = self(frame.view(1, 1, -1), state=state)
                last = logits[-1, 0]
        finally:
            self.train(was_training)
        return torch.stack(frames).cpu()
