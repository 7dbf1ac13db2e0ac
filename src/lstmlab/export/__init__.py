"""Export of lstmlab models for other runtimes: ONNX (``to_onnx``, onnxruntime and any ONNX
runtime) and the web (``to_web``, a manifest and weights for the plain-JS runtime).

Both are thin wrappers that import their module on first use, so ``import lstmlab.export`` needs
neither the onnx package (the "export" extra) nor the web export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn


def to_onnx(module: nn.Module, path: str | Path, **options: Any) -> Path:
    """Write ``module`` as an ONNX model file; see ``lstmlab.export.onnx.to_onnx``."""
    from lstmlab.export.onnx import to_onnx as export

    return export(module, path, **options)


def to_web(module: nn.Module, out_dir: str | Path, **options: Any) -> Path:
    """Write ``module`` for the plain-JS runtime; see ``lstmlab.export.web.to_web``."""
    from lstmlab.export.web import to_web as export

    return export(module, out_dir, **options)


__all__ = ["to_onnx", "to_web"]
