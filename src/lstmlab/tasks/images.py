"""Images as model inputs: reading image files (Pillow), COCO-style annotation files (captions;
boxes), and the batches of the captioner and the detector.

    >>> data = read_coco("captions_train2017.json", "train2017/", need="captions")
    >>> data.images[0].path, data.images[0].captions        # [] for boxes-only files
    >>> pixels, scale = load_image(data.images[0].path, 64)  # (64, 64, 3) uint8, (sx, sy)

COCO-style JSON: ``{"images": [{"id", "file_name", ["width", "height"]}, ...],
"annotations": [{"image_id", "caption"} or {"image_id", "bbox": [x, y, w, h]}, ...]}``; boxes
are in pixels of the original image (x, y its top-left corner). Bad input is a ``DataError``
naming the file and the id: unreadable JSON, an annotation whose image id is not among the
images, an image whose file is missing from the folder or cannot be read, a box outside its
image or with no area, an empty caption. Images without the annotations a task needs are
skipped and counted (``CocoData.skipped``).

Batches (``lstmlab.tasks.Batch``, time-major):

- captions: inputs (T, B) token ids [<eos>, w_1, ..., w_n] (the end token doubles as the start
  token), targets (T, B) [w_1, ..., w_n, <eos>], lengths n + 1; ``extras["images"]`` (B, 3, H, W)
  float in [0, 1];
- detection: an image is a one-step sequence: inputs (1, B, 3, H, W) float in [0, 1], targets
  (1, B) zeros (unused); ``extras["boxes"]`` (B, M, 4) [x0, y0, x1, y1] pixels padded with
  zeros past ``extras["counts"]`` (B,).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lstmlab.tasks.batch import Batch
from lstmlab.tasks.files import DataError, PathLike


def load_image(path: PathLike, size: int) -> tuple[np.ndarray, tuple[float, float]]:
    """An image file as (size, size, 3) uint8 RGB (stretched to a square) and the scale
    (sx, sy) from its pixels to the returned ones; DataError if Pillow cannot read it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            width, height = image.size
            pixels = np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read the image ({error})") from None
    return pixels, (size / width, size / height)


def to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """(H, W, 3) uint8 images -> (B, 3, H, W) float in [0, 1]."""
    stacked = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    return stacked.float().div_(255.0)


# --- COCO-style annotations ---------------------------------------------------------------------


@dataclass
class CocoImage:
    """One image of a COCO file: its id, file, size (width, height), captions and boxes (N, 4)
    [x0, y0, x1, y1] in its own pixels."""

    id: int | str
    path: Path
    size: tuple[int, int]
    captions: list[str] = field(default_factory=list)
    boxes: list[list[float]] = field(default_factory=list)


@dataclass
class CocoData:
    """The images of a COCO file that have what the task needs, and how many were skipped."""

    path: str
    images: list[CocoImage]
    skipped: int = 0

    def summary(self, need: str) -> str:
        count = sum(len(i.captions) if need == "captions" else len(i.boxes) for i in self.images)
        skipped = (f"; {self.skipped:,} images without {need} skipped" if self.skipped else "")
        return f"{self.path}: {len(self.images):,} images, {count:,} {need}{skipped}"


