"""Many-to-many: train, evaluate and apply a sequence tagger (``lstmlab tag``).

    >>> result = train_tagger("ud/en_ewt-ud-train.conllu.gz", valid="ud/en_ewt-ud-dev.conllu.gz",
    ...                       test="ud/en_ewt-ud-test.conllu.gz", out="runs/ewt", minutes=30)
    >>> scores = evaluate_tagger("runs/ewt", "ud/en_ewt-ud-test.conllu.gz")   # TagScores
    >>> predict_tags("runs/ewt", ["I saw her duck ."])    # [["PRON", "VERB", "PRON", ...]]

Data: ``lstmlab.tasks.tagging`` (CoNLL-U or two-column CoNLL). Model:
``lstmlab.models.tagger.SequenceTagger``. Training runs on the one loop and keeps the weights
of the best validation token accuracy, which the run directory holds and the test figure uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor, nn

from lstmlab.experiments.supervised import (
    RunRecord,
    bucketed_batches,
    check_settings,
    drop_words,
    fit,
    load_model,
    ordered_batches,
    rare_word_dropout,
    save_model,
    steps_per_epoch,
    train_config,
)
from lstmlab.metrics import ChunkScores, chunk_scores, is_chunk_tagging
from lstmlab.models.recurrent import canonical_name
from lstmlab.models.tagger import SequenceTagger
from lstmlab.tasks.files import DataError
from lstmlab.tasks.sentiment import split_examples
from lstmlab.tasks.tagging import Sentence, read_tagged, tag_indices, tagging_batch
from lstmlab.tasks.words import Encoded, WordVocabulary
from lstmlab.train import Trainer
from lstmlab.train.loop import StepOutput

KIND = "tagger"
EVAL_BATCH = 128


@dataclass
class TagConfig:
    """What defines a tagger run: vocabulary, model and optimisation.

    Attributes:
        cell: the recurrent cell: "lstm" (= lstm:NP), "lstm:CIFG", ..., "gru", "rnn".
        layers, hidden, embedding: recurrent layers, units per direction, word vector width.
        bidirectional: read each sentence both ways (a BiLSTM tagger).
        dropout: on word vectors, between layers and before the output layer.
        word_dropout: while training, each word becomes ``<unk>`` with this probability, so the
            ``<unk>`` vector and the character features learn to stand in for unseen words.
        rare_dropout: alpha of the frequency-dependent word dropout: besides, a training word
            seen n times becomes ``<unk>`` with probability alpha / (alpha + n)
            (``experiments.supervised.rare_word_dropout``; 0: none).
        chars: character features of each word (a character BiLSTM), sizes ``char_embedding``
            and ``char_hidden``.
        min_freq: words seen fewer times in training become ``<unk>``.
        lowercase: lowercase words before lookup (characters keep their case).
        batch, optimizer, lr, weight_decay, clip: sentences per step and the optimiser.
        lr_decay: the learning rate is multiplied by this after every validation that brings
            no new best (1: constant).
        average: validate, keep and save a moving average of the weights with this decay
            per step (e.g. 0.999; 0: the weights themselves; ``supervised.fit``).
        valid_fraction: held out of the training file when no validation file is given.
        seed: initialisation, dropout and batch order.
    """

    cell: str = "lstm"
    layers: int = 1
    hidden: int = 200
    embedding: int = 100
    bidirectional: bool = True
    dropout: float = 0.33
    word_dropout: float = 0.05
    rare_dropout: float = 0.25
    chars: bool = True
    char_embedding: int = 32
    char_hidden: int = 50
    min_freq: int = 1
    lowercase: bool = True
    batch: int = 32
    optimizer: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 0.0
    clip: float | None = 5.0
    lr_decay: float = 0.5
    average: float = 0.0
    valid_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        self.cell = canonical_name(self.cell)
        check_settings(self, ("layers", "hidden", "embedding", "char_embedding", "char_hidden",
                              "min_freq", "batch"), ("dropout", "word_dropout", "average"))


def build_model(config: TagConfig, vocab: WordVocabulary, num_tags: int) -> SequenceTagger:
    return SequenceTagger(len(vocab.words), num_tags, config.cell, config.embedding,
                          config.hidden, config.layers, config.bidirectional, config.dropout,
                          len(vocab.chars) if vocab.chars else 0, config.char_embedding,
                          config.char_hidden)


def forward(model: nn.Module, inputs: Tensor, batch: Any) -> Tensor:
    """The tagger's logits (T, B, K) for a batch (``inputs`` may be a word-dropped copy)."""
    return model(inputs, batch.lengths, batch.extras.get("chars"),
                 batch.extras.get("char_lengths"))


