"""Heads for each sequence shape, built on lstmlab's recurrent layers."""

from lstmlab.models.recurrent import MODEL_KINDS, make_recurrent, parse_model
from lstmlab.models.sequence import SequenceModel

__all__ = ["MODEL_KINDS", "SequenceModel", "make_recurrent", "parse_model"]
