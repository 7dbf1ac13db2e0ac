"""The fast paths against the reference loop: fused (compiled and PyTorch) for every LSTM variant,
native dispatch for NP LSTM, GRU and RNN, and the switch that picks a path."""

import logging
import threading

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import lstmlab
from lstmlab import GRU, LSTM, RNN, VARIANTS, kernels
from lstmlab.kernels import build, fused

I, H, T, B = 3, 5, 7, 4
SPECS = list(VARIANTS) + ["NFG+NP", "CIFG+NOAF+FGR", "NIG+NOG+NIAF"]
COMPILED = [pytest.param(False, id="pytorch"), pytest.param(True, id="compiled")]
GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def needs_compiler(compiled: bool) -> None:
    if compiled and not build.compiled_ok():
        pytest.skip(f"compiled kernel unavailable: {build.why_unavailable(torch.zeros(1))}")


def _run(layer, x, state, lengths, path, compiled=None, seed=3):
    """Outputs, final states and every gradient (input, state, parameters) on one path."""
    layer.zero_grad()
    x = x.detach().clone().requires_grad_()
    state = None if state is None else tuple(s.detach().clone().requires_grad_() for s in state)
    with kernels.use(path, compiled=compiled):
        out, final = layer(x, state if state is None or len(state) > 1 else state[0],
                           lengths=lengths)
    finals = final if isinstance(final, tuple) else (final,)
    g = torch.Generator(device=x.device).manual_seed(seed)
    loss = (out * torch.randn(out.shape, generator=g, device=x.device, dtype=x.dtype)).sum()
    loss = loss + sum((s * (1.5 + k)).sum() for k, s in enumerate(finals))
    loss.backward()
    results = {"out": out, **{f"state{k}": s for k, s in enumerate(finals)}, "dx": x.grad}
    if state is not None:
        results |= {f"dstate{k}": s.grad for k, s in enumerate(state)}
    results |= {f"d{n}": p.grad.clone() for n, p in layer.named_parameters()}
    return results


def assert_close(got, ref, tol):
    assert got.keys() == ref.keys()
    for name in ref:
        scale = max(1.0, ref[name].abs().max().item())  # linear variants (NIAF+NOAF) grow
        diff = (got[name] - ref[name]).abs().max().item()
        assert diff <= tol * scale, f"{name}: {diff:.2e}"


CONFIGS = {  # num_layers, bidirectional, batch_first, lengths, initial state, proj_size
    "L2-bi-lengths-h0": (2, True, False, [7, 3, 5, 1], True, 0),
    "L1-uni-bf": (1, False, True, None, False, 0),
    "L3-uni-lengths-h0": (3, False, False, [2, 7, 7, 4], True, 0),
    "L2-bi-proj-lengths-h0": (2, True, False, [7, 3, 5, 1], True, 3),
}


@pytest.mark.parametrize("compiled", COMPILED)
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("variant", SPECS)
def test_fused_equals_loop(variant, config, compiled):
    """Outputs, final states and all gradients within 1e-5 (float32)."""
    needs_compiler(compiled)
    layers, bi, batch_first, lengths, with_state, proj = CONFIGS[config]
    torch.manual_seed(0)
    layer = LSTM(I, H, num_layers=layers, bidirectional=bi, batch_first=batch_first,
                 proj_size=proj, variant=variant)
    x = torch.randn((B, T, I) if batch_first else (T, B, I))
    if lengths is not None:  # padding content must not matter on either path
        for b, n in enumerate(lengths):
            x[n:, b] = 100.0
    first = layers * (2 if bi else 1)
    state = (torch.randn(first, B, proj or H), torch.randn(first, B, H)) if with_state else None
    ref = _run(layer, x, state, lengths, "loop")
    got = _run(layer, x, state, lengths, "fused", compiled)
    assert_close(got, ref, 1e-5)


@pytest.mark.parametrize("compiled", COMPILED)
@pytest.mark.parametrize("variant", SPECS)
def test_fused_float64_exact(variant, compiled):
    needs_compiler(compiled)
    torch.manual_seed(1)
    layer = LSTM(I, H, num_layers=2, bidirectional=True, variant=variant).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    state = tuple(torch.randn(4, B, H, dtype=torch.float64) for _ in range(2))
    ref = _run(layer, x, state, [7, 3, 5, 1], "loop")
    got = _run(layer, x, state, [7, 3, 5, 1], "fused", compiled)
    assert_close(got, ref, 1e-12)


