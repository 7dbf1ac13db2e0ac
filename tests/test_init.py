"""Chrono initialisation: the biases it sets, and that it makes a 100-step lag learnable."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lstmlab import GRU, LSTM, RNN
from lstmlab.init import chrono_


def test_chrono_biases():
    torch.manual_seed(0)
    layer = chrono_(LSTM(3, 16, num_layers=2, bidirectional=True), max_lag=50)
    for name in ["bias_ih_l0", "bias_ih_l1_reverse"]:
        b = getattr(layer, name)
        forget, inputs = b[16:32], b[:16]
        assert torch.equal(inputs, -forget)
        assert forget.min() >= 0 and forget.max() <= torch.log(torch.tensor(49.0)) + 1e-6
    assert torch.all(layer.bias_hh_l0[:32] == 0)
    cifg = chrono_(LSTM(3, 4, variant="CIFG"), 10)
    assert torch.all(cifg.bias_ih_l0[:4] <= 0)  # only the input gate exists of the two
    gru = chrono_(GRU(3, 4), 10)
    assert torch.all(gru.bias_ih_l0[4:8] >= 0) and torch.all(gru.bias_hh_l0[4:8] == 0)


def test_chrono_errors():
    with pytest.raises(TypeError, match="lstmlab.LSTM and GRU"):
        chrono_(RNN(3, 4), 10)
    with pytest.raises(ValueError, match="max_lag must be at least 3"):
        chrono_(LSTM(3, 4), 2)
    with pytest.raises(ValueError, match="bias=False"):
        chrono_(LSTM(3, 4, bias=False), 10)


def remember_first_batch(batch, lag, symbols, generator):
    """Step 0: one of ``symbols`` symbols (one-hot); then ``lag`` steps of one-hot noise on
    separate lines. Inputs (lag + 1, B, 2 * symbols), targets (B,) the first symbol."""
    target = torch.randint(symbols, (batch,), generator=generator)
    noise = torch.randint(symbols, (lag, batch), generator=generator) + symbols
    return F.one_hot(torch.cat([target.unsqueeze(0), noise]), 2 * symbols).float(), target


def _remember_accuracy(chrono: bool) -> float:
    """Train on remembering the first of 4 symbols across 40 distractor steps (150 Adam steps of
    32 sequences); accuracy on 500 fresh sequences. Chance is 0.25."""
    torch.manual_seed(0)
    lstm = LSTM(8, 16)
    if chrono:
        chrono_(lstm, max_lag=40)
    head = nn.Linear(16, 4)
    params = list(lstm.parameters()) + list(head.parameters())
    optimiser = torch.optim.Adam(params, lr=1e-2)
    data = torch.Generator().manual_seed(0)
    for _ in range(150):
        x, y = remember_first_batch(32, 40, 4, data)
        loss = F.cross_entropy(head(lstm(x)[0][-1]), y)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
    x, y = remember_first_batch(500, 40, 4, torch.Generator().manual_seed(1))
    with torch.no_grad():
        return (head(lstm(x)[0][-1]).argmax(1) == y).float().mean().item()


def test_chrono_lstm_learns_a_long_lag_that_default_init_does_not():
    assert _remember_accuracy(chrono=True) > 0.9
    assert _remember_accuracy(chrono=False) < 0.5
