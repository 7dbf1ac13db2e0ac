"""Detection: box overlap and AP checked by hand, ReInspect's Hungarian matching against brute
force, stitching and NMS, the detector's targets, a tiny detector that learns, and `lstmlab
detect`."""

import itertools
import json

import numpy as np
import pytest
import torch
from PIL import Image

from lstmlab.cli import main
from lstmlab.experiments.detect import buckets
from lstmlab.metrics import average_precision, box_iou
from lstmlab.models.detector import Detector, hungarian_match, match_cost, nms, stitch
from lstmlab.models.registry import load_saved
from lstmlab.tasks.crowds import CrowdScene

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def test_box_iou_by_hand():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 5, 9]])
    assert box_iou(a, b) == pytest.approx(np.array([[1 / 7, 1, 0], [0, 0.25, 0]]))


def test_average_precision_by_hand():
    truths = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([[0, 0, 10, 10]])]
    detections = [
        (np.array([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]]),
         np.array([0.9, 0.8, 0.7])),                       # hit, duplicate (miss), miss
        (np.array([[1, 0, 10, 10]]), np.array([0.6])),    # hit (IoU 0.9)
    ]
    curve = average_precision(detections, truths)
    # by score: hit, miss, miss, hit -> precision 1, 1/2, 1/3, 1/2; recall 1/3, 1/3, 1/3, 2/3
    assert curve.precision == pytest.approx([1, 0.5, 1 / 3, 0.5])
    assert curve.recall == pytest.approx([1 / 3, 1 / 3, 1 / 3, 2 / 3])
    # all-point interpolation: 1/3 at precision 1, then 1/3 at max precision after it (0.5)
    assert curve.ap == pytest.approx(1 / 3 * 1 + 1 / 3 * 0.5)
    assert average_precision([(np.zeros((0, 4)), np.zeros(0))], [np.zeros((0, 4))]).ap is None


def brute_force(cost):
    k, g = cost.shape
    return min(sum(cost[p[j], j] for j in range(g)) for p in itertools.permutations(range(k), g))


def test_hungarian_matching_against_brute_force():
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        k = int(torch.randint(1, 5, (1,), generator=generator))
        g = int(torch.randint(1, k + 1, (1,), generator=generator))
        pred = torch.rand(k, 4, generator=generator) * 2
        true = torch.rand(g, 4, generator=generator) * 2 + 0.2
        rows, cols = hungarian_match(pred, true)
        cost = match_cost(pred.double(), true.double()).numpy()
        assert sorted(cols.tolist()) == list(range(g)) and len(set(rows.tolist())) == g
        assert cost[rows, cols].sum() == pytest.approx(brute_force(cost))


def test_the_cost_is_lexicographic_miss_then_rank_then_distance():
    true = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    # prediction 0 misses (centre outside) but is close in L1; prediction 2 hits, far in size
    pred = torch.tensor([[0.6, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.1, 0.0, 9.0, 9.0]])
    assert hungarian_match(pred, true)[0].tolist() == [1]  # a hit first, then the rank
    assert hungarian_match(pred[[0, 2]], true)[0].tolist() == [1]  # a far hit beats a miss
    two = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    assert hungarian_match(two, true)[0].tolist() == [0]  # equal boxes: the earlier one


