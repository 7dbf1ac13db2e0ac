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
path and LSTMLAB_COMPILED=0 switches the compiled loop off. Inside code that torch.compile or
torch.export traces, neither ``use`` nor the environment is read (a context variable cannot be
traced): the layer's own ``kernel`` decides, and the fused path runs as the custom op
``lstmlab::fused_lstm``.

Every function here takes tensors and a spec (``LSTMSpec``, or None for GRU and RNN), never a
layer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

from lstmlab.cells import VARIANTS, LSTMSpec

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


def native_computes(spec: LSTMSpec | None) -> bool:
    """Whether PyTorch's native kernels compute a layer: an LSTM of variant ``spec`` (only NP), or
    a GRU or RNN (``spec`` None)."""
    return spec is None or spec == VARIANTS["NP"]


def traced() -> bool:
    """True inside code that torch.compile / torch.export (dynamo) or TorchScript is tracing."""
    return torch.compiler.is_compiling() or torch.jit.is_scripting()


def choose(own: str, spec: LSTMSpec | None, recording: bool) -> tuple[str, bool | None]:
    """The path ("loop", "native" or "fused") a layer takes now, and the ``compiled`` choice.

    Args:
        own: the layer's own setting (its ``kernel``).
        spec: the LSTM variant, or None for GRU and RNN.
        recording: the gates are being traced (only the loop records them).
    """
    if traced():  # the layer's own setting: no context variable, no environment
        path, compiled = own, None
    else:
        path, compiled = _choice.get()
        if path is None:
            path = own
        if path == "auto":
            path = default_path()
    if recording or path == "loop":
        return "loop", compiled
    native = native_computes(spec)
    if path == "native" and not native:
        raise ValueError(f"kernel 'native': PyTorch's kernels compute only the NP LSTM, GRU and "
                         f"RNN, not the LSTM variant {spec.name}; use 'fused' or 'auto'")
    if path == "fused" and spec is not None:
        return "fused", compiled
    return ("native" if native else "fused"), compiled


__all__ = ["PATHS", "choose", "default_path", "native_computes", "traced", "use"]