@pytest.mark.parametrize("compiled", COMPILED)
@pytest.mark.parametrize("variant", SPECS + ["V+proj", "CIFG+NOAF+FGR+proj"])
def test_fused_gradcheck(variant, compiled):
    """The hand-derived backward against finite differences (float64), lengths and state (and a
    projection, proj_size=2 with H=3)."""
    needs_compiler(compiled)
    torch.manual_seed(5)
    proj = variant.endswith("+proj")
    hidden = 3 if proj else 2
    layer = LSTM(2, hidden, num_layers=2, bidirectional=True, proj_size=2 if proj else 0,
                 variant=variant.removesuffix("+proj")).double()
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 2, hidden, dtype=torch.float64, requires_grad=True)

    def f(x, h0, c0, *ps):
        with kernels.use("fused", compiled=compiled):
            out, (h, c) = torch.func.functional_call(
                layer, dict(zip(names, ps, strict=True)), (x, (h0, c0)), {"lengths": [3, 2]})
        return out, h, c

    ps = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    assert torch.autograd.gradcheck(f, (x, h0, c0, *ps), eps=1e-6, atol=1e-6, fast_mode=True)


@pytest.mark.parametrize("compiled", COMPILED)
def test_fused_bias_false_unbatched_and_dropout(compiled):
    needs_compiler(compiled)
    torch.manual_seed(2)
    layer = LSTM(I, H, num_layers=2, bias=False, variant="V")
    x = torch.randn(T, I)
    assert_close(_run(layer, x, None, None, "fused", compiled),
                 _run(layer, x, None, None, "loop"), 1e-5)
    # dropout between layers is the layer's own code on every path: same seed, same masks
    layer = LSTM(I, H, num_layers=3, dropout=0.5, variant="CIFG").train()
    x = torch.randn(T, B, I)
    torch.manual_seed(9)
    ref = _run(layer, x, None, None, "loop")
    torch.manual_seed(9)
    got = _run(layer, x, None, None, "fused", compiled)
    assert_close(got, ref, 1e-5)


@pytest.mark.parametrize("compiled", COMPILED)
@pytest.mark.parametrize("variant", ["NFG+NP", "V", "NIAF"])
def test_fused_saturated_gates_stay_finite(variant, compiled):
    """Pre-activations of +-hundreds (and, for the 1997 cell, which sums its input for 100 steps,
    |c| ~ 100): every gate saturates and nothing may overflow to inf or NaN. Saturated dynamics
    amplify rounding over 100 steps, so equality with the loop is checked in float64."""
    needs_compiler(compiled)
    torch.manual_seed(4)
    layer = LSTM(I, H, variant=variant)
    with torch.no_grad():
        for p in layer.parameters():
            p.mul_(60)
    x = torch.randn(100, B, I)
    got = _run(layer, x, None, None, "fused", compiled)
    for name, value in got.items():
        assert torch.isfinite(value).all(), name
    if variant == "NFG+NP":
        assert got["state1"].abs().max() > 50  # the case really is saturated
    layer = layer.double()
    assert_close(_run(layer, x.double(), None, None, "fused", compiled),
                 _run(layer, x.double(), None, None, "loop"), 1e-9)


NONFINITE = {  # case -> proj_size (half the cases with a projection)
    "nan-input": 0, "nan-weight": 2, "inf-input": 0, "-inf-input": 2}


def _with_nonfinite(layer, case):
    """An input (T, B, I) with NaN/inf as ``case`` says (or NaN in one recurrent weight of the
    last layer's reverse direction, so the forward direction stays finite), and lengths."""
    x = torch.randn(T, B, I)
    if case == "nan-input":
        x[2, 0, 1] = float("nan")
        x[5, 2, :] = float("nan")  # padding (length 5): must reach neither output nor gradient
    elif case == "nan-weight":
        with torch.no_grad():
            layer.weight_hh_l1_reverse[0, 0] = float("nan")
    elif case == "inf-input":  # inf - inf: NaN in the gates where the two weights differ in sign
        x[2, 0, 1] = x[2, 0, 2] = float("inf")
    else:  # every gate of one step saturates exactly (sigmoid(-inf) = 0), a second one nearly
        x[2, 0, 1] = -float("inf")
        x[1, 1, 0] = 1e30
    return x, [7, 3, 5, 1]


