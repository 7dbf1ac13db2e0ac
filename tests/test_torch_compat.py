"""lstmlab's layers as drop-ins for torch.nn's: PyTorch's own module_db samples for nn.RNN, nn.GRU
and nn.LSTM driven through lstmlab's classes, and the rest of torch.nn's face - RNNBase,
torch.load(weights_only=True), TorchScript, torch.compile, torch.export, dynamic quantisation.

The samples come from the installed torch (torch.testing._internal.common_modules), as
PyTorch's test/test_modules.py uses them: every forward sample on the CPU in float32 and float64,
with and without requires_grad, in training and eval mode, is checked against its reference
function and against the torch.nn module holding the same weights (outputs, gradients, pickling,
repr); every error sample must raise the error type and message torch.nn raises.
"""

import copy
import io
import pickle
import warnings

import pytest
import torch
from torch import nn
from torch.testing._internal.common_modules import ModuleErrorEnum, module_db

import lstmlab
from lstmlab import GRU, LSTM, RNN, kernels

OURS = {nn.RNN: RNN, nn.GRU: GRU, nn.LSTM: LSTM}
INFOS = [info for info in module_db if info.module_cls in OURS]
MODES = [(dtype, requires_grad, training) for dtype in (torch.float32, torch.float64)
         for requires_grad in (False, True) for training in (False, True)]


def _samples(kind: str) -> list:
    """(id, module info, sample, dtype, requires_grad, training) for every CPU sample; the
    samples' random inputs come from a fixed seed, whatever ran before."""
    found = []
    torch.manual_seed(0)
    for info in INFOS:
        for dtype, requires_grad, training in MODES:
            make = info.module_inputs_func if kind == "forward" else info.module_error_inputs_func
            for n, sample in enumerate(make(info, device="cpu", dtype=dtype,
                                            requires_grad=requires_grad, training=training)):
                name = (f"{info.module_cls.__name__}-{str(dtype)[6:]}-"
                        f"{'grad' if requires_grad else 'nograd'}-"
                        f"{'train' if training else 'eval'}-{n}")
                found.append(pytest.param(info, sample, dtype, requires_grad, training, id=name))
    return found


FORWARD_SAMPLES = _samples("forward")
ERROR_SAMPLES = _samples("error")


def test_the_database_is_there():
    """The count this suite reports (README): 3 modules x 8 modes x (80 forward + 42 error)."""
    assert len(INFOS) == 3
    assert len(FORWARD_SAMPLES) == 640 and len(ERROR_SAMPLES) == 336


def _tensors(result) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, nn.utils.rnn.PackedSequence):
        return [result.data]
    return [t for part in result for t in _tensors(part)]


def _fresh(args: tuple) -> tuple:
    """The sample's inputs, copied (requires_grad kept) so that each run has its own grads."""
    return tuple(copy.deepcopy(a) if isinstance(a, (torch.Tensor, tuple)) else a for a in args)


def _forward_and_grads(module: nn.Module, args: tuple, requires_grad: bool):
    args = _fresh(args)
    outputs = _tensors(module(*args))
    grads = []
    if requires_grad:
        weights = [torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o) for o in outputs]
        sum((o * w).sum() for o, w in zip(outputs, weights, strict=True)).backward()
        grads = [t.grad for t in _tensors(args)] + [p.grad for p in module.parameters()]
    return outputs, grads


@pytest.mark.parametrize(("info", "sample", "dtype", "requires_grad", "training"),
                         FORWARD_SAMPLES)
def test_module_db_forward(info, sample, dtype, requires_grad, training):
    """One sample: lstmlab's class built from the sample's arguments gives the sample's reference
    outputs and, with the same weights, torch.nn's outputs and gradients - on the path it picks
    itself and on the reference loop (and, for the LSTM, the fused kernel) - survives pickling
    and torch.load(weights_only=True), and has a repr."""
    cls = OURS[info.module_cls]
    c_args, c_kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    args = sample.forward_input.args
    assert not sample.forward_input.kwargs
    torch.manual_seed(1)  # the weights, whatever ran before
    ours = cls(*c_args, **c_kwargs).to(dtype).train(training)
    ref = info.module_cls(*c_args, **c_kwargs).to(dtype).train(training)
    ref.load_state_dict(ours.state_dict())
    assert isinstance(ours, nn.RNNBase) and ours._all_weights == ref._all_weights

    expected, expected_grads = _forward_and_grads(ref, args, requires_grad)
    if sample.reference_fn is not None:  # the database's own reference (unbatched -> batched)
        reference = _tensors(sample.reference_fn(ours, *_fresh(args)))
        torch.testing.assert_close(_tensors(ours(*_fresh(args))), reference)
    paths = ["auto", "loop"] + (["fused"] if cls is LSTM else [])
    # float32: the loop and the fused kernel sum in another order than torch's kernels; the
    # project's bound for them is 1e-5 (float64 keeps assert_close's tighter defaults)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {}
    for path in paths:
        ours.zero_grad()
        with kernels.use(path):
            outputs, grads = _forward_and_grads(ours, args, requires_grad)
        torch.testing.assert_close(outputs, expected, **tol,
                                   msg=lambda m, path=path: f"{path}: {m}")
        torch.testing.assert_close(grads, expected_grads, **tol,
                                   msg=lambda m, path=path: f"{path}: {m}")

    with torch.no_grad():
        reloaded = pickle.loads(pickle.dumps(ours))
        torch.testing.assert_close(_tensors(reloaded(*_fresh(args))), expected)
        buffer = io.BytesIO()
        torch.save(ours, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=True)
        torch.testing.assert_close(_tensors(loaded(*_fresh(args))), expected)
    assert repr(ours).startswith(f"{cls.__name__}(")


