"""The layers against torch.nn, each variant against its equations, lengths, packing, bad input."""

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import lstmlab
from lstmlab import GRU, LSTM, RNN, VARIANTS

I, H, T, B = 3, 4, 5, 3

CONFIGS = list(itertools.product([1, 2], [False, True], [False, True], [False, True]))
CONFIG_IDS = [f"L{n}-{'bi' if bi else 'uni'}-{'bf' if bf else 'tf'}-{'h0' if s else 'zero'}"
              for n, bi, bf, s in CONFIGS]


def _initial(kind, layers, directions, batch, generator):
    shape = (layers * directions, batch, H)
    if kind == "lstm":
        return (torch.randn(shape, generator=generator), torch.randn(shape, generator=generator))
    return torch.randn(shape, generator=generator)


def _max_diff(a, b):
    if isinstance(a, tuple):
        return max(_max_diff(x, y) for x, y in zip(a, b, strict=True))
    return (a - b).abs().max().item()


@pytest.mark.parametrize("path", ["loop", "auto"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first", "with_state"), CONFIGS,
                         ids=CONFIG_IDS)
def test_equals_torch_nn(kind, num_layers, bidirectional, batch_first, with_state, path):
    """NP LSTM, GRU and RNN give nn's outputs, final states and parameter gradients (<= 1e-5),
    on the reference loop and on the path a layer picks by itself (native)."""
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(0)
    args = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    if kind == "lstm":
        ref, cls = nn.LSTM(I, H, **args), LSTM
    elif kind == "gru":
        ref, cls = nn.GRU(I, H, **args), GRU
    else:
        ref, cls = nn.RNN(I, H, nonlinearity=kind[4:], **args), RNN
    ours = cls.from_torch(ref)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=g)
    state = _initial(kind[:4].rstrip("_"), num_layers, 2 if bidirectional else 1, B, g) \
        if with_state else None
    out_ref, state_ref = ref(x, state)
    with lstmlab.kernels.use(path):
        out, state_ours = ours(x, state)
    assert out.shape == out_ref.shape
    assert _max_diff(out, out_ref) <= 1e-5
    assert _max_diff(state_ours, state_ref) <= 1e-5

    weights = torch.randn(out.shape, generator=g)
    loss_ref = (out_ref * weights).sum() + sum(s.sum() for s in
                                                (state_ref if isinstance(state_ref, tuple)
                                                 else (state_ref,)))
    loss = (out * weights).sum() + sum(s.sum() for s in
                                        (state_ours if isinstance(state_ours, tuple)
                                         else (state_ours,)))
    loss_ref.backward()
    loss.backward()
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert (p.grad - ref_grads[name].grad).abs().max().item() <= 1e-5, name


@pytest.mark.parametrize("path", ["loop", "auto", "fused"])
@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first", "with_state"), CONFIGS,
                         ids=CONFIG_IDS)
def test_projection_equals_torch_nn(num_layers, bidirectional, batch_first, with_state, path):
    """proj_size: NP gives nn.LSTM(proj_size=2)'s outputs, states and gradients on every path."""
    g = torch.Generator().manual_seed(21)
    torch.manual_seed(20)
    ref = nn.LSTM(I, H, num_layers=num_layers, bidirectional=bidirectional,
                  batch_first=batch_first, proj_size=2)
    ours = LSTM.from_torch(ref)
    assert ours.proj_size == 2
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=g)
    d = 2 if bidirectional else 1
    state = (torch.randn(num_layers * d, B, 2, generator=g),
             torch.randn(num_layers * d, B, H, generator=g)) if with_state else None
    out_ref, (h_ref, c_ref) = ref(x, state)
    with lstmlab.kernels.use(path):
        out, (h, c) = ours(x, state)
    assert out.shape == out_ref.shape == (x.shape[0], x.shape[1], 2 * d)
    assert h.shape == (num_layers * d, B, 2) and c.shape == (num_layers * d, B, H)
    assert _max_diff((out, h, c), (out_ref, h_ref, c_ref)) <= 1e-5
    weights = torch.randn(out.shape, generator=g)
    ((out_ref * weights).sum() + h_ref.sum() + 2 * c_ref.sum()).backward()
    ((out * weights).sum() + h.sum() + 2 * c.sum()).backward()
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert (p.grad - ref_grads[name].grad).abs().max().item() <= 1e-5, name