@pytest.mark.parametrize("compiled", COMPILED)
@pytest.mark.parametrize("case", list(NONFINITE))
@pytest.mark.parametrize("variant", SPECS)
def test_nan_and_inf_propagate_as_on_the_loop(variant, case, compiled):
    """NaN and inf come out of the fused kernel exactly where the reference loop puts them -
    outputs, states and every gradient: same NaN positions, same infinities, the finite values
    equal - never turned into finite numbers (the C++ is built without -ffast-math)."""
    needs_compiler(compiled)
    torch.manual_seed(0)
    layer = LSTM(I, H, num_layers=2, bidirectional=True, proj_size=NONFINITE[case],
                 variant=variant)
    x, lengths = _with_nonfinite(layer, case)

    def run(path, compiled=None):
        layer.zero_grad()
        xx = x.clone().requires_grad_()
        with kernels.use(path, compiled=compiled):
            out, (h, c) = layer(xx, lengths=lengths)
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        (torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0) * weights).sum().backward()
        return {"out": out, "h": h, "c": c, "dx": xx.grad,
                **{n: p.grad.clone() for n, p in layer.named_parameters()}}

    ref, got = run("loop"), run("fused", compiled)
    if case != "-inf-input":
        assert ref["out"].isnan().any() and ref["dx"].isnan().any()
    if case == "nan-weight":  # the NaN is in the last layer's reverse direction only
        assert torch.isfinite(ref["out"][:, :, :layer.output_size]).all()
    for name in ref:
        a, b = got[name], ref[name]
        assert torch.equal(a.isnan(), b.isnan()), f"{name}: NaN at other places"
        assert torch.equal(a.isinf(), b.isinf()) and torch.equal(a[a.isinf()], b[b.isinf()]), name
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True), name


@pytest.mark.parametrize("compiled", COMPILED)
@pytest.mark.parametrize("variant", ["V", "CIFG+NOAF+FGR", "NP"])
def test_double_backward_through_the_fused_kernel(variant, compiled):
    """create_graph=True: the backward differentiates the reference loop, so second derivatives
    (a Hessian-vector product, a gradient penalty) equal the loop's and none is silently None."""
    needs_compiler(compiled)
    torch.manual_seed(6)
    layer = LSTM(I, H, num_layers=2, bidirectional=True, proj_size=2, variant=variant).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    params = list(layer.parameters())

    def second_order(path, compiled=None):
        xx = x.clone().requires_grad_()
        with kernels.use(path, compiled=compiled):
            out, (h, c) = layer(xx, lengths=[7, 3, 5, 1])
        loss = (out.sin()).sum() + (h * c[..., :2]).sum()
        grads = torch.autograd.grad(loss, [xx, *params], create_graph=True)
        penalty = sum((g ** 2).sum() for g in grads)
        return grads, torch.autograd.grad(penalty, [xx, *params], allow_unused=True)

    (g_ref, gg_ref), (g, gg) = second_order("loop"), second_order("fused", compiled)
    for a, b in zip(g + gg, g_ref + gg_ref, strict=True):
        assert a is not None and b is not None
        assert torch.allclose(a, b, atol=1e-9), (a - b).abs().max()


def test_fused_backward_is_the_hand_derived_one_without_create_graph():
    """A plain backward runs the fused kernel's own backward, not the reference loop."""
    layer = LSTM(I, H, variant="V")
    out, _ = layer(torch.randn(T, B, I, requires_grad=True))
    assert "FusedLSTMFunctionBackward" in _grad_fn_names(out)
    calls = []
    original = fused.reference_lstm
    try:
        fused.reference_lstm = lambda *a, **k: calls.append(1) or original(*a, **k)
        out.sum().backward()
    finally:
        fused.reference_lstm = original
    assert not calls


def test_fused_kernel_direct_call():
    """The function API: one layer-direction, state in and out."""
    torch.manual_seed(3)
    layer = LSTM(I, H, variant="FGR")
    x, h0, c0 = torch.randn(T, B, I), torch.randn(B, H), torch.randn(B, H)
    out, h, c = fused.fused_lstm(layer.spec, x, h0, c0, layer.lstm_weights(0))
    with kernels.use("loop"):
        ref, (h_ref, c_ref) = layer(x, (h0[None], c0[None]))
    assert out.shape == (T, B, H) and h.shape == (B, H)
    assert (out - ref).abs().max() <= 1e-5 and (c - c_ref[0]).abs().max() <= 1e-5


