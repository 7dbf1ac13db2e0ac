"""Shapes scenes: small RGB images of 1-4 objects with reference captions from a small grammar,
and the parser that checks a caption's claims against a scene (truthfulness).

Every scene is a function of its seed alone (a ``random.Random(seed)`` per image, no global
state, no downloads), so a seed range is a data set:

    >>> scene = shapes_scene(7)
    >>> scene.image.shape, scene.image.dtype         # (64, 64, 3) uint8
    >>> scene.references[0]                          # the canonical caption
    'a big red circle left of a small blue square'
    >>> truthful("a blue square right of a circle", scene.objects)       # True

Seed ranges (``SEEDS``): training scenes use seeds 0 .. 999,999,999, validation scenes
1,000,000,000 and up, evaluation scenes 2,000,000,000 and up; training never sees the others.

Objects: a shape (circle, square, triangle), a colour (red, green, blue, yellow) and a size
(small: radius 5-7 px, big: 10-13 px) at a position where it overlaps no other object. The
grammar (word-level, lower case):

    caption  := item ("and" item)*
    item     := phrase | phrase relation phrase
    phrase   := "a" [size] [colour] shape
    relation := "left of" | "right of" | "above" | "below" | "bigger than" | "smaller than"

A caption states facts: each phrase says that an object with those attributes exists, every
phrase a different object, and each relation holds between its two objects (centres compared:
"left of" is x_a < x_b, "above" is y_a < y_b in image rows, "bigger than" a bigger radius). It
is truthful when one assignment of phrases to distinct objects of the scene makes every fact
true. The references only state relations with a margin (8 px apart, or sizes of different
classes), so that they are clear to the eye as well as true.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (50, 80, 225),
           "yellow": (235, 200, 30)}
SIZES = {"small": (5, 7), "big": (10, 13)}  # radius range in pixels
RELATIONS = ("left of", "right of", "above", "below", "bigger than", "smaller than")
IMAGE_SIZE = 64
MAX_OBJECTS = 4
REFERENCES = 5  # captions per scene, the canonical one first
MARGIN = 8  # px between centres for a reference to state a position relation
SEEDS = {"train": 0, "valid": 1_000_000_000, "eval": 2_000_000_000}  # first seed of each range
WORDS = ("a", *SIZES, *COLOURS, *SHAPES, "left", "right", "of", "above", "below", "bigger",
         "smaller", "than", "and")


@dataclass(frozen=True)
class ShapeObject:
    """One object: its shape, colour, size class, centre (x, y) and radius, in pixels."""

    shape: str
    colour: str
    size: str
    x: float
    y: float
    radius: float

    def phrase(self, size: bool = True, colour: bool = True) -> str:
        return " ".join(["a"] + [self.size] * size + [self.colour] * colour + [self.shape])


@dataclass
class ShapesScene:
    """A scene: the image (H, W, 3) uint8, its objects, its reference captions and its seed."""

    image: np.ndarray
    objects: tuple[ShapeObject, ...]
    references: list[str]
    seed: int


def holds(relation: str, a: ShapeObject, b: ShapeObject, margin: float = 0.0) -> bool:
    """Whether ``a relation b`` is true (with ``margin`` pixels to spare for positions; size
    relations compare the size classes when a margin is asked, the radii otherwise)."""
    if relation == "left of":
        return a.x < b.x - margin
    if relation == "right of":
        return a.x > b.x + margin
    if relation == "above":
        return a.y < b.y - margin
    if relation == "below":
        return a.y > b.y + margin
    bigger = (a.size == "big" and b.size == "small") if margin else a.radius > b.radius
    smaller = (a.size == "small" and b.size == "big") if margin else a.radius < b.radius
    if relation == "bigger than":
        return bigger
    if relation == "smaller than":
        return smaller
    raise ValueError(f"unknown relation {relation!r}; known: {', '.join(RELATIONS)}")


# --- drawing -------------------------------------------------------------------------------------


def _place(rng: random.Random, count: int, size: int) -> list[ShapeObject]:
    """``count`` objects that do not overlap (2 px apart at least), by rejection sampling."""
    objects: list[ShapeObject] = []
    while len(objects) < count:
        for _ in range(200):
            cls = rng.choice(tuple(SIZES))
            radius = rng.uniform(*SIZES[cls])
            x = rng.uniform(radius + 1, size - radius - 1)
            y = rng.uniform(radius + 1, size - radius - 1)
            if all((x - o.x) ** 2 + (y - o.y) ** 2 >= (radius + o.radius + 2) ** 2
                   for o in objects):
                objects.append(ShapeObject(rng.choice(SHAPES), rng.choice(tuple(COLOURS)), cls,
                                           round(x, 2), round(y, 2), round(radius, 2)))
                break
        else:  # no room left: start again with the same count
            objects = []
    return objects


def draw_shapes(objects: tuple[ShapeObject, ...], rng: random.Random, size: int = IMAGE_SIZE
                ) -> np.ndarray:
    """The image (size, size, 3) uint8 of ``objects`` on a light, slightly noisy background."""
    tone = rng.randint(170, 245)
    image = Image.new("RGB", (size, size), (tone, tone + rng.randint(-10, 10), tone))
    draw = ImageDraw.Draw(image)
    for o in objects:
        colour = tuple(max(0, min(255, c + rng.randint(-20, 20))) for c in COLOURS[o.colour])
        r = o.radius
        if o.shape == "circle":
            draw.ellipse((o.x - r, o.y - r, o.x + r, o.y + r), fill=colour)
        elif o.shape == "square":
            s = r * 0.85  # a square of about the circle's area
            draw.rectangle((o.x - s, o.y - s, o.x + s, o.y + s), fill=colour)
        else:
            draw.polygon([(o.x, o.y - r), (o.x - r, o.y + 0.8 * r), (o.x + r, o.y + 0.8 * r)],
                         fill=colour)
    pixels = np.asarray(image, dtype=np.int16)
    noise = np.random.default_rng(rng.getrandbits(32)).integers(-6, 7, pixels.shape)
    return np.clip(pixels + noise, 0, 255).astype(np.uint8)


# --- captions -------------------------------------------------------------------------------------


def _relations(a: ShapeObject, b: ShapeObject) -> list[str]:
    return [r for r in RELATIONS if holds(r, a, b, MARGIN)]


def canonical_caption(objects: tuple[ShapeObject, ...]) -> str:
    """One object: its full phrase; two: "A left of B" (left to right), or "A above B" when
    they are not 8 px apart sideways; more: every object, left to right, joined by "and"."""
    ordered = sorted(objects, key=lambda o: o.x)
    if len(ordered) == 1:
        return ordered[0].phrase()
    if len(ordered) == 2:
        a, b = ordered
        if holds("left of", a, b, MARGIN):
            return f"{a.phrase()} left of {b.phrase()}"
        a, b = sorted(ordered, key=lambda o: o.y)
        return f"{a.phrase()} above {b.phrase()}"
    return " and ".join(o.phrase() for o in ordered)


def random_caption(objects: tuple[ShapeObject, ...], rng: random.Random) -> str:
    """A true caption drawn from the grammar: some objects (full or shortened phrases), perhaps
    a relation that holds with a margin between two of them."""
    def phrase(o: ShapeObject) -> str:
        return o.phrase(size=rng.random() > 0.25, colour=rng.random() > 0.1)

    order = list(objects)
    rng.shuffle(order)
    items: list[str] = []
    if len(order) >= 2 and rng.random() < 0.7:
        a, b = order[0], order[1]
        relations = _relations(a, b)
        if relations:
            items.append(f"{phrase(a)} {rng.choice(relations)} {phrase(b)}")
            order = order[2:]
    keep = rng.randint(0 if items else 1, len(order))
    items += [phrase(o) for o in order[:keep]]
    return " and ".join(items)


def shapes_scene(seed: int, size: int = IMAGE_SIZE, max_objects: int = MAX_OBJECTS,
                 references: int = REFERENCES) -> ShapesScene:
    """The scene of ``seed``: 1..max_objects objects, its image and ``references`` captions
    (the canonical one first, then random true ones)."""
    if not 1 <= max_objects <= 6:
        raise ValueError(f"max_objects must be in 1..6, got {max_objects}")
    if size < 32:
        raise ValueError(f"a shapes image is at least 32 pixels wide, got {size}")
    rng = random.Random(seed)
    scale = size / IMAGE_SIZE
    placed = tuple(_place(rng, rng.randint(1, max_objects), IMAGE_SIZE))
    captions = [canonical_caption(placed)]  # margins are in 64-pixel units: before scaling
    captions += [random_caption(placed, rng) for _ in range(references - 1)]
    objects = tuple(_scaled(o, scale) for o in placed)
    return ShapesScene(draw_shapes(objects, rng, size), objects, captions, seed)


def _scaled(o: ShapeObject, scale: float) -> ShapeObject:
    if scale == 1:
        return o
    return ShapeObject(o.shape, o.colour, o.size, o.x * scale, o.y * scale, o.radius * scale)


# --- reading a caption back: the grammar's parser and the truth check --------------------------


@dataclass(frozen=True)
class Mention:
    """A phrase of a caption: the shape and the attributes it states (None: not stated)."""

    shape: str
    colour: str | None = None
    size: str | None = None

    def fits(self, o: ShapeObject) -> bool:
        return (o.shape == self.shape and self.colour in (None, o.colour)
                and self.size in (None, o.size))


@dataclass(frozen=True)
class Claims:
    """What a caption states: its phrases, and relations (mention a, relation, mention b)."""

    mentions: tuple[Mention, ...]
    relations: tuple[tuple[int, str, int], ...]


def parse_caption(caption: str | list[str]) -> Claims | None:
    """The claims of a caption in the scene grammar, or None when it is not in the grammar."""
    words = caption.split() if isinstance(caption, str) else list(caption)
    mentions: list[Mention] = []
    relations: list[tuple[int, str, int]] = []
    position = 0

    def phrase() -> Mention | None:
        nonlocal position
        if position >= len(words) or words[position] != "a":
            return None
        position += 1
        size = colour = None
        if position < len(words) and words[position] in SIZES:
            size, position = words[position], position + 1
        if position < len(words) and words[position] in COLOURS:
            colour, position = words[position], position + 1
        if position < len(words) and words[position] in SHAPES:
            position += 1
            return Mention(words[position - 1], colour, size)
        return None

    def relation() -> str | None:
        nonlocal position
        for r in RELATIONS:
            parts = r.split()
            if words[position:position + len(parts)] == parts:
                position += len(parts)
                return r
        return None

    while True:
        first = phrase()
        if first is None:
            return None
        mentions.append(first)
        if position < len(words) and words[position] != "and":
            r = relation()
            second = phrase() if r is not None else None
            if second is None:
                return None
            mentions.append(second)
            relations.append((len(mentions) - 2, r, len(mentions) - 1))
        if position == len(words):
            return Claims(tuple(mentions), tuple(relations))
        if words[position] != "and":
            return None
        position += 1


def truthful(caption: str | list[str], objects: tuple[ShapeObject, ...]) -> bool:
    """Whether ``caption`` parses in the grammar and one assignment of its phrases to distinct
    objects makes every stated attribute and relation true (an unparsable caption is not)."""
    claims = parse_caption(caption)
    if claims is None or len(claims.mentions) > len(objects):
        return False
    for chosen in itertools.permutations(objects, len(claims.mentions)):
        if all(m.fits(o) for m, o in zip(claims.mentions, chosen, strict=True)) and all(
                holds(r, chosen[a], chosen[b]) for a, r, b in claims.relations):
            return True
    return False
