"""Each memory game's objective pinned to its definition (docs/tasks.md; the papers): which steps
are trained (``batch.mask``, the steps ``task.loss`` averages over) and which steps the game's
own rule judges (``task.evaluate``). The expected steps are written out here from the
definitions, from the sequence layout and lengths alone, never read back from the mask."""

from __future__ import annotations

import pytest
import torch

from lstmlab.tasks import TASK_NAMES, Batch, make_task

pytestmark = pytest.mark.usefixtures("one_thread")


def _last(batch: Batch) -> torch.Tensor:
    """(T, B) True at each sequence's last step."""
    return torch.arange(batch.steps).unsqueeze(1) == (batch.lengths - 1).unsqueeze(0)


def _steps(batch: Batch, wanted: list[int]) -> torch.Tensor:
    """(T, B) True at the given steps of every sequence."""
    mask = torch.zeros((batch.steps, batch.batch_size), dtype=torch.bool)
    mask[wanted] = True
    return mask


def _every(batch: Batch) -> torch.Tensor:
    return torch.arange(batch.steps).unsqueeze(1) < batch.lengths.unsqueeze(0)


# (name, lag, options, trained steps, judged steps): each from the game's definition
LAG = 12
DEFINITIONS = [
    # A1: the name is asked for at the query, step T + 1
    ("intern", LAG, {}, lambda b: _steps(b, [LAG + 1]), None),
    # A2: the open count at the query, step T (after T days)
    ("tasks", LAG, {}, lambda b: _steps(b, [LAG]), None),
    ("tasks", LAG, {"regression": True}, lambda b: _steps(b, [LAG]), None),
    # A3: the R = max_letters + 1 recall steps after the prompt at step T
    ("romaji", LAG, {}, lambda b: _steps(b, list(range(LAG + 1, LAG + 1 + 7))), None),
    # B1 (1997 Exp. 1): "permanently predict the next symbol": every step that has a next one
    ("reber", None, {}, lambda b: _every(b) & ~_last(b), None),
    # B2 (1997 Exp. 2): 2a "error signals occur at every single time step"
    ("lag", LAG, {"variant": "2a"}, _every, None),
    # 2b: "Again, every next sequence element has to be predicted" (trained at every step), but
    # success is "the maximal absolute error of all output units is below 0.25 at sequence end"
    ("lag", LAG, {"variant": "2b"}, _every, _last),
    # 2c: "Error signals are generated only at sequence ends"
    ("lag", LAG, {"variant": "2c"}, _last, None),
    # B3-B6 (1997 Exp. 3-6): "error signals are generated only at sequence ends"
    ("two_sequence", LAG, {"variant": "3a"}, _last, None),
    ("two_sequence", LAG, {"variant": "3b"}, _last, None),
    ("two_sequence", LAG, {"variant": "3c"}, _last, None),
    ("adding", LAG, {}, _last, None),
    ("adding", LAG, {"variant": "bai"}, _last, None),
    ("multiplication", LAG, {}, _last, None),
    ("temporal_order", 20, {"variant": "6a"}, _last, None),
    ("temporal_order", 20, {"variant": "6b"}, _last, None),
    # C1: the two prompts, the last two steps of length L
    ("dsr", LAG, {}, lambda b: _steps(b, [LAG - 2, LAG - 1]), None),
    # C2: the level at every step
    ("timing", 50, {}, _every, None),
    # D1: every step, so the loss compares with the memoryless baseline 10 log 8 / (T + 20)
    ("copy", LAG, {}, _every, None),
    # D2: the class at the end
    ("parity", LAG, {}, _last, None),
    ("latch", LAG, {}, _last, None),
]


def _ids() -> list[str]:
    return [name + (":" + o["variant"] if "variant" in o else "")
            + ("-regression" if o.get("regression") else "") for name, _, o, _, _ in DEFINITIONS]


def test_every_game_has_a_definition():
    assert {name for name, *_ in DEFINITIONS} == set(TASK_NAMES)


@pytest.mark.parametrize(("name", "lag", "options", "trained", "judged"), DEFINITIONS, ids=_ids())
def test_trained_and_judged_steps_follow_the_definition(name, lag, options, trained, judged):
    task = make_task(name, lag, **options)
    batch = task.sample(16, torch.Generator().manual_seed(3))
    # trained: the mask is exactly the defined steps
    assert torch.equal(batch.mask, trained(batch)), f"{task.title}: trained steps"
    # the loss reads the trained steps and nothing else
    outputs = torch.randn((batch.steps, batch.batch_size, task.output_size),
                          generator=torch.Generator().manual_seed(4), requires_grad=True)
    task.loss(outputs, batch).backward()
    touched = outputs.grad.abs().sum(-1) > 0
    assert not touched[~batch.mask].any() and touched[batch.mask].all()
    # judged: changing the outputs anywhere else leaves every verdict and error unchanged
    judged_mask = (judged or trained)(batch)
    base = outputs.detach()
    changed = torch.where(judged_mask.unsqueeze(-1), base, base + 25.0 * torch.randn(
        base.shape, generator=torch.Generator().manual_seed(5)))
    for before, after in zip(task.evaluate(base, batch), task.evaluate(changed, batch),
                             strict=True):
        assert torch.equal(before, after), f"{task.title}: judged outside its judged steps"
    # ... while the judged steps themselves do matter
    flipped = torch.where(judged_mask.unsqueeze(-1), base + 25.0 * torch.randn(
        base.shape, generator=torch.Generator().manual_seed(6)), base)
    assert not torch.equal(task.evaluate(base, batch)[1], task.evaluate(flipped, batch)[1])


def test_lag_2b_is_trained_on_the_random_middle_but_judged_at_the_end():
    """2b: the middle symbols are trained towards the actual (random) next symbol; an output that
    misses a middle symbol still succeeds, one that misses the final x|y fails. 2a is judged at
    every step."""
    p = 10
    for variant in ("2a", "2b"):
        task = make_task("lag", p, variant=variant)
        batch = task.sample(8, torch.Generator().manual_seed(0))
        perfect = 20.0 * (2.0 * task.target_vectors(batch) - 1.0)  # every sigmoid within 1e-8
        assert task.evaluate(perfect, batch)[0].all()
        middle = perfect.clone()
        middle[p // 2] = -middle[p // 2]  # every output wrong at one middle step
        end = perfect.clone()
        end[-1] = -end[-1]
        assert not task.evaluate(end, batch)[0].any()
        assert bool(task.evaluate(middle, batch)[0].all()) is (variant == "2b")
        # trained towards the symbol that actually comes next, also in the random middle
        symbols = batch.inputs.argmax(-1)
        assert torch.equal(batch.targets[:-1], symbols[1:])
        assert torch.equal(batch.targets[-1], symbols[0])
