"""Crowd scenes: people-like figures (head and shoulders) on cluttered backgrounds, from a few to
dozens per image, with controlled overlap, and their boxes - the data of ReInspect-style people
detection, generated, deterministic by seed.

    >>> scene = crowd_scene(3)
    >>> scene.image.shape                # (128, 128, 3) uint8
    >>> scene.boxes                      # (N, 4) float32 [x0, y0, x1, y1] pixels, one a person
    >>> scene.max_overlap                # the largest IoU between two of its true boxes

A scene draws its number of people (1 to ``max_people``, most often few, sometimes dozens) and
an overlap cap in [0, ``max_overlap``] from its seed; people are placed one by one where their
box's IoU with every box already placed is at most the cap (a person that finds no such place
after 100 tries is left out). Bigger people stand lower in the picture (a camera looking down on
a crowd) and are drawn after the ones behind them, so they hide them in part. A person's box
holds the head and the shoulders; poses tilt the head, sizes and colours vary. The background
is a random tone with rectangles, ellipses, lines and head-sized blobs of clutter.

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
MAX_OVERLAP = 0.6
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


def _person_box(rng: random.Random, size: int) -> np.ndarray:
    """A box [x0, y0, x1, y1] inside the image whose height grows with its depth (y)."""
    scale = size / IMAGE_SIZE
    bottom = rng.uniform(0.3, 1.0)  # where the feet would be, as a fraction of the image
    height = (HEIGHTS[0] + (HEIGHTS[1] - HEIGHTS[0]) * bottom) * scale * rng.uniform(0.85, 1.15)
    width = height * rng.uniform(0.75, 0.95)
    x0 = rng.uniform(0, size - width)
    y1 = min(size, max(height, bottom * size))
    return np.array([x0, y1 - height, x0 + width, y1], dtype=np.float32)


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
    wanted, cap = _count(rng, max_people), rng.uniform(0, max_overlap)
    boxes: list[np.ndarray] = []
    for _ in range(wanted):
        for _ in range(100):
            box = _person_box(rng, size)
            if not boxes or box_iou(box[None], np.stack(boxes)).max() <= cap:
                boxes.append(box)
                break
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