@pytest.mark.parametrize("variant", ["V", "CIFG", "NOG+NOAF", "FGR"])
def test_projection_is_w_hr_times_the_output(variant):
    """LSTMP for a variant: y_t = W_hr (h(c_t) o_t), and the recurrence sees the projected y."""
    torch.manual_seed(22)
    layer = LSTM(I, H, proj_size=2, variant=variant).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, (h_n, c_n), trace = layer(x, return_trace=True)
    tr = trace[0]
    h_of_c = tr["c"] if "NOAF" in variant else torch.tanh(tr["c"])
    expected = (h_of_c * tr["o"]) @ layer.weight_hr_l0.T
    assert out.shape == (T, B, 2) and torch.allclose(out, expected, atol=1e-12)
    assert torch.equal(h_n[0], out[-1]) and torch.equal(c_n[0], tr["c"][-1])
    assert layer.weight_hh_l0.shape == (len(layer.spec.gates) * H, 2)
    unprojected = LSTM(I, H, variant=variant).double()
    with torch.no_grad():  # the same cell fed the projected y_{t-1}: step 2 onwards depends on it
        for name, p in unprojected.named_parameters():
            if name != "weight_hh_l0":
                p.copy_(getattr(layer, name))
        unprojected.weight_hh_l0.copy_(layer.weight_hh_l0 @ layer.weight_hr_l0)
    _, _, trace_u = unprojected(x, return_trace=True)
    assert torch.allclose(trace_u[0]["c"], tr["c"], atol=1e-12)  # R y = (R W_hr) m


@pytest.mark.parametrize("variant", ["V", "CIFG+NOAF+FGR"])
def test_gradcheck_projection(variant):
    torch.manual_seed(23)
    layer = LSTM(2, 3, num_layers=2, bidirectional=True, proj_size=2, variant=variant).double()
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in layer.named_parameters()]

    def f(x, h0, c0, *ps):
        out, (h, c) = torch.func.functional_call(layer, dict(zip(names, ps, strict=True)),
                                                 (x, (h0, c0)), {"lengths": [3, 2]})
        return out, h, c

    inputs = (x, h0, c0, *[p.detach().clone().requires_grad_() for p in layer.parameters()])
    with lstmlab.kernels.use("loop"):
        assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


def test_signature_is_torch_nn_s():
    """torch.nn's positional order (proj_size 8th for the LSTM, nonlinearity 4th for the RNN);
    lstmlab's own options are keyword-only after it."""
    import inspect

    layer = LSTM(4, 6, 1, True, False, 0.0, False, 0)
    assert layer.proj_size == 0 and layer.variant == "NP"
    assert LSTM(4, 6, 2, True, True, 0.0, True, 3).proj_size == 3
    assert LSTM(4, 6, 1, True, False, 0.0, False, 0, "cpu", torch.float64).weight_ih_l0.dtype \
        == torch.float64
    assert RNN(4, 6, 1, "relu").nonlinearity == "relu"
    with pytest.raises(TypeError):
        LSTM(4, 6, 1, True, False, 0.0, False, "V")
    params = inspect.signature(LSTM).parameters
    assert list(params)[:10] == ["input_size", "hidden_size", "num_layers", "bias", "batch_first",
                                 "dropout", "bidirectional", "proj_size", "device", "dtype"]
    assert params["variant"].kind is params["forget_bias"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(RNN).parameters)[3] == "nonlinearity"
    assert list(inspect.signature(LSTM.forward).parameters)[:3] == ["self", "input", "hx"]


