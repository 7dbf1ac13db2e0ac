"""Pictures of the vision heads: boxes drawn on images, attention maps over an image,
precision-recall curves, and a self-contained HTML gallery (images inlined as PNG, no scripts).

    >>> picture = draw_boxes(pixels, [(boxes, scores, "red")], scale=3)   # a PIL image
    >>> attention_figure(pixels, ["a", "red", "circle"], alphas, "att.png")  # alphas (T, Hg, Wg)
    >>> pr_plot({"ReInspect": (precision, recall, ap), "NMS": ...}, "pr.png", "all images")
    >>> Path("gallery.html").write_text(gallery_html("captions", [GalleryItem(png, "a ...")]))

Inputs are plain numbers (uint8 images (H, W, 3), numpy boxes [x0, y0, x1, y1] in pixels).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    """A PIL image or a uint8 array (H, W, 3) as PNG bytes."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def draw_boxes(image: np.ndarray, sets: Sequence[tuple[np.ndarray, np.ndarray | None, str]],
               scale: int = 3, min_score: float = 0.5) -> Image.Image:
    """The image enlarged ``scale`` times with each set's boxes (N, 4) drawn in its colour;
    with scores (N,), boxes under ``min_score`` are left out and the score is written."""
    picture = Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale),
                                            Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    for boxes, scores, colour in sets:
        for k, box in enumerate(np.asarray(boxes).reshape(-1, 4)):
            if scores is not None and scores[k] < min_score:
                continue
            draw.rectangle([float(v) * scale for v in box], outline=colour, width=2)
            if scores is not None:
                draw.text((float(box[0]) * scale + 2, float(box[1]) * scale + 1),
                          f"{scores[k]:.2f}", fill=colour)
    return picture


def attention_figure(image: np.ndarray, words: Sequence[str], alphas: np.ndarray,
                     path: str | Path | None = None) -> bytes:
    """The image, then one panel per word with its attention weights (Hg, Wg) laid over the
    image (bilinear upsampling, white = looked at). Returns PNG bytes (written to ``path`` too
    when given)."""
    count = len(words) + 1
    columns = min(count, 6)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(image)
    axes.flat[0].set_title("image", fontsize=9)
    height, width = image.shape[:2]
    for k, word in enumerate(words):
        weights = np.asarray(alphas[k], dtype=np.float32)
        weights = weights / max(float(weights.max()), 1e-8)
        mask = np.asarray(Image.fromarray((weights * 255).astype(np.uint8)).resize(
            (width, height), Image.BILINEAR)) / 255.0
        ax = axes.flat[k + 1]
        ax.imshow((image * (0.25 + 0.75 * mask[..., None])).astype(np.uint8))
        ax.set_title(word, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def pr_plot(panels: dict[str, dict[str, tuple[Sequence[float], Sequence[float], float | None]]],
            path: str | Path) -> Path:
    """Precision against recall: one panel per title in ``panels``, one line per model
    ({model: (precision, recall, ap)}), AP in the legend. Writes a PNG."""
    count = len(panels)
    fig, axes = plt.subplots(1, count, figsize=(4 * count, 3.8), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items(), strict=True):
        for name, (precision, recall, ap) in curves.items():
            label = f"{name} (AP {ap:.3f})" if ap is not None else f"{name} (no boxes)"
            ax.plot(recall, precision, label=label)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="lower left")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


@dataclass
class GalleryItem:
    """One picture of a gallery (PNG bytes) and the lines of text under it."""

    png: bytes
    lines: Sequence[str]


def gallery_html(title: str, items: Sequence[GalleryItem], intro: str = "",
                 figures: Sequence[tuple[str, bytes]] = ()) -> str:
    """A self-contained HTML page: the title, an introduction, whole-width figures (caption,
    PNG), then a grid of the items."""
    def img(data: bytes) -> str:
        return f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}">'

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             "</title><style>body{font-family:sans-serif;margin:1.5em}"
             ".grid{display:flex;flex-wrap:wrap;gap:12px}.item{max-width:420px}"
             ".item p{margin:2px 0;font-size:13px}img{max-width:100%}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(f"<p>{html.escape(intro)}</p>")
    for caption, data in figures:
        parts.append(f"<h2>{html.escape(caption)}</h2>{img(data)}")
    parts.append('<div class="grid">')
    for item in items:
        lines = "".join(f"<p>{html.escape(line)}</p>" for line in item.lines)
        parts.append(f'<div class="item">{img(item.png)}{lines}</div>')
    parts.append("</div></body></html>\n")
    return "\n".join(parts)