def test_nms_drops_an_overlapping_person_and_stitching_keeps_it():
    boxes = np.array([[0, 0, 10, 20], [3, 0, 13, 20], [40, 40, 50, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]  # IoU of the first two is 0.54
    grid_boxes = np.zeros((2, 2, 2, 4), np.float32)
    grid_scores = np.zeros((2, 2, 2), np.float32)
    grid_boxes[0, 0, :2], grid_scores[0, 0, :2] = boxes[:2], scores[:2]  # one cell, two people
    grid_boxes[0, 1, 0], grid_scores[0, 1, 0] = boxes[1] + 0.5, 0.95     # a neighbour's copy
    grid_boxes[1, 1, 0], grid_scores[1, 1, 0] = boxes[2], 0.7
    kept, kept_scores = stitch(grid_boxes, grid_scores, iou=0.5, min_score=0.1)
    assert len(kept) == 3
    assert kept.tolist() == boxes.tolist()
    assert kept_scores.tolist() == pytest.approx([0.9, 0.95, 0.7])  # the copy's score kept


def test_cell_targets_assign_boxes_to_their_cells():
    model = Detector(head="lstm", max_boxes=3, hidden=8, channels=(4, 4), strides=(2, 2),
                     image_size=16, region=0.25)
    boxes = torch.tensor([[[1.0, 1.0, 3.0, 3.0], [1.5, 0.0, 6.5, 4.0], [0, 0, 0, 0]]])
    targets, number, dropped = model.cell_targets(boxes, torch.tensor([2]), 4, 4)
    # centres (2, 2) and (4, 2) in pixels, stride 4: the first is the centre of cell (0, 0);
    # the second lies on the border of cells (0, 0) and (0, 1): the region gives it to both
    assert number[0].tolist() == [[2, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert targets[0, 0, 0, :2].flatten().tolist() == pytest.approx([0, 0, 0.5, 0.5,
                                                                     0.5, 0, 1.25, 1.0])
    assert targets[0, 0, 1, 0].tolist() == pytest.approx([-0.5, 0.0, 1.25, 1.0])
    assert dropped == 0
    single = Detector(head="single", hidden=8, channels=(4, 4), strides=(2, 2), image_size=16)
    _, number, dropped = single.cell_targets(boxes, torch.tensor([2]), 4, 4)
    assert number[0].sum() == 2 and dropped == 0


def toy_scene(seed: int) -> CrowdScene:
    """32x32: one or two bright squares (10 px) on black - a trivial detection set."""
    rng = np.random.default_rng(seed)
    image = np.zeros((32, 32, 3), np.uint8)
    boxes = []
    for _ in range(int(rng.integers(1, 3))):
        x, y = (int(v) for v in rng.integers(0, 22, 2))
        image[y:y + 10, x:x + 10] = 255
        boxes.append([x, y, x + 10, y + 10])
    return CrowdScene(image, np.array(boxes, np.float32), seed)


def test_a_tiny_detector_learns_a_trivial_scene_set():
    from lstmlab.experiments.detect import DetectStep, detect_images
    from lstmlab.tasks.images import detection_batch
    from lstmlab.train import TrainConfig, Trainer

    torch.manual_seed(0)
    train = [toy_scene(s) for s in range(64)]
    test = [toy_scene(1000 + s) for s in range(30)]
    model = Detector(head="lstm", max_boxes=2, hidden=32, channels=(16, 32, 32),
                     strides=(2, 2, 2), image_size=32, region=0.5)

    def ap() -> float:
        found = detect_images(model, [s.image for s in test])
        return average_precision(found, [s.boxes for s in test]).ap

    before = ap()

    def batches():
        rng = np.random.default_rng(0)
        while True:
            chosen = [train[i] for i in rng.choice(len(train), 16, replace=False)]
            yield detection_batch([s.image for s in chosen], [s.boxes for s in chosen])

    Trainer(model, TrainConfig(lr=1e-2, max_steps=150, progress=False)).run(
        DetectStep(1.0), batches())
    after = ap()
    assert before < 0.2 and after > 0.6, (before, after)


def test_detect_commands_and_saved_models(tmp_path, capsys):
    options = ["--steps", "2", "--train-scenes", "8", "--valid-scenes", "4", "--batch", "4",
               "--image-size", "64", "--max-people", "6", "--no-progress"]
    for model in ("lstm", "nms"):
        assert main(["detect", "train", "--model", model, "--out", str(tmp_path / model),
                     "--max-boxes", "2", "--hidden", "8", *options]) == 0
    saved = load_saved(tmp_path / "lstm")
    assert saved.kind == "detector" and saved.config["head"] == "lstm"
    assert main(["detect", "eval", str(tmp_path / "lstm"), "--baseline", str(tmp_path / "nms"),
                 "--scenes", "6", "--out", str(tmp_path / "eval")]) == 0
    out = capsys.readouterr().out
    assert "ReInspect (lstm)" in out and "NMS baseline" in out and "claim:" in out
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert set(report["models"]) == {"ReInspect (lstm)", "NMS baseline"}
    assert (tmp_path / "eval" / "pr_curves.png").stat().st_size > 0
    assert "<img src=\"data:image/png;base64," in (tmp_path / "eval" / "gallery.html").read_text()
    Image.new("RGB", (50, 40), (90, 90, 90)).save(tmp_path / "photo.png")
    assert main(["detect", "show", str(tmp_path / "lstm"), str(tmp_path / "photo.png"),
                 "--baseline", str(tmp_path / "nms"), "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size == (192, 192)


def test_detect_bad_input_is_one_line(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (20, 20)).save(folder / "a.png")
    ann = tmp_path / "boxes.json"
    ann.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png"}],
                               "annotations": [{"id": 2, "image_id": 1, "bbox": [15, 15, 9, 9]}]}))
    assert main(["detect", "train", str(ann), str(folder), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "annotation 2 (image id 1): bbox" in err and "outside" in err
    assert main(["detect", "train", str(ann)]) == 2
    assert "AND its image folder" in capsys.readouterr().err
    assert main(["detect", "eval", str(tmp_path / "nowhere")]) == 2


def test_buckets_by_density_and_overlap_are_per_person():
    lonely = np.array([[0, 0, 10, 10]], np.float32)
    # 16 people: a pair at IoU 0.67 (the second shifted by 2 px), the rest far apart
    crowd = np.array([[0, 0, 10, 10], [2, 0, 12, 10]]
                     + [[20 * i, 50, 20 * i + 10, 60] for i in range(14)], np.float32)
    groups = buckets([lonely, crowd])
    assert groups["people 1-5"].images == [0] and groups["people 16+"].images == [1]
    assert groups["people 16+"].people == 16 and groups["all"].people == 17
    assert groups["overlap <0.2"].people == 15
    hardest = groups["16+ people, overlap >= 0.5"]
    assert hardest.images == [1] and hardest.counted[0].tolist() == [True, True] + [False] * 14


def test_bucket_ap_ignores_hits_outside_the_bucket():
    truths = [np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], np.float32)]
    counted = [np.array([True, True, False])]
    # the person outside the bucket found first; a false alarm on the background; one of
    # the pair; a duplicate of the far person (nearest to a person outside the bucket)
    found = [(np.array([[50, 50, 60, 60], [90, 90, 99, 99], [0, 0, 10, 10], [51, 50, 61, 60]],
                       np.float32), np.array([0.9, 0.8, 0.7, 0.6], np.float32))]
    everyone = average_precision(found, truths)
    some = average_precision(found, truths, counted=counted)
    assert some.truths == 2 and some.detections == 2  # the far hit and its duplicate left out
    assert some.precision == [0.0, 0.5] and some.recall == [0.0, 0.5]
    assert abs(some.ap - 0.25) < 1e-9
    assert everyone.truths == 3 and abs(everyone.ap - (1 / 3 + 1 / 3 * 2 / 3)) < 1e-9