@pytest.mark.parametrize("kind", ["lstm", "lstm-proj", "gru", "rnn"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_input_has_torch_s_shapes(kind, batch_first):
    """A (T, I) input gives (T, D*Hy) and states without the batch axis, batch_first or not."""
    torch.manual_seed(24)
    make = {"lstm": lambda: nn.LSTM(I, H, 2, batch_first=batch_first, bidirectional=True),
            "lstm-proj": lambda: nn.LSTM(I, H, 2, batch_first=batch_first, proj_size=3),
            "gru": lambda: nn.GRU(I, H, batch_first=batch_first),
            "rnn": lambda: nn.RNN(I, H, batch_first=batch_first)}[kind]
    ref = make()
    ours = {nn.LSTM: LSTM, nn.GRU: GRU, nn.RNN: RNN}[type(ref)].from_torch(ref)
    x = torch.randn(T, I)
    out_ref, state_ref = ref(x)
    out, state = ours(x)
    assert out.shape == out_ref.shape and out.dim() == 2
    assert _max_diff(out, out_ref) <= 1e-5 and _max_diff(state, state_ref) <= 1e-5
    out2, _ = ours(x, hx=state)  # the hx keyword, unbatched state
    out2_ref, _ = ref(x, hx=state_ref)
    assert _max_diff(out2, out2_ref) <= 1e-5


@pytest.mark.parametrize("path", ["loop", "auto", "fused"])
@pytest.mark.parametrize("make", [lambda: LSTM(I, H, 2, bidirectional=True),
                                  lambda: LSTM(I, H, proj_size=2, variant="V"),
                                  lambda: GRU(I, H), lambda: RNN(I, H, batch_first=True)],
                         ids=["lstm", "lstm-V-proj", "gru", "rnn-bf"])
def test_empty_batch(make, path):
    """A batch of 0 sequences gives empty outputs and states of torch.nn's shapes."""
    layer = make()
    x = torch.randn(0, T, I) if layer.batch_first else torch.randn(T, 0, I)
    with lstmlab.kernels.use(path):
        out, state = layer(x)
    d, hy = layer.num_directions, layer.output_size
    assert out.shape == ((0, T, d * hy) if layer.batch_first else (T, 0, d * hy))
    states = state if isinstance(state, tuple) else (state,)
    assert states[0].shape == (layer.num_layers * d, 0, hy)


def test_np_layout_is_nn_lstm_layout():
    ref = nn.LSTM(I, H, num_layers=2, bidirectional=True)
    ours = LSTM(I, H, num_layers=2, bidirectional=True)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == \
        [(n, p.shape) for n, p in ref.named_parameters()]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_parameter_layout(variant):
    """docs/design.md, 'Parameter layout': gate blocks i, f, z, o that exist; peepholes;
    FGR's (3H, 3H)."""
    layer = LSTM(I, H, num_layers=2, bidirectional=True, variant=variant)
    spec = layer.spec
    gates = {"V": 4, "NP": 4, "NIAF": 4, "NOAF": 4, "FGR": 4,
             "NIG": 3, "NFG": 3, "NOG": 3, "CIFG": 3}[variant]
    params = dict(layer.named_parameters())
    for suffix in ["_l0", "_l1", "_l0_reverse", "_l1_reverse"]:
        layer_input = I if suffix.startswith("_l0") else 2 * H
        assert params["weight_ih" + suffix].shape == (gates * H, layer_input)
        assert params["weight_hh" + suffix].shape == (gates * H, H)
        assert params["bias_ih" + suffix].shape == (gates * H,)
        assert params["bias_hh" + suffix].shape == (gates * H,)
        for gate, present in [("i", spec.input_gate), ("f", spec.learned_forget_gate),
                              ("o", spec.output_gate)]:
            has = variant != "NP" and present
            assert (f"weight_c{gate}" + suffix in params) == has
            if has:
                assert params[f"weight_c{gate}" + suffix].shape == (H,)
        assert ("weight_gates" + suffix in params) == (variant == "FGR")
    if variant == "FGR":
        assert params["weight_gates_l0"].shape == (3 * H, 3 * H)


def _reference_lstm(layer: LSTM, x: torch.Tensor, variant: str):
    """Greff et al.'s equations written out again for one layer, one direction, per gate."""
    w = dict(layer.named_parameters())
    names = {"V": "ifzo", "NP": "ifzo", "NIAF": "ifzo", "NOAF": "ifzo", "FGR": "ifzo",
             "NIG": "fzo", "NFG": "izo", "NOG": "ifz", "CIFG": "izo"}[variant]
    Wx = dict(zip(names, w["weight_ih_l0"].split(H), strict=True))
    Rh = dict(zip(names, w["weight_hh_l0"].split(H), strict=True))
    b = dict(zip(names, (w["bias_ih_l0"] + w["bias_hh_l0"]).split(H), strict=True))
    p = {g: w.get(f"weight_c{g}_l0", torch.zeros(H, dtype=x.dtype)) for g in "ifo"}
    sig = [g for g in names if g != "z"]
    steps, batch, _ = x.shape
    y = x.new_zeros(batch, H)
    c = x.new_zeros(batch, H)
    prev = {g: x.new_zeros(batch, H) for g in sig}
    ys, cs = [], []
    for t in range(steps):
        def net(g, cell, t=t, y=y, prev=prev):
            a = x[t] @ Wx[g].T + y @ Rh[g].T + b[g] + cell * p[g]
            if variant == "FGR":
                R = w["weight_gates_l0"]
                rows = slice(sig.index(g) * H, (sig.index(g) + 1) * H)
                for k, source in enumerate(sig):
                    a = a + prev[source] @ R[rows, k * H:(k + 1) * H].T
            return a
        zin = x[t] @ Wx["z"].T + y @ Rh["z"].T + b["z"]
        z = zin if variant == "NIAF" else torch.tanh(zin)
        i = torch.ones_like(c) if variant == "NIG" else torch.sigmoid(net("i", c))
        if variant == "CIFG":
            f = 1 - i
        elif variant == "NFG":
            f = torch.ones_like(c)
        else:
            f = torch.sigmoid(net("f", c))
        c = z * i + c * f
        o = torch.ones_like(c) if variant == "NOG" else torch.sigmoid(net("o", c))
        y = (c if variant == "NOAF" else torch.tanh(c)) * o
        prev = {"i": i, "f": f, "o": o}
        ys.append(y)
        cs.append(c)
    return torch.stack(ys), torch.stack(cs)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_matches_written_out_equations(variant):
    torch.manual_seed(3)
    layer = LSTM(I, H, variant=variant).double()
    with torch.no_grad():  # peepholes and gate recurrence large enough to matter
        for name, prm in layer.named_parameters():
            if name.startswith(("weight_c", "weight_gates")):
                prm.uniform_(-1, 1)
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, (h_n, c_n), trace = layer(x, return_trace=True)
    y_ref, c_ref = _reference_lstm(layer, x, variant)
    assert torch.allclose(out, y_ref, atol=1e-12)
    assert torch.allclose(trace[0]["c"], c_ref, atol=1e-12)
    assert torch.allclose(c_n[0], c_ref[-1], atol=1e-12)


def test_variant_identities_hold_exactly():
    """The switches in their simplest form: CIFG f = 1 - i, NOG y = tanh(c), NFG f = 1, ..."""
    torch.manual_seed(4)
    x = torch.randn(T, B, I, dtype=torch.float64)

    def run(variant):
        return LSTM(I, H, variant=variant).double()(x, return_trace=True)[2][0]

    tr = run("CIFG")
    assert torch.equal(tr["f"], 1 - tr["i"])
    tr = run("NOG")
    assert torch.equal(tr["o"], torch.ones_like(tr["o"]))
    assert torch.equal(tr["h"], torch.tanh(tr["c"]))
    tr = run("NOAF")
    assert torch.equal(tr["h"], tr["c"] * tr["o"])
    tr = run("NFG")
    assert torch.equal(tr["f"], torch.ones_like(tr["f"]))
    tr = run("NIG")
    assert torch.equal(tr["i"], torch.ones_like(tr["i"]))

    layer = LSTM(I, H, variant="NIAF").double()
    _, _, trace = layer(x, return_trace=True)
    w = dict(layer.named_parameters())
    rows = slice(2 * H, 3 * H)  # the z block
    y_prev = torch.cat([torch.zeros(1, B, H, dtype=x.dtype), trace[0]["h"][:-1]])
    z_linear = x @ w["weight_ih_l0"][rows].T + y_prev @ w["weight_hh_l0"][rows].T \
        + w["bias_ih_l0"][rows] + w["bias_hh_l0"][rows]
    assert torch.allclose(trace[0]["z"], z_linear, atol=1e-12)
    assert trace[0]["z"].abs().max() > 0  # and it is not trivially zero


@pytest.mark.parametrize("variant", list(VARIANTS) + ["NFG+NP", "CIFG+NOAF+FGR"])
def test_gradcheck(variant):
    torch.manual_seed(5)
    layer = LSTM(2, 2, num_layers=2, bidirectional=True, variant=variant).double()
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in layer.named_parameters()]

    def f(x, h0, c0, *ps):
        out, (h, c) = torch.func.functional_call(layer, dict(zip(names, ps, strict=True)),
                                                 (x, (h0, c0)))
        return out, h, c

    inputs = (x, h0, c0, *[p.detach().clone().requires_grad_() for p in layer.parameters()])
    with lstmlab.kernels.use("loop"):  # the reference; tests/test_kernels.py checks the others
        assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("gradcheck_kind", ["gru", "rnn"])
def test_gradcheck_gru_rnn(gradcheck_kind):
    torch.manual_seed(6)
    layer = (GRU if gradcheck_kind == "gru" else RNN)(2, 2, bidirectional=True).double()
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)

    def f(x, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps, strict=True)), (x,))[0]

    ps = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    with lstmlab.kernels.use("loop"):
        assert torch.autograd.gradcheck(f, (x, *ps), eps=1e-6, atol=1e-6)


