"""One-to-many: train, evaluate and apply an image captioner (``lstmlab caption``).

    >>> result = train_captioner(out="runs/caption", attention="soft", minutes=5)  # shapes
    >>> report = evaluate_captioner("runs/caption", scenes=1000, out="runs/caption/eval")
    >>> report.bleu4, report.exact_match, report.truthful
    >>> describe_image("runs/caption", "photo.png", attention_out="att.png")

Data: without annotations, the generated shapes scenes (``lstmlab.tasks.shapes``): training
reads scenes of seeds 0 .. train_scenes - 1, validation ``valid_scenes`` scenes from seed
1,000,000,000, evaluation fresh scenes from seed 2,000,000,000 (so no evaluated scene was
trained on); each training step shows every image with one of its reference captions, drawn at
random. With a COCO-style captions file and its image folder (``lstmlab.tasks.images``), a
fixed ``valid_fraction`` of the images validates. Model: ``lstmlab.models.captioner``. Training
runs on the one loop and keeps the best validation weights: on scenes the fewest untruthful
greedy captions (then the fewest inexact ones), on files the lowest cross-entropy per word.

Scores (``evaluate_captioner``), of beam-search captions: BLEU-4 (sacreBLEU, corpus level,
against all references), exact match (the caption is one of the references) and, on scenes,
truthfulness (``lstmlab.tasks.shapes.truthful``: every fact the caption states holds).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
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
from lstmlab.models.captioner import ATTENTIONS, Captioner, attention_penalty
from lstmlab.models.decoding import beam_search, greedy
from lstmlab.models.recurrent import canonical_name
from lstmlab.tasks.files import DataError, PathLike
from lstmlab.tasks.images import caption_batch, load_image, read_coco, to_tensor
from lstmlab.tasks.shapes import SEEDS, WORDS, shapes_scene, truthful
from lstmlab.tasks.text import EOS, UNK, Vocabulary
from lstmlab.train.loop import BUDGET_SCHEDULES, StepOutput

KIND = "captioner"
EVAL_BATCH = 100


@dataclass
class CaptionConfig:
    """What defines a captioning run.

    Attributes:
        cell: the decoder's cell: "lstm" (= lstm:NP), "lstm:CIFG", ..., "gru", "rnn".
        attention: "none" (Show and Tell) or "soft" (Show, Attend and Tell).
        embedding, hidden, attention_size: word vector size, decoder units, attention width.
        attention_reg: lambda of the doubly stochastic attention penalty (0: none).
        dropout: before the output layer.
        image_size: pixels per side the model reads (scenes are drawn at this size).
        beam: beam width for evaluation and ``describe`` (1: greedy); max_length: most words.
        train_scenes, valid_scenes, max_objects: the generated data (without a file).
        valid_fraction: images of a COCO file held out for validation.
        batch, optimizer, lr, weight_decay, clip: images per step and the optimiser.
        schedule: "constant" learning rate, or "cosine": to 0 over the budget (the steps of
            ``--epochs``/``--steps``, else the clock of ``--minutes``).
        seed: initialisation and batch order.
    """

    cell: str = "lstm"
    attention: str = "soft"
    embedding: int = 64
    hidden: int = 256
    attention_size: int = 64
    attention_reg: float = 0.0
    dropout: float = 0.0
    image_size: int = 64
    beam: int = 3
    max_length: int = 24
    train_scenes: int = 100_000
    valid_scenes: int = 300
    max_objects: int = 4
    valid_fraction: float = 0.05
    batch: int = 32
    optimizer: str = "adam"
    lr: float = 4e-3
    weight_decay: float = 0.0
    clip: float | None = 5.0
    schedule: str = "cosine"
    seed: int = 0

    def __post_init__(self) -> None:
        self.cell = canonical_name(self.cell)
        check_settings(self, ("embedding", "hidden", "attention_size", "image_size", "beam",
                              "max_length", "train_scenes", "valid_scenes", "max_objects",
                              "batch"))
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got "
                             f"{self.attention!r}")
        if self.image_size < 32:
            raise ValueError(f"image-size must be at least 32, got {self.image_size}")
        if self.schedule not in BUDGET_SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(BUDGET_SCHEDULES)}, got "
                             f"{self.schedule!r}")
        if self.attention_reg < 0:
            raise ValueError(f"attention-reg must be >= 0, got {self.attention_reg}")


# --- data: scenes or a COCO file -------------------------------------------------------------


@dataclass
class CaptionItem:
    """An image (H, W, 3) uint8, its reference captions, and the scene's objects (scenes
    only: what truthfulness checks against)."""

    image: np.ndarray
    references: list[str]
    objects: tuple | None = None
    name: str = ""


def words_of(caption: str) -> list[str]:
    """A caption as words: lower case, split on whitespace, a final full stop dropped."""
    return caption.lower().replace(" .", "").rstrip(".").split()


def scene_items(first_seed: int, count: int, config: CaptionConfig) -> list[CaptionItem]:
    return [_scene_item(first_seed + k, config) for k in range(count)]


def _scene_item(seed: int, config: CaptionConfig) -> CaptionItem:
    scene = shapes_scene(seed, config.image_size, config.max_objects)
    return CaptionItem(scene.image, scene.references, scene.objects, f"scene {seed}")


def file_items(annotations: PathLike, images: PathLike, size: int,
               console: Console | None = None) -> list[CaptionItem]:
    data = read_coco(annotations, images, need="captions")
    if console is not None:
        console.print(data.summary("captions"))
    return [CaptionItem(load_image(i.path, size)[0], list(i.captions), None, i.path.name)
            for i in data.images]


def make_vocabulary(captions: Sequence[str] | None = None) -> Vocabulary:
    """The scene grammar's words (no captions given) or the words of ``captions``; ``<eos>``
    (id 0: start and end of every caption) and ``<unk>`` first."""
    words = WORDS if captions is None else sorted({w for c in captions for w in words_of(c)})
    return Vocabulary("word", (EOS, UNK, *[w for w in words if w not in (EOS, UNK)]))


def encode(vocab: Vocabulary, caption: str) -> list[int]:
    unk = vocab.index(UNK)
    return [vocab.index(w) if w in vocab else unk for w in words_of(caption)]


def training_batches(items: Sequence[CaptionItem] | None, config: CaptionConfig,
                     vocab: Vocabulary) -> Iterator[Any]:
    """Endless batches: every epoch the images in a new order, each with a random one of its
    references. ``items`` None: the scenes of seeds 0 .. train_scenes - 1, drawn as needed."""
    rng = random.Random(config.seed)
    count = config.train_scenes if items is None else len(items)
    order = list(range(count))
    eos = vocab.index(EOS)
    while True:
        rng.shuffle(order)
        for start in range(0, count - config.batch + 1 if count >= config.batch else 1,
                           config.batch):
            chunk = [items[i] if items is not None
                     else _scene_item(SEEDS["train"] + i, config)
                     for i in order[start:start + config.batch]]
            captions = [encode(vocab, rng.choice(c.references)) for c in chunk]
            yield caption_batch([c.image for c in chunk], captions, eos)


class CaptionStep:
    """Cross-entropy of the next word (nats, mean over words) plus ``attention_reg`` times the
    doubly stochastic penalty; reports word accuracy and the words as tokens."""

    def __init__(self, attention_reg: float = 0.0) -> None:
        self.attention_reg = attention_reg

    def __call__(self, model: nn.Module, batch: Any) -> StepOutput:
        logits, alphas = model(batch.extras["images"], batch.inputs)
        mask = batch.mask
        loss = F.cross_entropy(logits[mask], batch.targets[mask])
        if alphas is not None and self.attention_reg:
            loss = loss + self.attention_reg * attention_penalty(alphas, mask)
        right = float((logits[mask].argmax(1) == batch.targets[mask]).float().mean())
        return StepOutput(loss, batch.batch_size, int(mask.sum()), {"accuracy": right})


# --- decoding ------------------------------------------------------------------------------------


@torch.no_grad()
def caption_images(model: Captioner, vocab: Vocabulary, images: Sequence[np.ndarray],
                   beam: int = 3, max_length: int = 24, batch_size: int = EVAL_BATCH
                   ) -> list[str]:
    """A caption per image (H, W, 3) uint8, by beam search of width ``beam`` (greedy for 1)
    through ``lstmlab.models.decoding``."""
    model.eval()
    device = next(model.parameters()).device
    eos = vocab.index(EOS)
    out: list[str] = []
    for start in range(0, len(images), batch_size):
        pixels = to_tensor(images[start:start + batch_size]).to(device)
        tokens = torch.full((pixels.shape[0],), eos, dtype=torch.long, device=device)
        state = model.start(pixels)
        if beam == 1:
            decoded = greedy(model, tokens, state, max_length=max_length, end_token=eos)
            rows = [ids[:n].tolist() for ids, n in zip(decoded.tokens, decoded.lengths,
                                                       strict=True)]
        else:
            found = beam_search(model, tokens, state, width=beam, max_length=max_length,
                                end_token=eos)
            rows = [hyps[0].tokens for hyps in found]
        out += [" ".join(vocab.symbols[t] for t in row if t != eos) for row in rows]
    return out


@torch.no_grad()
def attention_maps(model: Captioner, vocab: Vocabulary, image: np.ndarray, caption: str
                   ) -> np.ndarray:
    """The attention weights (N + 1, Hg, Wg) of a soft-attention captioner over ``image``
    while it reads ``caption`` (N words, then the end)."""
    if model.attention != "soft":
        raise ValueError("this captioner has no attention (trained with --attention none); "
                         "train one with --attention soft to see where it looks")
    eos = vocab.index(EOS)
    tokens = torch.tensor([eos, *encode(vocab, caption)], dtype=torch.long)[:, None]
    device = next(model.parameters()).device
    _, alphas = model(to_tensor([image]).to(device), tokens.to(device))
    return alphas[:, 0].view(-1, *model.grid_shape).cpu().numpy()


# --- scores --------------------------------------------------------------------------------------


@dataclass
class CaptionScores:
    """Scores of generated captions (fractions in [0, 1]; BLEU-4 in [0, 100]); truthful is
    None without scene objects."""

    images: int
    bleu4: float
    exact_match: float
    truthful: float | None

    def summary(self) -> str:
        truth = f", truthful {100 * self.truthful:.2f}%" if self.truthful is not None else ""
        return (f"{self.images:,} images: BLEU-4 {self.bleu4:.2f}, exact match "
                f"{100 * self.exact_match:.2f}%{truth}")


def score_captions(captions: Sequence[str], items: Sequence[CaptionItem]) -> CaptionScores:
    """BLEU-4 (sacreBLEU's corpus BLEU against every reference), exact match and truthfulness
    (scenes only) of one caption per item."""
    try:
        import sacrebleu
    except ImportError:  # pragma: no cover - an install without the translate extra
        raise ValueError("BLEU needs sacrebleu: pip install 'lstmlab[translate]'") from None
    most = max(len(i.references) for i in items)
    streams = [[" ".join(words_of(i.references[k])) if k < len(i.references) else None
                for i in items] for k in range(most)]
    bleu = sacrebleu.corpus_bleu(list(captions), streams).score
    exact = sum(c in {" ".join(words_of(r)) for r in i.references}
                for c, i in zip(captions, items, strict=True)) / len(items)
    truth = None
    if all(i.objects is not None for i in items):
        truth = sum(truthful(c, i.objects) for c, i in zip(captions, items, strict=True)) \
            / len(items)
    return CaptionScores(len(items), bleu, exact, truth)


# --- training ------------------------------------------------------------------------------------


@dataclass
class CaptionResult(RunRecord):
    """What a training run reached."""

    config: CaptionConfig
    out: str | None
    data: str
    vocabulary: int
    parameters: int
    train_images: int
    steps: int
    epochs: float
    seconds: float
    stopped_by: str
    best_valid: float | None
    history: list[dict[str, float]] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> str:
        valid = (f"; best validation error {self.best_valid:.4f}"
                 if self.best_valid is not None else "")
        return self.run_line() + valid


def build_model(config: CaptionConfig, vocab: Vocabulary) -> Captioner:
    return Captioner(len(vocab), config.cell, config.attention, config.embedding,
                     config.hidden, config.attention_size, image_size=config.image_size,
                     dropout=config.dropout)


def train_captioner(annotations: PathLike | None = None, images: PathLike | None = None, *,
                    out: PathLike | None = None, minutes: float | None = None,
                    epochs: float | None = None, steps: int | None = None,
                    eval_every: int | None = None, progress: bool = True,
                    console: Console | None = None, device: str | None = None,
                    **options: Any) -> CaptionResult:
    """Train a captioner on the generated shapes scenes (no annotations) or on a COCO-style
    captions file with its image folder.

    Args:
        annotations, images: the COCO-style JSON and the image folder (both or neither).
        out: the run directory (the best-validation model as ``best``); None: nothing kept.
        minutes / epochs / steps: budgets, the first reached stops (none: 10 epochs).
        eval_every: steps between validations (default: 500, or one epoch if shorter).
        **options: the fields of ``CaptionConfig``.
    """
    console = console or Console(stderr=True)
    config = CaptionConfig(**options)
    if (annotations is None) != (images is None):
        raise ValueError("give both a captions file and its image folder, or neither (the "
                         "generated shapes scenes)")
    torch.manual_seed(config.seed)
    if annotations is None:
        vocab = make_vocabulary()
        train_items, count = None, config.train_scenes
        valid_items = scene_items(SEEDS["valid"], config.valid_scenes, config)
        data = (f"shapes scenes: train seeds 0..{config.train_scenes - 1}, valid seeds "
                f"{SEEDS['valid']}..{SEEDS['valid'] + config.valid_scenes - 1}")
    else:
        every = file_items(annotations, images, config.image_size, console)
        if len(every) < 2:
            raise DataError(f"{annotations}: need at least 2 captioned images to train and "
                            "validate")
        order = list(range(len(every)))
        random.Random(0).shuffle(order)
        held = min(len(every) - 1, max(1, round(config.valid_fraction * len(every))))
        valid_items = [every[i] for i in sorted(order[:held])]
        train_items = [every[i] for i in sorted(order[held:])]
        count = len(train_items)
        vocab = make_vocabulary([c for i in train_items for c in i.references])
        data = f"{annotations} ({count:,} train, {held:,} valid images)"
    model = build_model(config, vocab)
    spe = steps_per_epoch(count, config.batch)
    loop = train_config(config, spe, minutes=minutes, epochs=epochs, steps=steps,
                        progress=progress, device=device,
                        loop={"schedule": config.schedule})
    console.print(f"data: {data}\nmodel: {model.cell_name} decoder, attention "
                  f"{config.attention}, {sum(p.numel() for p in model.parameters()):,} "
                  f"parameters; vocabulary {len(vocab)} words; {spe:,} steps per epoch")
    eos = vocab.index(EOS)
    valid_pixels = [i.image for i in valid_items]

    def valid_error(model: nn.Module) -> float:
        if valid_items[0].objects is not None:  # scenes: truthfulness first, then exactness
            found = caption_images(model, vocab, valid_pixels, beam=1,
                                   max_length=config.max_length)
            s = score_captions(found, valid_items)
            return (1 - s.truthful) + 0.1 * (1 - s.exact_match)
        total = words = 0.0
        for start in range(0, len(valid_items), EVAL_BATCH):
            chunk = valid_items[start:start + EVAL_BATCH]
            batch = caption_batch([c.image for c in chunk],
                                  [encode(vocab, c.references[0]) for c in chunk], eos)
            batch = batch.to(next(model.parameters()).device)
            logits, _ = model(batch.extras["images"], batch.inputs)
            total += float(F.cross_entropy(logits[batch.mask], batch.targets[batch.mask],
                                           reduction="sum"))
            words += int(batch.mask.sum())
        return total / words

    def report(trainer: Any, error: float, improved: bool) -> None:
        s = trainer.state
        console.print(f"step {s.step:,} ({s.sequences / count:.2f} epochs, "
                      f"{s.seconds / 60:.1f} min): validation error {error:.4f}"
                      + ("  [best]" if improved else ""))

    extra = {"vocabulary": vocab.to_dict(), "config": asdict(config), "data": data}
    save = (lambda m: save_model(m, out, extra)) if out is not None else None
    run = fit(model, loop, CaptionStep(config.attention_reg if config.attention == "soft"
                                       else 0.0),
              training_batches(train_items, config, vocab), error=valid_error,
              eval_every=eval_every or min(500, spe), save=save, report=report,
              console=console, description=f"caption {model.cell_name} {config.attention}")
    s = run.train.state
    return CaptionResult(config, None if out is None else str(out), data, len(vocab),
                         sum(p.numel() for p in model.parameters()), count, s.step,
                         s.sequences / count, s.seconds, run.stopped_by, run.best,
                         list(run.train.history), run.validations)


# --- a saved captioner ---------------------------------------------------------------------------


@dataclass
class LoadedCaptioner:
    model: Captioner
    vocab: Vocabulary
    config: CaptionConfig
    path: Path


def load_captioner(path: PathLike) -> LoadedCaptioner:
    """A captioner saved by ``train_captioner`` (its run directory or ``best.json``)."""
    model, extra, index = load_model(path, KIND, "caption")
    return LoadedCaptioner(model, Vocabulary.from_dict(extra["vocabulary"]),
                           CaptionConfig(**extra["config"]), index)


@dataclass
class CaptionReport:
    """The scores of a saved captioner on a data set, and a sample of what it said."""

    model: str
    data: str
    scores: CaptionScores
    beam: int
    examples: list[dict[str, Any]]
    gallery: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_captioner(path: PathLike, annotations: PathLike | None = None,
                       images: PathLike | None = None, *, scenes: int = 1000,
                       beam: int | None = None, out: PathLike | None = None,
                       gallery: int = 24) -> CaptionReport:
    """Score a saved captioner on fresh scenes (evaluation seeds, never trained on) or on a
    COCO-style file; with ``out``, write ``gallery.html`` there (``gallery`` images with their
    captions, and attention maps for a soft-attention model) and ``report.json``."""
    loaded = load_captioner(path)
    config = loaded.config
    if (annotations is None) != (images is None):
        raise ValueError("give both a captions file and its image folder, or neither (fresh "
                         "shapes scenes)")
    if annotations is None:
        items = scene_items(SEEDS["eval"], scenes, config)
        data = f"{scenes:,} fresh shapes scenes (seeds {SEEDS['eval']}..)"
    else:
        items = file_items(annotations, images, config.image_size)
        data = str(annotations)
    beam = beam or config.beam
    found = caption_images(loaded.model, loaded.vocab, [i.image for i in items], beam,
                           config.max_length)
    scores = score_captions(found, items)
    examples = [{"image": i.name, "caption": c, "references": i.references,
                 "truthful": None if i.objects is None else truthful(c, i.objects)}
                for i, c in zip(items[:gallery], found, strict=False)]
    report = CaptionReport(str(loaded.path), data, scores, beam, examples)
    if out is not None:
        report.gallery = str(write_gallery(loaded, items[:gallery], found[:gallery], report,
                                           Path(out)))
        (Path(out) / "report.json").write_text(_json(report.to_dict()))
    return report


def _json(document: dict) -> str:
    import json

    return json.dumps(document, indent=1) + "\n"


def write_gallery(loaded: LoadedCaptioner, items: Sequence[CaptionItem], captions: Sequence[str],
                  report: CaptionReport, out: Path) -> Path:
    from lstmlab.viz.vision import (
        GalleryItem,
        attention_figure,
        draw_boxes,
        gallery_html,
        png_bytes,
    )

    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for item, caption in zip(items, captions, strict=True):
        if loaded.model.attention == "soft" and caption:
            png = attention_figure(item.image, caption.split() + ["<end>"],
                                   attention_maps(loaded.model, loaded.vocab, item.image,
                                                  caption))
        else:
            png = png_bytes(draw_boxes(item.image, [], scale=3))
        lines = [f"{item.name}: \u201c{caption}\u201d"]
        if item.objects is not None:
            lines.append("truthful" if truthful(caption, item.objects) else "NOT truthful")
        lines.append("reference: " + item.references[0])
        entries.append(GalleryItem(png, lines))
    page = gallery_html(f"captions of {loaded.path.parent.name}", entries,
                        f"{report.data}; beam {report.beam}; {report.scores.summary()}")
    path = out / "gallery.html"
    path.write_text(page, encoding="utf-8")
    return path


def describe_image(path: PathLike, image: PathLike, beam: int | None = None,
                   attention_out: PathLike | None = None) -> str:
    """The caption of an image file (resized to the model's size); with ``attention_out``, a
    PNG of where a soft-attention model looked for each word."""
    loaded = load_captioner(path)
    pixels, _ = load_image(image, loaded.config.image_size)
    caption = caption_images(loaded.model, loaded.vocab, [pixels], beam or loaded.config.beam,
                             loaded.config.max_length)[0]
    if attention_out is not None:
        from lstmlab.viz.vision import attention_figure

        attention_figure(pixels, caption.split() + ["<end>"],
                         attention_maps(loaded.model, loaded.vocab, pixels, caption),
                         attention_out)
    return caption