def test_fallback_when_the_build_fails(monkeypatch, caplog):
    """No compiler (or a failed build): one warning, then the PyTorch loop; never a crash."""
    monkeypatch.setattr(build, "_state", {})
    monkeypatch.setattr(build, "SOURCE", build.SOURCE.with_name("missing.cpp"))
    monkeypatch.setenv("LSTMLAB_CACHE", "/nonexistent-lstmlab-cache-for-test")
    torch.manual_seed(4)
    layer = LSTM(I, H, variant="V")
    x = torch.randn(T, B, I)
    with caplog.at_level(logging.WARNING, logger="lstmlab"):
        out, _ = layer(x)
    assert not build.compiled_ok()
    assert sum("compiled LSTM kernel unavailable" in r.message for r in caplog.records) == 1
    assert (out - _run(layer, x, None, None, "loop")["out"]).abs().max() <= 1e-5
    with pytest.raises(RuntimeError, match="not available"), kernels.use("fused", compiled=True):
        layer(x)


def test_a_lock_left_by_a_killed_build_is_removed(monkeypatch, tmp_path, caplog):
    """torch waits forever for its build lock to go: one left by a killed build (a timeout,
    Ctrl-C during the first compile) must not hang every later process."""
    from torch.utils import cpp_extension

    monkeypatch.setattr(build, "_state", {})
    monkeypatch.setenv("LSTMLAB_CACHE", str(tmp_path))
    folder = build.cache_dir()
    folder.mkdir(parents=True)
    (folder / "lock").touch()
    seen = []

    def load(**options):
        seen.append((folder / "lock").exists())
        raise RuntimeError("no compiler in this test")

    monkeypatch.setattr(cpp_extension, "load", load)
    with caplog.at_level(logging.WARNING, logger="lstmlab"):
        assert not build.compiled_ok()
    assert seen == [False]
    assert "left by a kernel build that was interrupted" in caplog.text