def _layers_for_lengths():
    torch.manual_seed(7)
    kw = dict(num_layers=2, bidirectional=True)
    yield "lstm-NP", LSTM(I, H, **kw)
    yield "lstm-V", LSTM(I, H, variant="V", **kw)
    yield "lstm-FGR", LSTM(I, H, variant="FGR", **kw)
    yield "lstm-CIFG", LSTM(I, H, variant="CIFG", **kw)
    yield "gru", GRU(I, H, **kw)
    yield "rnn", RNN(I, H, **kw)


@pytest.mark.parametrize("path", ["loop", "auto"])
@pytest.mark.parametrize(("name", "layer"), list(_layers_for_lengths()))
def test_lengths_equal_running_each_sequence_alone(name, layer, path):
    with lstmlab.kernels.use(path):
        _check_lengths_equal_alone(name, layer)


def _check_lengths_equal_alone(name, layer):
    g = torch.Generator().manual_seed(8)
    lengths = [5, 2, 4]
    x = torch.randn(T, B, I, generator=g)
    x_garbage = x.clone()
    for b, n in enumerate(lengths):  # padding content must not matter
        x_garbage[n:, b] = 100.0
    out, state = layer(x_garbage, lengths=torch.tensor(lengths))
    states = state if isinstance(state, tuple) else (state,)
    for b, n in enumerate(lengths):
        alone, alone_state = layer(x[:n, b:b + 1])
        alone_states = alone_state if isinstance(alone_state, tuple) else (alone_state,)
        assert torch.allclose(out[:n, b:b + 1], alone, atol=1e-6), (name, b)
        assert torch.all(out[n:, b] == 0)
        for s, a in zip(states, alone_states, strict=True):
            assert torch.allclose(s[:, b:b + 1], a, atol=1e-6), (name, b)


