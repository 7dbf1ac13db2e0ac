"""The networks that play the memory games: a ``SequenceModel`` built and initialised for a task.

    >>> net = build_memory_model(task, "lstm", hidden=32, seed=0)           # a gradient learner
    >>> guessed = guess_network(task, "rnn", hidden=2)                      # weight guessing

Initialisation decides whether a gradient learner can learn a 100-step lag at all:

    init "chrono"   (default) Tallec & Ollivier 2018 through ``lstmlab.init.chrono_``, with
                    T_max = the task's longest sequence (LSTM forget/input gate biases; GRU update
                    gate; an Elman RNN has no gate and keeps its default).
    init "default"  the layer's own (torch.nn's uniform; the LSTM's ``forget_bias``, 1.0 unless
                    given).
    head_init "prior"  (default) for tasks with logistic outputs, the head's bias starts at each
                    output's prior log-odds, measured on ``probe(task)`` (256 sequences of a
                    fixed seed): in lag 2a/2b, where each of 101 outputs is a target at 1%
                    of the steps or less, an LSTM started at torch.nn's bias silences them by
                    saturating its hidden state and stays at chance. "default" keeps torch.nn's
                    bias.
"""

from __future__ import annotations

import torch

from lstmlab.init import initialise, prior_logits
from lstmlab.layers import LSTM
from lstmlab.models.sequence import SequenceModel
from lstmlab.tasks.batch import Batch
from lstmlab.tasks.memory import MemoryTask, probe

HEAD_INITS = ("prior", "default")


def output_prior_logits(task: MemoryTask, sample: Batch | None = None) -> torch.Tensor:
    """(O,) log-odds of each output's mean target over the scored steps of ``sample`` (default
    ``probe(task)``), the mean clamped to [0.01, 0.99] (an output never 1 starts at 0.01)."""
    batch = probe(task) if sample is None else sample
    return prior_logits(task.target_vectors(batch)[batch.mask])


def build_memory_model(task: MemoryTask, cell: str, hidden: int = 32, *, init: str = "chrono",
                       head_init: str = "prior", forget_bias: float | None = None,
                       input_bias: float | None = None, direct: bool = False,
                       kernel: str = "auto", seed: int = 0) -> SequenceModel:
    """The gradient learner's network for ``task``: ``cell`` ("rnn", "lstm:CIFG", "gru", ...)
    with ``hidden`` units and a linear head at every step (and the inputs read by the outputs
    too, with ``direct``; ``SequenceModel``), drawn from ``seed`` and initialised as ``init``
    and ``head_init`` say (module docstring). ``input_bias`` is then added to the LSTM's
    input-gate bias (b_ih's i block), as ``forget_bias`` is to its forget gate's: a gate that
    starts nearly shut lets little of the inputs into the cell state, the 1997 paper's remedy
    for internal state drift (section 4)."""
    if head_init not in HEAD_INITS:
        raise ValueError(f"head_init must be one of {', '.join(HEAD_INITS)}, got {head_init!r}")
    torch.manual_seed(seed)
    forget_bias = forget_bias if cell.startswith("lstm") else None
    net = SequenceModel(cell, task.input_size, task.output_size, hidden,
                        forget_bias=forget_bias, direct=direct)
    net.recurrent.kernel = kernel
    sample = probe(task)
    initialise(net.recurrent, init, int(sample.lengths.max()),
               torch.Generator().manual_seed(seed + 7919))
    if input_bias is not None:
        add_input_bias(net.recurrent, input_bias)
    if head_init == "prior" and task.loss_kind == "mse_sigmoid":
        with torch.no_grad():
            net.head.bias.copy_(output_prior_logits(task, sample))
    return net


def add_input_bias(layer: torch.nn.Module, value: float) -> None:
    """Add ``value`` to the input-gate bias (b_ih's i block) of every layer and direction of an
    LSTM with an input gate, in place; ValueError for any other layer."""
    gates = getattr(getattr(layer, "spec", None), "gates", ())
    if not isinstance(layer, LSTM) or "i" not in gates:
        raise ValueError(f"input_bias is for LSTM cells with an input gate, not "
                         f"{getattr(layer, 'variant', type(layer).__name__)!r}")
    i, h = gates.index("i"), layer.hidden_size
    with torch.no_grad():
        for name, parameter in layer.named_parameters():
            if name.startswith("bias_ih"):
                parameter[i * h:(i + 1) * h] += value


def guess_network(task: MemoryTask, cell: str = "rnn", hidden: int = 2, kernel: str = "auto"
                  ) -> SequenceModel:
    """The network whose weights are guessed: ``cell`` with ``hidden`` units and a head, in eval
    mode (an LSTM with forget bias 0: every weight is drawn anyway)."""
    net = SequenceModel(cell, task.input_size, task.output_size, hidden,
                        forget_bias=0.0 if cell.startswith("lstm") else None)
    net.recurrent.kernel = kernel
    return net.eval()
