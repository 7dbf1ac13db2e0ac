"""The cell modules: stepped T times they equal the layers (every variant, both paths), torch.nn's
cells, gradients, weights moving between layer and cell, FGR's gate state, traces, bad input."""

import pytest
import torch
from torch import nn

import lstmlab
from lstmlab import GRU, LSTM, RNN, VARIANTS, GRUCell, LSTMCell, RNNCell
from lstmlab.cells import cell_from_layer

I, H, T, B = 3, 4, 5, 2
LSTM_VARIANTS = list(VARIANTS) + ["NFG+NP", "CIFG+NOAF+FGR", "NIG+NOG+FGR"]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny tensors: one thread is fastest and spares the shared machine."""


def _enlarge_extras(layer):
    """Peepholes and gate recurrence large enough that a wrong one shows."""
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.startswith(("weight_c", "weight_gates")):
                p.uniform_(-1, 1)
    return layer


def _layer(kind, **kwargs):
    torch.manual_seed(11)
    if kind in ("gru", "rnn_tanh", "rnn_relu"):
        layer = GRU(I, H, **kwargs) if kind == "gru" else RNN(I, H, nonlinearity=kind[4:],
                                                                **kwargs)
        return layer.double()
    return _enlarge_extras(LSTM(I, H, variant=kind, **kwargs).double())


def _step_through(layer, x, state):
    """The layer's output and final state, computed by its cells one step at a time: every
    layer and direction (reverse: from the last step back), the next layer reading both."""
    is_lstm = isinstance(layer, LSTM)
    h0, c0 = state if is_lstm else (state, None)
    finals_h, finals_c, layer_input = [], [], x
    for k in range(layer.num_layers):
        outputs = []
        for direction in range(2 if layer.bidirectional else 1):
            cell = cell_from_layer(layer, k, reverse=bool(direction))
            index = k * (2 if layer.bidirectional else 1) + direction
            hx = (h0[index], c0[index]) if is_lstm else h0[index]
            ys = [None] * x.shape[0]
            for t in (reversed(range(x.shape[0])) if direction else range(x.shape[0])):
                hx = cell(layer_input[t], hx)
                ys[t] = hx[0] if is_lstm else hx
            finals_h.append(hx[0] if is_lstm else hx)
            if is_lstm:
                finals_c.append(hx[1])
            outputs.append(torch.stack(ys))
        layer_input = torch.cat(outputs, dim=2)
    h_n = torch.stack(finals_h)
    return layer_input, ((h_n, torch.stack(finals_c)) if is_lstm else h_n)


@pytest.mark.parametrize("path", ["loop", "auto"])
@pytest.mark.parametrize("kind", LSTM_VARIANTS + ["gru", "rnn_tanh", "rnn_relu"])
def test_cells_stepped_equal_the_layer(kind, path):
    """Two stacked bidirectional layers, from a given state: output by output within 1e-12
    (float64), on the reference loop and on the path the layer picks (native or fused)."""
    layer = _layer(kind, num_layers=2, bidirectional=True)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(T, B, I, generator=g, dtype=torch.float64)
    shape = (4, B, H)
    state = (torch.randn(shape, generator=g, dtype=torch.float64),
             torch.randn(shape, generator=g, dtype=torch.float64))
    state = state if isinstance(layer, LSTM) else state[0]
    with lstmlab.kernels.use(path):
        expected, expected_state = layer(x, state)
    output, final = _step_through(layer, x, state)
    assert (output - expected).abs().max().item() <= 1e-12
    for a, b in zip(final if isinstance(final, tuple) else (final,),
                    expected_state if isinstance(expected_state, tuple) else (expected_state,),
                    strict=True):
        assert (a - b).abs().max().item() <= 1e-12
    assert output.abs().max() > 0.05  # not trivially small


@pytest.mark.parametrize("kind", ["V", "FGR", "CIFG+NOAF", "gru", "rnn_tanh"])
def test_gradcheck(kind):
    cell = cell_from_layer(_layer(kind))
    names = [n for n, _ in cell.named_parameters()]
    g = torch.Generator().manual_seed(4)
    xs = torch.randn(3, B, I, generator=g, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(B, H, generator=g, dtype=torch.float64, requires_grad=True)

    def run(xs, h0, *ps):
        params = dict(zip(names, ps, strict=True))
        hx = (h0, h0.tanh()) if isinstance(cell, LSTMCell) else h0
        outs = []
        for x in xs:  # three steps, so gradients flow through the carried state (and gates)
            hx = torch.func.functional_call(cell, params, (x, hx))
            outs.append(hx if isinstance(hx, torch.Tensor) else torch.cat(hx, dim=1))
        return torch.stack(outs)

    ps = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    assert torch.autograd.gradcheck(run, (xs, h0, *ps), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_equal_to_torch_nn_cells(kind):
    """from_torch: torch's outputs and parameter gradients over three steps; to_torch: back."""
    torch.manual_seed(5)
    if kind == "lstm":
        ref, cls = nn.LSTMCell(I, H), LSTMCell
    elif kind == "gru":
        ref, cls = nn.GRUCell(I, H), GRUCell
    else:
        ref, cls = nn.RNNCell(I, H, nonlinearity=kind[4:]), RNNCell
    ref = ref.double()
    ours = cls.from_torch(ref)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == \
        [(n, p.shape) for n, p in ref.named_parameters()]
    g = torch.Generator().manual_seed(6)
    xs = torch.randn(3, B, I, generator=g, dtype=torch.float64)
    losses = []
    for module in (ref, ours):
        hx, total = None, 0
        for x in xs:
            hx = module(x, hx)
            total = total + sum((s * s.new_tensor(range(1, H + 1))).sum()
                                for s in (hx if isinstance(hx, tuple) else (hx,)))
        total.backward()
        losses.append(total)
    assert abs(losses[0].item() - losses[1].item()) <= 1e-12
    reference = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert (p.grad - reference[name].grad).abs().max().item() <= 1e-12, name
    back = ours.to_torch()
    assert type(back) is type(ref)
    for name, p in back.named_parameters():
        assert torch.equal(p, reference[name]) and p.data_ptr() != reference[name].data_ptr()
    if kind.startswith("rnn"):
        assert back.nonlinearity == kind[4:]


