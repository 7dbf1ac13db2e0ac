"""Training: the one loop every model in lstmlab runs through, and checkpoints."""

from lstmlab.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lstmlab.train.loop import StepOutput, TrainConfig, Trainer, TrainResult, TrainState

__all__ = ["CheckpointError", "StepOutput", "TrainConfig", "TrainResult", "TrainState", "Trainer",
           "load_checkpoint", "save_checkpoint"]
