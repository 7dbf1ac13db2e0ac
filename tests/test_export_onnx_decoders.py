"""ONNX export of the translator, the captioner (a start graph and a one-step graph each) and the
detector: every attention, several encoder and decoder cells, run in onnxruntime and compared
with lstmlab (max abs difference <= 1e-5, over the start state and chained steps); beam search
through ``OnnxDecoder`` finds lstmlab's translations; the detector's stitched detections are
lstmlab's; bad input; `lstmlab export onnx` of a saved translator."""

import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import lstmlab  # noqa: E402
from lstmlab.cli import main  # noqa: E402
from lstmlab.export import to_onnx  # noqa: E402
from lstmlab.export.onnx import compare  # noqa: E402
from lstmlab.export.onnx_decoders import OnnxDecoder, example_inputs, step_path  # noqa: E402
from lstmlab.models.captioner import Captioner  # noqa: E402
from lstmlab.models.decoding import beam_search, greedy  # noqa: E402
from lstmlab.models.detector import Detector  # noqa: E402
from lstmlab.models.seq2seq import Translator  # noqa: E402

TOLERANCE = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def randomise(module, seed=0, scale=0.5):
    """Weights uniform in [-scale, scale] and batch-norm statistics away from (0, 1), so that
    every part of the graph matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) * scale)
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=generator) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
    return module.eval()


def translator(attention="luong", decoder_cell="lstm", cell="lstm", **options):
    size = 12 if attention == "dot" else 10
    return randomise(Translator(11, 13, cell=cell, decoder_cell=decoder_cell, embedding_size=8,
                                hidden_size=6, decoder_size=size, attention=attention,
                                **options))


def captioner(attention="soft", cell="lstm"):
    return randomise(Captioner(9, cell=cell, attention=attention, embedding=6, hidden=10,
                               attention_size=7, channels=(4, 5), strides=(2, 2),
                               image_size=16))


def graph_inputs(path) -> list[str]:
    return [i.name for i in onnx.load(str(path)).graph.input]


def graph_outputs(path) -> list[str]:
    return [o.name for o in onnx.load(str(path)).graph.output]


# --- the translator ---------------------------------------------------------------------------


@pytest.mark.parametrize("attention", ["none", "bahdanau", "luong", "dot"])
@pytest.mark.parametrize("decoder_cell", ["lstm", "lstm:V", "lstm:CIFG", "lstm:NFG", "lstm:FGR"])
def test_translator_matches_lstmlab(tmp_path, attention, decoder_cell):
    model = translator(attention, decoder_cell)
    path = to_onnx(model, tmp_path / "t.onnx")
    assert step_path(path).name == "t.step.onnx" and step_path(path).is_file()
    for batch, seed in ((3, 0), (1, 1), (5, 2)):
        assert compare(model, path, batch=batch, seed=seed) <= TOLERANCE
    step_outputs = graph_outputs(step_path(path))
    assert step_outputs[:3] == ["logits", "next_h", "next_c"]
    assert ("attention" in step_outputs) == (attention != "none")
    assert ("next_gates" in step_outputs) == (decoder_cell == "lstm:FGR")


@pytest.mark.parametrize("cell", ["gru", "rnn:relu", "lstm:NOG"])
def test_translator_encoder_cells_and_layers(tmp_path, cell):
    model = translator("bahdanau", "lstm:NP", cell=cell, layers=2, tie_embeddings=True)
    path = to_onnx(model, tmp_path / "t.onnx")
    assert compare(model, path, batch=4) <= TOLERANCE
    assert graph_inputs(path) == ["source", "lengths"]


def test_the_comparison_catches_wrong_weights(tmp_path):
    model = translator("luong")
    path = to_onnx(model, tmp_path / "t.onnx")
    assert compare(model, path) <= TOLERANCE
    with torch.no_grad():
        model.attend.memory.weight[0, 0] += 0.1  # only the step's attention reads it
    assert compare(model, path) > 1e-3


def test_beam_search_over_onnx_finds_lstmlab_translations(tmp_path):
    model = translator("luong", "lstm:CIFG")
    path = to_onnx(model, tmp_path / "t.onnx")
    inputs = example_inputs(model, batch=4, steps=6, seed=3)
    decoder = OnnxDecoder(path)
    start = torch.full((4,), 1, dtype=torch.long)
    dec, state = model.start(torch.from_numpy(inputs["source"]),
                             torch.from_numpy(inputs["lengths"]))
    with torch.no_grad():
        ours = beam_search(dec, start, state, width=3, max_length=8, n_best=2)
    theirs = beam_search(decoder, start, decoder.start(**inputs), width=3, max_length=8,
                         n_best=2)
    assert all(len(h.tokens) == 8 for row in theirs for h in row)
    assert [[h.tokens for h in row] for row in theirs] == [[h.tokens for h in row]
                                                           for row in ours]
    for row_ours, row_theirs in zip(ours, theirs, strict=True):
        for a, b in zip(row_ours, row_theirs, strict=True):
            assert abs(a.log_prob - b.log_prob) <= 1e-4
    state = decoder.step(start, decoder.start(**inputs))[1]
    weights = state["attention"].numpy()  # (B, S): zero past each source's length
    assert np.allclose(weights.sum(1), 1.0, atol=1e-5)
    assert np.all(weights[np.arange(6)[None, :] >= inputs["lengths"][:, None]] == 0)


# --- the captioner ----------------------------------------------------------------------------


@pytest.mark.parametrize("attention", ["none", "soft"])
@pytest.mark.parametrize("cell", ["lstm", "lstm:FGR", "gru", "rnn"])
def test_captioner_matches_lstmlab(tmp_path, attention, cell):
    model = captioner(attention, cell)
    path = to_onnx(model, tmp_path / "c.onnx")
    for batch, seed in ((2, 0), (1, 1)):
        assert compare(model, path, batch=batch, seed=seed) <= TOLERANCE
    assert graph_inputs(path) == ["images"]
    assert ("attention" in graph_outputs(step_path(path))) == (attention == "soft")


def test_greedy_captions_over_onnx_equal_lstmlab(tmp_path):
    model = captioner("soft", "lstm:CIFG")
    path = to_onnx(model, tmp_path / "c.onnx")
    images = example_inputs(model, batch=3, seed=4)["images"]
    start = torch.zeros(3, dtype=torch.long)
    with torch.no_grad():
        ours = greedy(model, start, model.start(torch.from_numpy(images)), max_length=6)
    decoder = OnnxDecoder(path)
    theirs = greedy(decoder, start, decoder.start(images=images), max_length=6)
    assert torch.equal(ours.tokens, theirs.tokens)


def test_images_of_another_size_are_refused(tmp_path):
    model = captioner("none", "gru")
    decoder = OnnxDecoder(to_onnx(model, tmp_path / "c.onnx"))
    with pytest.raises(Exception, match="images"):
        decoder.start(images=np.zeros((1, 3, 20, 20), np.float32))


# --- the detector -----------------------------------------------------------------------------


@pytest.mark.parametrize("head,cell", [("lstm", "lstm"), ("lstm", "lstm:V"), ("lstm", "gru"),
                                       ("single", "lstm")])
def test_detector_matches_lstmlab(tmp_path, head, cell):
    model = randomise(Detector(head=head, cell=cell, max_boxes=3, hidden=8, channels=(4, 5),
                               strides=(2, 2), image_size=16), scale=0.4)
    path = to_onnx(model, tmp_path / "d.onnx")
    assert compare(model, path, batch=2) <= TOLERANCE
    assert not step_path(path).exists()
    # the stitched (or NMS) detections from the graph's boxes and scores are lstmlab's
    images = example_inputs(model, batch=2, seed=5)["images"]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, boxes, scores = sess.run(None, {"images": images})
    expected = model.detect(torch.from_numpy(images), min_score=0.0)
    from lstmlab.models.detector import nms, stitch

    for b, (want_boxes, want_scores) in enumerate(expected):
        if head == "lstm":
            got_boxes, got_scores = stitch(boxes[b], scores[b], model.stitch_iou, 0.0)
        else:
            flat_b, flat_s = boxes[b].reshape(-1, 4), scores[b].reshape(-1)
            keep = nms(flat_b, flat_s, model.nms_iou)
            got_boxes, got_scores = flat_b[keep], flat_s[keep]
        assert len(want_scores) > 0
        np.testing.assert_allclose(got_boxes, want_boxes, atol=1e-4)
        np.testing.assert_allclose(got_scores, want_scores, atol=1e-5)


# --- bad input and the command line -----------------------------------------------------------


def test_refusals(tmp_path):
    model = translator("none")
    path = to_onnx(model, tmp_path / "t.onnx")
    path.unlink()
    with pytest.raises(ValueError, match=r"t.step.onnx \(the step graph of t.onnx\) exists"):
        to_onnx(model, tmp_path / "t.onnx")
    assert to_onnx(model, tmp_path / "t.onnx", force=True) == path
    with pytest.raises(ValueError, match="needs its lengths"):
        to_onnx(model, tmp_path / "u.onnx", lengths=False)
    with pytest.raises(ValueError, match="takes no lengths"):
        to_onnx(captioner(), tmp_path / "c.onnx", lengths=True)
    with pytest.raises(ValueError, match="not the start graph .* 'step'"):
        OnnxDecoder(step_path(path))
    with pytest.raises(ValueError, match="not the start graph .* None"):
        OnnxDecoder(to_onnx(lstmlab.LSTM(2, 3), tmp_path / "lstm.onnx"))
    with pytest.raises(ValueError, match="extra must be plain JSON data to go into v.onnx"):
        to_onnx(model, tmp_path / "v.onnx", extra={"bad": object()})
    assert not (tmp_path / "v.onnx").exists()


def test_cli_export_translator(tmp_path, capsys):
    model = translator("bahdanau")
    vocabularies = {"source_vocabulary": [f"s{i}" for i in range(11)],
                    "target_vocabulary": [f"t{i}" for i in range(13)]}
    lstmlab.save(model, tmp_path / "run", extra=vocabularies)
    out = tmp_path / "t.onnx"
    assert main(["export", "onnx", str(tmp_path / "run"), str(out), "--check"]) == 0
    printed = capsys.readouterr().out
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["lstmlab.extra"]) == vocabularies  # a runtime can map ids to words
    assert "lstmlab.extra: the saved model's source_vocabulary, target_vocabulary" in printed
    assert "translator" in printed and "t.step.onnx: one decoder step" in printed
    assert "inputs: source (S, B) int64; lengths (B,) int64" in printed
    assert "inputs: tokens (B,) int64; h (B, 10) float32; c (B, 10) float32; " \
           "feed (B, 10) float32; memory (B, S, 12) float32" in printed
    assert float(printed.rsplit("difference", 1)[1]) <= TOLERANCE
    assert main(["export", "onnx", str(tmp_path / "run"), str(out)]) == 2
    assert "exists; pass force=True (--force)" in capsys.readouterr().err
