"""People detection: train ReInspect or the NMS baseline, evaluate them side by side, draw
their boxes (``lstmlab detect``).

    >>> train_detector(out="runs/reinspect", model="lstm", minutes=10)     # generated crowds
    >>> train_detector(out="runs/overfeat", model="nms", minutes=10)
    >>> report = evaluate_detectors(["runs/reinspect", "runs/overfeat"], scenes=500,
    ...                             out="runs/detect-eval")
    >>> report.models["reinspect"]["overall"]["ap"], report.claim

Data: without annotations, the generated crowds (``lstmlab.tasks.crowds``): training reads
scenes of seeds 0 .. train_scenes - 1, validation ``valid_scenes`` scenes from seed
1,000,000,000, evaluation fresh scenes from seed 2,000,000,000. With a COCO-style boxes file
and its image folder, a fixed ``valid_fraction`` of the images validates. Models:
``lstmlab.models.detector`` (``model="lstm"``: ReInspect; ``"nms"``: one box per cell, then
NMS; both on the same encoder). Training keeps the weights of the best validation AP.

Evaluation: average precision at IoU 0.5 (VOC all-point interpolation,
``lstmlab.metrics.average_precision``) and its precision-recall curve, over all people and per
bucket of people (``buckets``): by the density of their image (people in it: 1-5, 6-15, 16+)
and by their own overlap (a true box's largest IoU with another true box of its image: < 0.2,
0.2-0.5, >= 0.5). A bucket's AP counts its people only, COCO's "ignore" rule: detections are
matched against every true box as for the overall AP, a hit on a person outside the bucket is
neither right nor wrong, a false positive counts where the person it overlaps most belongs
(everywhere, overlapping nobody). The hardest bucket ("16+ people, overlap >= 0.5") holds the
people of crowds whose box overlaps another true box by more than NMS's threshold 0.5: two such
people predicted perfectly are one box after NMS. There the paper's claim is checked. Buckets
by person rather than by image: one overlapping pair would put a whole image of otherwise
separate people into the hardest bucket, and the claim is about the people in the pair.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from lstmlab.experiments.supervised import (
    RunRecord,
    check_settings,
    fit,
    load_model,
    save_model,
    steps_per_epoch,
    train_config,
)
from lstmlab.metrics import PRCurve, average_precision, box_iou
from lstmlab.models.detector import Detector
from lstmlab.models.recurrent import canonical_name
from lstmlab.tasks.crowds import SEEDS, CrowdScene, crowd_scene
from lstmlab.tasks.files import DataError, PathLike
from lstmlab.tasks.images import detection_batch, load_image, read_coco, to_tensor
from lstmlab.train.loop import StepOutput

KIND = "detector"
MODELS = {"lstm": "lstm", "nms": "single"}  # --model -> the detector's head
EVAL_BATCH = 50
DENSITY = (("1-5", 1, 5), ("6-15", 6, 15), ("16+", 16, 10**9))
OVERLAP = (("<0.2", 0.0, 0.2), ("0.2-0.5", 0.2, 0.5), (">=0.5", 0.5, 1.01))
HARDEST = "16+ people, overlap >= 0.5"


@dataclass
class DetectConfig:
    """What defines a detection run.

    Attributes:
        model: "lstm" (ReInspect: a recurrent decoder per cell, stitching) or "nms" (one box per
            cell, then non-maximum suppression).
        cell: the decoder's cell ("lstm", "lstm:CIFG", "gru", ...).
        max_boxes: K, boxes per cell ("lstm"); hidden: decoder units.
        image_size: pixels per side the model reads (scenes are drawn at this size).
        region: cell widths beyond its square a cell answers for ("lstm").
        box_weight: weight of the L1 box loss beside the confidence cross-entropy.
        nms_iou, stitch_iou: thresholds of NMS and of stitching.
        train_scenes, valid_scenes, max_people: the generated data (without a file).
        valid_fraction: images of a COCO file held out for validation.
        batch, optimizer, lr, weight_decay, clip: images per step and the optimiser.
        seed: initialisation and batch order.
    """

    model: str = "lstm"
    cell: str = "lstm"
    max_boxes: int = 5
    hidden: int = 64
    image_size: int = 128
    region: float = 0.25
    box_weight: float = 1.0
    nms_iou: float = 0.5
    stitch_iou: float = 0.5
    train_scenes: int = 100_000
    valid_scenes: int = 200
    max_people: int = 30
    valid_fraction: float = 0.1
    batch: int = 16
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip: float | None = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.cell = canonical_name(self.cell)
        check_settings(self, ("max_boxes", "hidden", "image_size", "train_scenes",
                              "valid_scenes", "max_people", "batch"), ())
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.image_size < 32:
            raise ValueError(f"image-size must be at least 32, got {self.image_size}")
        for name in ("nms_iou", "stitch_iou"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be in (0, 1), got "
                                 f"{getattr(self, name)}")
        if not 0 <= self.region <= 0.5:
            raise ValueError(f"region must be in [0, 0.5], got {self.region}")


# --- data ----------------------------------------------------------------------------------------


def scenes(first_seed: int, count: int, config: DetectConfig) -> list[CrowdScene]:
    return [crowd_scene(first_seed + k, config.image_size, config.max_people)
            for k in range(count)]


def file_scenes(annotations: PathLike, images: PathLike, size: int,
                console: Console | None = None) -> list[CrowdScene]:
    """The images of a COCO-style boxes file resized to ``size`` with their boxes scaled."""
    data = read_coco(annotations, images, need="boxes")
    if console is not None:
        console.print(data.summary("boxes"))
    out = []
    for image in data.images:
        pixels, (sx, sy) = load_image(image.path, size)
        boxes = np.asarray(image.boxes, dtype=np.float32).reshape(-1, 4) \
            * np.array([sx, sy, sx, sy], dtype=np.float32)
        out.append(CrowdScene(pixels, boxes))
    return out


def training_batches(items: Sequence[CrowdScene] | None, config: DetectConfig
                     ) -> Iterator[Any]:
    """Endless batches, every epoch in a new order; ``items`` None: the crowds of seeds
    0 .. train_scenes - 1, drawn as needed."""
    rng = random.Random(config.seed)
    count = config.train_scenes if items is None else len(items)
    order = list(range(count))
    while True:
        rng.shuffle(order)
        for start in range(0, max(1, count - config.batch + 1), config.batch):
            chunk = [items[i] if items is not None
                     else crowd_scene(SEEDS["train"] + i, config.image_size, config.max_people)
                     for i in order[start:start + config.batch]]
            yield detection_batch([c.image for c in chunk], [c.boxes for c in chunk])


class DetectStep:
    """The detector's loss (``Detector.loss``); reports its parts."""

    def __init__(self, box_weight: float) -> None:
        self.box_weight = box_weight

    def __call__(self, model: nn.Module, batch: Any) -> StepOutput:
        raw = model(batch.inputs[0])
        inner = getattr(model, "module", model)
        loss, parts = inner.loss(raw, batch.extras["boxes"], batch.extras["counts"],
                                 self.box_weight)
        return StepOutput(loss, batch.batch_size, 0,
                          {"confidence": parts["confidence"], "box_l1": parts["box_l1"]})


