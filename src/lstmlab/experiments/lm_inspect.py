"""Inside a trained language model: the cells that track quotes, brackets, position in line and
word starts, and an HTML page of the text coloured by a cell (Karpathy, Johnson & Fei-Fei 2015).

    >>> inspect("runs/shakespeare", out="cells.html").findings[:3]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor

from lstmlab.experiments.lm_eval import LoadedModel, known_tokens, load_language_model
from lstmlab.experiments.lm_sample import sample
from lstmlab.layers import tracing
from lstmlab.models.language import LanguageModel
from lstmlab.tasks.text import EOS, default_corpus_text, read_text, split_files

FEATURES = ("inside quotes", "inside brackets", "position in line", "start of word")
_OPEN, _CLOSE = "([{", ")]}"


def text_features(tokens: list[str]) -> dict[str, np.ndarray]:
    """Per-token features (float arrays (N,)), each describing the text up to and including
    token t (the cell state at t has read it):

    - inside quotes: 1 after an opening '"' up to (not including) the closing one;
    - inside brackets: 1 while (, [ or { is open (nesting counted);
    - position in line: tokens since the last line break (0 at the break);
    - start of word: 1 on the first letter or digit of a word (char level), on every word
      at word level.
    """
    n = len(tokens)
    quotes, brackets, position, start = (np.zeros(n) for _ in range(4))
    inside, depth, column, previous = False, 0, 0, "\n"
    for t, token in enumerate(tokens):
        text = "\n" if token == EOS else token
        for ch in text:
            if ch == '"':
                inside = not inside
            elif ch in _OPEN:
                depth += 1
            elif ch in _CLOSE:
                depth = max(0, depth - 1)
        column = 0 if text == "\n" else column + 1
        quotes[t], brackets[t], position[t] = inside and text != '"', depth > 0, column
        if len(text) == 1:
            start[t] = text.isalnum() and not previous.isalnum()
        else:
            start[t] = text != "\n"
        previous = text[-1] if text else previous
    return {"inside quotes": quotes, "inside brackets": brackets,
            "position in line": position, "start of word": start}


@dataclass
class CellFinding:
    """A cell that tracks a feature: Pearson correlation r of its state with the feature."""

    feature: str
    cell: int  # layer * hidden + unit
    layer: int
    unit: int
    r: float

    @property
    def name(self) -> str:
        return f"cell {self.cell} (layer {self.layer + 1}, unit {self.unit})"


@dataclass
class InspectResult:
    """The cells most correlated with each feature, the cell shown, and the HTML page."""

    tokens: int
    findings: list[CellFinding]
    shown: int
    html: Path | None
    skipped: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "findings": [asdict(f) for f in self.findings],
                "shown": self.shown, "html": None if self.html is None else str(self.html),
                "skipped": self.skipped}


@torch.no_grad()
def cell_states(model: LanguageModel, ids: Tensor, window: int = 256) -> np.ndarray:
    """Every layer's cell state after each token of ids (N,): an array (N, L*H), layer-major
    (LSTM: the memory c_t; GRU and RNN: the state h_t). Runs one sequence in windows,
    carrying the state."""
    model.eval()
    name = "c" if model.cell.startswith("lstm") else "h"
    chunks, state = [], None
    for start in range(0, len(ids), window):
        piece = ids[start:start + window].unsqueeze(1)
        with tracing(model) as recording:
            _, state = model(piece, state)
        trace = recording[0]
        chunks.append(torch.cat([trace[k][name][:, 0] for k in range(len(trace))], dim=1))
    return torch.cat(chunks).double().numpy()


def _correlations(states: np.ndarray, feature: np.ndarray) -> np.ndarray | None:
    """Pearson r of each column of states (N, C) with feature (N,); None if it is constant."""
    f = feature - feature.mean()
    if not np.any(f):
        return None
    s = states - states.mean(0)
    denominator = np.sqrt((s * s).sum(0) * (f * f).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (s * f[:, None]).sum(0) / denominator
    return np.nan_to_num(r)


def _parse_cell(cell: int | str, layers: int, hidden: int) -> int:
    if isinstance(cell, str) and ":" in cell:
        layer, _, unit = cell.partition(":")
        try:
            layer_i, unit_i = int(layer) - 1, int(unit)
        except ValueError:
            raise ValueError(f"--cell is N or LAYER:UNIT (layers from 1), got {cell!r}"
                             ) from None
        if not (0 <= layer_i < layers and 0 <= unit_i < hidden):
            raise ValueError(f"--cell {cell}: the model has layers 1..{layers} of units "
                             f"0..{hidden - 1}")
        return layer_i * hidden + unit_i
    try:
        index = int(cell)
    except ValueError:
        raise ValueError(f"--cell is N or LAYER:UNIT (layers from 1), got {cell!r}") from None
    if not 0 <= index < layers * hidden:
        raise ValueError(f"--cell {index} is out of range: the model has {layers * hidden} "
                         f"cells (0..{layers * hidden - 1}; or LAYER:UNIT)")
    return index


def _default_inspect_text(loaded: LoadedModel, max_tokens: int) -> str:
    """The validation text of the run (its first tokens), or a sample from the model."""
    lm = loaded.lm
    config = lm.get("config", {})
    source = lm.get("source")
    try:
        if source is None and config:
            text = default_corpus_text()
            start = int(len(text) * (1 - config.get("valid_fraction", 0.1)))
            return text[start:start + max_tokens]
        if source is not None and Path(source).exists():
            found = split_files(source)
            if found is not None and found[1] is not None:
                return read_text(found[1])
            text = read_text(source)
            start = int(len(text) * (1 - config.get("valid_fraction", 0.1)))
            return text[start:][:max_tokens] if loaded.vocab.level == "char" else text[start:]
    except (OSError, ValueError):
        pass
    return "".join(sample(loaded.path, length=max_tokens, temperature=0.8, seed=0))


def inspect(checkpoint: str | Path, text: str | None = None, *,
            out: str | Path | None = "inspect.html", cell: int | str | None = None,
            top: int = 3, max_tokens: int = 4000, console: Console | None = None,
            skip_unknown: bool = False) -> InspectResult:
    """Find the cells that track quotes, brackets, position in line and word starts, and
    write an HTML page of the text coloured by a cell's state (Karpathy, Johnson & Fei-Fei
    2015, "Visualizing and Understanding Recurrent Networks").

    Args:
        checkpoint: a run directory or checkpoint file.
        text: the text to read (default: the start of the run's validation text, else a
            sample from the model); at most ``max_tokens`` tokens are used.
        out: the HTML file to write (None: none).
        cell: the cell to colour the text by: an index over all cells, layer-major, or
            "LAYER:UNIT" with layers from 1 (default: the cell most correlated with any
            feature). The page also shows the top cell of each feature.
        top: cells listed per feature.
        console: where to print the summary table (None: no printing).
        skip_unknown: leave out symbols the vocabulary lacks (it has no ``<unk>``) instead
            of refusing the text.

    Returns:
        ``InspectResult``: findings sorted by |r| within each feature.
    """
    loaded = load_language_model(checkpoint)
    model, vocab = loaded.model, loaded.vocab
    layers, hidden = model.num_layers, model.hidden_size
    shown = None if cell is None else _parse_cell(cell, layers, hidden)
    if text is None:
        text = _default_inspect_text(loaded, max_tokens)
    tokens, left_out = known_tokens(vocab, text, "inspect text", skip_unknown)
    tokens = tokens[:max_tokens]
    if len(tokens) < 2:
        raise ValueError(f"inspect needs a text of at least 2 tokens, got {len(tokens)}")
    ids = torch.tensor(vocab.lookup(tokens), dtype=torch.long)
    if left_out and console is not None:
        console.print(f"{left_out:,} unknown tokens left out")
    states = cell_states(model, ids)  # (N, L*H)
    findings, skipped = [], []
    for name, feature in text_features(tokens).items():
        r = _correlations(states, feature)
        if r is None:
            skipped.append(name)
            continue
        for index in np.argsort(-np.abs(r))[:top]:
            findings.append(CellFinding(name, int(index), int(index) // hidden,
                                        int(index) % hidden, float(r[index])))
    if shown is None:
        shown = max(findings, key=lambda f: abs(f.r)).cell if findings else 0
    html_path = None
    if out is not None:
        from lstmlab.viz.text_html import CellPanel, render_cells_html

        panels, seen = [], set()
        chosen = [f for f in findings if f.cell == shown]
        label = (f"{chosen[0].feature}, r = {chosen[0].r:+.2f}" if chosen else "chosen cell")
        panels.append(CellPanel(f"cell {shown} (layer {shown // hidden + 1}, unit "
                                f"{shown % hidden})", label, states[:, shown]))
        seen.add(shown)
        for f in findings:
            if f.cell not in seen and f == next(g for g in findings if g.feature == f.feature):
                panels.append(CellPanel(f.name, f"{f.feature}, r = {f.r:+.2f}",
                                        states[:, f.cell]))
                seen.add(f.cell)
        title = f"lstmlab cells: {loaded.lm.get('corpus', loaded.path.parent.name)}"
        page = render_cells_html(tokens, panels, title=title,
                                 findings=[(f.feature, f.name, f.r) for f in findings],
                                 subtitle=f"{model.cell} {layers}x{hidden}, "
                                          f"{loaded.path}; {len(tokens):,} tokens; "
                                          "colour = tanh of the cell state",
                                 word_level=vocab.level == "word")
        html_path = Path(out)
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(page, encoding="utf-8")
    result = InspectResult(len(tokens), findings, shown, html_path, skipped)
    if console is not None:
        table = Table(title=f"Most interpretable cells ({len(tokens):,} tokens read)")
        for column in ("feature", "cell", "layer", "unit", "r"):
            table.add_column(column, justify="right" if column != "feature" else "left")
        for f in findings:
            table.add_row(f.feature, str(f.cell), str(f.layer + 1), str(f.unit), f"{f.r:+.3f}")
        console.print(table)
        if skipped:
            console.print(f"not in this text (constant): {', '.join(skipped)}")
        if html_path is not None:
            console.print(f"wrote {html_path} (text coloured by cell {shown})")
    return result

