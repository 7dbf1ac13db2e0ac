"""Generated scenes (shapes with captions, crowds with boxes), the caption grammar's parser and
truth check, COCO-style reading and the image batches."""

import json

import numpy as np
import pytest
from PIL import Image

from lstmlab.metrics import box_iou
from lstmlab.tasks.crowds import HEAD_HIDDEN, MAX_OVERLAP, crowd_scene
from lstmlab.tasks.files import DataError
from lstmlab.tasks.images import caption_batch, detection_batch, load_image, read_coco
from lstmlab.tasks.shapes import (
    ShapeObject,
    canonical_caption,
    parse_caption,
    shapes_scene,
    truthful,
)

RED_CIRCLE = ShapeObject("circle", "red", "big", 15.0, 30.0, 12.0)
BLUE_SQUARE = ShapeObject("square", "blue", "small", 45.0, 10.0, 6.0)
SCENE = (RED_CIRCLE, BLUE_SQUARE)


def test_shapes_scenes_are_deterministic_by_seed():
    a, b, c = shapes_scene(11), shapes_scene(11), shapes_scene(12)
    assert np.array_equal(a.image, b.image) and a.references == b.references
    assert a.objects == b.objects
    assert not np.array_equal(a.image, c.image)
    assert a.image.shape == (64, 64, 3) and a.image.dtype == np.uint8


def test_every_reference_is_true_of_its_scene():
    for seed in range(300):
        scene = shapes_scene(seed)
        assert 1 <= len(scene.objects) <= 4 and len(scene.references) == 5
        for caption in scene.references:
            assert truthful(caption, scene.objects), (seed, caption)


def test_a_drawn_object_is_where_and_what_the_scene_says():
    for seed in range(20):
        scene = shapes_scene(seed)
        for o in scene.objects:  # the centre pixel has the object's colour: red has R high
            r, g, b = scene.image[round(o.y), round(o.x)].astype(int)
            dominant = {"red": r > 150 and g < 110 and b < 110,
                        "green": g > 120 and r < 100 and b < 120,
                        "blue": b > 160 and r < 110 and g < 140,
                        "yellow": r > 180 and g > 150 and b < 100}
            assert dominant[o.colour], (seed, o, (r, g, b))


def test_canonical_caption_of_a_hand_made_scene():
    assert canonical_caption((RED_CIRCLE,)) == "a big red circle"
    assert canonical_caption(SCENE) == "a big red circle left of a small blue square"
    above = ShapeObject("triangle", "green", "small", 17.0, 5.0, 5.0)
    assert canonical_caption((RED_CIRCLE, above)) == ("a small green triangle above a big red "
                                                      "circle")


@pytest.mark.parametrize("caption, expected", [
    ("a big red circle left of a small blue square", True),
    ("a small blue square right of a circle", True),
    ("a blue square above a red circle", True),
    ("a circle bigger than a square", True),
    ("a red circle and a blue square", True),
    ("a square", True),
    ("a red square", False),                          # wrong colour
    ("a small red circle", False),                    # wrong size
    ("a red circle right of a blue square", False),   # wrong relation
    ("a red circle below a blue square", True),
    ("a red circle and a red circle", False),         # two red circles claimed, one exists
    ("a red circle left of a red circle", False),     # an object is not left of itself
    ("a circle and a square and a triangle", False),  # more objects than the scene has
    ("red circle", False),                            # not in the grammar
    ("a red circle left", False),
    ("a red circle and", False),
    ("", False),
])
def test_truthfulness_of_hand_checked_captions(caption, expected):
    assert truthful(caption, SCENE) is expected


def test_the_parser_reads_mentions_and_relations():
    claims = parse_caption("a big red circle left of a square and a blue triangle")
    assert [(m.shape, m.colour, m.size) for m in claims.mentions] == [
        ("circle", "red", "big"), ("square", None, None), ("triangle", "blue", None)]
    assert claims.relations == ((0, "left of", 1),)
    assert parse_caption("a circle a square") is None


def test_crowds_are_deterministic_with_boxes_inside_and_capped_overlap():
    a, b = crowd_scene(5), crowd_scene(5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes)
    counts = []
    for seed in range(60):
        scene = crowd_scene(seed)
        counts.append(scene.count)
        boxes = scene.boxes
        assert boxes.dtype == np.float32 and boxes.shape[1:] == (4,)
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 128).all()
        assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= 128).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert scene.max_overlap <= MAX_OVERLAP + 1e-6
    assert min(counts) <= 3 and max(counts) >= 16  # from a few to crowds


