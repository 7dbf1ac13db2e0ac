"""The training loop and checkpoints: learning, budgets, hooks, interruption, exact resume."""

import itertools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lstmlab import LSTM
from lstmlab.tasks import Batch
from lstmlab.train import (
    Callback,
    CheckpointError,
    EarlyStopping,
    Every,
    StepOutput,
    StopWhen,
    TrainConfig,
    Trainer,
    Validation,
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


def remember_first(generator, batch=16, lag=6):
    """Batches of a task: remember which of two symbols came first, across ``lag`` blanks."""
    while True:
        y = torch.randint(2, (batch,), generator=generator)
        x = torch.zeros(lag + 1, batch, 4)
        x[0, torch.arange(batch), y] = 1.0
        x[1:, :, 3] = 1.0
        yield Batch(x, y.expand(lag + 1, batch))


def classify_last(model, batch):
    logits = model(batch.inputs)
    y = batch.targets[-1]
    accuracy = (logits.argmax(1) == y).float().mean().item()
    return StepOutput(F.cross_entropy(logits, y), batch.batch_size,
                      metrics={"accuracy": accuracy})


def test_learns_and_counts_sequences_exactly():
    torch.manual_seed(0)
    model = LastStep()
    trainer = Trainer(model, TrainConfig(lr=3e-2, max_sequences=16 * 60, progress=False,
                                         log_every=10))
    result = trainer.run(classify_last, remember_first(torch.Generator().manual_seed(0)))
    assert result.stopped_by == "max_sequences"
    assert result.state.sequences == 960 and result.state.step == 60
    assert len(result.history) == 6
    assert result.history[-1]["loss"] < 0.1 < result.history[0]["loss"]
    assert result.history[-1]["accuracy"] > 0.95


def test_callback_stops_and_steps_budget():
    torch.manual_seed(1)
    model = LastStep()
    trainer = Trainer(model, TrainConfig(max_steps=50, progress=False))
    seen = []
    result = trainer.run(classify_last, remember_first(torch.Generator().manual_seed(1)),
                         callbacks=[Every(2, lambda t: seen.append(t.state.step)),
                                    StopWhen(lambda: trainer.state.sequences >= 48)])
    assert result.stopped_by == "callback" and result.state.sequences == 48
    assert seen == [2]
    trainer = Trainer(model, TrainConfig(max_steps=5, progress=False))
    assert trainer.run(classify_last, remember_first(torch.Generator())).state.step == 5


def test_batches_running_out_end_the_run():
    model = LastStep()
    data = remember_first(torch.Generator().manual_seed(5))
    three = [next(data) for _ in range(3)]
    result = Trainer(model, TrainConfig(progress=False)).run(classify_last, three)
    assert result.stopped_by == "batches" and result.state.step == 3


def test_interrupt_returns_what_was_reached():
    torch.manual_seed(2)
    model = LastStep()
    calls = []

    def step(model, batch):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return classify_last(model, batch)

    ended = []

    class Ended(Callback):
        def on_end(self, trainer, result):
            ended.append(result.stopped_by)

    result = Trainer(model, TrainConfig(progress=False)).run(
        step, remember_first(torch.Generator().manual_seed(2)), callbacks=[Ended()])
    assert result.stopped_by == "interrupt" and result.state.step == 3
    assert ended == ["interrupt"]


def test_validation_keeps_the_best_and_early_stopping_stops():
    model = LastStep()
    values = iter([3.0, 2.0, 2.5, 2.4, 2.6, 1.0])
    best = []
    validation = Validation(lambda m: next(values), every=2,
                            on_best=lambda t, v: best.append((t.state.step, v)))
    result = Trainer(model, TrainConfig(progress=False, max_steps=100)).run(
        classify_last, remember_first(torch.Generator().manual_seed(6)),
        callbacks=[validation, EarlyStopping(validation, patience=3)])
    assert best == [(2, 3.0), (4, 2.0)]
    assert result.stopped_by == "callback" and result.state.step == 10
    assert [r["valid"] for r in validation.records] == [3.0, 2.0, 2.5, 2.4, 2.6]


def test_fit_decays_the_learning_rate_after_each_validation_without_a_new_best():
    from lstmlab.experiments.supervised import fit

    values = iter([3.0, 3.5, 2.0, 2.0, 1.0, 9.0])
    seen = []
    run = fit(LastStep(), TrainConfig(progress=False, max_steps=12, lr=0.04,
                                      schedule="cosine"),
              classify_last, remember_first(torch.Generator().manual_seed(6)),
              error=lambda m: next(values), eval_every=2, lr_decay=0.5,
              report=lambda t, v, improved: seen.append(
                  (v, t.schedule.base_lrs[0], t.optimizer.param_groups[0]["lr"])))
    assert [(v, base) for v, base, _ in seen] == [
        (3.0, 0.04), (3.5, 0.02), (2.0, 0.02), (2.0, 0.01), (1.0, 0.01), (9.0, 0.005)]
    # the schedule's shape is kept: the current rate is the base times the cosine factor
    factor = [0.5 * (1 + math.cos(math.pi * step / 12)) for step in (2, 4, 6, 8, 10, 12)]
    assert [lr for _, _, lr in seen] == pytest.approx(
        [base * f for (_, base, _), f in zip(seen, factor, strict=True)])
    assert run.best == 1.0


def test_fit_validates_and_keeps_a_moving_average_of_the_weights():
    from lstmlab.experiments.supervised import fit

    model, decay = LastStep(), 0.75
    raw, validated = [], []

    def step(m, batch):
        raw.append([p.detach().clone() for p in model.parameters()])  # after the last update
        return classify_last(m, batch)

    def error(kept):
        assert kept is not model
        validated.append([p.detach().clone() for p in kept.parameters()])
        return -float(len(validated))  # every validation a new best: the last one is kept

    fit(model, TrainConfig(progress=False, max_steps=6, lr=0.3), step,
        remember_first(torch.Generator().manual_seed(3)), error=error, eval_every=2,
        average=decay)
    average, expected = None, []
    for k, weights in enumerate(raw[1:], start=1):  # w_1 .. w_5, the weights after step k
        average = weights if average is None else [
            decay * a + (1 - decay) * w for a, w in zip(average, weights, strict=True)]
        if k % 2 == 0:
            expected.append(average)
    assert len(validated) == 3 and len(expected) == 2  # steps 2, 4 (and 6: w_6 not seen)
    for got, want in zip(validated[:2], expected, strict=True):
        assert all(torch.allclose(g, w) for g, w in zip(got, want, strict=True))
    assert not all(torch.allclose(a, w) for a, w in zip(expected[1], raw[4], strict=True))
    # the model leaves with the kept average, not its last raw weights
    assert all(torch.equal(p, v) for p, v in zip(model.parameters(), validated[-1], strict=True))
    with pytest.raises(ValueError, match=r"average .* must be in \[0, 1\), got 1"):
        fit(LastStep(), TrainConfig(progress=False, max_steps=1), classify_last,
            remember_first(torch.Generator().manual_seed(3)), error=error, eval_every=1,
            average=1.0)


def test_cosine_without_max_steps_decays_over_the_budget_used():
    # 4 sequences a step, a budget of 40 sequences: after the k-th step 4 k / 40 is used
    trainer = Trainer(LastStep(), TrainConfig(progress=False, max_sequences=40, lr=0.1,
                                              schedule="cosine", log_every=1))
    trainer.run(classify_last, remember_first(torch.Generator().manual_seed(1), batch=4))
    lrs = [point["lr"] for point in trainer.history]
    assert len(lrs) == 10
    assert lrs == pytest.approx([0.1 * 0.5 * (1 + math.cos(math.pi * 4 * k / 40))
                                 for k in range(1, 11)])
    # a time budget alone: the clock decides, the rate falls from the first step on
    timed = Trainer(LastStep(), TrainConfig(progress=False, max_seconds=0.5, lr=0.1,
                                            schedule="cosine", log_every=1))
    timed.run(classify_last, remember_first(torch.Generator().manual_seed(1), batch=4))
    rates = [point["lr"] for point in timed.history]
    assert rates[0] <= 0.1 and rates[-1] < 0.02
    assert all(b <= a for a, b in itertools.pairwise(rates))


def test_non_finite_loss_is_a_clear_error():
    model = LastStep()
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        Trainer(model, TrainConfig(progress=False, max_steps=3)).run(
            lambda m, b: StepOutput(torch.tensor(float("nan"), requires_grad=True), 1),
            remember_first(torch.Generator()))


def test_resume_gives_the_same_weights(tmp_path):
    config = TrainConfig(lr=1e-2, max_steps=12, progress=False, schedule="cosine",
                         log_every=3, optimizer="adam")

    def fresh():
        torch.manual_seed(3)
        return LastStep()

    def noisy_step(model, batch):  # consumes torch's global RNG: its state must be restored
        out = classify_last(model, batch)
        out.loss = out.loss + 1e-3 * torch.randn(()).abs()
        return out

    model = fresh()
    straight = Trainer(model, config)
    straight.run(noisy_step, remember_first(torch.Generator().manual_seed(4)))

    model = fresh()
    gen = torch.Generator().manual_seed(4)
    first = Trainer(model, config)
    first.run(noisy_step, remember_first(gen),
              callbacks=[StopWhen(lambda: first.state.step == 5)])
    first.save(tmp_path, "last", meta={"data": gen.get_state().tolist()})

    model = fresh()
    torch.manual_seed(99)  # the resumed run must not depend on the RNG it starts with
    tensors, meta = load_checkpoint(tmp_path)
    resumed = Trainer(model, config)
    resumed.restore(tensors, meta)
    gen = torch.Generator()
    gen.set_state(torch.tensor(meta["data"], dtype=torch.uint8))
    result = resumed.run(noisy_step, remember_first(gen))
    assert result.state.step == 12
    for a, b in zip(straight.model.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]


def test_batch_shards_cover_every_row_once():
    x = torch.arange(2 * 7 * 3, dtype=torch.float).reshape(2, 7, 3)
    batch = Batch(x, torch.zeros(2, 7, dtype=torch.long), extras={"id": torch.arange(7)})
    ids = torch.cat([batch.shard(r, 3).extras["id"] for r in range(3)])
    assert ids.tolist() == list(range(7))
    assert [batch.shard(r, 3).batch_size for r in range(3)] == [3, 2, 2]
    with pytest.raises(ValueError, match="8 processes cannot share a batch of 7 rows"):
        batch.shard(0, 8)


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
    with pytest.raises(ValueError, match="cosine schedule needs a budget"):
        TrainConfig(schedule="cosine")


def test_backoff_skips_non_finite_steps_and_halves_the_lr():
    model = LastStep()
    before = [p.detach().clone() for p in model.parameters()]
    calls = []

    def sometimes_nan(model, batch):
        out = classify_last(model, batch)
        calls.append(1)
        if len(calls) in (1, 2):
            out.loss = out.loss * float("nan")
        return out

    trainer = Trainer(model, TrainConfig(lr=1e-2, progress=False, max_steps=3,
                                         nonfinite="backoff"))
    trainer.run(sometimes_nan, remember_first(torch.Generator().manual_seed(7)))
    assert trainer.schedule.base_lrs == [2.5e-3]  # halved twice
    assert trainer.optimizer.param_groups[0]["lr"] == 2.5e-3
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert any(changed)  # the third step trained
    always = Trainer(LastStep(), TrainConfig(progress=False, max_steps=50, nonfinite="backoff",
                                             max_backoffs=3))
    with pytest.raises(FloatingPointError, match="after halving the learning rate 3 times"):
        always.run(lambda m, b: StepOutput(torch.tensor(float("inf"), requires_grad=True), 1),
                   remember_first(torch.Generator()))