@pytest.mark.parametrize(("name", "layer"), list(_layers_for_lengths()))
def test_packed_sequence_equals_padded_with_lengths(name, layer):
    g = torch.Generator().manual_seed(9)
    lengths = torch.tensor([3, 5, 2])
    x = torch.randn(T, B, I, generator=g)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    out_packed, state_packed = layer(packed)
    out, state = layer(x, lengths=lengths.tolist())
    assert isinstance(out_packed, torch.nn.utils.rnn.PackedSequence)
    ref = pack_padded_sequence(out, lengths, enforce_sorted=False)
    assert torch.allclose(out_packed.data, ref.data, atol=1e-6)
    assert torch.equal(out_packed.batch_sizes, packed.batch_sizes)
    assert _max_diff(state_packed, state) <= 1e-6


def test_packed_sequence_equals_nn_lstm():
    torch.manual_seed(10)
    ref = nn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True)
    ours = LSTM.from_torch(ref)
    x = torch.randn(B, T, I)
    packed = pack_padded_sequence(x, torch.tensor([2, 5, 4]), batch_first=True,
                                  enforce_sorted=False)
    out_ref, state_ref = ref(packed)
    out, state = ours(packed)
    assert (out.data - out_ref.data).abs().max() <= 1e-5
    assert _max_diff(state, state_ref) <= 1e-5