@torch.no_grad()
def detect_images(model: Detector, images: Sequence[np.ndarray], min_score: float = 0.01,
                  batch_size: int = EVAL_BATCH) -> list[tuple[np.ndarray, np.ndarray]]:
    """Detections (boxes (N, 4), scores (N,)) of each image (H, W, 3) uint8."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        out += model.detect(to_tensor(images[start:start + batch_size]).to(device), min_score)
    return out


# --- scores by bucket ----------------------------------------------------------------------------


def box_overlaps(boxes: np.ndarray) -> np.ndarray:
    """Each true box's largest IoU with another true box of its image (N, 4) -> (N,); 0 for a
    person alone."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if len(boxes) < 2:
        return np.zeros(len(boxes))
    iou = box_iou(boxes, boxes)
    np.fill_diagonal(iou, 0.0)
    return iou.max(1)


@dataclass
class Bucket:
    """Some of the people of an evaluation: the images they are in and, per image, which of
    its true boxes belong (bool (G,))."""

    images: list[int]
    counted: list[np.ndarray]

    @property
    def people(self) -> int:
        return int(sum(c.sum() for c in self.counted))


def buckets(truths: Sequence[np.ndarray]) -> dict[str, Bucket]:
    """The people of each bucket (see the module): "all", "people 1-5", ..., "overlap <0.2",
    ..., and the hardest (``HARDEST``)."""
    truths = [np.asarray(t, dtype=np.float32).reshape(-1, 4) for t in truths]
    overlaps = [box_overlaps(t) for t in truths]
    everyone = range(len(truths))

    def pick(density: tuple[int, int], overlap: tuple[float, float]) -> Bucket:
        images = [i for i in everyone if density[0] <= len(truths[i]) <= density[1]]
        return Bucket(images, [(overlaps[i] >= overlap[0]) & (overlaps[i] < overlap[1])
                               for i in images])

    anyone, alone = (0, 10**9), (0.0, 1.01)
    out = {"all": pick(anyone, alone)}
    for name, low, high in DENSITY:
        out[f"people {name}"] = pick((low, high), alone)
    for name, low, high in OVERLAP:
        out[f"overlap {name}"] = pick(anyone, (low, high))
    out[HARDEST] = pick(DENSITY[-1][1:], OVERLAP[-1][1:])
    return out


