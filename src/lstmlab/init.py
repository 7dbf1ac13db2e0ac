"""Initialisations beyond torch.nn's uniform default: chrono gate biases, head priors, uniform
ranges.

``chrono_`` is Tallec & Ollivier's chrono initialisation ("Can recurrent neural networks warp
time?", ICLR 2018) for the LSTM: the forget-gate bias is drawn as log(u), u ~ U(1, T_max - 1),
and the input-gate bias is its negative. A cell then starts out holding its state over a
characteristic time of about u steps and writes little into it, instead of forgetting within a few
steps (forget bias 1: sigmoid(1)^100 ~ 1e-14 after 100 steps) or, without a forget gate, filling up
with input until tanh saturates. With it an LSTM learns 100-step lags from the start of training.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lstmlab.layers import GRU, LSTM


def chrono_(layer: LSTM | GRU, max_lag: int,
            generator: torch.Generator | None = None) -> LSTM | GRU:
    """Chrono-initialise the gate biases of every layer and direction of ``layer`` in place.

    LSTM: b_f = log(U(1, max_lag - 1)), b_i = -b_f (in bias_ih; bias_hh's i and f blocks set to
    0). Where the variant lacks a learned forget gate (NFG, CIFG) only the input bias is set, from
    the same draw; where it lacks an input gate (NIG) only the forget bias.
    GRU (h_t = (1 - z_t) n_t + z_t h_{t-1}): the update gate plays the forget gate's part, so
    b_z = log(U(1, max_lag - 1)). Returns ``layer``.
    """
    if not isinstance(layer, (LSTM, GRU)):
        raise TypeError(f"chrono initialisation is for lstmlab.LSTM and GRU layers, got "
                        f"{type(layer).__name__}")
    if not layer.bias:
        raise ValueError("chrono initialisation sets gate biases; this layer has bias=False")
    if max_lag < 3:
        raise ValueError(f"max_lag must be at least 3 (u is drawn from [1, max_lag - 1]), got "
                         f"{max_lag}")
    h = layer.hidden_size
    if isinstance(layer, LSTM):
        gates = layer.spec.gates
        holds, writes = "f", "i"
    else:
        gates = ("r", "z", "n")
        holds, writes = "z", None
    with torch.no_grad():
        for layer_index in range(layer.num_layers):
            for reverse in (False, True)[: layer.num_directions]:
                w = layer.weights(layer_index, reverse)
                u = torch.empty(h, dtype=torch.float64).uniform_(1, max_lag - 1,
                                                                 generator=generator)
                timescale = torch.log(u).to(w["bias_ih"].dtype)
                for gate, value in ((holds, timescale), (writes, -timescale)):
                    if gate in gates:
                        block = slice(gates.index(gate) * h, (gates.index(gate) + 1) * h)
                        w["bias_ih"][block] = value
                        w["bias_hh"][block] = 0.0
    return layer


INITS = ("chrono", "default")
"""Initialisations a recurrent layer can start from (``initialise``)."""


def initialise(layer: nn.Module, init: str, max_lag: int,
               generator: torch.Generator | None = None) -> nn.Module:
    """Apply ``init`` to a recurrent layer in place: "chrono" (``chrono_`` with T_max =
    ``max_lag``, at least 3; an Elman RNN has no gate and keeps its weights) or "default"
    (leave the layer's own initialisation)."""
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if init == "chrono" and isinstance(layer, (LSTM, GRU)):
        chrono_(layer, max(3, max_lag), generator)
    return layer


def prior_logits(targets: Tensor, low: float = 0.01) -> Tensor:
    """(O,) log-odds of each output's mean target over the rows of ``targets`` (N, O), the
    mean clamped to [low, 1 - low]: the bias at which logistic outputs start at their prior."""
    prior = targets.float().mean(0).clamp(low, 1 - low)
    return torch.log(prior / (1 - prior))


def uniform_(module: nn.Module, radius: float, generator: torch.Generator | None = None
             ) -> nn.Module:
    """Draw every parameter of ``module`` uniformly from [-radius, radius], in place (weight
    guessing; Zaremba et al.'s init_range)."""
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-radius, radius, generator=generator)
    return module
