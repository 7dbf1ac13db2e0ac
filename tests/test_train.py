"""The training loop and checkpoints: learning, budgets, hooks, interruption, exact resume."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lstmlab import LSTM
from lstmlab.train import (
    CheckpointError,
    StepOutput,
    TrainConfig,
    Trainer,
    load_checkpoint,
    save_checkpoint,
)


class LastStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = LSTM(4, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.rnn(x)[0][-1])


def make_step(model, generator, batch=16, lag=6):
    """Remember which of two symbols came first, across ``lag`` blank steps."""
    def step():
        y = torch.randint(2, (batch,), generator=generator)
        x = torch.zeros(lag + 1, batch, 4)
        x[0, torch.arange(batch), y] = 1.0
        x[1:, :, 3] = 1.0
        logits = model(x)
        accuracy = (logits.argmax(1) == y).float().mean().item()
        return StepOutput(F.cross_entropy(logits, y), batch, metrics={"accuracy": accuracy})
    return step


def test_learns_and_counts_sequences_exactly():
    torch.manual_seed(0)
    model = LastStep()
    trainer = Trainer(model, TrainConfig(lr=3e-2, max_sequences=16 * 60, progress=False,
                                         log_every=10))
    result = trainer.run(make_step(model, torch.Generator().manual_seed(0)))
    assert result.stopped_by == "max_sequences"
    assert result.state.sequences == 960 and result.state.step == 60
    assert len(result.history) == 6
    assert result.history[-1]["loss"] < 0.1 < result.history[0]["loss"]
    assert result.history[-1]["accuracy"] > 0.95


def test_hook_stops_and_steps_budget():
    torch.manual_seed(1)
    model = LastStep()
    trainer = Trainer(model, TrainConfig(max_steps=50, progress=False))
    result = trainer.run(make_step(model, torch.Generator().manual_seed(1)),
                         on_step=lambda t, out: t.state.sequences >= 48)
    assert result.stopped_by == "hook" and result.state.sequences == 48
    trainer = Trainer(model, TrainConfig(max_steps=5, progress=False))
    assert trainer.run(make_step(model, torch.Generator())).state.step == 5


def test_interrupt_returns_what_was_reached():
    torch.manual_seed(2)
    model = LastStep()
    inner = make_step(model, torch.Generator().manual_seed(2))
    calls = []

    def step():
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return inner()

    result = Trainer(model, TrainConfig(progress=False)).run(step)
    assert result.stopped_by == "interrupt" and result.state.step == 3


def test_non_finite_loss_is_a_clear_error():
    model = LastStep()
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        Trainer(model, TrainConfig(progress=False, max_steps=3)).run(
            lambda: StepOutput(torch.tensor(float("nan"), requires_grad=True), 1))


def test_resume_gives_the_same_weights(tmp_path):
    config = TrainConfig(lr=1e-2, max_steps=12, progress=False, schedule="cosine",
                         log_every=3, optimizer="adam")

    def fresh():
        torch.manual_seed(3)
        return LastStep()

    def step_with_dropout(model, generator):
        inner = make_step(model, generator)

        def step():  # consumes torch's global RNG, so the RNG state must be restored too
            out = inner()
            out.loss = out.loss + 1e-3 * torch.randn(()).abs()
            return out
        return step

    model = fresh()
    straight = Trainer(model, config)
    straight.run(step_with_dropout(model, torch.Generator().manual_seed(4)))

    model = fresh()
    gen = torch.Generator().manual_seed(4)
    first = Trainer(model, config)
    first.run(step_with_dropout(model, gen), on_step=lambda t, o: t.state.step == 5)
    first.save(tmp_path, "last", meta={"data": gen.get_state().tolist()})

    model = fresh()
    torch.manual_seed(99)  # the resumed run must not depend on the RNG it starts with
    tensors, meta = load_checkpoint(tmp_path)
    resumed = Trainer(model, config)
    resumed.restore(tensors, meta)
    gen = torch.Generator()
    gen.set_state(torch.tensor(meta["data"], dtype=torch.uint8))
    result = resumed.run(step_with_dropout(model, gen))
    assert result.state.step == 12
    for a, b in zip(straight.model.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path, "best", {"w": torch.ones(3)}, {"note": "x"})
    tensors, meta = load_checkpoint(tmp_path / "best.json")
    assert torch.equal(tensors["w"], torch.ones(3)) and meta["note"] == "x"
    weights = tmp_path / meta["tensors"]
    weights.write_bytes(weights.read_bytes()[:-4])
    with pytest.raises(CheckpointError, match="incomplete"):
        load_checkpoint(tmp_path / "best")
    (tmp_path / "best.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "best")
    (tmp_path / "best.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not an lstmlab checkpoint"):
        load_checkpoint(tmp_path / "best")
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_config():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="max_sequences must be positive"):
        TrainConfig(max_sequences=-5)
    with pytest.raises(ValueError, match="cosine schedule needs max_steps"):
        TrainConfig(schedule="cosine")