def scores_by_bucket(detections: Sequence[tuple[np.ndarray, np.ndarray]],
                     truths: Sequence[np.ndarray], groups: dict[str, Bucket]
                     ) -> dict[str, PRCurve]:
    return {name: average_precision([detections[i] for i in bucket.images],
                                    [truths[i] for i in bucket.images],
                                    counted=bucket.counted)
            for name, bucket in groups.items()}


# --- training ------------------------------------------------------------------------------------


@dataclass
class DetectResult(RunRecord):
    """What a training run reached (AP in [0, 1])."""

    config: DetectConfig
    out: str | None
    data: str
    parameters: int
    train_images: int
    steps: int
    epochs: float
    seconds: float
    stopped_by: str
    best_valid_ap: float | None
    history: list[dict[str, float]] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> str:
        valid = (f"; best validation AP {self.best_valid_ap:.3f}"
                 if self.best_valid_ap is not None else "")
        return self.run_line() + valid


def build_model(config: DetectConfig) -> Detector:
    return Detector(MODELS[config.model], config.cell, config.max_boxes, config.hidden,
                    image_size=config.image_size, region=config.region,
                    nms_iou=config.nms_iou, stitch_iou=config.stitch_iou)


def train_detector(annotations: PathLike | None = None, images: PathLike | None = None, *,
                   out: PathLike | None = None, minutes: float | None = None,
                   epochs: float | None = None, steps: int | None = None,
                   eval_every: int | None = None, progress: bool = True,
                   console: Console | None = None, device: str | None = None,
                   **options: Any) -> DetectResult:
    """Train a detector on generated crowds (no annotations) or a COCO-style boxes file with
    its image folder; budgets and ``out`` as ``train_captioner``; ``**options`` the fields of
    ``DetectConfig`` (``model="lstm"`` or ``"nms"``)."""
    console = console or Console(stderr=True)
    config = DetectConfig(**options)
    if (annotations is None) != (images is None):
        raise ValueError("give both a boxes file and its image folder, or neither (the "
                         "generated crowds)")
    torch.manual_seed(config.seed)
    if annotations is None:
        train_items, count = None, config.train_scenes
        valid = scenes(SEEDS["valid"], config.valid_scenes, config)
        data = (f"crowds: train seeds 0..{config.train_scenes - 1}, valid seeds "
                f"{SEEDS['valid']}..{SEEDS['valid'] + config.valid_scenes - 1}")
    else:
        every = file_scenes(annotations, images, config.image_size, console)
        if len(every) < 2:
            raise DataError(f"{annotations}: need at least 2 images to train and validate")
        order = list(range(len(every)))
        random.Random(0).shuffle(order)
        held = min(len(every) - 1, max(1, round(config.valid_fraction * len(every))))
        valid = [every[i] for i in sorted(order[:held])]
        train_items = [every[i] for i in sorted(order[held:])]
        count = len(train_items)
        data = f"{annotations} ({count:,} train, {held:,} valid images)"
    model = build_model(config)
    spe = steps_per_epoch(count, config.batch)
    loop = train_config(config, spe, minutes=minutes, epochs=epochs, steps=steps,
                        progress=progress, device=device)
    console.print(f"data: {data}\nmodel: {config.model} ({model.head} head"
                  + (f", {model.cell_name} decoder, K={model.max_boxes}"
                     if model.head == "lstm" else "")
                  + f"), {sum(p.numel() for p in model.parameters()):,} parameters; "
                  f"{spe:,} steps per epoch")
    valid_truths = [v.boxes for v in valid]
    valid_pixels = [v.image for v in valid]

    def valid_error(model: nn.Module) -> float:
        ap = average_precision(detect_images(model, valid_pixels), valid_truths).ap
        return 1.0 - (ap or 0.0)

    def report(trainer: Any, error: float, improved: bool) -> None:
        s = trainer.state
        console.print(f"step {s.step:,} ({s.sequences / count:.2f} epochs, "
                      f"{s.seconds / 60:.1f} min): validation AP {1 - error:.3f}"
                      + ("  [best]" if improved else ""))

    extra = {"config": asdict(config), "data": data}
    save = (lambda m: save_model(m, out, extra)) if out is not None else None
    run = fit(model, loop, DetectStep(config.box_weight), training_batches(train_items, config),
              error=valid_error, eval_every=eval_every or min(300, spe), save=save,
              report=report, console=console, description=f"detect {config.model}")
    s = run.train.state
    return DetectResult(config, None if out is None else str(out), data,
                        sum(p.numel() for p in model.parameters()), count, s.step,
                        s.sequences / count, s.seconds, run.stopped_by,
                        None if run.best is None else 1 - run.best, list(run.train.history),
                        run.validations)


