"""Remember the first symbol: the smallest experiment that shows why an LSTM remembers.

A sequence starts with one of K symbols (one-hot), followed by ``lag`` steps of noise on separate
distractor lines; at the last step the network must name the first symbol. Chance is 1/K. The
gradient through a plain RNN's tanh recurrence shrinks with every step, so at long lags it cannot
learn what the LSTM's additive cell state carries without loss.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmlab.layers import GRU, LSTM, RNN


def remember_first_batch(batch: int, lag: int, symbols: int, generator: torch.Generator
                         ) -> tuple[Tensor, Tensor]:
    """Inputs (lag+1, B, 2K): step 0 one-hot symbol on lines 0..K-1, then one-hot noise on lines
    K..2K-1; targets (B,) the first symbol."""
    target = torch.randint(symbols, (batch,), generator=generator)
    noise = torch.randint(symbols, (lag, batch), generator=generator) + symbols
    steps = torch.cat([target.unsqueeze(0), noise])
    return F.one_hot(steps, 2 * symbols).float(), target


class LastStepClassifier(nn.Module):
    """A recurrent layer and a linear read-out of its output at the last step."""

    def __init__(self, layer: nn.Module, classes: int):
        super().__init__()
        self.layer = layer
        self.head = nn.Linear(layer.hidden_size, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.layer(x)[0][-1])


@dataclass
class DemoResult:
    model: str
    accuracy: float  # on fresh test sequences
    loss: float      # final training loss, nats
    seconds: float


def remember_first_symbol(lag: int = 50, symbols: int = 4, hidden: int = 32, steps: int = 300,
                          batch: int = 32, seed: int = 0,
                          models: tuple[str, ...] = ("rnn", "lstm", "gru")) -> list[DemoResult]:
    """Train each model (Adam, lr 1e-2) on the task and test it on 1,000 fresh sequences."""
    if lag < 1:
        raise ValueError(f"lag must be at least 1, got {lag}")
    makers = {"rnn": lambda: RNN(2 * symbols, hidden), "gru": lambda: GRU(2 * symbols, hidden),
              "lstm": lambda: LSTM(2 * symbols, hidden)}
    unknown = set(models) - set(makers)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; choose from {sorted(makers)}")
    results = []
    for name in models:
        torch.manual_seed(seed)
        model = LastStepClassifier(makers[name](), symbols)
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        data = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        for _ in range(steps):
            x, y = remember_first_batch(batch, lag, symbols, data)
            loss = F.cross_entropy(model(x), y)
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
        seconds = time.perf_counter() - start
        with torch.no_grad():
            x, y = remember_first_batch(1000, lag, symbols, torch.Generator().manual_seed(10**6))
            accuracy = (model(x).argmax(1) == y).float().mean().item()
        results.append(DemoResult(name, accuracy, loss.item(), seconds))
    return results
