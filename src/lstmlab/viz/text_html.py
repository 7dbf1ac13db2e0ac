"""Text coloured by a cell's activation, as a self-contained HTML page (no scripts, no external
files), in the style of Karpathy, Johnson & Fei-Fei (2015), "Visualizing and Understanding
Recurrent Networks": every token's background shows tanh(state) of one cell after reading it,
blue for -1, white for 0, red for +1; hovering shows the value.

    >>> page = render_cells_html(list("a (b) c"), [CellPanel("cell 3", "inside brackets",
    ...                                                      values)])
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_EOS = "<eos>"


@dataclass
class CellPanel:
    """One cell's activations over the text.

    Attributes:
        title: e.g. "cell 612 (layer 2, unit 100)".
        label: what it tracks, e.g. "inside quotes, r = +0.81".
        values: the raw state per token, (N,); shown as tanh(value).
    """

    title: str
    label: str
    values: Sequence[float] | np.ndarray


def _colour(v: float) -> str:
    """Background for an activation v in [-1, 1]: blue (-) through white to red (+)."""
    v = max(-1.0, min(1.0, v))
    if v >= 0:
        r, g, b = 255, round(255 * (1 - 0.75 * v)), round(255 * (1 - 0.8 * v))
    else:
        r, g, b = round(255 * (1 + 0.8 * v)), round(255 * (1 + 0.55 * v)), 255
    return f"#{r:02x}{g:02x}{b:02x}"


def _token_html(token: str, word_level: bool) -> tuple[str, bool]:
    """(escaped visible text, ends the line)."""
    if token in ("\n", _EOS):
        return "\u21b5", True  # a visible return sign, then a real line break
    text = html.escape(token)
    return (text + " " if word_level else text), False


def render_panel(tokens: Sequence[str], panel: CellPanel, word_level: bool = False) -> str:
    """The HTML of one panel: a heading and the text with one coloured span per token."""
    values = np.asarray(panel.values, dtype=float)
    if len(values) != len(tokens):
        raise ValueError(f"{len(tokens)} tokens but {len(values)} activation values")
    spans = []
    for token, value in zip(tokens, values, strict=True):
        a = math.tanh(value)
        text, newline = _token_html(token, word_level)
        spans.append(f'<span style="background:{_colour(a)}" title="{a:+.3f}">{text}</span>'
                     + ("\n" if newline else ""))
    return (f'<section><h2>{html.escape(panel.title)} <small>{html.escape(panel.label)}'
            f'</small></h2>\n<pre class="text">{"".join(spans)}</pre></section>')


def render_cells_html(tokens: Sequence[str], panels: Sequence[CellPanel], *,
                      title: str = "lstmlab cells", subtitle: str = "",
                      findings: Sequence[tuple[str, str, float]] = (),
                      word_level: bool = False) -> str:
    """A whole self-contained page: title, a table of (feature, cell, r) findings, a colour
    legend, and one panel per cell (the first is the chosen cell)."""
    rows = "".join(f"<tr><td>{html.escape(f)}</td><td>{html.escape(c)}</td>"
                   f"<td>{r:+.3f}</td></tr>" for f, c, r in findings)
    table = ("<table><tr><th>feature</th><th>cell</th><th>correlation r</th></tr>"
             f"{rows}</table>") if findings else ""
    legend = "".join(f'<span style="background:{_colour(v)}">{v:+.1f}</span>'
                     for v in (-1, -0.5, 0, 0.5, 1))
    body = "\n".join(render_panel(tokens, p, word_level) for p in panels)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 70em; }}
pre.text {{ font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 14px;
  white-space: pre-wrap; line-height: 1.5; border: 1px solid #ddd; padding: 0.8em; }}
pre.text span {{ padding: 1px 0; }}
h2 small {{ font-weight: normal; color: #666; margin-left: 0.8em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.8em; text-align: left; }}
.legend span {{ padding: 0.2em 0.6em; font-family: monospace; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(subtitle)}</p>
{table}
<p class="legend">tanh(cell state): {legend}</p>
{body}
</body></html>
"""
