"""The 1997 network (``lstmlab.models.lstm1997``) and its learner ("lstm1997"): the forward pass
against the equations written out by hand, the truncated gradient against the paper's own
update formulas (appendix A.1), the table of the paper's set-ups, and the learner in the suite."""

from __future__ import annotations

import json
import math

import pytest
import torch

import lstmlab
from lstmlab.cli import main
from lstmlab.experiments import memory_suite as suite
from lstmlab.experiments.learner import train_trial
from lstmlab.experiments.memory_trial import Budget, check_learner
from lstmlab.models.losses import training_loss
from lstmlab.models.lstm1997 import LSTM1997, SETUPS, build_lstm1997, experiment_of, setup_of
from lstmlab.tasks.memory import make_task

pytestmark = pytest.mark.usefixtures("one_thread")


def _f(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _tiny(**kwargs) -> LSTM1997:
    """2 inputs, 2 outputs, 2 blocks of 2 cells, float64, weights drawn from a fixed seed."""
    net = LSTM1997(2, 2, blocks=2, cells=2, **kwargs).double()
    net.reset_parameters(0.8, generator=torch.Generator().manual_seed(7))
    return net


def _by_hand(net: LSTM1997, x: torch.Tensor) -> list[list[float]]:
    """The paper's equations for one sequence x (T, I), unit by unit, in plain Python floats:
    the output units' net inputs at every step."""
    G, S = net.blocks, net.cells
    w = {name: p.detach().tolist() for name, p in net.named_parameters()}
    g = {"sigmoid_pm2": lambda v: 4 * _f(v) - 2, "sigmoid": _f}[net.g_name]
    h = {"sigmoid_pm1": lambda v: 2 * _f(v) - 1, "identity": lambda v: v}[net.h_name]

    def net_input(layer: str, unit: int, u: list[float]) -> float:
        total = sum(wi * ui for wi, ui in zip(w[f"{layer}.weight"][unit], u, strict=True))
        return total + (w[f"{layer}.bias"][unit] if f"{layer}.bias" in w else 0.0)

    s = [0.0] * (G * S)
    y_c, y_in, y_out = [0.0] * (G * S), [0.0] * G, [0.0] * G
    outputs = []
    for x_t in x.tolist():
        if net.recurrent:
            u = x_t + y_c + y_in + (y_out if net.output_gate is not None else [])
        else:
            u = list(x_t)
        y_in = [_f(net_input("input_gate", j, u)) for j in range(G)]
        y_out = ([_f(net_input("output_gate", j, u)) for j in range(G)]
                 if net.output_gate is not None else [1.0] * G)
        for j in range(G):
            for v in range(S):
                c = j * S + v
                s[c] += y_in[j] * g(net_input("cell_input", c, u))
                y_c[c] = y_out[j] * h(s[c])
        a = y_c + (list(x_t) if net.input_to_output else [])
        outputs.append([net_input("head", k, a) for k in range(net.output_size)])
    return outputs


@pytest.mark.parametrize("kwargs", [
    {},                                                        # layout "F", every unit biased
    {"bias": "gates"},                                         # experiment 1's biases
    {"output_gate": False, "recurrent": False, "input_to_output": True, "bias": "none",
     "g": "sigmoid", "h": "identity"},                         # experiment 2a/2b's layout "B"
])
def test_forward_is_the_papers_equations(kwargs):
    net = _tiny(**kwargs)
    x = torch.randn(6, 3, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected = torch.tensor([_by_hand(net, x[:, b]) for b in range(3)],
                            dtype=torch.float64).transpose(0, 1)
    assert torch.allclose(net.steps(x).outputs, expected, atol=1e-12)
    assert torch.allclose(net(x), expected, atol=1e-12)                      # the fast path
    with torch.no_grad():
        assert torch.allclose(net(x), expected, atol=1e-12)
    net.truncated = False
    assert torch.allclose(net(x), expected, atol=1e-12)                      # full BPTT


def test_fast_path_gives_the_step_loops_gradient():
    net = _tiny()
    x = torch.randn(9, 2, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    net(x).square().sum().backward()
    fast = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    net.steps(x).outputs.square().sum().backward()
    for a, b in zip(fast, (p.grad for p in net.parameters()), strict=True):
        assert torch.allclose(a, b, atol=1e-12)


def _cell_state_errors(net: LSTM1997, x: torch.Tensor) -> list[torch.Tensor]:
    """dLoss/ds_t for every step t, the loss being the squared last output."""
    state = net.zero_state(x.shape[1], x)
    states = []
    for x_t in x:
        state = net.step(x_t, state)
        state[0].retain_grad()
        states.append(state)
    net.read_out(states[-1][1], x[-1]).square().sum().backward()
    return [s.grad for s, *_ in states]


def test_truncated_error_flows_only_through_the_cec():
    x = torch.randn(8, 1, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    # constant error carousel: the error reaching s_t is the same at every step back
    errors = _cell_state_errors(_tiny(), x)
    assert errors[-1].abs().min() > 0
    for e in errors:
        assert torch.allclose(e, errors[-1], rtol=0, atol=1e-15)
    full = _tiny(truncated=False)
    errors = _cell_state_errors(full, x)
    assert not torch.allclose(errors[0], errors[-1])
    # block 0 feeds the output only through the recurrent connections into block 1: truncated,
    # no error reaches its weights; by full BPTT some does
    for truncated in (True, False):
        net = _tiny(truncated=truncated)
        with torch.no_grad():
            net.head.weight[:, :2] = 0.0   # the output units read block 1's cells only
        net(x).square().sum().backward()
        block0 = [net.input_gate.weight.grad[0], net.output_gate.weight.grad[0],
                  net.cell_input.weight.grad[:2]]
        block1 = [net.input_gate.weight.grad[1], net.output_gate.weight.grad[1],
                  net.cell_input.weight.grad[2:]]
        assert all(g.abs().sum() > 0 for g in block1)
        if truncated:
            assert all(torch.equal(g, torch.zeros_like(g)) for g in block0)
        else:
            assert all(g.abs().sum() > 0 for g in block0)


def _appendix_gradient(net: LSTM1997, x: torch.Tensor, target: torch.Tensor) -> dict:
    """The paper's truncated derivatives (appendix A.1, eqs. 19-28), written out for one sequence
    x (T, I) whose only error is 1/2 sum_k (target_k - y_k)^2 at its last step: returns
    -dE/dw for every parameter (the weight change per unit learning rate)."""
    G, S, C = net.blocks, net.cells, net.blocks * net.cells
    Wi, Wo, Wc = net.input_gate.weight, net.output_gate.weight, net.cell_input.weight
    bi, bo, bc = net.input_gate.bias, net.output_gate.bias, net.cell_input.bias
    Wk, bk = net.head.weight, net.head.bias
    s, y_c, y_in, y_out = (torch.zeros(n, dtype=x.dtype) for n in (C, C, G, G))
    ds_dwi = torch.zeros(C, Wi.shape[1] + 1, dtype=x.dtype)   # ds_v/dw_in_j,m (v in block j)
    ds_dwc = torch.zeros(C, Wc.shape[1] + 1, dtype=x.dtype)   # ds_v/dw_c_v,m; last m: the bias
    with torch.no_grad():
        for x_t in x:
            u = torch.cat([x_t, y_c, y_in, y_out, torch.ones(1, dtype=x.dtype)])
            y_in = torch.sigmoid(Wi @ u[:-1] + bi)
            y_out = torch.sigmoid(Wo @ u[:-1] + bo)
            net_c = Wc @ u[:-1] + bc
            f_c = torch.sigmoid(net_c)
            g, g_prime = 4 * f_c - 2, 4 * f_c * (1 - f_c)
            y_in_v, y_out_v = y_in.repeat_interleave(S), y_out.repeat_interleave(S)
            s = s + y_in_v * g
            ds_dwi += torch.outer(g * (y_in_v * (1 - y_in_v)), u)            # (25)
            ds_dwc += torch.outer(g_prime * y_in_v, u)                         # (27)
            f_s = torch.sigmoid(s)
            h, h_prime = 2 * f_s - 1, 2 * f_s * (1 - f_s)
            y_c = y_out_v * h
        y = torch.sigmoid(Wk @ y_c + bk)
        e_k = y * (1 - y) * (target - y)                                       # (19)
        back = Wk.T @ e_k                                                      # sum_k w_kv e_k
        e_out = y_out * (1 - y_out) * (h * back).reshape(G, S).sum(1)         # (21)
        e_s = y_out_v * h_prime * back                                         # (23)
        into_gates = (e_s[:, None] * ds_dwi).reshape(G, S, -1).sum(1)         # (26)
        into_cells = e_s[:, None] * ds_dwc                                     # (28)
    return {"head.weight": torch.outer(e_k, y_c), "head.bias": e_k,            # (22)
            "output_gate.weight": torch.outer(e_out, u[:-1]), "output_gate.bias": e_out,
            "input_gate.weight": into_gates[:, :-1], "input_gate.bias": into_gates[:, -1],
            "cell_input.weight": into_cells[:, :-1], "cell_input.bias": into_cells[:, -1]}


def test_truncated_gradient_is_the_papers_update_rule():
    net = _tiny()
    x = torch.randn(12, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    target = torch.tensor([1.0, 0.0], dtype=torch.float64)
    expected = _appendix_gradient(net, x, target)
    loss = 0.5 * (torch.sigmoid(net(x.unsqueeze(1))[-1, 0]) - target).square().sum()
    loss.backward()
    for name, p in net.named_parameters():
        assert torch.allclose(-p.grad, expected[name], atol=1e-14), name


def test_sse_loss_is_half_the_squared_error_summed_over_scored_steps():
    task = make_task("lag", 6, variant="2a")   # every step scored
    batch = task.sample(3, torch.Generator().manual_seed(0))
    outputs = torch.randn(batch.inputs.shape[0], 3, task.output_size,
                          generator=torch.Generator().manual_seed(1))
    per_step = (torch.sigmoid(outputs) - task.target_vectors(batch)).square().sum(-1)
    expected = 0.5 * per_step[batch.mask].sum() / 3
    assert torch.allclose(training_loss(task, outputs, batch, "sse"), expected)
    with pytest.raises(ValueError, match="cross-entropy"):
        intern = make_task("intern", 3)
        b = intern.sample(2, torch.Generator().manual_seed(0))
        training_loss(intern, torch.zeros(*b.inputs.shape[:2], intern.output_size), b, "sse")


# -- the paper's set-ups ------------------------------------------------------------------------

# (task, make_task options, the paper's weight count: Tables 1-9 and 10)
PAPER_SIZES = [
    ("reber", {}, 276), ("lag", {"variant": "2a", "lag": 100}, 10_504),
    ("lag", {"variant": "2b", "lag": 100}, 10_504),
    *[("lag", {"variant": "2c", "lag": q}, w)
      for q, w in ((50, 364), (100, 664), (200, 1264), (500, 3064), (1000, 6064))],
    ("lag", {"variant": "2c", "lag": 1000, "distractors": 50}, 364),
    *[("two_sequence", {"variant": v, "lag": 100}, 102) for v in ("3a", "3b", "3c")],
    ("adding", {"lag": 100}, 93), ("adding", {"lag": 1000}, 93),
    ("multiplication", {"lag": 100}, 93),
    ("temporal_order", {"variant": "6a"}, 156), ("temporal_order", {"variant": "6b"}, 308),
]


def test_setups_cover_experiments_one_to_six():
    assert set(SETUPS) == {"1", "2a", "2b", "2c", "3a", "3b", "3c", "4", "5", "6a", "6b"}
    seen = set()
    for name, options, weights in PAPER_SIZES:
        options = dict(options)
        task = make_task(name, options.pop("lag", None), **options)
        net = build_lstm1997(task, seed=0)
        assert net.num_weights == weights, task.title
        setup = setup_of(task)
        assert setup.paper_weights in (None, weights)
        seen.add(experiment_of(task))
        assert net.input_size == task.input_size and net.output_size == task.output_size
    assert seen == set(SETUPS)
    for name, options in (("intern", {}), ("adding", {"variant": "bai"}), ("dsr", {}),
                          ("latch", {})):
        with pytest.raises(ValueError, match="1997"):
            setup_of(make_task(name, 30, **options))


def test_initialisation_follows_the_table():
    net = build_lstm1997(make_task("two_sequence", 100, variant="3a"), seed=3)
    assert net.input_gate.bias.tolist() == [-1.0, -3.0, -5.0]
    assert net.output_gate.bias.tolist() == [-2.0, -4.0, -6.0]
    assert net.head.bias is None and net.cell_input.weight.abs().max() <= 0.1
    reber = build_lstm1997(make_task("reber"), seed=3)
    assert reber.output_gate.bias.tolist() == [-1.0, -2.0, -3.0]
    assert reber.cell_input.bias is None and reber.input_gate.weight.abs().max() <= 0.2
    assert 0 < reber.input_gate.bias.abs().max() <= 0.2            # "r": drawn like the rest
    adding = build_lstm1997(make_task("adding", 100), seed=3)
    assert adding.input_gate.bias.tolist() == [-3.0, -6.0] and adding.head.bias is not None
    assert not bool(build_lstm1997(make_task("lag", 10, variant="2a")).connected)  # grown later
    again = build_lstm1997(make_task("adding", 100), seed=3)
    assert all(torch.equal(a, b) for a, b in zip(adding.parameters(), again.parameters(),
                                                  strict=True))


def test_unconnected_cells_leave_the_outputs_alone(tmp_path):
    task = make_task("lag", 8, variant="2a")
    net = build_lstm1997(task, seed=0)
    x = task.sample(2, torch.Generator().manual_seed(0)).inputs
    with torch.no_grad():
        direct = net.head(torch.cat([torch.zeros(*x.shape[:2], 1), x], -1))
        assert torch.equal(net(x), direct)
        net.connect()
        assert not torch.allclose(net(x), direct)
    lstmlab.save(net, tmp_path / "net")                     # one model format
    loaded = lstmlab.load(tmp_path / "net")
    assert isinstance(loaded, LSTM1997) and bool(loaded.connected)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


# -- the learner --------------------------------------------------------------------------------

def test_learner_names():
    assert check_learner(" LSTM1997 ") == "lstm1997"
    assert check_learner("lstm1997:truncated") == "lstm1997"
    assert check_learner("lstm1997:full") == "lstm1997:full"
    with pytest.raises(ValueError, match="lstm1997:full"):
        check_learner("lstm1997:adam")
    runs = suite.plan(["6a", "2c"], ["lstm1997", "lstm"], [20])
    assert [r.learner for r in runs] == ["lstm1997", "lstm"] * 2
    with pytest.raises(ValueError, match="experiments 1-6"):
        suite.plan(["intern"], ["lstm1997"], [20])


def test_a_trial_runs_through_the_suite(tmp_path):
    code = main(["memory", "temporal_order:6a", "--lag", "20", "--learners", "lstm1997",
                 "--budget", "700", "--seeds", "1", "--test-size", "64", "--minutes", "1",
                 "--out", str(tmp_path)])
    assert code in (0, None)
    data = json.loads((tmp_path / "results.json").read_text())
    trial = data["trials"][0]
    assert trial["learner"] == "lstm1997" and trial["sequences"] == 700
    assert "experiment 6a" in trial["note"] and "lr 0.5" in trial["note"]
    # one sequence per update; curve points every log_every x batch (10 x 32) sequences
    assert [p["sequences"] for p in trial["curve"]] == [320, 640]
    assert "lstm1997 (the 1997 paper's own network" in (tmp_path / "results.md").read_text()


def test_the_memory_cell_of_2a_joins_once_the_error_stops_falling():
    result = train_trial("lag", {"variant": "2a"}, 5, "lstm1997", seed=0,
                         budget=Budget(sequences=1500), test_size=64)
    assert "memory cell added after" in result.note
    added = int(result.note.rsplit("after ", 1)[1].split(" ")[0].replace(",", ""))
    assert 200 <= added < 1500 and added % 100 == 0


def test_it_learns_two_sequence_3a():
    """An easy case: before training every held-out sequence is wrong (outputs near 0.5, the
    targets 0 and 1); the 1997 set-up of 3a gets them all right by its first held-out check."""
    task = make_task("two_sequence", 10, variant="3a")
    untrained = build_lstm1997(task, seed=0)
    with torch.no_grad():
        batch = task.test_set(size=256)
        correct, _ = task.evaluate(untrained(batch.inputs), batch)
    assert int(correct.sum()) == 0
    result = train_trial("two_sequence", {"variant": "3a"}, 10, "lstm1997", seed=0,
                         budget=Budget(sequences=5000), test_size=256)
    assert result.solved and result.sequences_to_success <= 3000
    assert result.test_errors == 0
