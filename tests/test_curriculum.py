"""The curriculum on a memory game's lag (lstmlab.tasks.memory.curriculum) and its use by the
gradient learner (``LearnerConfig.curriculum``)."""

from __future__ import annotations

import functools

import pytest
import torch

from lstmlab.experiments import learner
from lstmlab.experiments.learner import train_trial
from lstmlab.experiments.memory_trial import Budget, LearnerConfig
from lstmlab.tasks.memory.curriculum import Curriculum


def _course(**kw) -> Curriculum:
    return Curriculum("copy", {}, 100, torch.Generator().manual_seed(0), **kw)


def test_levels_rise_only_on_right_sequences_at_the_current_level():
    course = _course()
    assert course.levels == list(range(10, 101, 10))
    assert course.level == 10 and not course.at_target
    at_level = 0
    while not course.at_target:
        level = course.level
        batch = course.sample(32)
        assert course.task.lag <= level and course.task.lag >= 10
        assert batch.steps == course.task.lag + 20  # copy: T + 20 steps
        at_level += 32 * (course.task.lag == level)
        course.update(torch.ones(32, dtype=torch.bool))
        if course.level != level:  # promoted: a whole block at the old level was seen
            assert at_level >= course.window
            at_level = 0
    assert [lag for _, lag in course.promotions] == list(range(20, 101, 10))
    # about half the batches are drawn at the level itself, so a rise takes ~2 windows
    assert 9 * 320 <= course.sequences <= 9 * 3 * 320
    course.update(torch.zeros(32, dtype=torch.bool))
    assert course.level == 100


def test_wrong_sequences_hold_the_level():
    course = _course()
    for _ in range(200):
        course.sample(32)
        course.update(torch.tensor([True] * 30 + [False] * 2))  # 93.75% < 95%
    assert course.level == 10 and course.promotions == []
    assert "10..100 in 10 levels" in course.describe()


def test_bad_settings_and_tasks_whose_sizes_follow_the_lag_are_refused():
    with pytest.raises(ValueError, match="input and output sizes"):
        Curriculum("lag", {"variant": "2a"}, 100, torch.Generator())
    with pytest.raises(ValueError, match="threshold"):
        _course(threshold=1.5)
    with pytest.raises(ValueError, match="window"):
        _course(window=0)


def test_a_trial_needs_a_task_judged_on_held_out_sequences():
    with pytest.raises(ValueError, match="held-out sequences"):
        train_trial("adding", {}, 100, "lstm", seed=0, config=LearnerConfig(curriculum=True),
                    budget=Budget(sequences=64))


def test_the_held_out_check_waits_for_the_target_lag(monkeypatch):
    courses: list[Curriculum] = []

    class Recorded(Curriculum):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            courses.append(self)

    # threshold 0: a rise after every block of 32 sequences at the level, whatever is right
    monkeypatch.setattr(learner, "Curriculum", functools.partial(Recorded, threshold=0.0,
                                                                 window=32))
    checked_at: list[tuple[int, bool]] = []
    evaluate = learner.evaluate_on

    def spy(model, task, batches):
        checked_at.append((task.lag, courses[0].at_target))
        return evaluate(model, task, batches)

    monkeypatch.setattr(learner, "evaluate_on", spy)
    result = train_trial("copy", {}, 20, "lstm", seed=0,
                         config=LearnerConfig(hidden=8, curriculum=True),
                         budget=Budget(sequences=4000))
    course = courses[0]
    assert course.levels == list(range(2, 21, 2)) and course.at_target
    assert result.sequences == 4000 and course.sequences == 4000
    assert checked_at and all(lag == 20 and at_target for lag, at_target in checked_at)
    assert course.promotions[-1][0] < 4000 - 1000  # the last rise left time for checks
    assert "curriculum on the lag 2..20 in 10 levels; reached 4 after" in result.note


def test_the_command_refuses_a_curriculum_on_a_streak_task_up_front(tmp_path, capsys):
    from lstmlab.cli import main

    code = main(["memory", "--seeds", "1", "--out", str(tmp_path / "m"), "lag:2c",
                 "--learners", "lstm", "--curriculum"])
    assert code == 2
    assert "held-out sequences" in capsys.readouterr().err
    assert not (tmp_path / "m" / "results.json").exists()