def test_lengths_on_device_tensor_and_batch_first():
    torch.manual_seed(11)
    layer = LSTM(I, H, batch_first=True, variant="V")
    x = torch.randn(B, T, I)
    a, _ = layer(x, lengths=[5, 3, 1])
    b, _ = layer(x, lengths=torch.tensor([5, 3, 1], dtype=torch.int32))
    assert torch.equal(a, b)
    assert torch.all(a[2, 1:] == 0)


def test_dropout_only_between_layers_in_training():
    torch.manual_seed(12)
    layer = LSTM(I, H, num_layers=3, dropout=0.5)
    x = torch.randn(T, B, I)
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])
    layer.train()
    a, b = layer(x)[0], layer(x)[0]
    assert not torch.equal(a, b)
    no_dropout = LSTM(I, H, num_layers=3, dropout=0.0)
    no_dropout.load_state_dict(layer.state_dict())
    layer.eval()
    assert torch.equal(layer(x)[0], no_dropout(x)[0])


def test_unbatched_input():
    torch.manual_seed(13)
    ref = nn.LSTM(I, H, num_layers=2)
    ours = LSTM.from_torch(ref)
    x = torch.randn(T, I)
    state = (torch.randn(2, H), torch.randn(2, H))
    out_ref, (h_ref, c_ref) = ref(x, state)
    out, (h, c) = ours(x, state)
    assert out.shape == (T, H) and h.shape == (2, H)
    assert (out - out_ref).abs().max() <= 1e-5 and (c - c_ref).abs().max() <= 1e-5


def test_trace_matches_outputs_and_states():
    torch.manual_seed(14)
    layer = LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True, variant="V")
    x = torch.randn(B, T, I)
    out, (h_n, c_n), trace = layer(x, return_trace=True)
    assert len(trace) == 2 and trace.reverse is not None
    assert set(trace[0]) == {"i", "f", "z", "o", "c", "h"}
    assert trace[1]["h"].shape == (B, T, H)
    assert torch.equal(torch.cat([trace[1]["h"], trace.reverse[1]["h"]], dim=2), out)
    assert torch.equal(trace[1]["c"][:, -1], c_n[2])       # forward ends at the last step
    assert torch.equal(trace.reverse[1]["c"][:, 0], c_n[3])  # reverse ends at the first
    assert torch.all((trace[0]["f"] > 0) & (trace[0]["f"] < 1))


def test_tracing_context_records_nested_layers():
    torch.manual_seed(15)
    model = nn.Sequential()
    model.add_module("rnn", GRU(I, H))
    x = torch.randn(T, B, I)
    with lstmlab.tracing(model) as recording:
        out, _ = model.rnn(x)
        model.rnn(x)
    assert len(recording) == 2 and recording.calls[0][0] == "rnn"
    assert torch.equal(recording[0][0]["h"], out)
    assert set(recording[0][0]) == {"r", "z", "n", "h"}
    model.rnn(x)
    assert len(recording) == 2  # recording stops with the block
    with pytest.raises(ValueError, match="no lstmlab"):
        with lstmlab.tracing(nn.Linear(2, 2)):
            pass


