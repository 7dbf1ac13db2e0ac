"""lstmlab: recurrent networks that remember.

    >>> import lstmlab
    >>> lstm = lstmlab.LSTM(8, 32, variant="CIFG")
    >>> output, (h_n, c_n) = lstm(torch.randn(100, 16, 8))
"""

from lstmlab.cells import VARIANTS, LSTMSpec, lstm_spec
from lstmlab.cells import GRUCell as GRUCell
from lstmlab.cells import LSTMCell as LSTMCell
from lstmlab.cells import RNNCell as RNNCell
from lstmlab.layers import GRU, LSTM, RNN, Recording, Trace, tracing

__version__ = "0.1.0"

__all__ = ["GRU", "LSTM", "RNN", "VARIANTS", "LSTMSpec", "Recording", "Trace", "lstm_spec",
           "tracing", "__version__"]
__all__ += ["GRUCell", "LSTMCell", "RNNCell"]