# --- evaluation ----------------------------------------------------------------------------------


def load_detector(path: PathLike) -> tuple[Detector, DetectConfig, Path]:
    """A detector saved by ``train_detector``: the model, its run's settings, its checkpoint."""
    model, extra, index = load_model(path, KIND, "detect")
    return model, DetectConfig(**extra["config"]), index


def model_name(config: DetectConfig) -> str:
    return ("ReInspect (" + config.cell + ")") if config.model == "lstm" else "NMS baseline"


@dataclass
class DetectReport:
    """AP per model and bucket ({model: {bucket: PRCurve as a dict}}), the number of people
    (true boxes) per bucket, and the paper's claim checked on the hardest bucket (None without
    both kinds)."""

    data: str
    people: dict[str, int]
    models: dict[str, dict[str, dict[str, Any]]]
    claim: dict[str, Any] | None = None
    files: dict[str, str] = field(default_factory=dict)

    def table(self) -> str:
        names = list(self.models)
        lines = [f"{'people':<30}" + "".join(f"{n:>24}" for n in names)]
        for bucket, count in self.people.items():
            cells = []
            for n in names:
                ap = self.models[n][bucket]["ap"]
                cells.append(f"{'-' if ap is None else f'{ap:.3f}':>24}")
            lines.append(f"{bucket + f' ({count})':<30}" + "".join(cells))
        if self.claim is not None:
            c = self.claim
            shown = {k: "n/a" if c[k] is None else f"{c[k]:+.3f}"
                     for k in ("overall_margin", "hardest_margin")}
            lines.append(f"claim: ReInspect AP >= NMS AP overall ({shown['overall_margin']}) "
                         f"and >= +0.10 on '{HARDEST}' ({shown['hardest_margin']}): "
                         + ("holds" if c["holds"] else "does not hold"))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_detectors(paths: Sequence[PathLike], annotations: PathLike | None = None,
                       images: PathLike | None = None, *, scenes_count: int = 500,
                       out: PathLike | None = None, gallery: int = 12) -> DetectReport:
    """AP at IoU 0.5 and PR curves of saved detectors on the same images: fresh crowds
    (evaluation seeds) or a COCO-style boxes file. With ``out``: ``pr_curves.png`` (overall
    and the hardest bucket), ``gallery.html`` (``gallery`` images with every model's boxes)
    and ``report.json``."""
    if (annotations is None) != (images is None):
        raise ValueError("give both a boxes file and its image folder, or neither (fresh "
                         "crowds)")
    loaded = [load_detector(p) for p in paths]
    sizes = {config.image_size for _, config, _ in loaded}
    if len(sizes) > 1:
        raise ValueError(f"the detectors read different image sizes ({sorted(sizes)}); "
                         "compare models trained on the same size")
    config = loaded[0][1]
    if annotations is None:
        items = scenes(SEEDS["eval"], scenes_count, config)
        data = f"{scenes_count:,} fresh crowds (seeds {SEEDS['eval']}..)"
    else:
        items = file_scenes(annotations, images, config.image_size)
        data = str(annotations)
    truths = [i.boxes for i in items]
    groups = buckets(truths)
    models: dict[str, dict[str, dict[str, Any]]] = {}
    found: dict[str, list] = {}
    curves: dict[str, dict[str, PRCurve]] = {}
    for model, cfg, index in loaded:
        name = model_name(cfg)
        if name in models:
            name = f"{name} [{index.parent.name}]"
        found[name] = detect_images(model, [i.image for i in items])
        curves[name] = scores_by_bucket(found[name], truths, groups)
        models[name] = {b: {"ap": c.ap, "truths": c.truths, "detections": c.detections}
                        for b, c in curves[name].items()}
    report = DetectReport(data, {b: g.people for b, g in groups.items()}, models)
    lstm = [n for n, (_, c, _) in zip(models, loaded, strict=True) if c.model == "lstm"]
    base = [n for n, (_, c, _) in zip(models, loaded, strict=True) if c.model == "nms"]
    if lstm and base:
        a, b = models[lstm[0]], models[base[0]]

        def margin(bucket: str) -> float | None:
            if a[bucket]["ap"] is None or b[bucket]["ap"] is None:
                return None
            return a[bucket]["ap"] - b[bucket]["ap"]

        overall, hardest = margin("all"), margin(HARDEST)
        report.claim = {"lstm": lstm[0], "baseline": base[0], "overall_margin": overall,
                        "hardest_margin": hardest, "hardest_people": groups[HARDEST].people,
                        "holds": bool(overall is not None and hardest is not None
                                      and overall >= 0 and hardest >= 0.10)}
    if out is not None:
        report.files = write_report(report, items, found, curves, Path(out), gallery)
    return report