def test_interop_round_trip():
    torch.manual_seed(16)
    x = torch.randn(T, B, I)
    for ref in [nn.LSTM(I, H, 2, bidirectional=True), nn.LSTM(I, H, 2, proj_size=2),
                nn.GRU(I, H, 2), nn.RNN(I, H, 2, "relu")]:
        ours = {nn.LSTM: LSTM, nn.GRU: GRU, nn.RNN: RNN}[type(ref)].from_torch(ref)
        back = ours.to_torch()
        assert type(back) is type(ref)
        assert torch.equal(back(x)[0], ref(x)[0])
        assert _max_diff(ours(x)[0], ref(x)[0]) <= 1e-5


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "NP"])
def test_to_torch_refuses_other_variants(variant):
    with pytest.raises(ValueError, match="only the NP variant"):
        LSTM(I, H, variant=variant).to_torch()


def test_from_torch_refuses_wrong_type():
    with pytest.raises(TypeError, match="torch.nn.LSTM"):
        LSTM.from_torch(nn.GRU(I, H))


def test_forget_bias():
    torch.manual_seed(17)
    default = LSTM(I, H, variant="V")
    assert default.forget_bias == 1.0
    f_block = default.bias_ih_l0[H:2 * H]
    assert f_block.min() >= 1 - 1 / H ** 0.5 and f_block.max() <= 1 + 1 / H ** 0.5
    assert LSTM(I, H, variant="NFG").forget_bias == 0.0
    assert LSTM(I, H, forget_bias=0.0).bias_ih_l0[H:2 * H].abs().max() <= 1 / H ** 0.5
    with pytest.raises(ValueError, match="no learned forget gate"):
        LSTM(I, H, variant="CIFG", forget_bias=2.0)
    with pytest.raises(ValueError, match="bias=False"):
        LSTM(I, H, bias=False, forget_bias=1.0)


def test_variant_names_and_combinations():
    assert lstmlab.lstm_spec("nfg+np").name == "NFG+NP"
    assert lstmlab.lstm_spec("NP").name == "NP"
    spec = lstmlab.lstm_spec("NFG+NP")
    assert not spec.forget_gate and not spec.peepholes and spec.gates == ("i", "z", "o")
    with pytest.raises(ValueError, match="valid names: V, NIG, NFG"):
        LSTM(I, H, variant="XYZ")
    with pytest.raises(ValueError, match="CIFG"):
        lstmlab.lstm_spec("CIFG+NIG")
    with pytest.raises(TypeError):
        lstmlab.lstm_spec(3)


def test_bias_false():
    torch.manual_seed(18)
    ref = nn.LSTM(I, H, bias=False)
    ours = LSTM.from_torch(ref)
    x = torch.randn(T, B, I)
    assert _max_diff(ours(x)[0], ref(x)[0]) <= 1e-5
    assert not any("bias" in n for n, _ in LSTM(I, H, bias=False, variant="V").named_parameters())


@pytest.mark.parametrize(("make_input", "errors", "match"), [
    (lambda: torch.randn(T, B, I, 1), (ValueError,),
     r"Expected input to be 2D or 3D, got 4D instead: input must be \(T, B, I\)"),
    (lambda: torch.randn(T, B, I + 1), (ValueError, RuntimeError),
     r"input.size\(-1\) must be equal to input_size. Expected 3, got 4"),
    (lambda: torch.randn(T, B, I, dtype=torch.float64), (TypeError, ValueError),
     r"input dtype \(torch.float64\) does not match weight dtype \(torch.float32\)"),
    (lambda: torch.ones(T, B, I, dtype=torch.long), (TypeError, ValueError),
     r"Convert input: input.to\(torch.float32\)"),
    (lambda: [[1.0]], (TypeError,), "Tensor or PackedSequence"),
    (lambda: torch.randn(0, B, I), (ValueError, RuntimeError),
     "Expected sequence length to be larger than 0.*no steps"),
])
def test_bad_input(make_input, errors, match):
    """torch.nn's error types and message fragments; lstmlab's errors are also the types it used
    to raise (ValueError, TypeError), so both styles of ``except`` catch them."""
    with pytest.raises(errors[0], match=match) as caught:
        LSTM(I, H)(make_input())
    assert all(isinstance(caught.value, e) for e in errors)


