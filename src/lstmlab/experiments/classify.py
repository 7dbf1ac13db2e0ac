"""Many-to-one: train, evaluate and apply a text classifier (``lstmlab classify``).

    >>> result = train_classifier("sst2/stsa.binary.train", valid="sst2/stsa.binary.dev",
    ...                           test="sst2/stsa.binary.test", out="runs/sst2", minutes=20)
    >>> report = evaluate_classifier("runs/sst2", "sst2/stsa.binary.test")    # ClassReport
    >>> predict_texts("runs/sst2", ["a gripping , funny film ."])            # [("1", 0.97)]

Data: ``lstmlab.tasks.sentiment`` (one labelled text a line, SST or TSV). Model:
``lstmlab.models.classifier.TextClassifier``. Training runs on the one loop and keeps the
weights of the best validation accuracy (``experiments.supervised.fit``), which are what the
run directory holds and what the test figure uses.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from lstmlab.metrics import ClassReport, accuracy, classification_report
from lstmlab.models.classifier import POOLINGS, ClassifierEnsemble, TextClassifier
from lstmlab.models.recurrent import canonical_name
from lstmlab.tasks.files import DataError
from lstmlab.tasks.sentiment import (
    Example,
    classification_batch,
    label_indices,
    read_labelled,
    split_examples,
)
from lstmlab.tasks.words import Encoded, WordVocabulary
from lstmlab.train import Trainer
from lstmlab.train.loop import StepOutput

KIND = "classifier"
ENSEMBLE_KIND = "classifier_ensemble"
EVAL_BATCH = 256


@dataclass
class ClassifyConfig:
    """What defines a classifier run: vocabulary, model and optimisation.

    Attributes:
        cell: the recurrent cell: "lstm" (= lstm:NP), "lstm:CIFG", ..., "gru", "rnn".
        layers, hidden, embedding: recurrent layers, units per direction, word vector width.
        bidirectional: read each text both ways.
        pooling: "last", "max", "mean" or "attention" (``lstmlab.models.classifier``).
        dropout: on word vectors, between layers and on the pooled vector.
        word_dropout: while training, each word becomes ``<unk>`` with this probability (the
            model learns a useful ``<unk>``, and with ``chars`` to read the spelling).
        rare_dropout: alpha of the frequency-dependent word dropout: besides, a training word
            seen n times becomes ``<unk>`` with probability alpha / (alpha + n)
            (``experiments.supervised.rare_word_dropout``; 0: none).
        chars: add character features of each word (a character BiLSTM), sizes
            ``char_embedding`` and ``char_hidden``.
        min_freq: words seen fewer times in training become ``<unk>``.
        lowercase: lowercase words before lookup (and at prediction time).
        batch, optimizer, lr, weight_decay, clip: texts per step and the optimiser.
        lr_decay: the learning rate is multiplied by this after every validation that brings
            no new best (1: constant).
        average: validate, keep and save a moving average of the weights with this decay
            per step (e.g. 0.999; 0: the weights themselves; ``supervised.fit``).
        valid_fraction: held out of the training file when no validation file is given.
        seed: initialisation, dropout and batch order.
        members: train this many classifiers, K, with seeds seed * K, seed * K + 1, ...,
            seed * K + K - 1 (runs with different seeds share no member), each for an equal
            share of the time budget (an epoch or step budget is each member's), and keep
            their ensemble (``ClassifierEnsemble``: probabilities averaged); each member keeps
            its own best-validation weights.
    """

    cell: str = "lstm"
    layers: int = 1
    hidden: int = 128
    embedding: int = 128
    bidirectional: bool = True
    pooling: str = "max"
    dropout: float = 0.5
    word_dropout: float = 0.0
    rare_dropout: float = 0.0
    chars: bool = False
    char_embedding: int = 16
    char_hidden: int = 32
    min_freq: int = 1
    lowercase: bool = False
    batch: int = 32
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip: float | None = 5.0
    lr_decay: float = 1.0
    average: float = 0.0
    valid_fraction: float = 0.1
    seed: int = 0
    members: int = 1

    def __post_init__(self) -> None:
        self.cell = canonical_name(self.cell)
        check_settings(self, ("layers", "hidden", "embedding", "char_embedding", "char_hidden",
                              "min_freq", "batch", "members"),
                       ("dropout", "word_dropout", "average"))
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got "
                             f"{self.pooling!r}")


def build_model(config: ClassifyConfig, vocab: WordVocabulary, num_classes: int
                ) -> TextClassifier:
    return TextClassifier(len(vocab.words), num_classes, config.cell, config.embedding,
                          config.hidden, config.layers, config.bidirectional, config.dropout,
                          config.pooling, len(vocab.chars) if vocab.chars else 0,
                          config.char_embedding, config.char_hidden)


def forward(model: nn.Module, inputs: Tensor, batch: Any) -> Tensor:
    """The classifier's logits (B, K) for a batch (``inputs`` may be a word-dropped copy)."""
    return model(inputs, batch.lengths, batch.extras.get("chars"),
                 batch.extras.get("char_lengths"))


class ClassifyStep:
    """One training step: cross-entropy of the labels (nats, mean over texts), with word
    dropout; reports the batch's accuracy and its words as tokens."""

    def __init__(self, word_dropout: float = 0.0, per_word: Tensor | None = None) -> None:
        self.word_dropout, self.per_word = word_dropout, per_word

    def __call__(self, model: nn.Module, batch: Any) -> StepOutput:
        inputs = drop_words(batch.inputs, self.word_dropout, self.per_word)
        logits = forward(model, inputs, batch)
        labels = batch.extras["labels"]
        loss = F.cross_entropy(logits, labels)
        right = float((logits.argmax(1) == labels).float().mean())
        return StepOutput(loss, batch.batch_size, int(batch.lengths.sum()), {"accuracy": right})


@torch.no_grad()
def class_probabilities(model: nn.Module, vocab: WordVocabulary, texts: Sequence[Encoded],
                        batch_size: int = EVAL_BATCH) -> Tensor:
    """Softmax probabilities (N, K) of encoded texts, in their order (model in eval mode)."""
    device = next(model.parameters()).device
    out = torch.empty(len(texts), model.num_classes)
    lengths = [len(t.words) for t in texts]
    for index, batch in ordered_batches(texts, lengths, batch_size,
                                        lambda chunk: classification_batch(vocab, chunk)):
        batch = batch.to(device)
        out[index] = torch.softmax(forward(model, batch.inputs, batch), dim=1).float().cpu()
    return out


@dataclass
class ClassifyResult(RunRecord):
    """What a training run reached (accuracies in [0, 1]; None where not measured)."""

    config: ClassifyConfig
    out: str | None
    labels: list[str]
    vocabulary: str
    parameters: int
    train_texts: int
    valid_texts: int
    steps: int
    epochs: float
    seconds: float
    stopped_by: str
    best_valid_accuracy: float | None
    test_accuracy: float | None
    test_report: dict[str, Any] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [self.run_line()]
        for m in self.members:
            test = ("" if m.get("test_accuracy") is None
                    else f", test {100 * m['test_accuracy']:.2f}%")
            valid = ("not validated" if m["best_valid_accuracy"] is None
                     else f"best valid {100 * m['best_valid_accuracy']:.2f}%")
            lines.append(f"member {m['member']} (seed {m['seed']}): {valid}{test}")
        if self.members:
            lines.append(f"ensemble of {len(self.members)} (probabilities averaged):")
        if self.best_valid_accuracy is not None:
            lines.append(f"best valid accuracy: {100 * self.best_valid_accuracy:.2f}%")
        if self.test_accuracy is not None:
            lines.append(f"test accuracy (best weights): {100 * self.test_accuracy:.2f}%")
        return "\n".join(lines)


def _read(path: str | Path, format: str, what: str) -> list[Example]:
    return read_labelled(path, format, what).examples


def train_classifier(train: str | Path, *, valid: str | Path | None = None,
                     test: str | Path | None = None, format: str = "auto",
                     out: str | Path | None = None, minutes: float | None = None,
                     epochs: float | None = None, steps: int | None = None,
                     eval_every: int | None = None, progress: bool = True,
                     console: Console | None = None, device: str | None = None,
                     **options: Any) -> ClassifyResult:
    """Train a text classifier on a labelled file.

    Args:
        train: one labelled text a line (``lstmlab.tasks.sentiment``); without ``valid`` a
            deterministic ``valid_fraction`` of it validates.
        valid, test: files in the same format; their labels must occur in ``train``.
        format: "auto", "sst" or "tsv".
        out: the run directory (the best-validation model as ``best.json`` /
            ``best.safetensors``); None keeps nothing on disk.
        minutes / epochs / steps: budgets, the first reached stops (none: 10 epochs).
        eval_every: steps between validations (default: one epoch).
        progress, console, device: the progress bar, where to print, "cpu" or "cuda".
        **options: the fields of ``ClassifyConfig``.
    """
    console = console or Console(stderr=True)
    config = ClassifyConfig(**options)
    data = read_labelled(train, format, "train")
    console.print(data.summary())
    examples = data.examples
    if valid is None:
        examples, valid_examples = split_examples(examples, config.valid_fraction)
        console.print(f"validation: {len(valid_examples):,} texts held out of {train} "
                      f"(valid-fraction {config.valid_fraction:g})")
        valid_path = str(train)
    else:
        valid_examples = _read(valid, format, "valid")
        valid_path = str(valid)
    labels = sorted({e.label for e in examples})
    if len(labels) < 2:
        raise DataError(f"train file {train} has a single label ({labels[0]!r}); a classifier "
                        "needs at least two")
    vocab = WordVocabulary.build((e.words for e in examples), min_freq=config.min_freq,
                                 chars=config.chars, lowercase=config.lowercase)
    train_texts = [vocab.encode(e.words) for e in examples]
    train_labels = label_indices(examples, labels, str(train))
    valid_texts = [vocab.encode(e.words) for e in valid_examples]
    valid_labels = label_indices(valid_examples, labels, valid_path)
    test_examples = _read(test, format, "test") if test is not None else None
    if test_examples is not None:
        label_indices(test_examples, labels, str(test))  # unseen labels fail before training

    spe = steps_per_epoch(len(train_texts), config.batch)
    pairs = list(zip(train_texts, train_labels, strict=True))
    test_texts = gold = None
    if test_examples is not None:
        test_texts = [vocab.encode(e.words) for e in test_examples]
        gold = label_indices(test_examples, labels, str(test))

    def valid_error(model: nn.Module) -> float:
        predicted = class_probabilities(model, vocab, valid_texts).argmax(1).tolist()
        return 1.0 - accuracy(valid_labels, predicted)

    def report(trainer: Trainer, error: float, improved: bool) -> None:
        s = trainer.state
        console.print(f"step {s.step:,} ({s.sequences / len(train_texts):.2f} epochs, "
                      f"{s.seconds / 60:.1f} min): valid accuracy {100 * (1 - error):.2f}%"
                      + ("  [best]" if improved else ""))

    extra = {"labels": labels, "vocabulary": vocab.to_dict(), "config": asdict(config),
             "train": str(train)}
    save = (lambda m: save_model(m, out, extra)) if out is not None else None
    per_word = (rare_word_dropout([t.words for t in train_texts], len(vocab.words),
                                  config.rare_dropout) if config.rare_dropout else None)
    many = config.members > 1
    trained: list[TextClassifier] = []
    runs, members = [], []
    for k in range(config.members):
        seed = config.seed * config.members + k
        torch.manual_seed(seed)
        model = build_model(config, vocab, len(labels))
        loop = train_config(config, spe, minutes=None if minutes is None
                            else minutes / config.members, epochs=epochs, steps=steps,
                            progress=progress, device=device)
        if k == 0:
            console.print(f"vocabulary: {vocab.summary()}; labels: {', '.join(labels)}\n"
                          f"model: {model.cell} {config.layers}x{config.hidden}"
                          f"{' bidirectional' if config.bidirectional else ''}, "
                          f"{config.pooling} pooling, "
                          f"{sum(p.numel() for p in model.parameters()):,} parameters"
                          f"{f' x {config.members} members' if many else ''}; "
                          f"{spe:,} steps per epoch")
        if many:
            console.print(f"member {k + 1} of {config.members} (seed {seed})")
        batches = bucketed_batches(pairs, [len(t.words) for t in train_texts], config.batch,
                                   lambda chunk: classification_batch(
                                       vocab, [t for t, _ in chunk], [y for _, y in chunk]),
                                   seed=seed)
        run = fit(model, loop, ClassifyStep(config.word_dropout, per_word), batches,
                  error=valid_error, eval_every=eval_every or spe,
                  save=None if many else save, report=report, console=console,
                  description=f"classify {model.cell}" + (f" {k + 1}/{config.members}"
                                                          if many else ""),
                  lr_decay=config.lr_decay, average=config.average)
        runs.append(run)
        if run.train.state.step == 0:
            break
        trained.append(model)
        stopped = run.stopped_by == "interrupt"
        if many:
            members.append({"member": k + 1, "seed": seed,
                            "best_valid_accuracy": None if run.best is None else 1 - run.best,
                            "test_accuracy": None if test_texts is None else accuracy(
                                gold, class_probabilities(model, vocab, test_texts)
                                .argmax(1).tolist()),
                            "steps": run.train.state.step,
                            "seconds": run.train.state.seconds})
            if save is not None:  # the finished members so far: an interruption keeps them
                save(ClassifierEnsemble.of(trained).eval())
        if stopped:
            break
    if many and trained:
        model = ClassifierEnsemble.of(trained).eval()
    elif trained:
        model = trained[0]
    best = valid_error(model) if many and trained else runs[-1].best
    test_accuracy = test_report = None
    if test_texts is not None and trained:
        predicted = class_probabilities(model, vocab, test_texts).argmax(1).tolist()
        rep = classification_report(gold, predicted, labels)
        test_accuracy, test_report = rep.accuracy, rep.to_dict()
    states = [r.train.state for r in runs]
    history = [{**h, "member": k + 1} if many else h
               for k, r in enumerate(runs) for h in r.train.history]
    validations = [{**v, "member": k + 1} if many else v
                   for k, r in enumerate(runs) for v in r.validations]
    return ClassifyResult(config, None if out is None else str(out), labels, vocab.summary(),
                          sum(p.numel() for p in model.parameters()), len(train_texts),
                          len(valid_texts), sum(s.step for s in states),
                          sum(s.sequences for s in states) / len(train_texts),
                          sum(s.seconds for s in states), runs[-1].stopped_by,
                          None if best is None else 1 - best, test_accuracy, test_report,
                          history, validations, members)


# --- a saved classifier ---------------------------------------------------------------------


@dataclass
class LoadedClassifier:
    model: TextClassifier | ClassifierEnsemble
    vocab: WordVocabulary
    labels: list[str]
    path: Path


def load_classifier(path: str | Path) -> LoadedClassifier:
    """A classifier saved by ``train_classifier`` (its run directory or ``best.json``): one
    model or an ensemble (``ClassifyConfig.members``)."""
    model, extra, index = load_model(path, (KIND, ENSEMBLE_KIND), "classify")
    return LoadedClassifier(model, WordVocabulary.from_dict(extra["vocabulary"]),
                            list(extra["labels"]), index)


def evaluate_classifier(path: str | Path, file: str | Path, format: str = "auto"
                        ) -> ClassReport:
    """Accuracy, per-class precision / recall / F1 and the confusion matrix of a saved
    classifier on a labelled file (its labels must be ones the model was trained on)."""
    loaded = load_classifier(path)
    examples = _read(file, format, "eval")
    gold = label_indices(examples, loaded.labels, str(file))
    texts = [loaded.vocab.encode(e.words) for e in examples]
    predicted = class_probabilities(loaded.model, loaded.vocab, texts).argmax(1).tolist()
    return classification_report(gold, predicted, loaded.labels)


def predict_texts(path: str | Path, texts: Sequence[str], where: str = "text"
                  ) -> list[tuple[str, float]]:
    """(label, probability) of the most likely class of each text (split on whitespace);
    an empty text is an error naming it ("``where`` N")."""
    loaded = load_classifier(path)
    encoded = []
    for number, text in enumerate(texts, 1):
        words = text.split()
        if not words:
            raise DataError(f"{where} {number} is empty: expected words to classify")
        encoded.append(loaded.vocab.encode(words))
    if not encoded:
        return []
    probabilities = class_probabilities(loaded.model, loaded.vocab, encoded)
    best, index = probabilities.max(1)
    return [(loaded.labels[i], float(p)) for p, i in zip(best.tolist(), index.tolist(),
                                                         strict=True)]