def test_a_running_build_is_waited_for(tmp_path):
    """While another process builds (it holds build.flock), its lock stays and we wait."""
    fcntl = pytest.importorskip("fcntl")
    (tmp_path / "lock").touch()
    done = threading.Event()

    def enter():
        with build._build_lock(tmp_path):
            done.set()

    with open(tmp_path / "build.flock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = threading.Thread(target=enter)
        waiting.start()
        assert not done.wait(0.3) and (tmp_path / "lock").exists()
        (tmp_path / "lock").unlink()  # the build finishes and lets go
        fcntl.flock(held, fcntl.LOCK_UN)
    waiting.join(10)
    assert done.is_set()


def test_compiled_switched_off_by_environment(monkeypatch):
    monkeypatch.setattr(build, "_state", {})
    monkeypatch.setenv("LSTMLAB_COMPILED", "0")
    assert not build.available(torch.zeros(1))
    assert "LSTMLAB_COMPILED" in build.why_unavailable(torch.zeros(1))


# --- native dispatch ------------------------------------------------------------------------


def _native_layers():
    kw = dict(num_layers=2, bidirectional=True)
    yield "lstm-NP", lambda: LSTM(I, H, **kw)
    yield "lstm-NP-nobias", lambda: LSTM(I, H, bias=False, **kw)
    yield "gru", lambda: GRU(I, H, **kw)
    yield "rnn-tanh", lambda: RNN(I, H, **kw)
    yield "rnn-relu", lambda: RNN(I, H, nonlinearity="relu", **kw)


@pytest.mark.parametrize("lengths", [None, [7, 3, 5, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize(("name", "make"), list(_native_layers()))
def test_native_equals_loop(name, make, lengths):
    torch.manual_seed(6)
    layer = make()
    x = torch.randn(T, B, I)
    n = 2 if isinstance(layer, LSTM) else 1
    state = tuple(torch.randn(4, B, H) for _ in range(n))
    ref = _run(layer, x, state, lengths, "loop")
    got = _run(layer, x, state, lengths, "native")
    assert_close(got, ref, 1e-5)


@pytest.mark.parametrize(("name", "make"), list(_native_layers()))
def test_native_packed_sequence_equals_loop(name, make):
    torch.manual_seed(7)
    layer = make()
    layer.batch_first = True
    x = torch.randn(B, T, I)
    lengths = torch.tensor([3, 7, 2, 5])
    results = {}
    for path in ("loop", "native"):
        layer.zero_grad()
        xx = x.clone().requires_grad_()
        with kernels.use(path):
            out, final = layer(pack_padded_sequence(xx, lengths, batch_first=True,
                                                    enforce_sorted=False))
        finals = final if isinstance(final, tuple) else (final,)
        (out.data.sin().sum() + sum(s.sum() for s in finals)).backward()
        results[path] = {"out": out.data, "dx": xx.grad,
                         **{f"s{k}": s for k, s in enumerate(finals)},
                         **{n: p.grad.clone() for n, p in layer.named_parameters()}}
        assert torch.equal(out.batch_sizes, torch.tensor([4, 4, 3, 2, 2, 1, 1]))
    assert_close(results["native"], results["loop"], 1e-5)


# --- which path runs ------------------------------------------------------------------------


def _grad_fn_names(out):
    seen, stack = set(), [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        stack.extend(f for f, _ in fn.next_functions)
    return {type(fn).__name__ for fn in seen}


def test_auto_picks_native_fused_or_loop():
    torch.manual_seed(8)
    x = torch.randn(T, B, I)
    np_layer, v_layer = LSTM(I, H), LSTM(I, H, variant="V")
    NP, V = VARIANTS["NP"], VARIANTS["V"]
    assert kernels.choose("auto", NP, recording=False)[0] == "native"
    assert kernels.choose("auto", None, recording=False)[0] == "native"  # GRU, RNN
    assert kernels.choose("auto", V, recording=False)[0] == "fused"
    assert kernels.choose("auto", V, recording=True)[0] == "loop"
    assert "FusedLSTMFunctionBackward" in _grad_fn_names(v_layer(x)[0])
    assert "FusedLSTMFunctionBackward" not in _grad_fn_names(np_layer(x)[0])
    with kernels.use("loop"):
        assert "FusedLSTMFunctionBackward" not in _grad_fn_names(v_layer(x)[0])
    with kernels.use("fused"):
        assert kernels.choose("auto", NP, recording=False)[0] == "fused"
        assert kernels.choose("auto", None, recording=False)[0] == "native"  # no fused GRU


def test_layer_kernel_attribute_and_bad_paths():
    layer = LSTM(I, H, variant="CIFG")
    layer.kernel = "loop"
    assert kernels.choose(layer.kernel, layer.spec, recording=False)[0] == "loop"
    with kernels.use("fused"):  # a use() block wins over the layer
        assert kernels.choose(layer.kernel, layer.spec, recording=False)[0] == "fused"
    with pytest.raises(ValueError, match="kernel path"):
        layer.kernel = "fast"
    with pytest.raises(ValueError, match="kernel path"), kernels.use("cudnn"):
        pass
    layer.kernel = "native"
    with pytest.raises(ValueError, match="only the NP LSTM"):
        layer(torch.randn(T, B, I))


def test_tracing_still_runs_on_the_loop():
    torch.manual_seed(10)
    layer = LSTM(I, H, num_layers=2, variant="V")
    x = torch.randn(T, B, I)
    out, _, trace = layer(x, return_trace=True)
    assert torch.allclose(out, layer(x)[0], atol=1e-5)
    assert set(trace[0]) == {"i", "f", "z", "o", "c", "h"}
    with lstmlab.tracing(layer) as rec:
        layer(x)
    assert len(rec) == 1


# --- CUDA (skipped without a GPU) -----------------------------------------------------------


@GPU
@pytest.mark.parametrize("variant", SPECS)
def test_fused_equals_loop_cuda(variant):
    torch.manual_seed(11)
    layer = LSTM(I, H, num_layers=2, bidirectional=True, variant=variant).cuda()
    x = torch.randn(T, B, I, device="cuda")
    state = tuple(torch.randn(4, B, H, device="cuda") for _ in range(2))
    ref = _run(layer, x, state, [7, 3, 5, 1], "loop")
    assert_close(_run(layer, x, state, [7, 3, 5, 1], "fused"), ref, 1e-5)


@GPU
@pytest.mark.parametrize("variant", ["V", "CIFG+NOAF+FGR"])
def test_fused_gradcheck_cuda(variant):
    torch.manual_seed(12)
    layer = LSTM(2, 2, bidirectional=True, variant=variant).double().cuda()
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(3, 2, 2, dtype=torch.float64, device="cuda", requires_grad=True)

    def f(x, *ps):
        with kernels.use("fused"):
            return torch.func.functional_call(layer, dict(zip(names, ps, strict=True)), (x,),
                                              {"lengths": [3, 2]})[0]

    ps = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    assert torch.autograd.gradcheck(f, (x, *ps), eps=1e-6, atol=1e-6)


@GPU
@pytest.mark.parametrize(("name", "make"), list(_native_layers()))
def test_native_equals_loop_cuda(name, make):
    torch.manual_seed(13)
    layer = make().cuda()
    x = torch.randn(T, B, I, device="cuda")
    ref = _run(layer, x, None, [7, 3, 5, 1], "loop")
    assert_close(_run(layer, x, None, [7, 3, 5, 1], "native"), ref, 1e-5)
