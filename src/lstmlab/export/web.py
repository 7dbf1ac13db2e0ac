"""The web export: a self-contained folder that runs a model in plain JavaScript.

    >>> to_web(lstmlab.LSTM(8, 16, variant="CIFG"), "out/cifg")      # a bare layer
    >>> to_web(lstmlab.load("runs/lm"), "out/lm", extra=saved.extra)   # a model and its vocabulary
    >>> to_web("runs/lm", "out/lm", force=True)                        # a saved model's folder

writes

    OUT/manifest.json   {"format": "lstmlab-web", "version": 1, "kind", "config", "layers",
                         "vocabulary", "labels", "weights": "weights.bin",
                         "tensors": {name: {"dtype": "float32", "shape", "offset", "length"}}}
    OUT/weights.bin     every tensor of the model's state_dict, little-endian float32, in the
                        table's order (byte offsets multiples of 4)
    OUT/lstmlab.js      the runtime (an ES module: ``await load("OUT/manifest.json")``)
    OUT/train.js        the in-browser trainer (BPTT, the distracted sequence recall task)

Each recurrent layer is described by its cell ("lstm", "gru", "rnn"), the LSTM's switches
(``LSTMSpec`` fields: the runtime reads them, never a variant's name), the RNN's nonlinearity,
sizes, layers, directions, bias and projection, and the prefix of its tensors' names. Tensor
names are the model's ``state_dict`` keys (docs/design.md, 'Parameter layout').

The folder is written beside its final place and renamed into it, so an export is whole or
absent; an existing folder is refused unless ``force`` (then replaced).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lstmlab.layers import GRU, LSTM, RNN, RecurrentLayer
from lstmlab.models.registry import kind_of, load_saved

FORMAT = "lstmlab-web"
VERSION = 1
MODEL_KINDS = ("sequence", "language_model", "classifier", "tagger", "music")
"""Registered model kinds that export (besides bare layers: lstm, gru, rnn)."""
LAYER_KINDS = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn", "RNN_RELU": "rnn"}
JS_FILES = ("lstmlab.js", "train.js")
JS_DIR = Path(__file__).with_name("js")


def layer_description(layer: RecurrentLayer, prefix: str = "") -> dict[str, Any]:
    """A recurrent layer as the manifest describes it (the runtime's "layers" entry)."""
    cell = LAYER_KINDS[layer.mode]
    desc: dict[str, Any] = {
        "cell": cell, "input_size": layer.input_size, "hidden_size": layer.hidden_size,
        "num_layers": layer.num_layers, "bidirectional": layer.bidirectional,
        "bias": layer.bias, "proj_size": layer.proj_size, "prefix": prefix,
    }
    if cell == "lstm":
        desc["variant"] = layer.spec.name  # for people; the runtime reads the switches
        desc["spec"] = dataclasses.asdict(layer.spec)
    if cell == "rnn":
        desc["nonlinearity"] = layer.nonlinearity
    return desc


def _bare_layer(module: nn.Module) -> RecurrentLayer | None:
    """module as an lstmlab layer if it is a bare layer (lstmlab's or torch.nn's), else None."""
    if isinstance(module, RecurrentLayer):
        return module
    for torch_class, ours in ((nn.LSTM, LSTM), (nn.GRU, GRU), (nn.RNN, RNN)):
        if type(module) is torch_class:
            return ours.from_torch(module)
    return None


def _describe(module: nn.Module, extra: dict[str, Any]) -> dict[str, Any]:
    """kind, config, layers, vocabulary, labels of ``module`` (ValueError if it cannot go)."""
    layer = _bare_layer(module)
    if layer is not None:
        config = {"input_size": layer.input_size, "hidden_size": layer.hidden_size,
                  "num_layers": layer.num_layers, "bidirectional": layer.bidirectional}
        return {"kind": LAYER_KINDS[layer.mode], "config": config,
                "layers": {"recurrent": layer_description(layer)}}
    try:
        kind = kind_of(module)
    except ValueError:
        kind = type(module).__name__
    if kind not in MODEL_KINDS:
        raise ValueError(f"cannot export a {kind!r} model to the web; exportable: bare layers "
                         f"(lstmlab.LSTM / GRU / RNN or torch.nn's) and the model kinds "
                         f"{', '.join(MODEL_KINDS)}")
    if kind == "sequence" and module.direct is not None:
        raise ValueError("cannot export a sequence model whose outputs also read the inputs "
                         "(direct=True) to the web: the JavaScript runtime has no such path; "
                         "export it to ONNX (lstmlab export onnx)")
    description: dict[str, Any] = {"kind": kind, "config": module.config(),
                                   "layers": {"recurrent": layer_description(module.recurrent,
                                                                             "recurrent.")}}
    if kind in ("classifier", "tagger") and module.words.char_vocab_size:
        description["layers"]["char_layer"] = layer_description(module.words.char_layer,
                                                                "words.char_layer.")
    if "vocabulary" in extra:
        description["vocabulary"] = extra["vocabulary"]
    labels = extra.get("labels", extra.get("tags"))
    if labels is not None:
        description["labels"] = list(labels)
    return description


def _weights(module: nn.Module) -> tuple[bytes, dict[str, dict[str, Any]]]:
    """The state_dict as little-endian float32 bytes and the manifest's table of them."""
    layer = _bare_layer(module)
    state = (layer if layer is not None else module).state_dict()
    table: dict[str, dict[str, Any]] = {}
    chunks: list[bytes] = []
    offset = 0
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            raise ValueError(f"tensor {name} is {tensor.dtype}; the web export holds float32 "
                             "weights only")
        data = tensor.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4")
        raw = data.tobytes()
        table[name] = {"dtype": "float32", "shape": list(tensor.shape), "offset": offset,
                       "length": int(data.size)}
        chunks.append(raw)
        offset += len(raw)
    return b"".join(chunks), table


def manifest_and_weights(module: nn.Module,
                         extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], bytes]:
    """The manifest (a JSON-ready dict) and the weights' bytes of ``module``, without files."""
    description = _describe(module, dict(extra or {}))
    weights, table = _weights(module)
    manifest = {"format": FORMAT, "version": VERSION, **description,
                "weights": "weights.bin", "tensors": table}
    json.dumps(manifest, allow_nan=False)  # the vocabulary and labels must be plain JSON
    return manifest, weights


