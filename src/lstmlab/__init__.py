"""lstmlab: recurrent networks that remember.

    >>> import lstmlab
    >>> lstm = lstmlab.LSTM(8, 32, variant="CIFG")
    >>> output, (h_n, c_n) = lstm(torch.randn(100, 16, 8))
"""

from lstmlab.cells import VARIANTS, LSTMSpec, lstm_spec
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

__version__ = "0.1.0"

__all__ = ["GRU", "LSTM", "RNN", "VARIANTS", "LSTMSpec", "LayerDtypeError", "LayerInputError",
           "NotScriptableError", "Recording", "Trace", "lstm_spec", "quantize_dynamic", "tracing",
           "__version__"]
