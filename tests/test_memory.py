"""The memory suite: learners (gradient and guessing), counting and stopping, the report files,
gradient flow, interruption and bad arguments."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lstmlab.cli import main
from lstmlab.experiments import learner
from lstmlab.experiments import memory_suite as suite
from lstmlab.experiments.gradients import by_distance, gradient_flow, state_gradients
from lstmlab.experiments.guessing import guess_trial
from lstmlab.experiments.learner import train_trial
from lstmlab.experiments.memory_trial import Budget, LearnerConfig
from lstmlab.models.memory import build_memory_model, output_prior_logits
from lstmlab.tasks import Batch, StreakRule, make_task
from lstmlab.tasks.memory import InternTask, probe

pytestmark = pytest.mark.usefixtures("one_thread")


# -- weight guessing ---------------------------------------------------------------------------

def test_guessing_solves_latch():
    config = LearnerConfig(guess_set=64, guess_hidden=1)
    result = guess_trial("latch", {}, 20, seed=0, config=config, budget=Budget(guesses=5000))
    assert result.solved and result.stopped_by == "criterion"
    assert 1 <= result.guesses < 5000
    assert result.sequences == result.sequences_to_success == result.guesses * 64
    assert result.test_size == 2560 and result.test_errors <= 26  # the >= 99% acceptance holds


def test_guessing_counts_guesses_within_budget():
    config = LearnerConfig(guess_set=32)
    result = guess_trial("adding", {}, 20, seed=0, config=config, budget=Budget(guesses=40))
    assert not result.solved and result.stopped_by == "max_guesses"
    assert result.guesses == 40 and result.sequences == 40 * 32
    assert result.sequences_to_success is None


# -- counting and stopping ---------------------------------------------------------------------

class _AlwaysRight(InternTask):
    """Every sequence judged correct, stopping after 100 in a row."""

    def evaluate(self, outputs, batch):
        correct, error = super().evaluate(outputs, batch)
        return torch.ones_like(correct), error

    def stopping_rule(self):
        return StreakRule(100)


class _AlwaysWrong(_AlwaysRight):
    def evaluate(self, outputs, batch):
        correct, error = super().evaluate(outputs, batch)
        return ~correct, error


@pytest.mark.parametrize("task_class", [_AlwaysRight, _AlwaysWrong])
def test_stopping_rule_and_sequence_count(monkeypatch, task_class):
    monkeypatch.setattr(learner, "make_task", lambda name, lag, **o: task_class(lag))
    config = LearnerConfig(hidden=4, batch=32, log_every=1)
    result = train_trial("intern", {}, 3, "lstm", seed=0, config=config,
                         budget=Budget(sequences=320), test_size=64)
    if task_class is _AlwaysRight:  # the 100th sequence completes the streak, in batch 4
        assert result.solved and result.stopped_by == "criterion"
        assert result.sequences_to_criterion == 100 and result.sequences == 128
        assert result.sequences_to_success == 0  # learned before the streak's first sequence
    else:
        assert not result.solved and result.stopped_by == "max_sequences"
        assert result.sequences_to_success is None and result.sequences == 320
    assert [p["sequences"] for p in result.curve] == list(range(32, result.sequences + 1, 32))
    assert result.test_size == 64 and result.test_errors is not None


def test_interrupt_keeps_what_was_measured(tmp_path):
    calls = []

    def listener(point):
        calls.append(point)
        if len(calls) == 2:
            raise KeyboardInterrupt

    runs = suite.plan(["intern"], ["guess", "lstm"], [3])
    config = LearnerConfig(hidden=4, log_every=1, guess_set=16)
    result = suite.run_suite(runs, seeds=1, config=config,
                             budget=Budget(sequences=10_000, guesses=3), listener=listener)
    assert result.interrupted
    assert [r.learner for r in result.results] == ["guess", "lstm"]
    assert result.results[-1].stopped_by == "interrupt" and result.results[-1].sequences == 64
    from lstmlab.experiments.memory_report import write_report
    paths = write_report(result, tmp_path)
    assert json.loads((tmp_path / "results.json").read_text())["interrupted"] is True
    assert all(p.exists() for p in paths)


# -- the head's prior --------------------------------------------------------------------------

def test_head_bias_starts_at_each_outputs_prior():
    task = make_task("lag", 20, variant="2c", distractors=5)  # 2 outputs: x or y at the end
    net = build_memory_model(task, "lstm", 4, seed=0)
    p = torch.sigmoid(net.head.bias)
    assert torch.equal(net.head.bias, output_prior_logits(task))
    assert abs(p[0] - 0.5) < 0.1 and abs(p[0] + p[1] - 1) < 1e-6  # x|y half the time each
    # lag 2b, every step scored: x|y are the target at 1 step of 20 (half the time each), each
    # a-symbol at 1/19 of the other 19; none is ever a target at a rate below 0.01 to clamp
    p = torch.sigmoid(build_memory_model(make_task("lag", 20, variant="2b"), "lstm", 4).head.bias)
    assert abs(p[0] - 0.025) < 0.01 and abs(p[0] + p[1] - 0.05) < 1e-6
    assert torch.allclose(p[2:], torch.full((19,), 0.05), atol=0.01)
    # an output never a target at the scored steps starts at 0.01 (clamped): 2b read at its end
    b2 = make_task("lag", 20, variant="2b")
    sample = probe(b2)
    ends = Batch(sample.inputs, sample.targets, torch.zeros_like(sample.mask), sample.lengths)
    ends.mask[-1] = True
    clamped = torch.sigmoid(output_prior_logits(b2, ends))
    assert abs(clamped[0] + clamped[1] - 1) < 1e-6
    assert torch.allclose(clamped[2:], torch.full((19,), 0.01))
    plain = build_memory_model(task, "lstm", 4, head_init="default", seed=0)
    assert plain.head.bias.abs().max() <= 0.5  # torch.nn's U(-1/sqrt(H), 1/sqrt(H))
    intern = make_task("intern", 5)  # cross-entropy outputs keep torch.nn's initialisation
    default = build_memory_model(intern, "lstm", 4, head_init="default", seed=0)
    assert torch.equal(build_memory_model(intern, "lstm", 4, seed=0).head.bias,
                       default.head.bias)
    with pytest.raises(ValueError, match="head_init must be one of"):
        LearnerConfig(head_init="zeros")


def test_lag_2a_2b_every_step_trained_need_the_1997_linear_cell_output():
    """Trained at every step, as the 1997 paper defines 2a and 2b, the standard LSTM's cell
    states drift (the locally predictable or random middle drives every cell's input), tanh(c)
    saturates and the x|y read-out stays at chance; the 1997 experiment-2 cell's linear output
    (h = identity, ``lstm:NOAF``) learns both. 2b needs cross-entropy: its unpredictable middle
    saturates squared error through 101 sigmoids."""
    config = LearnerConfig(hidden=16, loss="bce")
    budget = Budget(sequences=40_000)
    b = train_trial("lag", {"variant": "2b"}, 20, "lstm:NOAF", 0, config, budget, test_size=256)
    assert b.solved and b.test_errors == 0
    assert b.sequences_to_criterion == b.sequences_to_success + 10_000
    # the count depends on the CPU's float kernels (under 15,000 on one machine, 18,204 on
    # another, same seed): the claim is a solve well inside the budget, where tanh never does
    assert b.sequences_to_success < 25_000
    tanh = train_trial("lag", {"variant": "2b"}, 20, "lstm", 0, config, budget, test_size=256)
    # at chance on the final x|y: about half of 256 wrong (sd 8); 96 is 4 sd below that
    assert not tanh.solved and tanh.test_errors >= 96
    a = train_trial("lag", {"variant": "2a"}, 20, "lstm:NOAF", 0, LearnerConfig(hidden=16),
                    budget, test_size=256)
    assert a.solved and a.test_errors == 0 and a.sequences_to_success < 10_000


# -- end to end ----------------------------------------------------------------------------------

def test_lstm_solves_a_short_lag_and_writes_the_report(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["memory", "intern", "--lag", "5", "--learners", "lstm,guess", "--seeds", "1",
                 "--budget", "30000", "--minutes", "1", "--test-size", "512", "--hidden", "16",
                 "--out", str(out)])
    assert code == 0
    data = json.loads((out / "results.json").read_text())
    by_model = {s["learner"]: s for s in data["summary"]}
    lstm = by_model["lstm"]
    assert lstm["solved"] == 1 and lstm["percent_solved"] == 100
    assert 0 < lstm["median_sequences"] <= 30_000 and lstm["median_test_errors"] <= 5
    assert lstm["test_size"] == 512
    trial = data["trials"][0]
    assert trial["sequences_to_success"] <= trial["sequences"] and trial["curve"]
    # intern: 17 inputs, 8 outputs; LSTM 4H(I + H) weights + two biases of 4H, head H x 8 + 8
    assert trial["parameters"] == 4 * 16 * (17 + 16) + 2 * 4 * 16 + 16 * 8 + 8 == 2376
    assert lstm["parameters"] == 2376
    md = (out / "results.md").read_text()
    assert "| intern (T = 5) | lstm | 2,376 | 1/1 (100%)" in md
    assert "batch 32, Adam lr 0.01, clip 1.0" in md  # no decay: plain Adam, constant rate
    for png in ("learning_curves.png", "success_vs_lag.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "Memory suite" in printed
    # not a terminal: no progress bar, so a plain progress line shows the trial moving
    assert "intern lag 5 / lstm / seed 0: " in printed and " seq  loss " in printed


def test_learner_parameters_count_what_the_trial_trains():
    config = LearnerConfig(hidden=16)
    intern = make_task("intern", 5)
    assert learner.learner_parameters(intern, "lstm", config) == 2376
    assert learner.learner_parameters(intern, "rnn", config) == 16 * (17 + 16) + 2 * 16 + 16 * 8 + 8
    # the 1997 network of 2a at p = 100: the paper's "# weights", its cell counted from the start
    assert learner.learner_parameters(make_task("lag", 100, variant="2a"), "lstm1997") == 10_504
    guess = guess_trial("latch", {}, 5, seed=0, config=LearnerConfig(guess_hidden=2),
                        budget=Budget(guesses=3), test_size=16)
    assert guess.parameters == learner.learner_parameters(make_task("latch", 5), "guess",
                                                          LearnerConfig(guess_hidden=2))


# -- gradient flow --------------------------------------------------------------------------------

def test_gradient_flow_shapes_and_lstm_beats_rnn():
    task = make_task("intern", 40)
    batch = task.fixed_set(16, seed=3)
    rnn = build_memory_model(task, "rnn", 16, seed=0)
    lstm = build_memory_model(task, "lstm", 16, seed=0)
    h, c = state_gradients(rnn, task, batch)
    assert h.shape == (42, 16) and c is None
    h, c = state_gradients(lstm, task, batch)
    assert h.shape == c.shape == (42, 16)
    assert torch.all(c[-1] == 0)  # the last cell state reaches the loss only through h
    distance, mean = by_distance(h, batch)
    assert distance == list(range(42)) and len(mean) == 42
    flow_rnn, flow_lstm = gradient_flow(rnn, task, batch), gradient_flow(lstm, task, batch)
    assert flow_rnn.c is None and len(flow_lstm.c) == 42
    d = 30  # a tanh RNN's gradient has vanished by orders of magnitude; the LSTM's has not
    assert flow_lstm.h[d] > 100 * flow_rnn.h[d]
    assert flow_lstm.c[d] > 1000 * flow_rnn.h[d]


def test_gradients_command_writes_the_plot(tmp_path):
    code = main(["gradients", "intern", "--lag", "10", "--cells", "rnn,lstm,gru", "--train",
                 "64", "--batch-size", "8", "--hidden", "8", "--out", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "gradients-intern-10.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((tmp_path / "gradients-intern-10.json").read_text())
    assert [(f["cell"], f["stage"]) for f in report["flows"]] == [
        (m, s) for m in ("rnn", "lstm", "gru") for s in ("init", "trained")]


# -- bad arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["memory", "nosuchtask"], "unknown memory task 'nosuchtask'; valid names: intern"),
    (["memory", "intern", "--learners", "lstm,transformer"], "unknown cell 'transformer'"),
    (["memory", "temporal_order", "--lag", "5"], "lag 5 is too short; the minimum is 20"),
    (["memory", "intern", "--budget", "-5"], "argument --budget: must be a positive integer"),
    (["memory", "intern", "--minutes", "0"], "argument --minutes: must be a positive number"),
    (["memory", "intern", "--seeds", "0"], "argument --seeds/--trials: must be a positive"),
    (["memory", "intern", "--hidden", "abc"], "argument --hidden: must be a positive integer, "
                                              "got 'abc'"),
    (["memory", "lag:2d"], "variant"),
    (["gradients", "adding", "--cells", "guess"], "gradient learners"),
    (["gradients", "adding", "--lag", "3"], "too short"),
    (["memory", "intern", "--models", ""], "name at least one learner"),
    (["memory", "intern", "--lag", "10000000"], "outside 1..100,000"),
])
def test_bad_arguments_give_clear_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_plan_checks_everything_up_front():
    with pytest.raises(ValueError, match="at least one learner"):
        suite.plan(["intern"], [], [None])
    with pytest.raises(ValueError, match="outside 1..100,000"):
        suite.plan(["intern"], ["lstm"], [10_000_000])
    runs = suite.plan(["6a", "lag:2c"], ["lstm:cifg", "GRU", "guess"], [50])
    assert [(r.name, r.options, r.learner) for r in runs[:3]] == [
        ("temporal_order", {"variant": "6a"}, m) for m in ("lstm:CIFG", "gru", "guess")]
    with pytest.raises(ValueError, match="budget must be positive"):
        Budget(sequences=-1)
    with pytest.raises(ValueError, match="init must be one of"):
        LearnerConfig(init="xavier")


def test_bce_training_loss_for_logistic_outputs():
    from lstmlab.models.losses import training_loss

    task = make_task("temporal_order", 20)
    batch = task.sample(4, torch.Generator().manual_seed(0))
    outputs = torch.randn(batch.steps, 4, task.output_size)
    assert torch.equal(training_loss(task, outputs, batch), task.loss(outputs, batch))
    p = torch.sigmoid(outputs)[batch.mask]
    y = task.target_vectors(batch)[batch.mask]
    manual = -(y * p.log() + (1 - y) * (1 - p).log()).sum(-1).mean()
    assert torch.allclose(training_loss(task, outputs, batch, "bce"), manual, atol=1e-5)
    ce_task = make_task("intern", 3)  # a cross-entropy task keeps its own loss
    b = ce_task.sample(4, torch.Generator().manual_seed(0))
    o = torch.randn(b.steps, 4, ce_task.output_size)
    assert torch.equal(training_loss(ce_task, o, b, "bce"), ce_task.loss(o, b))
    with pytest.raises(ValueError, match="loss must be one of"):
        LearnerConfig(loss="hinge")


def test_reber_stops_on_its_fixed_sets_and_reports_on_unseen_strings(monkeypatch):
    from lstmlab.tasks.memory import ReberTask, decode_strings
    task = ReberTask()
    rule = task.stopping_rule()
    checked = [s for b in task.stopping_batches(rule, batch_size=100) for s in decode_strings(b)]
    assert checked == task.training_strings + task.test_strings  # 256 + 256, in chunks
    reported = [s for b in task.report_batches() for s in decode_strings(b)]
    assert reported == task.test_strings and not set(reported) & set(task.training_strings)
    # the learner's held-out check is built from exactly those strings
    seen = {}
    original = learner.HeldOutCheck.__init__

    def spy(self, rule, task, check, course=None):
        seen["strings"] = [s for b in check for s in decode_strings(b)]
        original(self, rule, task, check, course)

    monkeypatch.setattr(learner.HeldOutCheck, "__init__", spy)
    result = train_trial("reber", {}, None, "lstm", seed=0,
                         config=LearnerConfig(hidden=4, batch=16), budget=Budget(sequences=32))
    assert seen["strings"] == task.training_strings + task.test_strings
    assert result.test_size == 256


def test_a_cosine_schedule_falls_to_zero_over_the_trial_budget():
    config = LearnerConfig(hidden=4, batch=32, lr=0.01, schedule="cosine", log_every=1)
    rates = []
    train_trial("adding", {}, 20, "lstm", 0, config, Budget(sequences=320), test_size=32,
                listener=lambda point: rates.append(point["lr"]))
    assert len(rates) == 10  # 10 steps of 32: after the k-th, k/10 of the budget is spent
    assert rates == pytest.approx([0.01 * 0.5 * (1 + math.cos(math.pi * k / 10))
                                   for k in range(1, 11)])
    assert learner.learner_train_config(LearnerConfig(), Budget()).schedule == "constant"
    with pytest.raises(ValueError, match="schedule must be one of constant, cosine"):
        LearnerConfig(schedule="linear")


# -- the 1997 experiment-2 layout in lstmlab's learner: --direct, --input-bias -----------------

def test_direct_outputs_read_the_inputs_too_and_start_at_zero(tmp_path):
    import lstmlab
    from lstmlab.models import SequenceModel

    torch.manual_seed(0)
    model = SequenceModel("lstm:NOAF", 5, 3, hidden_size=4, direct=True)
    plain = SequenceModel("lstm:NOAF", 5, 3, hidden_size=4)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k != "direct.weight"})
    x = torch.randn(6, 2, 5)
    assert model.direct.weight.shape == (3, 5) and model.direct.bias is None
    assert torch.equal(model(x), plain(x))  # the direct path starts at zero
    with torch.no_grad():
        model.direct.weight.normal_()
    assert torch.allclose(model(x), plain(x) + x @ model.direct.weight.T, atol=1e-6)
    assert model.config()["direct"] and not plain.config()["direct"]
    lstmlab.save(model, tmp_path / "m")
    again = lstmlab.load(tmp_path / "m")
    assert again.direct is not None and torch.equal(again(x), model(x))


def test_input_bias_is_added_to_the_input_gate_only():
    task = make_task("lag", 20, variant="2a")
    base = build_memory_model(task, "lstm:NOAF", 8, init="default", forget_bias=5.0, seed=3)
    shut = build_memory_model(task, "lstm:NOAF", 8, init="default", forget_bias=5.0,
                              input_bias=-3.0, seed=3)
    gates, h = shut.recurrent.spec.gates, 8
    difference = shut.recurrent.bias_ih_l0 - base.recurrent.bias_ih_l0
    expected = torch.zeros_like(difference)
    expected[gates.index("i") * h:(gates.index("i") + 1) * h] = -3.0
    assert torch.allclose(difference, expected)
    assert torch.equal(shut.recurrent.bias_hh_l0, base.recurrent.bias_hh_l0)
    for cell in ("gru", "lstm:NIG"):
        with pytest.raises(ValueError, match="input_bias is for LSTM cells with an input gate"):
            build_memory_model(task, cell, 8, input_bias=-3.0)
        with pytest.raises(ValueError, match="--input-bias .* has none"):
            learner.check_fits(cell, LearnerConfig(input_bias=-3.0))
    learner.check_fits("gru", LearnerConfig())  # nothing set, nothing to refuse
    learner.check_fits("guess", LearnerConfig(input_bias=-3.0))


def test_memory_command_takes_the_experiment_2_options_and_refuses_misfits(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["memory", "lag:2a", "--lag", "20", "--learners", "lstm:NOAF", "--seeds", "1",
            "--budget", "200", "--minutes", "1", "--test-size", "64", "--hidden", "8",
            "--direct", "--init", "default", "--forget-bias", "5", "--input-bias", "-3",
            "--batch", "2", "--clip", "0.1", "--out", str(out)]
    assert main(argv) == 0
    settings = json.loads((out / "results.json").read_text())["settings"]["learner"]
    assert (settings["direct"], settings["forget_bias"], settings["input_bias"],
            settings["clip"], settings["batch"]) == (True, 5.0, -3.0, 0.1, 2)
    assert "forget bias 5, input bias -3, the inputs read by the outputs too" in (
        out / "results.md").read_text()
    capsys.readouterr()
    assert main(argv[:5] + ["gru"] + argv[6:-1] + [str(tmp_path / "gru")]) == 2
    err = capsys.readouterr().err
    assert "--input-bias (input_bias) is for LSTM cells with an input gate" in err
    assert "Traceback" not in err and not (tmp_path / "gru").exists()


def test_input_decay_decays_the_recurrent_input_weights_and_nothing_else():
    task = make_task("lag", 10, variant="2b")
    config = LearnerConfig(hidden=4, input_decay=1.0, lr=0.01)
    setup = learner.learner_setup(task, "lstm:NOAF", 0, config, Budget(sequences=100))
    optimizer = setup.optimizer
    assert isinstance(optimizer, torch.optim.AdamW)
    names = {id(p): n for n, p in setup.net.named_parameters()}
    decayed = [names[id(p)] for group in optimizer.param_groups if group["weight_decay"]
               for p in group["params"]]
    assert decayed == ["recurrent.weight_ih_l0"]
    before = {n: p.detach().clone() for n, p in setup.net.named_parameters()}
    for p in setup.net.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # no gradient: only the decay moves anything
    for n, p in setup.net.named_parameters():
        factor = 1 - 0.01 * 1.0 if n == "recurrent.weight_ih_l0" else 1.0
        assert torch.allclose(p, before[n] * factor), n
    plain = learner.learner_setup(task, "lstm:NOAF", 0, LearnerConfig(hidden=4), Budget())
    assert type(plain.optimizer) is torch.optim.Adam
    with pytest.raises(ValueError, match="input_decay must be >= 0"):
        LearnerConfig(input_decay=-1.0)


def test_the_exponential_schedule_halves_the_rate_every_half_life():
    config = LearnerConfig(hidden=4, batch=32, lr=0.01, schedule="exponential", half_life=64,
                           log_every=1)
    rates = []
    train_trial("adding", {}, 20, "lstm", 0, config, Budget(sequences=320), test_size=32,
                listener=lambda point: rates.append(point["lr"]))
    assert rates == pytest.approx([0.01 * 0.5 ** (32 * k / 64) for k in range(1, 11)])
    with pytest.raises(ValueError, match="half_life must be a positive int"):
        LearnerConfig(half_life=0)


def test_input_decay_lets_2b_hold_its_streak():
    """Lag 2b (p = 40): the same learner and rate schedule with and without weight decay on the
    input weights. Both get fresh test sequences nearly all right, but without the
    decay the a-symbols' input weights drift apart and shift some sequences' timing, so the
    10,000-sequence streak does not hold within 15,000 sequences (seeds 0-2 on one machine);
    with it the streak begins after 3,082-4,048 (seeds 0-2)."""
    recipe = dict(hidden=16, direct=True, init="default", forget_bias=5.0, batch=2, clip=0.1,
                  lr=0.003, schedule="exponential", half_life=2_000)
    budget = Budget(sequences=15_000)
    decay = train_trial("lag", {"variant": "2b"}, 40, "lstm:NOAF", 1,
                        LearnerConfig(**recipe, input_decay=1.0), budget, test_size=256)
    assert decay.solved and decay.sequences_to_success <= 4_500, decay.sequences_to_success
    assert decay.test_errors == 0
    drift = train_trial("lag", {"variant": "2b"}, 40, "lstm:NOAF", 1, LearnerConfig(**recipe),
                        budget, test_size=256)
    assert not drift.solved


def test_memory_command_takes_the_decay_and_schedule_options(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["memory", "lag:2b", "--lag", "20", "--learners", "lstm:NOAF", "--seeds", "1",
            "--budget", "200", "--minutes", "1", "--test-size", "64", "--hidden", "8",
            "--input-decay", "1", "--schedule", "exponential", "--half-life", "500",
            "--out", str(out)]
    assert main(argv) == 0
    header = capsys.readouterr().out
    settings = json.loads((out / "results.json").read_text())["settings"]["learner"]
    assert (settings["input_decay"], settings["schedule"], settings["half_life"]) == (
        1.0, "exponential", 500)
    report = (out / "results.md").read_text()
    assert "(halved every 500 sequences)" in report and "input-weight decay 1" in report
    # the decay makes Adam AdamW: the header and the report name the optimiser that ran
    for text in (header, report):
        assert "AdamW lr 0.01 (halved every 500 sequences)" in text and "Adam lr" not in text
    for option, value, words in (("--input-decay", "-1", "must be a number >= 0"),
                                 ("--half-life", "0", "must be a positive integer")):
        capsys.readouterr()
        bad = argv[:-1] + [str(tmp_path / "bad"), option, value]
        assert main(bad) == 2
        err = capsys.readouterr().err
        assert option in err and words in err and "Traceback" not in err


def test_direct_inputs_and_a_shut_input_gate_learn_2a_quickly():
    """Lag 2a (p = 40, every step scored) with the 1997 experiment-2 layout: the outputs read
    the inputs, so the local predictions need no memory, and the cell keeps x|y (forget gate
    near 1, input gate nearly shut at the start, the rate annealed over the budget). After
    4,000 sequences it gets every fresh sequence right (5 of 5 seeds on one machine), while the
    suite's default network on the same budget still gets them all wrong."""
    recipe = LearnerConfig(hidden=16, direct=True, init="default", forget_bias=5.0,
                           input_bias=-3.0, batch=2, clip=0.1, lr=0.003, schedule="cosine")
    budget = Budget(sequences=4_000)
    for seed in (0, 1):
        fast = train_trial("lag", {"variant": "2a"}, 40, "lstm:NOAF", seed, recipe, budget,
                           test_size=256)
        assert fast.test_errors <= 2, (seed, fast.test_errors)
    default = train_trial("lag", {"variant": "2a"}, 40, "lstm:NOAF", 0, LearnerConfig(hidden=16),
                          budget, test_size=256)
    assert default.test_errors >= 128