def test_crowds_hold_people_overlapping_beyond_the_nms_threshold_with_visible_heads():
    heavy = people = 0
    for seed in range(120):
        boxes = crowd_scene(seed).boxes
        if len(boxes) < 16:
            continue
        iou = box_iou(boxes, boxes)
        np.fill_diagonal(iou, 0.0)
        people += len(boxes)
        heavy += int((iou.max(1) >= 0.5).sum())
        # the boxes are sorted back to front: a head's square (top of the box, half its width
        # across) is hidden at most HEAD_HIDDEN by the head and shoulders of anyone in front
        for i, j in zip(*np.nonzero(iou > 0), strict=True):
            if boxes[j, 3] <= boxes[i, 3]:
                continue
            x0, y0, x1, _ = boxes[i]
            r = 0.25 * (x1 - x0)
            head = np.array([[(x0 + x1) / 2 - r, y0, (x0 + x1) / 2 + r, y0 + 2 * r]])
            fx0, fy0, fx1, fy1 = boxes[j]
            fr = 0.25 * (fx1 - fx0)
            front = np.array([[(fx0 + fx1) / 2 - fr, fy0, (fx0 + fx1) / 2 + fr, fy0 + 2 * fr],
                              [fx0, fy0 + 2 * fr - 0.1 * (fy1 - fy0), fx1, fy1]])
            inter = np.zeros(2)  # the areas of the head under each part of the one in front
            for k in range(2):
                w = max(0.0, min(head[0, 2], front[k, 2]) - max(head[0, 0], front[k, 0]))
                h = max(0.0, min(head[0, 3], front[k, 3]) - max(head[0, 1], front[k, 1]))
                inter[k] = w * h
            assert min(1.0, inter.sum() / (4 * r * r)) <= HEAD_HIDDEN + 1e-4
    assert people > 300 and 0.15 < heavy / people < 0.5  # NMS at IoU 0.5 must lose people


def test_a_person_is_drawn_inside_its_box():
    scene = crowd_scene(1, max_people=1)
    x0, y0, x1, y1 = scene.boxes[0]
    background = crowd_scene(1, max_people=1)  # same seed: same picture
    assert np.array_equal(scene.image, background.image)
    inside = scene.image[int(y0) + 2:int(y1) - 1, int(x0) + 2:int(x1) - 1].reshape(-1, 3)
    assert inside.std(0).max() > 10  # head, hair and clothes: not one flat tone


# --- COCO-style files -------------------------------------------------------------------------


def write_coco(tmp_path, annotations, images=None, files=("a.png", "b.png")):
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    for name in files:
        Image.new("RGB", (40, 20), (200, 10, 10)).save(folder / name)
    images = images if images is not None else [
        {"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path, folder


def test_reading_captions_and_boxes(tmp_path):
    path, folder = write_coco(tmp_path, [
        {"id": 7, "image_id": 1, "caption": "a red thing"},
        {"id": 8, "image_id": 1, "bbox": [2, 3, 10, 5]}])
    data = read_coco(path, folder, "captions")
    assert [i.id for i in data.images] == [1] and data.skipped == 1
    assert data.images[0].captions == ["a red thing"]
    boxes = read_coco(path, folder, "boxes")
    assert [i.id for i in boxes.images] == [1, 2]  # an image nobody is in is an example too
    assert boxes.images[0].boxes == [[2.0, 3.0, 12.0, 8.0]]
    pixels, scale = load_image(data.images[0].path, 16)
    assert pixels.shape == (16, 16, 3) and scale == (16 / 40, 16 / 20)


@pytest.mark.parametrize("annotations, images, message", [
    ([{"id": 3, "image_id": 9, "caption": "x"}], None, "annotation 3 refers to image id 9"),
    ([{"id": 4, "image_id": 1, "caption": "  "}], None, "annotation 4 (image id 1) has an "
                                                        "empty caption"),
    ([{"id": 5, "image_id": 2, "bbox": [30, 5, 20, 5]}], None, "lies outside the 40x20 image"),
    ([{"id": 6, "image_id": 2, "bbox": [3, 5, 0, 5]}], None, "has no area"),
    ([], [{"id": 1, "file_name": "missing.png"}], "image id 1: file 'missing.png' is not in"),
])
def test_bad_coco_input_is_a_clear_error(tmp_path, annotations, images, message):
    path, folder = write_coco(tmp_path, annotations, images)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_coco(path, folder, "captions")


def test_an_unreadable_image_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    with pytest.raises(DataError, match="bad.png: cannot read the image"):
        load_image(bad, 32)
    (tmp_path / "ann.json").write_text("{not json")
    with pytest.raises(DataError, match="ann.json: not a JSON file"):
        read_coco(tmp_path / "ann.json", tmp_path)


def test_batches_are_time_major():
    images = [np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)]
    batch = caption_batch(images, [[3, 4, 5], [6]], eos=0)
    assert batch.inputs.T.tolist() == [[0, 3, 4, 5], [0, 6, 0, 0]]
    assert batch.targets.T.tolist() == [[3, 4, 5, 0], [6, 0, 0, 0]]
    assert batch.lengths.tolist() == [4, 2] and batch.mask.T.tolist()[1] == [1, 1, 0, 0]
    assert batch.extras["images"].shape == (2, 3, 8, 8) and batch.extras["images"].max() == 1
    boxes = [np.array([[1, 1, 4, 4]], np.float32), np.zeros((0, 4), np.float32)]
    batch = detection_batch(images, boxes)
    assert batch.inputs.shape == (1, 2, 3, 8, 8) and batch.batch_size == 2
    assert batch.extras["counts"].tolist() == [1, 0]
    assert batch.extras["boxes"][0, 0].tolist() == [1, 1, 4, 4]