@pytest.mark.parametrize(("state", "errors", "match"), [
    (torch.zeros(1, B, H), (TypeError,), r"\(h, c\) of shapes \(1, 3, 4\) and \(1, 3, 4\)"),
    ((torch.zeros(1, B, H), torch.zeros(2, B, H)), (RuntimeError, ValueError),
     r"Expected hidden\[1\] size \(1, 3, 4\), got \[2, 3, 4\]"),
    ((torch.zeros(1, B + 1, H), torch.zeros(1, B + 1, H)), (RuntimeError, ValueError),
     r"Expected hidden\[0\] size \(1, 3, 4\), got \[1, 4, 4\]"),
    ((torch.zeros(B, H), torch.zeros(B, H)), (RuntimeError, ValueError),
     r"For batched 3-D input, hx and cx should also be 3-D but got \(2-D, 2-D\)"),
    ((torch.zeros(1, B, H, dtype=torch.float64),) * 2, (TypeError, ValueError), "float32"),
])
def test_bad_state(state, errors, match):
    with pytest.raises(errors[0], match=match) as caught:
        LSTM(I, H)(torch.randn(T, B, I), state)
    assert all(isinstance(caught.value, e) for e in errors)


def test_bad_state_gru():
    with pytest.raises(TypeError, match=r"one tensor, h_0 of shape \(2, 3, 4\)"):
        GRU(I, H, bidirectional=True)(torch.randn(T, B, I), (torch.zeros(2, B, H),) * 2)


@pytest.mark.parametrize(("lengths", "error", "match"), [
    ([5, 5], ValueError, r"one length per sequence \(3\)"),
    ([6, 5, 5], ValueError, r"in \[1, T=5\]"),
    ([0, 5, 5], ValueError, r"in \[1, T=5\]"),
    ([1.5, 2.0, 3.0], TypeError, "integers"),
    (torch.ones(3, 1, dtype=torch.long), ValueError, "one length per sequence"),
    ("abc", TypeError, "lengths must be"),
])
def test_bad_lengths(lengths, error, match):
    with pytest.raises(error, match=match):
        LSTM(I, H)(torch.randn(T, B, I), lengths=lengths)


@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda: LSTM(I, 0), ValueError, "hidden_size must be greater than zero"),
    (lambda: GRU(0, H), ValueError, "input_size must be greater than zero"),
    (lambda: RNN(I, H, 0), ValueError, "num_layers must be greater than zero"),
    (lambda: GRU(I, H, num_layers=2, dropout=1.5), ValueError,
     r"dropout should be a number in range \[0, 1\]"),
    (lambda: RNN(I, H, nonlinearity="sigmoid"), ValueError,
     "Unknown nonlinearity 'sigmoid'. Select from 'tanh' or 'relu'"),
    (lambda: LSTM(I, H, bias=0), TypeError, "bias should be of type bool, got: int"),
    (lambda: GRU(I, H, batch_first=1), TypeError, "batch_first should be of type bool, got: int"),
    (lambda: RNN(3.0, H), TypeError, "input_size should be of type int, got: float"),
    (lambda: LSTM(I, "4"), TypeError, "hidden_size should be of type int, got: str"),
    (lambda: LSTM(I, H, 1.0), TypeError, "num_layers should be of type int, got: float"),
    (lambda: LSTM(I, H, proj_size=H), ValueError, "proj_size has to be smaller than hidden_size"),
    (lambda: LSTM(I, H, proj_size=-1), ValueError, "proj_size should be a positive integer"),
    (lambda: LSTM(I, H, bias=0, variant="V", forget_bias=1.0), TypeError, "bias should be"),
])
def test_bad_constructor_arguments(make, error, match):
    """torch.nn.RNNBase's checks, with its error types and messages."""
    with pytest.raises(error, match=match):
        make()


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match="num_layers=1"):
        LSTM(I, H, dropout=0.2)