class TagStep:
    """One training step: cross-entropy of the tags (nats, mean over the words of the batch),
    with word dropout; reports the batch's token accuracy and its words as tokens."""

    def __init__(self, word_dropout: float = 0.0, per_word: Tensor | None = None) -> None:
        self.word_dropout, self.per_word = word_dropout, per_word

    def __call__(self, model: nn.Module, batch: Any) -> StepOutput:
        inputs = drop_words(batch.inputs, self.word_dropout, self.per_word)
        logits = forward(model, inputs, batch)[batch.mask]  # (N, K): the words only
        targets = batch.targets[batch.mask]
        loss = F.cross_entropy(logits, targets)
        right = float((logits.argmax(1) == targets).float().mean())
        return StepOutput(loss, batch.batch_size, int(targets.numel()), {"accuracy": right})


@torch.no_grad()
def predict_ids(model: nn.Module, vocab: WordVocabulary, sentences: Sequence[Encoded],
                batch_size: int = EVAL_BATCH) -> list[list[int]]:
    """The most likely tag id of every word of encoded sentences, in their order."""
    device = next(model.parameters()).device
    out: list[list[int]] = [[] for _ in sentences]
    lengths = [len(s.words) for s in sentences]
    for index, batch in ordered_batches(sentences, lengths, batch_size,
                                        lambda chunk: tagging_batch(vocab, chunk)):
        batch = batch.to(device)
        best = forward(model, batch.inputs, batch).argmax(2).cpu()  # (T, B)
        for b, i in enumerate(index):
            out[i] = best[: lengths[i], b].tolist()
    return out


def token_accuracy(gold: Sequence[Sequence[int]], predicted: Sequence[Sequence[int]]) -> float:
    right = sum(g == p for gs, ps in zip(gold, predicted, strict=True)
                for g, p in zip(gs, ps, strict=True))
    total = sum(len(gs) for gs in gold)
    return right / total if total else 0.0


@dataclass
class TagScores:
    """A tagger on a data set: token accuracy, accuracy on words outside the vocabulary, and
    for BIO / IOB / BIOES tags the entity-level scores (CoNLL's rule)."""

    sentences: int
    tokens: int
    accuracy: float
    unknown_tokens: int
    unknown_accuracy: float | None
    chunks: ChunkScores | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["chunks"] = None if self.chunks is None else self.chunks.to_dict()
        return d

    def summary(self) -> str:
        lines = [f"token accuracy {100 * self.accuracy:.2f}% ({self.tokens:,} tokens, "
                 f"{self.sentences:,} sentences)"]
        if self.unknown_accuracy is not None:
            lines.append(f"words outside the vocabulary: {self.unknown_tokens:,}, accuracy "
                         f"{100 * self.unknown_accuracy:.2f}%")
        if self.chunks is not None:
            c = self.chunks
            lines.append(f"entities (CoNLL rule): precision {100 * c.precision:.2f}%, recall "
                         f"{100 * c.recall:.2f}%, F1 {100 * c.f1:.2f} ({c.gold:,} gold, "
                         f"{c.predicted:,} predicted, {c.correct:,} correct)")
            for kind, s in c.by_type.items():
                lines.append(f"  {kind:<10} P {100 * s['precision']:6.2f}  R "
                             f"{100 * s['recall']:6.2f}  F1 {100 * s['f1']:6.2f}  "
                             f"({s['gold']:,} gold)")
        return "\n".join(lines)