def test_torch_interop_refuses_what_it_cannot_represent():
    with pytest.raises(ValueError, match="only the NP variant; this cell is CIFG"):
        LSTMCell(I, H, variant="CIFG").to_torch()
    with pytest.raises(TypeError, match="expects a torch.nn.LSTMCell, got GRUCell"):
        LSTMCell.from_torch(nn.GRUCell(I, H))


def test_parameter_layout_is_one_layer_without_suffix():
    for variant in LSTM_VARIANTS:
        layer = LSTM(I, H, num_layers=2, variant=variant)
        cell = LSTMCell(H, H, variant=variant)
        layer_shapes = [(n[:-3], p.shape) for n, p in layer.named_parameters()
                        if n.endswith("_l1")]
        assert [(n, p.shape) for n, p in cell.named_parameters()] == layer_shapes, variant
    assert dict(LSTMCell(I, H, variant="FGR").named_parameters())["weight_gates"].shape \
        == (3 * H, 3 * H)
    assert [n for n, _ in GRUCell(I, H, bias=False).named_parameters()] == \
        ["weight_ih", "weight_hh"]


def test_forget_bias_as_the_layer():
    torch.manual_seed(0)
    default = LSTMCell(I, H, variant="V")
    torch.manual_seed(0)
    plain = LSTMCell(I, H, variant="V", forget_bias=0.0)
    difference = default.bias_ih - plain.bias_ih
    assert torch.equal(difference, torch.tensor([0.0] * H + [1.0] * H + [0.0] * 2 * H))
    assert LSTMCell(I, H, variant="NFG").forget_bias == 0.0
    with pytest.raises(ValueError, match="variant CIFG has no learned forget gate"):
        LSTMCell(I, H, variant="CIFG", forget_bias=1.0)


