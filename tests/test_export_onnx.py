"""ONNX export: every LSTM variant, GRU and RNN (1 and 2 layers, one and both directions,
lengths, initial state, batch and length other than any example), every exportable model kind,
run in onnxruntime and compared with lstmlab's reference loop (max abs difference <= 1e-5,
float32); which ONNX operator each layer became; bad input; `lstmlab export`."""

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import lstmlab  # noqa: E402
from lstmlab import kernels  # noqa: E402
from lstmlab.cli import main  # noqa: E402
from lstmlab.export import to_onnx  # noqa: E402
from lstmlab.export.onnx import (  # noqa: E402
    MissingExtraError,
    compare,
    example_inputs,
    reference_outputs,
)
from lstmlab.models import (  # noqa: E402
    LanguageModel,
    MusicModel,
    SequenceModel,
    SequenceTagger,
    TextClassifier,
    register,
)
from lstmlab.models.lstm1997 import LSTM1997  # noqa: E402

TOLERANCE = 1e-5
# The operator each variant must become: the ONNX LSTM operator where it computes the cell
# exactly (onnxruntime implements peepholes, Affine activations and input_forget), else a Scan.
LSTM_OPERATOR = {"V": "LSTM", "NP": "LSTM", "NIAF": "LSTM", "NOAF": "LSTM", "CIFG": "LSTM",
                 "NIG": "Scan", "NFG": "Scan", "NOG": "Scan", "FGR": "Scan"}


pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def operators(path) -> set[str]:
    """Op types of the main graph (not inside Scan bodies)."""
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def worst_difference(model, path, shapes=((7, 3), (2, 1), (11, 4)), seed=0) -> float:
    """Largest |onnxruntime - lstmlab's loop| over every output, for several (T, B)."""
    s = session(path)
    names = [i.name for i in s.get_inputs()]
    worst = 0.0
    for k, (steps, batch) in enumerate(shapes):
        inputs = example_inputs(model, names, steps, batch, seed + k)
        with kernels.use("loop"):
            expected = reference_outputs(model, inputs)
        got = s.run(None, inputs)
        assert [g.shape for g in got] == [e.shape for e in expected]
        worst = max(worst, max(float(np.abs(g - e).max()) for g, e in
                                   zip(got, expected, strict=True)))
    return worst


def randomise(module, seed=0, scale=0.8):
    """Weights uniform in [-scale, scale], away from torch's small init, so that every gate
    matters. (An unbounded ReLU RNN needs a smaller scale: its outputs grow to tens, where
    float32 itself rounds by more than 1e-5.)"""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) * scale)
    return module.eval()


# --- layers --------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(lstmlab.VARIANTS))
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_every_lstm_variant_matches_lstmlab(tmp_path, variant, layers, bidirectional):
    lstm = randomise(lstmlab.LSTM(3, 4, layers, bidirectional=bidirectional, variant=variant))
    path = to_onnx(lstm, tmp_path / "lstm.onnx", lengths=True, initial_state=True)
    assert LSTM_OPERATOR[variant] in operators(path)
    assert {"LSTM", "Scan"} - {LSTM_OPERATOR[variant]} & operators(path) == set()
    assert worst_difference(lstm, path) <= TOLERANCE


@pytest.mark.parametrize("variant", ["V", "NFG", "CIFG", "FGR"])
@pytest.mark.parametrize("layers,bidirectional", [(2, False), (1, True)])
def test_variants_other_stacks_without_lengths(tmp_path, variant, layers, bidirectional):
    lstm = randomise(lstmlab.LSTM(3, 4, layers, bidirectional=bidirectional, variant=variant))
    path = to_onnx(lstm, tmp_path / "lstm.onnx")
    assert [i.name for i in session(path).get_inputs()] == ["input"]
    assert worst_difference(lstm, path) <= TOLERANCE


@pytest.mark.parametrize("variant,operator", [("NFG+NP", "Scan"), ("CIFG+NIAF+NOAF+NP", "LSTM"),
                                              ("NIG+FGR", "Scan"), ("NOG+NOAF", "Scan")])
def test_combined_switches(tmp_path, variant, operator):
    lstm = randomise(lstmlab.LSTM(3, 5, 2, bidirectional=True, variant=variant))
    path = to_onnx(lstm, tmp_path / "lstm.onnx", lengths=True)
    assert operator in operators(path)
    assert worst_difference(lstm, path) <= TOLERANCE


