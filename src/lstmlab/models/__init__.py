"""Heads for each sequence shape, built on lstmlab's recurrent layers."""

from lstmlab.models.captioner import Captioner
from lstmlab.models.classifier import ClassifierEnsemble, TextClassifier
from lstmlab.models.detector import Detector
from lstmlab.models.language import LanguageModel
from lstmlab.models.lstm1997 import LSTM1997
from lstmlab.models.music import MusicModel
from lstmlab.models.recurrent import CELL_KINDS, make_recurrent, parse_cell
from lstmlab.models.registry import load, load_saved, register, save
from lstmlab.models.seq2seq import Translator
from lstmlab.models.sequence import SequenceModel
from lstmlab.models.tagger import SequenceTagger

# every model kind registers itself when its module is imported: import each one above, so
# that lstmlab.models.registry.load knows them all

__all__ = ["CELL_KINDS", "LanguageModel", "SequenceModel", "load", "load_saved",
           "make_recurrent", "parse_cell", "register", "save"]
__all__ += ["ClassifierEnsemble", "MusicModel", "SequenceTagger", "TextClassifier"]
__all__ += ["Translator"]
__all__ += ["Captioner", "Detector"]
__all__ += ["LSTM1997"]
