"""Captioning: the captioner's decoder face (greedy = beam width 1, save and load), the
attention penalty, the scores, a tiny captioner that learns, and `lstmlab caption`."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lstmlab.cli import main
from lstmlab.experiments.caption import (
    CaptionConfig,
    CaptionItem,
    CaptionStep,
    caption_images,
    make_vocabulary,
    score_captions,
    training_batches,
)
from lstmlab.models.captioner import Captioner, attention_penalty
from lstmlab.models.decoding import beam_search, greedy
from lstmlab.models.registry import load, save
from lstmlab.tasks.shapes import shapes_scene
from lstmlab.train import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def tiny(attention: str, cell: str = "lstm") -> Captioner:
    torch.manual_seed(0)
    return Captioner(12, cell=cell, attention=attention, embedding=8, hidden=16,
                     attention_size=8, channels=(4, 8), strides=(2, 2), image_size=32)


@pytest.mark.parametrize("attention", ["none", "soft"])
def test_the_decoder_is_told_where_features_are(attention):
    model = tiny(attention).eval()
    state = model.start(torch.rand(2, 3, 32, 32))
    if attention == "soft":  # the last two channels are (x, y) in [-1, 1], row by row
        feats = state["feats"]
        assert feats.shape == (2, 64, 10)
        assert feats[0, :, 8].tolist()[:8] == pytest.approx(
            torch.linspace(-1, 1, 8).tolist())
        assert feats[0, ::8, 9].tolist() == pytest.approx(torch.linspace(-1, 1, 8).tolist())
    else:  # the whole grid, with its (x, y), is embedded at once
        assert model.image_in.in_features == 64 * 10
    with pytest.raises(ValueError, match="32x32"):
        model.start(torch.rand(1, 3, 48, 48))


@pytest.mark.parametrize("attention", ["none", "soft"])
@pytest.mark.parametrize("cell", ["lstm", "lstm:FGR", "gru"])
def test_teacher_forcing_matches_stepping_and_beam_of_one_is_greedy(attention, cell):
    model = tiny(attention, cell).eval()
    images = torch.rand(3, 3, 32, 32)
    tokens = torch.randint(0, 12, (5, 3))
    logits, alphas = model(images, tokens)
    state = model.start(images)
    for t in range(5):
        step_logits, state = model.step(tokens[t], state)
        torch.testing.assert_close(step_logits, logits[t])
    if attention == "soft":
        assert alphas.shape == (5, 3, 64) and torch.allclose(alphas.sum(2), torch.ones(5, 3))
    start = torch.zeros(3, dtype=torch.long)
    with torch.no_grad():
        found = greedy(model, start, model.start(images), max_length=6, end_token=0)
        beams = beam_search(model, start, model.start(images), width=1, max_length=6,
                            end_token=0)
    for row in range(3):
        n = int(found.lengths[row])
        assert beams[row][0].tokens == found.tokens[row, :n].tolist()


def test_save_and_load_give_the_same_captioner(tmp_path):
    model = tiny("soft").eval()
    save(model, tmp_path, {"note": 1})
    again = load(tmp_path, kind="captioner")
    images, tokens = torch.rand(2, 3, 32, 32), torch.randint(0, 12, (4, 2))
    torch.testing.assert_close(again(images, tokens)[0], model(images, tokens)[0])


def test_attention_penalty_by_hand():
    alphas = torch.tensor([[[0.5, 0.5]], [[1.0, 0.0]]])  # (T=2, B=1, L=2)
    mask = torch.tensor([[True], [True]])
    assert float(attention_penalty(alphas, mask)) == pytest.approx(((1 - 1.5) ** 2 + 0.25) / 2)
    mask = torch.tensor([[True], [False]])
    assert float(attention_penalty(alphas, mask)) == pytest.approx(0.25)


def test_scores_of_captions():
    scene = shapes_scene(3)
    item = CaptionItem(scene.image, scene.references, scene.objects)
    perfect = score_captions([scene.references[0]], [item])
    assert perfect.bleu4 == pytest.approx(100) and perfect.exact_match == 1
    assert perfect.truthful == 1
    wrong = score_captions(["a big purple circle"], [item])
    assert wrong.exact_match == 0 and wrong.truthful == 0 and wrong.bleu4 < 50
    unknown = score_captions(["a thing"], [CaptionItem(scene.image, ["a thing"])])
    assert unknown.truthful is None and unknown.exact_match == 1


def test_a_tiny_captioner_learns_a_trivial_scene_set():
    config = CaptionConfig(attention="none", embedding=16, hidden=64, image_size=32,
                           train_scenes=8, max_objects=1, batch=8, lr=1e-2)
    vocab = make_vocabulary()
    items = [CaptionItem(s.image, [s.references[0]], s.objects)
             for s in (shapes_scene(k, 32, 1) for k in range(8))]
    torch.manual_seed(0)
    model = Captioner(len(vocab), "lstm", "none", 16, 64, channels=(8, 16, 16),
                      strides=(2, 2, 2), image_size=32)

    def exact() -> float:
        said = caption_images(model, vocab, [i.image for i in items], beam=2)
        return score_captions(said, items).exact_match

    before = exact()
    Trainer(model, TrainConfig(lr=1e-2, max_steps=150, progress=False)).run(
        CaptionStep(), training_batches(items, config, vocab))
    after = exact()
    assert before == 0 and after >= 0.75, (before, after)


def test_caption_commands(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["caption", "train", "--attention", "soft", "--steps", "2", "--train-scenes",
                 "8", "--valid-scenes", "4", "--batch", "4", "--hidden", "16",
                 "--embedding", "8", "--image-size", "32", "--max-length", "4",
                 "--no-progress", "--out", str(out)]) == 0
    assert main(["caption", "eval", str(out), "--scenes", "5", "--out",
                 str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr().out
    assert "BLEU-4" in printed and "truthful" in printed
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["scores"]["images"] == 5 and len(report["examples"]) == 5
    assert "data:image/png;base64," in (tmp_path / "eval" / "gallery.html").read_text()
    Image.fromarray(np.full((40, 50, 3), 128, np.uint8)).save(tmp_path / "photo.jpg")
    assert main(["caption", "describe", str(out), str(tmp_path / "photo.jpg"),
                 "--show-attention", str(tmp_path / "att.png")]) == 0
    assert (tmp_path / "att.png").stat().st_size > 0


def test_caption_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"garbage")
    ann = tmp_path / "c.json"
    ann.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 9,
                                           "height": 9}],
                               "annotations": [{"image_id": 1, "caption": "a thing"}]}))
    assert main(["caption", "train", str(ann), str(tmp_path / "img"), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after the file's summary line: one line, no traceback
    assert last.startswith("lstmlab caption: ") and "a.png: cannot read the image" in last
    assert "Traceback" not in err
    assert main(["caption", "describe", str(tmp_path / "none"), "x.png"]) == 2
    assert main(["caption", "train", "--attention", "hard"]) == 2