@pytest.mark.parametrize(("info", "sample", "dtype", "requires_grad", "training"),
                         ERROR_SAMPLES)
def test_module_db_errors(info, sample, dtype, requires_grad, training):
    """One error sample: the same error type and message fragment as torch.nn."""
    cls = OURS[info.module_cls]
    inputs = sample.module_error_input
    c_args, c_kwargs = inputs.constructor_input.args, inputs.constructor_input.kwargs
    with pytest.raises(sample.error_type, match=sample.error_regex):
        module = cls(*c_args, **c_kwargs)
        if sample.error_on == ModuleErrorEnum.FORWARD_ERROR:
            module(*inputs.forward_input.args, **inputs.forward_input.kwargs)
    assert sample.error_on in (ModuleErrorEnum.CONSTRUCTION_ERROR, ModuleErrorEnum.FORWARD_ERROR)


# --- the rest of torch.nn's face ------------------------------------------------------------


class Model(nn.Module):
    """A user's model: lstmlab layers of every kind between torch.nn layers."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(4, 6)
        self.lstm = LSTM(6, 8, 2)
        self.cifg = LSTM(8, 8, proj_size=5, variant="CIFG")
        self.gru = GRU(5, 6, bidirectional=True)
        self.rnn = RNN(12, 6, nonlinearity="relu")
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        y, _ = self.lstm(self.embed(x))
        y, _ = self.cifg(y)
        y, _ = self.gru(y)
        y, _ = self.rnn(y)
        return self.head(y)


def test_weights_only_load_needs_no_allow_list_for_lstmlab():
    """torch.load's default (weights_only=True) rebuilds a pickled model holding lstmlab layers;
    the user allow-lists only their own classes, as for torch.nn's."""
    torch.manual_seed(0)
    model = Model().eval()
    x = torch.randn(7, 2, 4)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    with torch.serialization.safe_globals([Model, nn.Linear]):
        buffer.seek(0)
        loaded = torch.load(buffer)
    assert loaded.cifg.variant == "CIFG" and loaded.cifg.proj_size == 5
    assert torch.equal(loaded(x), model(x))


