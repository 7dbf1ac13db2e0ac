"""How fast: the paths a layer runs on, and the switch that picks one.

Paths:
    loop    the reference: the plain step loop of ``lstmlab.layers`` (autograd through every op).
            Always used while tracing (``return_trace=True`` or ``lstmlab.tracing``).
    native  PyTorch's own kernels (torch.lstm / gru / rnn_tanh / rnn_relu: oneDNN on CPU, cuDNN on
            GPU) on the layer's own parameters: NP LSTM, GRU and RNN.
    fused   one autograd function per layer-direction with the hand-derived backward through time
            of any LSTM variant (``lstmlab.kernels.fused``); its time loop is compiled C++
            (built on first use) or, without a compiler, PyTorch. GRU and RNN have no fused
            kernel of their own: under "fused" they run native.
    auto    (default) native where it applies, else fused; loop while tracing.

Pick one for a block of code, or for one layer:

    >>> with lstmlab.kernels.use("loop"):           # everything inside runs the reference loop
    ...     out, state = lstm(x)
    >>> with lstmlab.kernels.use("fused", compiled=False):   # the PyTorch fused loop
    ...     out, state = lstm(x)
    >>> lstm.kernel = "fused"                        # this layer, outside any ``use`` block

``use`` wins over a layer's ``kernel``. The environment variable LSTMLAB_KERNEL sets the default
path and LSTMLAB_COMPILED=0 switches the compiled loop off.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from lstmlab.cells import VARIANTS

if TYPE_CHECKING:
    from lstmlab.layers import RecurrentLayer

PATHS = ("auto", "loop", "native", "fused")

_choice: ContextVar[tuple[str | None, bool | None]] = ContextVar("lstmlab_kernel",
                                                                  default=(None, None))


def check_path(path: str) -> str:
    if path not in PATHS:
        raise ValueError(f"kernel path must be one of {', '.join(PATHS)}; got {path!r}")
    return path


@contextmanager
def use(path: str = "auto", *, compiled: bool | None = None) -> Iterator[None]:
    """Run every lstmlab layer inside the block on ``path`` ("auto", "loop", "native", "fused").

    ``compiled`` (fused path): True requires the C++ loop, False forces the PyTorch loop, None
    uses the C++ loop where it is available.
    """
    token = _choice.set((check_path(path), compiled))
    try:
        yield
    finally:
        _choice.reset(token)


def default_path() -> str:
    """The path when neither ``use`` nor the layer says: $LSTMLAB_KERNEL, else "auto"."""
    return check_path(os.environ.get("LSTMLAB_KERNEL", "auto").strip().lower() or "auto")


def native_computes(layer: RecurrentLayer) -> bool:
    """Whether PyTorch's native kernels compute this layer (NP LSTM, GRU, RNN)."""
    spec = getattr(layer, "spec", None)
    return spec is None or spec == VARIANTS["NP"]


def choose(layer: RecurrentLayer, recording: bool) -> tuple[str, bool | None]:
    """The path ("loop", "native" or "fused") a layer takes now, and the ``compiled`` choice."""
    path, compiled = _choice.get()
    if path is None:
        path = layer.kernel
    if path == "auto":
        path = default_path()
    if recording or path == "loop":
        return "loop", compiled
    native = native_computes(layer)
    if path == "native" and not native:
        raise ValueError(f"kernel 'native': PyTorch's kernels compute only the NP LSTM, GRU and "
                         f"RNN, not the LSTM variant {layer.spec.name}; use 'fused' or 'auto'")
    if path == "fused" and hasattr(layer, "spec"):
        return "fused", compiled
    return ("native" if native else "fused"), compiled


__all__ = ["PATHS", "choose", "default_path", "native_computes", "use"]