def score(model: nn.Module, vocab: WordVocabulary, tags: Sequence[str],
          sentences: Sequence[Sentence], path: str) -> TagScores:
    """``TagScores`` of a model on gold sentences (their tags must be ones it knows)."""
    gold = tag_indices(sentences, tags, path)
    encoded = [vocab.encode(s.words) for s in sentences]
    predicted = predict_ids(model, vocab, encoded)
    unk = vocab.words.unk_id
    unknown = [(g, p) for e, gs, ps in zip(encoded, gold, predicted, strict=True)
               for w, g, p in zip(e.words, gs, ps, strict=True) if w == unk]
    chunks = None
    if is_chunk_tagging(tags):
        chunks = chunk_scores([[tags[i] for i in gs] for gs in gold],
                              [[tags[i] for i in ps] for ps in predicted])
    return TagScores(len(sentences), sum(len(g) for g in gold), token_accuracy(gold, predicted),
                     len(unknown),
                     sum(g == p for g, p in unknown) / len(unknown) if unknown else None,
                     chunks)


@dataclass
class TagResult(RunRecord):
    """What a training run reached (accuracies in [0, 1]; None where not measured)."""

    config: TagConfig
    out: str | None
    tags: list[str]
    vocabulary: str
    parameters: int
    train_sentences: int
    valid_sentences: int
    steps: int
    epochs: float
    seconds: float
    stopped_by: str
    best_valid_accuracy: float | None
    test: dict[str, Any] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [self.run_line()]
        if self.best_valid_accuracy is not None:
            lines.append(f"best valid token accuracy: {100 * self.best_valid_accuracy:.2f}%")
        if self.test is not None:
            lines.append(f"test token accuracy (best weights): {100 * self.test['accuracy']:.2f}%")
        return "\n".join(lines)


def train_tagger(train: str | Path, *, valid: str | Path | None = None,
                 test: str | Path | None = None, format: str = "auto",
                 column: str | int | None = None, out: str | Path | None = None,
                 minutes: float | None = None, epochs: float | None = None,
                 steps: int | None = None, eval_every: int | None = None, progress: bool = True,
                 console: Console | None = None, device: str | None = None,
                 patience: int | None = None, loop: dict[str, Any] | None = None,
                 on_validation: Callable[[int, float], None] | None = None,
                 **options: Any) -> TagResult:
    """Train a sequence tagger on a tagged file.

    Args:
        train: CoNLL-U or CoNLL (``lstmlab.tasks.tagging``); without ``valid`` a deterministic
            ``valid_fraction`` of its sentences validates.
        valid, test: files in the same format; their tags must occur in ``train``.
        format, column: "auto", "conllu" or "conll", and the tag column (default UPOS / the
            last column).
        out: the run directory (the best-validation model); None keeps nothing on disk.
        minutes / epochs / steps: budgets, the first reached stops (none: 10 epochs).
        eval_every: steps between validations (default: one epoch).
        progress, console, device: the progress bar, where to print, "cpu" or "cuda".
        patience: stop after that many validations without a new best (None: never early).
        loop: further ``TrainConfig`` fields (momentum, nesterov, ...).
        on_validation: called with (step, validation error) after each validation (``fit``).
        **options: the fields of ``TagConfig``.
    """
    console = console or Console(stderr=True)
    config = TagConfig(**options)
    data = read_tagged(train, format, column, "train")
    console.print(data.summary())
    sentences = data.sentences
    if valid is None:
        sentences, valid_sentences = split_examples(sentences, config.valid_fraction)
        console.print(f"validation: {len(valid_sentences):,} sentences held out of {train} "
                      f"(valid-fraction {config.valid_fraction:g})")
        valid_path = str(train)
    else:
        valid_data = read_tagged(valid, data.format, column, "valid")
        console.print(valid_data.summary())
        valid_sentences, valid_path = valid_data.sentences, str(valid)
    tags = sorted({t for s in sentences for t in s.tags})
    vocab = WordVocabulary.build((s.words for s in sentences), min_freq=config.min_freq,
                                 chars=config.chars, lowercase=config.lowercase)
    train_items = list(zip([vocab.encode(s.words) for s in sentences],
                           tag_indices(sentences, tags, str(train)), strict=True))
    valid_texts = [vocab.encode(s.words) for s in valid_sentences]
    valid_tags = tag_indices(valid_sentences, tags, valid_path)
    test_data = read_tagged(test, data.format, column, "test") if test is not None else None
    if test_data is not None:
        tag_indices(test_data.sentences, tags, str(test))  # unseen tags fail before training

    torch.manual_seed(config.seed)
    model = build_model(config, vocab, len(tags))
    spe = steps_per_epoch(len(train_items), config.batch)
    loop = train_config(config, spe, minutes=minutes, epochs=epochs, steps=steps,
                        progress=progress, device=device, loop=loop)
    console.print(f"vocabulary: {vocab.summary()}; {len(tags)} tags\n"
                  f"model: {model.cell} {config.layers}x{config.hidden}"
                  f"{' bidirectional' if config.bidirectional else ''}"
                  f"{', character features' if config.chars else ''}, "
                  f"{sum(p.numel() for p in model.parameters()):,} parameters; "
                  f"{spe:,} steps per epoch")
    batches = bucketed_batches(train_items, [len(e.words) for e, _ in train_items],
                               config.batch,
                               lambda chunk: tagging_batch(vocab, [e for e, _ in chunk],
                                                           [t for _, t in chunk]),
                               seed=config.seed)

    def valid_error(model: nn.Module) -> float:
        return 1.0 - token_accuracy(valid_tags, predict_ids(model, vocab, valid_texts))

    def report(trainer: Trainer, error: float, improved: bool) -> None:
        s = trainer.state
        console.print(f"step {s.step:,} ({s.sequences / len(train_items):.2f} epochs, "
                      f"{s.seconds / 60:.1f} min): valid token accuracy "
                      f"{100 * (1 - error):.2f}%" + ("  [best]" if improved else ""))

    extra = {"tags": tags, "vocabulary": vocab.to_dict(), "config": asdict(config),
             "format": data.format, "column": None if column is None else str(column),
             "column_name": data.column, "train": str(train)}
    save = (lambda m: save_model(m, out, extra)) if out is not None else None
    per_word = (rare_word_dropout([e.words for e, _ in train_items], len(vocab.words),
                                  config.rare_dropout) if config.rare_dropout else None)
    run = fit(model, loop, TagStep(config.word_dropout, per_word), batches, error=valid_error,
              eval_every=eval_every or spe, save=save, report=report, console=console,
              description=f"tag {model.cell}", patience=patience,
              lr_decay=config.lr_decay, average=config.average, on_validation=on_validation)
    test_scores = None
    if test_data is not None and run.train.state.step > 0:
        test_scores = score(model, vocab, tags, test_data.sentences, str(test)).to_dict()
    s = run.train.state
    return TagResult(config, None if out is None else str(out), tags, vocab.summary(),
                     sum(p.numel() for p in model.parameters()), len(train_items),
                     len(valid_texts), s.step, s.sequences / len(train_items), s.seconds,
                     run.stopped_by, None if run.best is None else 1 - run.best, test_scores,
                     list(run.train.history), run.validations)