def test_rnnbase_attributes_are_torch_s():
    layer = LSTM(3, 5, 2, bidirectional=True, proj_size=2)
    ref = nn.LSTM(3, 5, 2, bidirectional=True, proj_size=2)
    assert isinstance(layer, nn.RNNBase) and layer.mode == ref.mode == "LSTM"
    assert layer._all_weights == ref._all_weights
    assert layer._flat_weights_names == ref._flat_weights_names
    assert [w.shape for w in layer._flat_weights] == [w.shape for w in ref._flat_weights]
    assert [[w.shape for w in g] for g in layer.all_weights] == \
        [[w.shape for w in g] for g in ref.all_weights]
    v = LSTM(3, 5, variant="V")
    assert v._all_weights == [["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                               "weight_ci_l0", "weight_cf_l0", "weight_co_l0"]]
    v.flatten_parameters()  # a no-op for variants, torch.nn's for NP, GRU and RNN
    assert RNN(3, 5, nonlinearity="relu").mode == "RNN_RELU" and GRU(3, 5).mode == "GRU"


@pytest.mark.parametrize("value", [0, 10])
def test_rnn_and_gru_refuse_proj_size_as_torch_does(value):
    """test_nn.py's test_projections_errors_on_gru_and_rnn: any proj_size keyword, even 0, is a
    ValueError with torch.nn's message (a TypeError before)."""
    message = "proj_size argument is only supported for LSTM, not RNN or GRU"
    for ours, ref in ((RNN, nn.RNN), (GRU, nn.GRU)):
        for make in (ref, ours):
            with pytest.raises(ValueError, match=message):
                make(30, 20, 2, proj_size=value)


@pytest.mark.parametrize("make", [lambda: LSTM(4, 6, 2, bidirectional=True),
                                  lambda: LSTM(4, 6, proj_size=3), lambda: GRU(4, 6),
                                  lambda: RNN(4, 6, nonlinearity="relu")],
                         ids=["lstm", "lstm-proj", "gru", "rnn"])
def test_jit_script_compiles_torch_nn_s_module_on_the_same_parameters(make):
    """torch.jit.script of a model holding an NP LSTM, GRU or RNN compiles torch.nn's module in
    its place, on the layer's own parameters (as for torch.nn's, a layer scripted alone has only
    its overloads: it is meant to be called from scripted code)."""

    class Wrapper(nn.Module):
        def __init__(self, rnn: nn.Module):
            super().__init__()
            self.rnn = rnn

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rnn(x)[0]

    torch.manual_seed(1)
    layer = make().eval()
    assert isinstance(torch.jit.script(layer), torch.jit.ScriptModule)
    scripted = torch.jit.script(Wrapper(layer))
    x = torch.randn(5, 2, 4)
    torch.testing.assert_close(scripted(x), layer(x)[0])
    with torch.no_grad():  # the parameters are shared, not copied
        layer.weight_ih_l0.add_(0.5)
    torch.testing.assert_close(scripted(x), layer(x)[0])


def test_jit_script_of_a_variant_names_the_supported_paths():
    with pytest.raises(lstmlab.NotScriptableError, match="torch.compile.*torch.export"):
        torch.jit.script(LSTM(4, 6, variant="CIFG"))


@pytest.mark.parametrize("make", [lambda: LSTM(4, 6, 2, bidirectional=True, variant="V"),
                                  lambda: LSTM(4, 6, proj_size=3, variant="CIFG+FGR"),
                                  lambda: LSTM(4, 6, batch_first=True),
                                  lambda: GRU(4, 6)],
                         ids=["V-L2-bi", "CIFG+FGR-proj", "NP-bf", "gru"])
def test_torch_compile_fullgraph(make):
    """torch.compile(fullgraph=True) traces the layer in one graph (the fused kernel is the
    custom op lstmlab::fused_lstm; no context variable is read): outputs and gradients equal."""
    torch.manual_seed(2)
    layer = make()
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    x = torch.randn(5, 3, 4)
    results = []
    for module in (layer, compiled):
        layer.zero_grad()
        xx = x.clone().requires_grad_()
        out, state = module(xx)
        h = state[0] if isinstance(state, tuple) else state
        (out.sin().sum() + h.sum()).backward()
        results.append([out, h, xx.grad, *[p.grad.clone() for p in layer.parameters()]])
    torch.testing.assert_close(results[1], results[0])


def test_torch_export_with_a_dynamic_length():
    """torch.export of a variant: one lstmlab::fused_lstm node (its fake implementation traces
    any length); kernel="loop" exports plain aten ops (ONNX and runtimes without lstmlab)."""
    torch.manual_seed(3)
    layer = LSTM(3, 4, variant="NIG", proj_size=2)
    steps = torch.export.Dim("steps", min=2, max=500)
    program = torch.export.export(layer, (torch.randn(5, 2, 3),), dynamic_shapes=({0: steps},))
    ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert "lstmlab.fused_lstm.default" in ops
    x = torch.randn(11, 2, 3)
    torch.testing.assert_close(program.module()(x), layer(x))
    layer.kernel = "loop"
    program = torch.export.export(layer, (torch.randn(5, 2, 3),))
    assert not any("lstmlab" in str(n.target) for n in program.graph.nodes)
    torch.testing.assert_close(program.module()(x[:5]), layer(x[:5]))


@pytest.mark.parametrize(("variant", "proj", "masked"),
                         [("V", 0, False), ("CIFG+NOAF+FGR", 2, True)])
def test_custom_op_passes_opcheck(variant, proj, masked):
    """torch.library.opcheck: schema, autograd registration, the fake implementation against
    the real one, and AOT dispatch with dynamic shapes."""
    torch.manual_seed(4)
    layer = LSTM(3, 4, proj_size=proj, variant=variant).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, proj or 4, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True]] * 3 + [[True, False]] * 2) if masked else None
    args = (x, h0, c0, *layer.lstm_weights(0), mask, layer.spec.name, False, 2)
    result = torch.library.opcheck(torch.ops.lstmlab.fused_lstm.default, args)
    assert set(result.values()) == {"SUCCESS"}, result


def test_quantize_dynamic():
    """lstmlab.quantize_dynamic: NP LSTMs and GRUs become torch's dynamically quantised modules
    (int8 weights); variants stay float, with a warning. The quantised model stays within 0.05
    of the float one here (measured: 0.001 to 0.003 for outputs up to 0.5, seeds 0-2), and
    differs from it (it really is int8)."""
    torch.manual_seed(5)
    model = Model().eval()
    x = torch.randn(7, 2, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.ao's move to torchao
        with pytest.warns(UserWarning, match=r"left float.*cifg \(LSTM CIFG\).*rnn \(RNN\)"):
            quantised = lstmlab.quantize_dynamic(model)
        untouched = torch.ao.quantization.quantize_dynamic(model, {nn.LSTM, nn.GRU})
    assert type(quantised.lstm).__name__ == "LSTM" and quantised.lstm.__module__.startswith(
        "torch.ao.nn.quantized.dynamic")
    assert type(quantised.gru).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert isinstance(quantised.cifg, LSTM) and isinstance(model.lstm, LSTM)  # model is kept
    assert isinstance(untouched.lstm, LSTM)  # torch's own matches exact types: lstmlab's stay
    with torch.no_grad():
        difference = (quantised(x) - model(x)).abs().max().item()
    assert 0 < difference < 0.05, difference
