"""lstmlab: recurrent networks that remember.

    >>> import lstmlab
    >>> lstm = lstmlab.LSTM(8, 32, variant="CIFG")
    >>> output, (h_n, c_n) = lstm(torch.randn(100, 16, 8))
    >>> lstmlab.save(model, "runs/x", extra={...})   # a model of any registered kind
    >>> model = lstmlab.load("runs/x")                # rebuilt from its config, eval mode
"""

from lstmlab.cells import VARIANTS, GRUCell, LSTMCell, LSTMSpec, RNNCell, lstm_spec
from lstmlab.layers import (
    GRU,
    LSTM,
    RNN,
    LayerDtypeError,
    LayerInputError,
    NotScriptableError,
    Recording,
    Trace,
    quantize_dynamic,
    tracing,
)
from lstmlab.models.registry import load, save

__version__ = "0.1.0"

__all__ = ["GRU", "LSTM", "RNN", "VARIANTS", "GRUCell", "LSTMCell", "LSTMSpec", "LayerDtypeError",
           "LayerInputError", "NotScriptableError", "RNNCell", "Recording", "Trace", "load",
           "lstm_spec", "quantize_dynamic", "save", "tracing", "__version__"]