# --- a saved tagger ----------------------------------------------------------------------------


@dataclass
class LoadedTagger:
    model: SequenceTagger
    vocab: WordVocabulary
    tags: list[str]
    extra: dict[str, Any]
    path: Path


def load_tagger(path: str | Path) -> LoadedTagger:
    """A tagger saved by ``train_tagger`` (its run directory or ``best.json``)."""
    model, extra, index = load_model(path, KIND, "tag")
    return LoadedTagger(model, WordVocabulary.from_dict(extra["vocabulary"]),
                        list(extra["tags"]), extra, index)


def evaluate_tagger(path: str | Path, file: str | Path, format: str = "auto",
                    column: str | int | None = None) -> TagScores:
    """Token accuracy (and entity scores for BIO tags) of a saved tagger on a tagged file, its
    tags read from the column the model was trained on unless ``column`` says otherwise."""
    loaded = load_tagger(path)
    if column is None:
        column = loaded.extra.get("column")  # as in training (None: the format's default)
    data = read_tagged(file, format, column, "eval")
    return score(loaded.model, loaded.vocab, loaded.tags, data.sentences, str(file))


def predict_tags(path: str | Path, texts: Sequence[str], where: str = "text"
                 ) -> list[list[str]]:
    """The tags of each text's whitespace-separated tokens; an empty text is an error naming
    it ("``where`` N")."""
    loaded = load_tagger(path)
    encoded = []
    for number, text in enumerate(texts, 1):
        words = text.split()
        if not words:
            raise DataError(f"{where} {number} has no words: expected a sentence to tag")
        encoded.append(loaded.vocab.encode(words))
    return [[loaded.tags[i] for i in ids] for ids in predict_ids(loaded.model, loaded.vocab,
                                                                  encoded)]