@pytest.mark.parametrize("cell", ["gru", "rnn:tanh", "rnn:relu"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_gru_and_rnn_use_their_operators(tmp_path, cell, layers, bidirectional):
    kind, _, nonlinearity = cell.partition(":")
    layer = (lstmlab.GRU(3, 4, layers, bidirectional=bidirectional) if kind == "gru" else
             lstmlab.RNN(3, 4, layers, nonlinearity, bidirectional=bidirectional))
    randomise(layer, scale=0.4 if nonlinearity == "relu" else 0.8)
    path = to_onnx(layer, tmp_path / "layer.onnx", lengths=True, initial_state=True)
    assert kind.upper() in operators(path) and "Scan" not in operators(path)
    assert worst_difference(layer, path) <= TOLERANCE


@pytest.mark.parametrize("variant", ["NP", "CIFG"])
def test_projection_bias_free_and_batch_first(tmp_path, variant):
    projected = randomise(lstmlab.LSTM(3, 6, 2, bidirectional=True, proj_size=2, variant=variant))
    path = to_onnx(projected, tmp_path / "proj.onnx", lengths=True, initial_state=True)
    assert "Scan" in operators(path)  # the LSTM operator has no projection
    assert worst_difference(projected, path) <= TOLERANCE

    bare = randomise(lstmlab.LSTM(3, 4, 2, bias=False, batch_first=True, variant=variant))
    path = to_onnx(bare, tmp_path / "bare.onnx")
    assert session(path).get_inputs()[0].shape == ["B", "T", 3]
    assert worst_difference(bare, path) <= TOLERANCE


def test_torch_nn_layers_and_float64(tmp_path):
    torch.manual_seed(0)
    for layer in (nn.LSTM(3, 4, 2, bidirectional=True), nn.GRU(3, 4), nn.RNN(3, 4)):
        path = to_onnx(layer, tmp_path / f"{type(layer).__name__}.onnx", force=True)
        assert worst_difference(layer, path) <= TOLERANCE
    wide = randomise(lstmlab.LSTM(3, 4, variant="V").double())
    path = to_onnx(wide, tmp_path / "double.onnx")
    assert session(path).get_inputs()[0].type == "tensor(float)"
    assert worst_difference(wide, path) <= TOLERANCE


def test_the_comparison_catches_wrong_weights(tmp_path):
    """The comparison itself can fail: a graph from other weights is far off."""
    lstm = randomise(lstmlab.LSTM(3, 4, variant="CIFG"))
    path = to_onnx(lstm, tmp_path / "lstm.onnx")
    other = randomise(lstmlab.LSTM(3, 4, variant="CIFG"), seed=1)
    assert worst_difference(other, path) > 0.01


# --- model kinds ---------------------------------------------------------------------------


def test_sequence_model(tmp_path):
    torch.manual_seed(0)
    model = randomise(SequenceModel("lstm:NOG", 3, 2, hidden_size=5, num_layers=2))
    path = to_onnx(model, tmp_path / "sequence.onnx", lengths=True)
    assert [o.name for o in session(path).get_outputs()] == ["outputs"]
    assert worst_difference(model, path) <= TOLERANCE


def test_sequence_model_whose_outputs_read_the_inputs_too(tmp_path):
    torch.manual_seed(0)
    model = randomise(SequenceModel("lstm:NOAF", 4, 3, hidden_size=5, direct=True))
    path = to_onnx(model, tmp_path / "direct.onnx")
    assert [o.name for o in session(path).get_outputs()] == ["outputs"]
    assert worst_difference(model, path) <= TOLERANCE
    with torch.no_grad():  # the direct path is in the graph: without it the outputs differ
        model.direct.weight.zero_()
    assert worst_difference(model, path) > 0.01


@pytest.mark.parametrize("cell", ["lstm", "lstm:FGR", "gru"])
def test_language_model_with_state(tmp_path, cell):
    torch.manual_seed(0)
    model = LanguageModel(11, cell, hidden_size=6, num_layers=2, dropout=0.2).eval()
    path = to_onnx(model, tmp_path / "lm.onnx", initial_state=True)
    s = session(path)
    assert [i.name for i in s.get_inputs()] == ["inputs", "h0"] + (["c0"] if "lstm" in cell
                                                                   else [])
    assert s.get_outputs()[0].name == "logits"
    assert worst_difference(model, path) <= TOLERANCE
    plain = to_onnx(model, tmp_path / "plain.onnx")  # zeros as the initial state
    assert [i.name for i in session(plain).get_inputs()] == ["inputs"]
    assert worst_difference(model, plain) <= TOLERANCE


def test_music_model(tmp_path):
    torch.manual_seed(0)
    model = randomise(MusicModel(keys=10, cell="lstm:V", hidden_size=6, num_layers=2))
    path = to_onnx(model, tmp_path / "music.onnx", lengths=True, initial_state=True)
    assert [o.name for o in session(path).get_outputs()] == ["logits", "probabilities", "h_n",
                                                             "c_n"]
    assert worst_difference(model, path) <= TOLERANCE


@pytest.mark.parametrize("pooling,cell,chars", [
    ("last", "lstm", True), ("max", "lstm:NIG", False), ("mean", "gru", True),
    ("attention", "lstm:CIFG", True), ("last", "rnn:relu", False)])
def test_classifier(tmp_path, pooling, cell, chars):
    torch.manual_seed(0)
    model = TextClassifier(vocab_size=20, num_classes=3, cell=cell, embedding_size=4,
                           hidden_size=5, num_layers=2, bidirectional=True, pooling=pooling,
                           char_vocab_size=9 if chars else 0, char_embedding_size=3,
                           char_hidden_size=2)
    randomise(model, scale=0.4 if cell == "rnn:relu" else 0.8)
    path = to_onnx(model, tmp_path / "classifier.onnx")
    names = [i.name for i in session(path).get_inputs()]
    assert names == ["words", "lengths"] + (["chars", "char_lengths"] if chars else [])
    assert worst_difference(model, path) <= TOLERANCE


@pytest.mark.parametrize("cell", ["lstm", "lstm:NFG"])
def test_tagger_with_characters(tmp_path, cell):
    torch.manual_seed(0)
    model = SequenceTagger(vocab_size=20, num_tags=4, cell=cell, embedding_size=4,
                           hidden_size=5, char_vocab_size=9, char_embedding_size=3,
                           char_hidden_size=2)
    randomise(model)
    path = to_onnx(model, tmp_path / "tagger.onnx")
    assert session(path).get_outputs()[0].shape == ["T", "B", 4]
    assert worst_difference(model, path) <= TOLERANCE


def test_newest_opset(tmp_path):
    torch.manual_seed(0)
    model = randomise(TextClassifier(vocab_size=20, num_classes=3, cell="lstm:NOG",
                                     embedding_size=4, hidden_size=5, pooling="max"))
    path = to_onnx(model, tmp_path / "c21.onnx", opset=21)
    assert onnx.load(str(path)).opset_import[0].version == 21
    assert worst_difference(model, path) <= TOLERANCE
    assert compare(model, path) <= TOLERANCE  # the library's own check agrees


@pytest.mark.parametrize("setup", [
    dict(blocks=3, cells=2),  # Reber's: blocks of 2 cells sharing gates
    dict(blocks=2, cells=2, bias="gates"),
    dict(blocks=1, cells=1, output_gate=False, recurrent=False, input_to_output=True,
         bias="none", g="sigmoid", h="identity"),  # 2a/2b's network
])
def test_lstm1997_network(tmp_path, setup):
    model = randomise(LSTM1997(4, 3, **setup))
    path = to_onnx(model, tmp_path / "m.onnx")
    assert "Scan" in operators(path)
    assert worst_difference(model, path) <= TOLERANCE
    if not setup.get("recurrent", True):
        model.connect(False)  # before 2a/2b's cell is added, the outputs read zeros
        path = to_onnx(model, path, force=True)
        assert worst_difference(model, path) <= TOLERANCE


def test_metadata_names_kind_and_operators(tmp_path):
    model = LanguageModel(7, "lstm:NFG", hidden_size=4, num_layers=1)
    path = to_onnx(model, tmp_path / "lm.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["lstmlab.kind"] == "language_model"
    assert meta["lstmlab.recurrent"] == '["Scan"]'


# --- bad input -----------------------------------------------------------------------------


@register("not_exportable_test_kind")
class NotExportable(nn.Module):
    def __init__(self, size: int = 2) -> None:
        super().__init__()
        self.linear = nn.Linear(size, size)

    def config(self) -> dict:
        return {"size": 2}


def test_refusals(tmp_path):
    lstm = lstmlab.LSTM(3, 4)
    with pytest.raises(ValueError, match="cannot export a 'not_exportable_test_kind' model.*"
                                         "exportable: .*captioner, classifier, detector, "
                                         "language_model, lstm1997, music, sequence, tagger, "
                                         "translator"):
        to_onnx(NotExportable(), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="cannot export a Linear"):
        to_onnx(nn.Linear(2, 2), tmp_path / "x.onnx")
    path = to_onnx(lstm, tmp_path / "lstm.onnx")
    with pytest.raises(ValueError, match="exists; pass force=True"):
        to_onnx(lstm, path)
    assert to_onnx(lstm, path, force=True) == path
    with pytest.raises(ValueError, match="is a folder"):
        to_onnx(lstm, tmp_path, force=True)
    with pytest.raises(ValueError, match="opset must be one of 17..21"):
        to_onnx(lstm, tmp_path / "y.onnx", opset=13)
    classifier = TextClassifier(vocab_size=5, num_classes=2)
    with pytest.raises(ValueError, match="needs its lengths"):
        to_onnx(classifier, tmp_path / "y.onnx", lengths=False)
    with pytest.raises(ValueError, match="takes no initial state"):
        to_onnx(classifier, tmp_path / "y.onnx", initial_state=True)
    with pytest.raises(ValueError, match="takes no lengths"):
        to_onnx(LanguageModel(5, hidden_size=4), tmp_path / "y.onnx", lengths=True)
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "y.onnx").exists()


def test_missing_packages_name_the_extra(tmp_path, monkeypatch):
    lstm = lstmlab.LSTM(3, 4)
    path = to_onnx(lstm, tmp_path / "lstm.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"onnxruntime.*lstmlab\[export\]"):
        compare(lstm, path)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"needs the onnx package.*lstmlab\[export\]"):
        to_onnx(lstm, tmp_path / "other.onnx")


# --- the command line ------------------------------------------------------------------------


def test_cli_export_onnx(tmp_path, capsys):
    torch.manual_seed(0)
    model = LanguageModel(9, "lstm:CIFG", hidden_size=4, num_layers=2)
    lstmlab.save(model, tmp_path / "run")
    out = tmp_path / "lm.onnx"
    assert main(["export", "onnx", str(tmp_path / "run"), str(out), "--check", "--state"]) == 0
    printed = capsys.readouterr().out
    assert "language_model" in printed and '["LSTM"]' in printed
    assert "inputs: inputs (T, B) int64; h0 (2, B, 4) float32; c0 (2, B, 4) float32" in printed
    difference = float(printed.rsplit("difference", 1)[1])
    assert difference <= TOLERANCE

    assert main(["export", "onnx", str(tmp_path / "run"), str(out)]) == 2
    assert "exists; pass force=True (--force)" in capsys.readouterr().err
    assert main(["export", "onnx", str(tmp_path / "run"), str(out), "--force"]) == 0

    lstmlab.save(NotExportable(), tmp_path / "odd")
    assert main(["export", "onnx", str(tmp_path / "odd"), str(tmp_path / "odd.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmlab export: cannot export a 'not_exportable_test_kind' model")
    assert "language_model" in err and err.count("\n") == 1

    assert main(["export", "onnx", str(tmp_path / "missing"), str(tmp_path / "m.onnx")]) == 2
    assert "missing" in capsys.readouterr().err


def test_cli_export_web_without_the_web_module(tmp_path, capsys, monkeypatch):
    lstmlab.save(LanguageModel(9, hidden_size=4, num_layers=1), tmp_path / "run")
    monkeypatch.setitem(sys.modules, "lstmlab.export.web", None)
    assert main(["export", "web", str(tmp_path / "run"), str(tmp_path / "site")]) == 2
    assert "no web export" in capsys.readouterr().err


def test_cli_export_web(tmp_path):
    pytest.importorskip("lstmlab.export.web")
    vocabulary = list("abcdefghi")
    lstmlab.save(LanguageModel(9, hidden_size=4, num_layers=1), tmp_path / "run",
                 extra={"vocabulary": vocabulary})
    assert main(["export", "web", str(tmp_path / "run"), str(tmp_path / "site")]) == 0
    manifest = json.loads((tmp_path / "site" / "manifest.json").read_text())
    assert manifest["vocabulary"] == vocabulary  # the page maps characters with it
    assert main(["export", "web", str(tmp_path / "run"), str(tmp_path / "site")]) == 2
    assert main(["export", "web", str(tmp_path / "run"), str(tmp_path / "site"), "--force"]) == 0
