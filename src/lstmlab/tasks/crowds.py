"""Crowd scenes: people-like figures (head and shoulders) on cluttered backgrounds, from a few to
dozens per image, standing alone or in tight groups where their boxes overlap heavily, and their
boxes - the data of ReInspect-style people detection, generated, deterministic by seed.

    >>> scene = crowd_scene(3)
    >>> scene.image.shape                # (128, 128, 3) uint8
    >>> scene.boxes                      # (N, 4) float32 [x0, y0, x1, y1] pixels, one a person
    >>> scene.max_overlap                # the largest IoU between two of its true boxes

The distribution, drawn from the seed:

- the number of people wanted, 1 to ``max_people``: uniform on a square-root scale (few people
  often, crowds of 16+ in about a quarter of the scenes);
- the scene's togetherness t, uniform in [0, 1): each person after the first stands, with
  probability t, in a group: next to a person already placed (the anchor), shifted sideways by
  0.15 to 0.6 of the anchor's width and in depth by up to 0.3 of its height either way, so
  the two boxes overlap (IoU often 0.3 to 0.6) - the case where non-maximum suppression at IoU
  0.5 deletes a true person; otherwise anywhere in the picture;
- a place is kept when the person's box has IoU at most ``max_overlap`` with every box placed so
  far and every head stays visible: at most ``HEAD_HIDDEN`` of a head's square may lie under
  the head or the shoulders of a person standing in front of it (a person nobody could see is
  not a person to detect); a person that finds no such place in 30 tries is left out.

Bigger people stand lower in the picture (a camera looking down on a crowd) and are drawn after
the ones behind them, so they hide them in part. A person's box holds the head and the
shoulders; poses tilt the head, sizes and colours vary. The background is a random tone with
rectangles, ellipses, lines and head-sized blobs of clutter. Over seeds 0 .. 1,999 about a third
of the people in crowds of 16+ have another person's box at IoU >= 0.4 (see ``tests``).

Seed ranges as for the shapes scenes (``SEEDS``): training 0 .. 999,999,999, validation
1,000,000,000 and up, evaluation 2,000,000,000 and up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from lstmlab.metrics import box_iou

IMAGE_SIZE = 128
MAX_PEOPLE = 30
MAX_OVERLAP = 0.8  # two boxes closer than this are one person to any detector
HEAD_HIDDEN = 0.6  # the most of a head's square that people in front may cover
TRIES = 30
HEIGHTS = (16.0, 32.0)  # box height in pixels at the top and at the bottom of the image
SEEDS = {"train": 0, "valid": 1_000_000_000, "eval": 2_000_000_000}
SKIN = ((241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172))
HAIR = ((30, 20, 10), (80, 50, 20), (150, 110, 60), (200, 170, 90), (60, 60, 60))


@dataclass
class CrowdScene:
    """A scene: the image (H, W, 3) uint8, the people's boxes (N, 4) float32 [x0, y0, x1, y1]
    in pixels (N may be 0 for loaded data), and its seed (-1 for a loaded image)."""

    image: np.ndarray
    boxes: np.ndarray
    seed: int = -1

    @property
    def count(self) -> int:
        return len(self.boxes)

    @property
    def max_overlap(self) -> float:
        """The largest IoU between two true boxes (0 with fewer than two)."""
        if len(self.boxes) < 2:
            return 0.0
        iou = box_iou(self.boxes, self.boxes)
        np.fill_diagonal(iou, 0.0)
        return float(iou.max())


def _count(rng: random.Random, most: int) -> int:
    """Few people often, crowds sometimes: uniform over 1..most on a square-root scale."""
    return max(1, min(most, round((rng.random() * most ** 0.5) ** 2 + 0.5)))


def _background(rng: random.Random, size: int) -> Image.Image:
    tone = tuple(rng.randint(60, 200) for _ in range(3))
    image = Image.new("RGB", (size, size), tone)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(4, 12)):
        colour = tuple(max(0, min(255, c + rng.randint(-70, 70))) for c in tone)
        x0, y0 = rng.uniform(-10, size), rng.uniform(-10, size)
        x1, y1 = x0 + rng.uniform(4, size / 2), y0 + rng.uniform(4, size / 2)
        kind = rng.random()
        if kind < 0.4:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        elif kind < 0.7:
            draw.line((x0, y0, x1, y1), fill=colour, width=rng.randint(1, 4))
        elif kind < 0.85:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:  # a head-sized blob: a distractor the detector must learn to ignore
            r = rng.uniform(3, 7)
            draw.ellipse((x0, y0, x0 + 2 * r, y0 + 2 * r), fill=rng.choice(SKIN))
    return image


def _height(bottom: float, size: int, rng: random.Random) -> float:
    """A box height in pixels for a person whose feet are at ``bottom`` (fraction of the
    image): bigger lower in the picture, +-15%."""
    scale = size / IMAGE_SIZE
    return (HEIGHTS[0] + (HEIGHTS[1] - HEIGHTS[0]) * bottom) * scale * rng.uniform(0.85, 1.15)


def _person_box(rng: random.Random, size: int, anchor: np.ndarray | None = None) -> np.ndarray:
    """A box [x0, y0, x1, y1] inside the image whose height grows with its depth (y): anywhere,
    or (``anchor``) beside the anchor's box, shifted sideways by 0.15 to 0.6 of its width and
    in depth by up to 0.3 of its height."""
    if anchor is None:
        bottom = rng.uniform(0.3, 1.0)  # where the feet would be, as a fraction of the image
        height = _height(bottom, size, rng)
        width = height * rng.uniform(0.75, 0.95)
        x0 = rng.uniform(0, size - width)
    else:
        a_width, a_height = anchor[2] - anchor[0], anchor[3] - anchor[1]
        bottom = (anchor[3] + rng.uniform(-0.3, 0.3) * a_height) / size
        bottom = min(1.0, max(0.3, bottom))
        height = _height(bottom, size, rng)
        width = height * rng.uniform(0.75, 0.95)
        centre = (anchor[0] + anchor[2]) / 2 + rng.choice((-1, 1)) * rng.uniform(0.15, 0.6) \
            * a_width
        x0 = min(max(0.0, centre - width / 2), size - width)
    y1 = min(size, max(height, bottom * size))
    return np.array([x0, y1 - height, x0 + width, y1], dtype=np.float32)


def _heads_and_shoulders(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) -> the squares of their heads and the boxes of their shoulders (N, 4),
    as ``draw_person`` draws them (a head about half the box's width across, on top)."""
    x0, y0, x1, y1 = boxes.T
    w, h = x1 - x0, y1 - y0
    cx, r = (x0 + x1) / 2, 0.25 * np.minimum(w, h)
    heads = np.stack([cx - r, y0, cx + r, y0 + 2 * r], 1)
    shoulders = np.stack([x0, y0 + 2 * r - 0.1 * h, x1, y1], 1)
    return heads, shoulders