def write_report(report: DetectReport, items: Sequence[CrowdScene], found: dict[str, list],
                 curves: dict[str, dict[str, PRCurve]], out: Path, gallery: int
                 ) -> dict[str, str]:
    from lstmlab.viz.vision import GalleryItem, draw_boxes, gallery_html, png_bytes, pr_plot

    out.mkdir(parents=True, exist_ok=True)
    panels = {}
    for bucket in ("all", HARDEST):
        panels[f"{bucket} ({report.people[bucket]} people)"] = {
            name: (c[bucket].precision, c[bucket].recall, c[bucket].ap)
            for name, c in curves.items()}
    plot = pr_plot(panels, out / "pr_curves.png")
    colours = ("red", "cyan", "yellow", "magenta")
    # the gallery shows the most crowded images first: where the models differ
    chosen = sorted(range(len(items)), key=lambda i: -len(items[i].boxes))[:gallery]
    entries = []
    for i in chosen:
        sets = [(items[i].boxes, None, "white")]
        sets += [(found[name][i][0], found[name][i][1], colours[k % len(colours)])
                 for k, name in enumerate(found)]
        lines = [f"{len(items[i].boxes)} people (white: true boxes)"]
        lines += [f"{colours[k % len(colours)]}: {name}, "
                  f"{int((found[name][i][1] >= 0.5).sum())} boxes >= 0.5"
                  for k, name in enumerate(found)]
        entries.append(GalleryItem(png_bytes(draw_boxes(items[i].image, sets, scale=3)), lines))
    page = gallery_html("people detection: ReInspect and NMS", entries,
                        f"{report.data}. AP at IoU 0.5 (VOC all-point).\n" + report.table(),
                        [("precision-recall", plot.read_bytes())])
    (out / "gallery.html").write_text(page, encoding="utf-8")
    (out / "report.json").write_text(json.dumps(
        {**report.to_dict(), "curves": {n: {b: c.to_dict() for b, c in per.items()}
                                        for n, per in curves.items()}}, indent=1) + "\n")
    return {"gallery": str(out / "gallery.html"), "pr_curves": str(plot),
            "report": str(out / "report.json")}


def show_detections(paths: Sequence[PathLike], image: PathLike, out: PathLike,
                    min_score: float = 0.5) -> list[tuple[str, int]]:
    """Draw every model's boxes (score >= ``min_score``) on an image file, written to ``out``
    (PNG); returns (model, boxes drawn) per model."""
    from lstmlab.viz.vision import draw_boxes

    loaded = [load_detector(p) for p in paths]
    pixels, _ = load_image(image, loaded[0][1].image_size)
    colours = ("red", "cyan", "yellow", "magenta")
    sets, counts = [], []
    for k, (model, config, _) in enumerate(loaded):
        if config.image_size != loaded[0][1].image_size:
            raise ValueError("the detectors read different image sizes; show them one by one")
        boxes, scores = detect_images(model, [pixels], min_score)[0]
        sets.append((boxes, scores, colours[k % len(colours)]))
        counts.append((f"{model_name(config)} ({colours[k % len(colours)]})", len(boxes)))
    draw_boxes(pixels, sets, scale=3, min_score=min_score).save(out)
    return counts
