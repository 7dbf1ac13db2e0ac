"""The web export: to_web's folder (manifest, float32 weights, the runtime), its refusals, and
the JavaScript fixtures, regenerated and compared with the committed ones so they cannot go
stale (the JavaScript side runs under `node --test tests/js/`)."""

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import lstmlab
from lstmlab import kernels
from lstmlab.export.web import FORMAT, MODEL_KINDS, to_web
from lstmlab.models.language import LanguageModel
from lstmlab.tasks.text import Vocabulary

JS = Path(__file__).parent / "js"


def _make_fixtures():
    spec = importlib.util.spec_from_file_location("make_fixtures", JS / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_fixtures


def _numbers_close(a, b, path=""):
    if isinstance(b, dict):
        assert isinstance(a, dict) and a.keys() == b.keys(), path
        for k in b:
            _numbers_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            _numbers_close(x, y, f"{path}[{k}]")
    elif isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


def test_committed_fixtures_equal_regenerated_ones(tmp_path, one_thread):
    _make_fixtures()(tmp_path)
    committed = JS / "fixtures"
    new = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    old = sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
    assert new == old, "run: python tests/js/make_fixtures.py"
    for rel in new:
        if rel.suffix == ".bin":  # the weights: exact bytes (float32, little-endian)
            assert (tmp_path / rel).read_bytes() == (committed / rel).read_bytes(), rel
        else:  # JSON numbers computed in float64 may differ in the last bits between machines
            _numbers_close(json.loads((tmp_path / rel).read_text()),
                           json.loads((committed / rel).read_text()), str(rel))


def test_to_web_writes_manifest_weights_and_runtime(tmp_path):
    torch.manual_seed(0)
    layer = lstmlab.LSTM(3, 4, num_layers=2, bidirectional=True, variant="CIFG+FGR")
    out = to_web(layer, tmp_path / "cifg")
    assert sorted(p.name for p in out.iterdir()) == ["lstmlab.js", "manifest.json",
                                                      "train.js", "weights.bin"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == FORMAT and manifest["kind"] == "lstm"
    desc = manifest["layers"]["recurrent"]
    assert desc["spec"]["coupled"] and desc["spec"]["gate_recurrence"]
    assert desc["spec"]["peepholes"] and desc["num_layers"] == 2 and desc["bidirectional"]
    weights = (out / "weights.bin").read_bytes()
    state = layer.state_dict()
    assert list(manifest["tensors"]) == list(state)
    assert sum(e["length"] for e in manifest["tensors"].values()) * 4 == len(weights)
    for name, entry in manifest["tensors"].items():
        data = np.frombuffer(weights, "<f4", entry["length"], entry["offset"])
        assert entry["shape"] == list(state[name].shape)
        assert np.array_equal(data.reshape(entry["shape"]), state[name].numpy()), name
    assert (out / "lstmlab.js").read_text().startswith("/**")


def test_to_web_takes_torch_layers_and_saved_models(tmp_path):
    torch.manual_seed(0)
    out = to_web(nn.GRU(2, 3), tmp_path / "gru")
    assert json.loads((out / "manifest.json").read_text())["kind"] == "gru"
    vocab = Vocabulary("char", tuple("ab\n"))
    lm = LanguageModel(len(vocab), cell="lstm:NIG", hidden_size=4, num_layers=1)
    lstmlab.save(lm, tmp_path / "lm", extra={"vocabulary": vocab.to_dict()})
    out = to_web(tmp_path / "lm", tmp_path / "lm-web")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "language_model"
    assert manifest["vocabulary"]["symbols"] == ["a", "b", "\n"]
    assert manifest["layers"]["recurrent"]["variant"] == "NIG"


def test_to_web_refuses_an_existing_folder_unless_forced(tmp_path):
    layer = lstmlab.RNN(2, 3)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("keep")
    with pytest.raises(ValueError, match=r"out exists.*force"):
        to_web(layer, tmp_path / "out")
    assert (tmp_path / "out" / "old.txt").read_text() == "keep"
    to_web(layer, tmp_path / "out", force=True)
    assert not (tmp_path / "out" / "old.txt").exists()
    assert (tmp_path / "out" / "manifest.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left


def test_to_web_refuses_other_kinds_listing_the_exportable_ones(tmp_path):
    with pytest.raises(ValueError, match="exportable: bare layers .*" + ", ".join(MODEL_KINDS)):
        to_web(nn.Linear(2, 3), tmp_path / "x")
    with pytest.raises(ValueError, match="cannot export a 'Sequential' model"):
        to_web(nn.Sequential(lstmlab.LSTM(2, 3)), tmp_path / "y")
    with pytest.raises(TypeError, match="torch module"):
        to_web(42, tmp_path / "z")
    assert not any(tmp_path.iterdir())


def test_to_web_refuses_a_sequence_model_whose_outputs_read_the_inputs(tmp_path):
    from lstmlab.models import SequenceModel

    with pytest.raises(ValueError, match="direct=True.*export it to ONNX"):
        to_web(SequenceModel("lstm:NOAF", 4, 3, hidden_size=5, direct=True), tmp_path / "d")
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node >= 18")
def test_an_export_runs_in_node(tmp_path):
    torch.manual_seed(0)
    layer = lstmlab.LSTM(2, 3, variant="NOG")
    out = to_web(layer, tmp_path / "nog")
    x = torch.randn(4, 2)
    script = (f"import {{ load }} from {json.dumps(str(out / 'lstmlab.js'))};"
              f"const m = await load({json.dumps(str(out / 'manifest.json'))});"
              f"console.log(JSON.stringify((await m.run({json.dumps(x.tolist())})).outputs));")
    result = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True,
                            text=True, timeout=60, check=True)
    with torch.no_grad(), kernels.use("loop"):
        expected = layer(x)[0]
    assert torch.allclose(torch.tensor(json.loads(result.stdout)), expected, atol=1e-5)
