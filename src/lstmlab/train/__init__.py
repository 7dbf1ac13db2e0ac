"""Training: the one loop every model in lstmlab runs through, its callbacks, distributed
training under torchrun, and checkpoints."""

from lstmlab.train.callbacks import (
    Callback,
    EarlyStopping,
    Every,
    StopWhen,
    TensorBoard,
    Validation,
)
from lstmlab.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lstmlab.train.distributed import World, resolve_device
from lstmlab.train.loop import StepOutput, TrainConfig, Trainer, TrainResult, TrainState

__all__ = ["Callback", "CheckpointError", "EarlyStopping", "Every", "StepOutput", "StopWhen",
           "TensorBoard", "TrainConfig", "TrainResult", "TrainState", "Trainer", "Validation",
           "World", "load_checkpoint", "resolve_device", "save_checkpoint"]