def test_weights_move_between_layer_and_cell():
    torch.manual_seed(1)
    layer = LSTM(I, H, num_layers=2, bidirectional=True, variant="V")
    cell = LSTMCell.from_layer(layer, layer_index=1, reverse=True)
    assert torch.equal(cell.weight_ci, layer.weight_ci_l1_reverse)
    assert cell.weight_ci.data_ptr() != layer.weight_ci_l1_reverse.data_ptr()  # a copy
    shared = LSTMCell.from_layer(layer, layer_index=1, reverse=True, share=True)
    assert shared.weight_hh is layer.weight_hh_l1_reverse

    other = LSTM(I, H, num_layers=2, bidirectional=True, variant="V")
    cell.copy_to_layer(other, layer_index=1, reverse=True)
    for name, p in cell.named_parameters():
        assert torch.equal(getattr(other, f"{name}_l1_reverse"), p)
    assert not torch.equal(other.weight_hh_l1, layer.weight_hh_l1)  # only that direction
    fresh = LSTM(I, H, num_layers=2, bidirectional=True, variant="V")
    missing, unexpected = fresh.load_state_dict(cell.to_layer_weights(1, reverse=True),
                                                strict=False)
    assert not unexpected and len(missing) == len(fresh.state_dict()) - len(
        list(cell.parameters()))
    assert torch.equal(fresh.weight_co_l1_reverse, cell.weight_co)

    with pytest.raises(ValueError, match="does not fit"):
        LSTMCell(H * 2, H, variant="NP").copy_to_layer(other, layer_index=1)
    with pytest.raises(ValueError, match="does not fit the layer's"):
        LSTMCell(I, H, variant="V").copy_to_layer(other, layer_index=1)


def test_from_layer_takes_torch_layers_and_draws_no_random_numbers():
    torch.manual_seed(3)
    ref = nn.LSTM(I, H, num_layers=2)
    before = torch.random.get_rng_state()
    cell = LSTMCell.from_layer(ref, 1)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert cell.variant == "NP" and torch.equal(cell.weight_hh, ref.weight_hh_l1)
    x = torch.randn(T, B, I)
    out, _ = ref(x)
    first = LSTMCell.from_layer(ref, 0)
    s0 = s1 = None
    for t in range(T):
        s0 = first(x[t], s0)
        s1 = cell(s0[0], s1)
    assert torch.allclose(s1[0], out[-1], atol=1e-6)
    assert isinstance(cell_from_layer(nn.GRU(I, H)), GRUCell)
    relu = cell_from_layer(RNN(I, H, nonlinearity="relu"))
    assert isinstance(relu, RNNCell) and relu.nonlinearity == "relu"


def test_fgr_state_carries_the_gate_history():
    """FGR returns (h, c, gates); given (h, c) the history starts at zero (as a layer call
    does); carrying (h, c, gates) equals the layer, and dropping it does not."""
    layer = _layer("FGR")
    cell = cell_from_layer(layer)
    g = torch.Generator().manual_seed(8)
    x = torch.randn(T, B, I, generator=g, dtype=torch.float64)
    expected, _ = layer(x)
    state = cell(x[0])
    assert len(state) == 3 and state[2].shape == (B, 3 * H)
    restarted = cell(x[1], state[:2])
    carried = cell(x[1], state)
    assert torch.allclose(carried[0], expected[1], atol=1e-12)
    assert not torch.allclose(restarted[0], expected[1], atol=1e-6)
    zeros = (torch.zeros(B, H, dtype=torch.float64),) * 2
    assert torch.equal(cell(x[0], zeros + (torch.zeros(B, 3 * H, dtype=torch.float64),))[0],
                       cell(x[0], zeros)[0])


@pytest.mark.parametrize("kind", ["V", "NIG", "gru", "rnn_tanh"])
def test_trace_gives_the_steps_gates(kind):
    layer = _layer(kind)
    cell = cell_from_layer(layer)
    x = torch.randn(T, B, I, dtype=torch.float64)
    _, _, trace = layer(x, return_trace=True)
    hx = None
    for t in range(T):
        hx, gates = cell(x[t], hx, return_trace=True)
        assert set(gates) == set(cell.trace_names) == set(trace[0])
        for name, value in gates.items():
            assert torch.allclose(value, trace[0][name][t], atol=1e-12), (name, t)
    if kind == "NIG":
        assert torch.equal(gates["i"], torch.ones(B, H, dtype=torch.float64))


def test_trace_hook_records_each_step():
    """The hook a tracing block sets: each call appends (name, the step's trace)."""
    cell = GRUCell(I, H)
    recording = lstmlab.Recording()
    cell._recorder = ("decoder", recording)
    h = cell(torch.randn(B, I))
    h2 = cell(torch.randn(B, I), h)
    assert [name for name, _ in recording.calls] == ["decoder", "decoder"]
    assert torch.equal(recording.calls[1][1]["h"], h2)
    assert set(recording.calls[0][1]) == {"r", "z", "n", "h"}