def to_web(model: nn.Module | str | Path, out_dir: str | Path, *, force: bool = False,
           extra: dict[str, Any] | None = None) -> Path:
    """Export ``model`` to the folder ``out_dir`` for ``lstmlab.js``; returns the folder.

    Args:
        model: a bare layer (lstmlab.LSTM of any variant, GRU, RNN, or torch.nn's), a model of
            an exportable kind (``MODEL_KINDS``), or the path of a saved model (whose ``extra``
            then gives the vocabulary and labels).
        out_dir: the folder to create; it must not exist unless ``force``.
        force: replace an existing folder.
        extra: a saved model's extra data ("vocabulary", "labels" or "tags") for a module.
    """
    if isinstance(model, (str, Path)):
        saved = load_saved(model)
        model, extra = saved.model, {**saved.extra, **(extra or {})}
    if not isinstance(model, nn.Module):
        raise TypeError(f"to_web exports a torch module or a saved model's path, got "
                        f"{type(model).__name__}")
    out = Path(out_dir)
    if out.exists() and not force:
        raise ValueError(f"{out} exists; choose a new folder or pass force=True (--force) to "
                         "replace it")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; the web export writes a folder")
    manifest, weights = manifest_and_weights(model, extra)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    tmp.mkdir()
    try:
        (tmp / "weights.bin").write_bytes(weights)
        for name in JS_FILES:
            shutil.copyfile(JS_DIR / name, tmp / name)
        # the manifest last: a folder with a manifest has everything it names
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False)
                                           + "\n", encoding="utf-8")
        for path in tmp.iterdir():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        old = None
        if out.exists():  # force: move the old folder aside, put the new one in, drop the old
            old = out.with_name(f".{out.name}.{secrets.token_hex(4)}.old")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


__all__ = ["FORMAT", "MODEL_KINDS", "VERSION", "layer_description", "manifest_and_weights",
           "to_web"]