def _load_json(path: PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"annotation file not found: {path}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not a JSON file ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("images"), list) \
            or not isinstance(document.get("annotations", []), list):
        raise DataError(f'{path}: expected a COCO-style object with "images" and "annotations" '
                        "lists")
    return document


def read_coco(annotations: PathLike, images: PathLike, need: str = "captions") -> CocoData:
    """Read a COCO-style file and check it against the image folder (see the module).

    Args:
        annotations: the JSON file. images: the folder that holds the images' ``file_name``s.
        need: "captions" or "boxes": images with none of them are skipped (counted), except
            that for "boxes" an image without boxes is kept when the file has box annotations
            (an image with nobody in it is a valid example).
    """
    if need not in ("captions", "boxes"):
        raise ValueError(f"need must be 'captions' or 'boxes', got {need!r}")
    folder = Path(images)
    if not folder.is_dir():
        raise DataError(f"image folder not found: {folder}")
    document = _load_json(annotations)
    where = str(annotations)
    by_id: dict[int | str, CocoImage] = {}
    for k, entry in enumerate(document["images"]):
        if not isinstance(entry, dict) or "id" not in entry or "file_name" not in entry:
            raise DataError(f'{where}: images[{k}] needs "id" and "file_name"')
        path = folder / str(entry["file_name"])
        if not path.is_file():
            raise DataError(f"{where}: image id {entry['id']}: file {entry['file_name']!r} is "
                            f"not in the image folder {folder}")
        if "width" in entry and "height" in entry:
            size = (int(entry["width"]), int(entry["height"]))
        else:
            try:
                with Image.open(path) as opened:
                    size = opened.size
            except (UnidentifiedImageError, OSError) as error:
                raise DataError(f"{where}: image id {entry['id']}: cannot read {path} "
                                f"({error})") from None
        by_id[entry["id"]] = CocoImage(entry["id"], path, size)
    has_boxes = False
    for k, entry in enumerate(document.get("annotations", [])):
        if not isinstance(entry, dict) or "image_id" not in entry:
            raise DataError(f'{where}: annotations[{k}] needs "image_id"')
        name = f"annotation {entry.get('id', k)}"
        image = by_id.get(entry["image_id"])
        if image is None:
            raise DataError(f"{where}: {name} refers to image id {entry['image_id']!r}, which "
                            "is not among the images")
        if "caption" in entry:
            caption = entry["caption"]
            if not isinstance(caption, str) or not caption.strip():
                raise DataError(f"{where}: {name} (image id {image.id}) has an empty caption")
            image.captions.append(caption)
        if "bbox" in entry:
            has_boxes = True
            image.boxes.append(_check_box(entry["bbox"], image, f"{where}: {name}"))
    if need == "captions":
        kept = [i for i in by_id.values() if i.captions]
    else:
        kept = list(by_id.values()) if has_boxes else []
    if not kept:
        raise DataError(f"{where} holds no images with {need}")
    return CocoData(where, kept, len(by_id) - len(kept))


def _check_box(bbox: object, image: CocoImage, where: str) -> list[float]:
    """[x, y, w, h] -> [x0, y0, x1, y1], checked to lie inside the image (1 px of slack for
    rounding) and to have an area."""
    if not isinstance(bbox, list) or len(bbox) != 4 \
            or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in bbox):
        raise DataError(f"{where} (image id {image.id}): bbox must be [x, y, w, h], got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    width, height = image.size
    if w <= 0 or h <= 0:
        raise DataError(f"{where} (image id {image.id}): bbox {bbox} has no area")
    if x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1:
        raise DataError(f"{where} (image id {image.id}): bbox {bbox} lies outside the "
                        f"{width}x{height} image")
    return [max(0.0, x), max(0.0, y), min(float(width), x + w), min(float(height), y + h)]


# --- batches --------------------------------------------------------------------------------------


def caption_batch(images: Sequence[np.ndarray], captions: Sequence[Sequence[int]],
                  eos: int) -> Batch:
    """A captioning batch (see the module) from uint8 images and captions as token ids
    (without the end token)."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    steps = max(len(c) for c in captions) + 1
    inputs = torch.zeros(steps, len(captions), dtype=torch.long)
    targets = torch.zeros(steps, len(captions), dtype=torch.long)
    for b, ids in enumerate(captions):
        n = len(ids)
        inputs[0, b] = eos
        inputs[1:n + 1, b] = torch.tensor(ids, dtype=torch.long)
        targets[:n, b] = torch.tensor(ids, dtype=torch.long)
        targets[n, b] = eos
    lengths = torch.tensor([len(c) + 1 for c in captions], dtype=torch.long)
    return Batch(inputs, targets, lengths=lengths, extras={"images": to_tensor(images)})


def detection_batch(images: Sequence[np.ndarray], boxes: Sequence[np.ndarray]) -> Batch:
    """A detection batch (see the module) from uint8 images and their boxes (N_b, 4)."""
    if len(images) != len(boxes):
        raise ValueError(f"{len(images)} images but {len(boxes)} box lists")
    most = max(1, max(len(b) for b in boxes))
    padded = torch.zeros(len(boxes), most, 4)
    for b, these in enumerate(boxes):
        if len(these):
            padded[b, :len(these)] = torch.as_tensor(np.asarray(these, dtype=np.float32))
    counts = torch.tensor([len(b) for b in boxes], dtype=torch.long)
    pixels = to_tensor(images).unsqueeze(0)
    return Batch(pixels, torch.zeros(1, len(images), dtype=torch.long),
                 extras={"boxes": padded, "counts": counts})