@pytest.mark.parametrize("cls", [LSTMCell, GRUCell, RNNCell])
def test_unbatched_input_is_one_row(cls):
    torch.manual_seed(9)
    cell = cls(I, H)
    x = torch.randn(B, I)
    batched = cell(x)
    single = cell(x[1])
    for a, b in zip(single if isinstance(single, tuple) else (single,),
                    batched if isinstance(batched, tuple) else (batched,), strict=True):
        assert a.shape == (H,) and torch.allclose(a, b[1], atol=1e-6)
    again = cell(x[1], single)  # an unbatched state is taken back
    assert (again[0] if isinstance(again, tuple) else again).shape == (H,)


@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda c: c(torch.randn(2, B, I)), ValueError, r"\(B, I\) or \(I,\) with I=3, got shape"),
    (lambda c: c(torch.randn(B, I + 1)), ValueError, r"I=3, got shape \(2, 4\)"),
    (lambda c: c(torch.ones(B, I, dtype=torch.long)), TypeError, "floating-point"),
    (lambda c: c(torch.randn(B, I, dtype=torch.float64)), TypeError, "does not match"),
    (lambda c: c([1.0, 2.0, 3.0]), TypeError, "must be a Tensor"),
    (lambda c: c(torch.randn(B, I), torch.zeros(B, H)), TypeError, r"the tuple \(h, c\)"),
    (lambda c: c(torch.randn(B, I), (torch.zeros(B, H),) * 3), TypeError,
     r"the tuple \(h, c\)"),
    (lambda c: c(torch.randn(B, I), (torch.zeros(B + 1, H),) * 2), ValueError,
     r"hx's h has shape \(3, 4\), expected \(2, 4\)"),
    (lambda c: c(torch.randn(I), (torch.zeros(B, H),) * 2), ValueError, r"expected \(4,\)"),
    (lambda c: c(torch.randn(B, I), (torch.zeros(B, H, dtype=torch.float64),) * 2), TypeError,
     "float64"),
])
def test_bad_input(make, error, match):
    with pytest.raises(error, match=match):
        make(LSTMCell(I, H))


def test_bad_state_and_arguments():
    with pytest.raises(TypeError, match=r"GRUCell: hx must be one tensor h of shape \(2, 4\)"):
        GRUCell(I, H)(torch.randn(B, I), (torch.zeros(B, H),))
    with pytest.raises(ValueError, match=r"gates has shape \(2, 4\), expected \(2, 12\)"):
        LSTMCell(I, H, variant="FGR")(torch.randn(B, I), (torch.zeros(B, H),) * 3)
    with pytest.raises(RuntimeError, match=r"gates has shape \(2, 4\)"):  # torch's type too
        LSTMCell(I, H, variant="FGR")(torch.randn(B, I), (torch.zeros(B, H),) * 3)
    with pytest.raises(ValueError, match="hidden_size must be a non-negative integer"):
        LSTMCell(I, -1)
    assert LSTMCell(I, 0)(torch.randn(B, I))[0].shape == (B, 0)  # as torch.nn's cells allow
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        RNNCell(I, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="unknown LSTM variant"):
        LSTMCell(I, H, variant="XYZ")
    with pytest.raises(TypeError, match="LSTMCell takes the weights of a LSTM layer"):
        LSTMCell.from_layer(GRU(I, H))
    with pytest.raises(ValueError, match=r"layer_index must be in \[0, 2\)"):
        GRUCell.from_layer(GRU(I, H, num_layers=2), layer_index=2)
    with pytest.raises(ValueError, match="reverse=True needs a bidirectional layer"):
        RNNCell.from_layer(RNN(I, H), reverse=True)
    with pytest.raises(ValueError, match="proj_size=2 are not supported"):
        LSTMCell.from_layer(nn.LSTM(I, H, proj_size=2))
    with pytest.raises(TypeError, match="takes an RNN, LSTM or GRU layer"):
        cell_from_layer(nn.Linear(I, H))


def test_tracing_records_cells_inside_a_model():
    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = lstmlab.LSTMCell(3, 5, variant="CIFG")

        def forward(self, x):
            state = None
            for t in range(x.shape[0]):
                state = self.cell(x[t], state)
            return state

    model, x = Decoder(), torch.randn(4, 2, 3)
    with lstmlab.tracing(model) as rec:
        h, c = model(x)
    assert len(rec) == 4 and rec.calls[0][0] == "cell"
    last = rec[3]
    assert last["f"].shape == (2, 5) and torch.allclose(last["f"], 1 - last["i"])
    assert torch.equal(last["h"], h)