def _covered(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """The fraction of each box of ``inner`` (N, 4) that lies in the matching box of
    ``outer`` (N, 4)."""
    w = np.clip(np.minimum(inner[:, 2], outer[:, 2]) - np.maximum(inner[:, 0], outer[:, 0]), 0,
                None)
    h = np.clip(np.minimum(inner[:, 3], outer[:, 3]) - np.maximum(inner[:, 1], outer[:, 1]), 0,
                None)
    return w * h / ((inner[:, 2] - inner[:, 0]) * (inner[:, 3] - inner[:, 1]))


def _fits(box: np.ndarray, placed: np.ndarray, cap: float) -> bool:
    """Whether ``box`` may join the people ``placed`` (M, 4): IoU at most ``cap`` with each,
    and every head of the two in a pair, the one behind (higher feet) hidden at most
    ``HEAD_HIDDEN`` by the head and shoulders of the one in front."""
    if not len(placed):
        return True
    if box_iou(box[None], placed)[0].max() > cap:
        return False
    near = placed[(placed[:, 0] < box[2]) & (placed[:, 2] > box[0])
                  & (placed[:, 1] < box[3]) & (placed[:, 3] > box[1])]
    if not len(near):
        return True
    mine = np.repeat(box[None], len(near), 0)
    behind_is_mine = near[:, 3] >= box[3]
    behind = np.where(behind_is_mine[:, None], mine, near)
    front = np.where(behind_is_mine[:, None], near, mine)
    head, _ = _heads_and_shoulders(behind)
    front_head, front_shoulders = _heads_and_shoulders(front)
    hidden = np.minimum(1.0, _covered(head, front_head) + _covered(head, front_shoulders))
    return bool((hidden <= HEAD_HIDDEN).all())


def draw_person(draw: ImageDraw.ImageDraw, box: np.ndarray, rng: random.Random) -> None:
    """Head and shoulders filling ``box``: a torso (rounded, clothing colour) under a head
    (skin, hair on top) that may lean to either side."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    head_r = min(w, h) * rng.uniform(0.22, 0.27)
    lean = rng.uniform(-0.12, 0.12) * w
    cx = (x0 + x1) / 2 + lean
    cx = min(max(cx, x0 + head_r), x1 - head_r)
    head_top = y0
    neck = head_top + 2 * head_r
    clothes = tuple(rng.randint(0, 255) for _ in range(3))
    # shoulders: a rounded block from just under the chin to the bottom of the box
    draw.rounded_rectangle((x0, neck - 0.1 * h, x1, y1 + 0.3 * h), radius=0.3 * w, fill=clothes)
    draw.ellipse((cx - head_r, head_top, cx + head_r, neck), fill=rng.choice(SKIN))
    draw.chord((cx - head_r, head_top, cx + head_r, neck), 180, 360, fill=rng.choice(HAIR))


def crowd_scene(seed: int, size: int = IMAGE_SIZE, max_people: int = MAX_PEOPLE,
                max_overlap: float = MAX_OVERLAP) -> CrowdScene:
    """The crowd of ``seed`` (see the module): its image and its people's boxes."""
    if size < 32:
        raise ValueError(f"a crowd image is at least 32 pixels wide, got {size}")
    if max_people < 1:
        raise ValueError(f"max_people must be at least 1, got {max_people}")
    if not 0 <= max_overlap < 1:
        raise ValueError(f"max_overlap must be in [0, 1), got {max_overlap}")
    rng = random.Random(seed)
    wanted, together = _count(rng, max_people), rng.random()
    placed = np.zeros((0, 4), np.float32)
    for _ in range(wanted):
        for _ in range(TRIES):
            anchor = (placed[rng.randrange(len(placed))]
                      if len(placed) and rng.random() < together else None)
            box = _person_box(rng, size, anchor)
            if _fits(box, placed, max_overlap):
                placed = np.concatenate([placed, box[None]])
                break
    boxes = list(placed)
    image = _background(rng, size)
    draw = ImageDraw.Draw(image)
    order = sorted(range(len(boxes)), key=lambda i: boxes[i][3])  # the ones behind first
    for i in order:
        draw_person(draw, boxes[i], rng)
    pixels = np.asarray(image, dtype=np.int16)
    noise = np.random.default_rng(rng.getrandbits(32)).integers(-8, 9, pixels.shape)
    image_array = np.clip(pixels + noise, 0, 255).astype(np.uint8)
    stacked = np.stack([boxes[i] for i in order]) if boxes else np.zeros((0, 4), np.float32)
    return CrowdScene(image_array, stacked.astype(np.float32), seed)
