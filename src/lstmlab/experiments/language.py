"""Language models end to end: train on any text, sample, evaluate, and look inside the cells.

The library behind ``lstmlab lm train|sample|eval|inspect``; each command is one call here:

    >>> result = train_language_model(None, out="runs/shakespeare", minutes=10, hidden=256)
    >>> for piece in sample("runs/shakespeare", prime="ROMEO:", length=300, temperature=0.8):
    ...     print(piece, end="", flush=True)
    >>> evaluate("runs/shakespeare", "some.txt").bits_per_token
    >>> inspect("runs/shakespeare", out="cells.html").cells[:3]

Units: losses are in nats per token (natural log). At character level (or for a corpus whose
symbols are characters, such as PTB's ``ptb.char.*`` files) we also give bits per character =
nats / ln 2; at word level, perplexity = exp(nats per word).

A run directory (``out``) holds two checkpoints, each a safetensors file and a JSON file written
atomically (see ``lstmlab.train.checkpoint``):

- ``last``: the weights and everything needed to resume exactly (optimiser, schedule, counters,
  random states, the data position of the BatchStream and the recurrent state carried into the
  next window), saved at each validation and at the end;
- ``best``: the weights with the lowest validation loss, with the model configuration and the
  vocabulary: everything that ``sample``, ``evaluate`` and ``inspect`` need.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor

from lstmlab.layers import tracing
from lstmlab.models.language import LanguageModel, check_sampling
from lstmlab.tasks.text import (
    DEFAULT_CORPUS,
    EOS,
    UNK,
    BatchStream,
    Corpus,
    EvalBatches,
    Vocabulary,
    default_corpus_text,
    load_corpus,
    read_text,
    tokenize,
)
from lstmlab.train import (
    CheckpointError,
    StepOutput,
    TrainConfig,
    Trainer,
    load_checkpoint,
    save_checkpoint,
)

KIND = "lstmlab.language_model"
LN2 = math.log(2)


# ----------------------------------------------------------------------------------------------
# Configuration


@dataclass
class LMConfig:
    """What defines a language-model run: data, model and optimisation. A resumed run must
    keep all of these (budgets, validation and logging may change).

    Attributes:
        level: "char" or "word" (see ``lstmlab.tasks.text``).
        unk: give the vocabulary an ``<unk>`` symbol (None: word level yes, char level no).
        model: "lstm" (= lstm:NP), "lstm:CIFG", ..., "gru", "rnn".
        layers, hidden, embedding: recurrent layers, units per layer, embedding width (None:
            the hidden size).
        tie: tie the embedding and decoder weights (needs embedding == hidden).
        dropout: on embeddings, between layers and before the decoder.
        seq_len, batch: the BPTT window T and the number of parallel rows B.
        optimizer, lr, clip: "adam" / "adamw" / "sgd", learning rate, global gradient-norm clip.
        lr_decay, decay_after, decay_every: multiply the lr by ``lr_decay`` every
            ``decay_every`` epochs once ``decay_after`` epochs are done (Zaremba: 0.5, 4, 1);
            fractions of epochs are fine (a schedule compressed to fit a time budget).
        init_range: uniform initialisation of every parameter in [-r, r] (None: defaults).
        valid_fraction: the tail of a single text kept for validation (nanoGPT: 0.1).
        seed: seeds the initialisation and dropout.
    """

    level: str = "char"
    unk: bool | None = None
    model: str = "lstm"
    layers: int = 2
    hidden: int = 512
    embedding: int | None = None
    tie: bool = False
    dropout: float = 0.0
    seq_len: int = 100
    batch: int = 64
    optimizer: str = "adam"
    lr: float = 2e-3
    clip: float | None = 5.0
    lr_decay: float = 1.0
    decay_after: float = 0
    decay_every: float = 1.0
    init_range: float | None = None
    valid_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.level not in ("char", "word"):
            raise ValueError(f"level must be 'char' or 'word', got {self.level!r}")
        for name in ("layers", "hidden", "seq_len", "batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name.replace('_', '-')} must be a positive integer, got "
                                 f"{value!r}")
        if self.embedding is not None and self.embedding < 1:
            raise ValueError(f"embedding must be a positive integer, got {self.embedding}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr-decay must be in (0, 1], got {self.lr_decay}")
        if self.decay_after < 0:
            raise ValueError(f"decay-after must be >= 0 epochs, got {self.decay_after}")
        if not self.decay_every > 0:
            raise ValueError(f"decay-every must be > 0 epochs, got {self.decay_every}")


_CONFIG_FIELDS = tuple(f.name for f in fields(LMConfig))


def _resolve_source(source: str | Path | None) -> str | None:
    """None for the shipped corpus, else the absolute path (for the checkpoint's record)."""
    if source is None:
        return None
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"corpus file not found: {path}")
    return str(path.resolve())


def load_training_corpus(source: str | Path | None, config: LMConfig) -> Corpus:
    """The corpus of a run: the shipped Tiny Shakespeare (None), a directory of split files,
    a ``...train.txt`` file beside its ``...valid.txt`` (and ``...test.txt``) - e.g.
    ``ptb/ptb.char.train.txt`` - or any single UTF-8 text, split by position."""
    if source is not None:
        path = Path(source)
        if path.is_dir():
            found = sorted(path.glob("*train.txt"))
            if len(found) != 1:
                names = ", ".join(p.name for p in found) or "none"
                raise ValueError(f"{path} should hold one *train.txt file (found: {names}); "
                                 f"name the training file itself, e.g. {path / 'ptb.train.txt'}"
                                 if found else f"{path} holds no *train.txt file")
            path = found[0]
        if path.is_file() and path.name.endswith("train.txt"):
            prefix = path.name.removesuffix("train.txt")
            valid = path.with_name(f"{prefix}valid.txt")
            if not valid.exists():
                valid = path.with_name(f"{prefix}val.txt")
            if valid.exists():
                test = path.with_name(f"{prefix}test.txt")
                return Corpus.from_files(path, valid, test if test.exists() else None,
                                         config.level, unk=config.unk,
                                         name=path.name.removesuffix(".train.txt"))
    return load_corpus(source, config.level, valid_fraction=config.valid_fraction,
                       unk=config.unk)


def is_char_like(vocab: Vocabulary) -> bool:
    """True when the tokens are characters: char level, or word level where every symbol
    but ``<eos>``/``<unk>`` is one character (PTB's ``ptb.char.*`` files). Losses are then
    reported in bits per character rather than perplexity."""
    if vocab.level == "char":
        return True
    return all(len(s) == 1 for s in vocab.symbols if s not in (EOS, UNK))


def describe_loss(nats: float, char_like: bool) -> str:
    """'1.402 nats/char = 2.023 bits/char' or '4.70 nats/word, perplexity 110.2'."""
    if char_like:
        return f"{nats:.4f} nats/char = {nats / LN2:.4f} bits/char"
    return f"{nats:.4f} nats/word, perplexity {math.exp(min(nats, 700)):.2f}"


# ----------------------------------------------------------------------------------------------
# Checkpoints


def _model_from_config(config: LMConfig, vocab_size: int) -> LanguageModel:
    return LanguageModel(vocab_size, config.model, config.hidden, config.layers,
                         embedding_size=config.embedding, dropout=config.dropout,
                         tie_weights=config.tie, init_range=config.init_range)


def _lm_meta(model: LanguageModel, vocab: Vocabulary, config: LMConfig, source: str | None,
             corpus_name: str, **extra: Any) -> dict[str, Any]:
    return {"kind": KIND, "model": model.config(), "vocabulary": vocab.to_dict(),
            "lm": {"config": asdict(config), "source": source, "corpus": corpus_name, **extra}}


def _checkpoint_index(path: str | Path) -> Path:
    """A run directory means its best checkpoint (else its last); else as load_checkpoint."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.json", "last.json"):
            if (path / name).exists():
                return path / name
        raise CheckpointError(f"{path} holds no language-model checkpoint (no best.json or "
                              "last.json)")
    if not path.exists() and not path.with_name(path.name + ".json").exists() \
            and not path.with_suffix(".json").exists():
        raise CheckpointError(f"no checkpoint at {path}")
    return path


@dataclass
class LoadedModel:
    """A language model read from a checkpoint, in eval mode, with its vocabulary and the
    checkpoint's JSON (``meta``)."""

    model: LanguageModel
    vocab: Vocabulary
    meta: dict[str, Any]
    path: Path

    @property
    def char_like(self) -> bool:
        return is_char_like(self.vocab)


def load_language_model(path: str | Path) -> LoadedModel:
    """Read a language-model checkpoint: a run directory (its best checkpoint), or a
    checkpoint's .json / .safetensors file. A missing, corrupt or foreign checkpoint raises
    ``CheckpointError`` (a ValueError) with a one-line reason."""
    index = _checkpoint_index(path)
    tensors, meta = load_checkpoint(index)
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{index} is not a language-model checkpoint (kind "
                              f"{meta.get('kind')!r})")
    try:
        vocab = Vocabulary.from_dict(meta["vocabulary"])
        model = LanguageModel(**meta["model"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{index}: bad model configuration or vocabulary ({error})"
                              ) from None
    if model.vocab_size != len(vocab):
        raise CheckpointError(f"{index}: the model predicts {model.vocab_size} symbols but the "
                              f"vocabulary has {len(vocab)}")
    weights = {k.removeprefix("model."): v for k, v in tensors.items()
               if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        raise CheckpointError(f"{index}: the weights do not fit the model configuration "
                              f"({' '.join(first[:2])})") from None
    model.eval()
    return LoadedModel(model, vocab, meta, index)


# ----------------------------------------------------------------------------------------------
# Evaluation


@torch.no_grad()
def evaluate_ids(model: LanguageModel, ids: Tensor, batch_size: int = 16, seq_len: int = 100
                 ) -> float:
    """Exact mean cross-entropy in nats per predicted token of ids (N,): every token but the
    first is predicted once (``EvalBatches``: B rows in order, each from a zero state, the state
    carried across windows). Leaves the model in the mode it was in."""
    was_training = model.training
    model.eval()
    device = model.decoder.weight.device
    try:
        batches = EvalBatches(ids, batch_size=batch_size, seq_len=seq_len, device=device)
        total, state = 0.0, None
        for inputs, targets in batches:
            loss, state = model.loss(inputs, targets, state, reduction="sum")
            total += loss.item()
        return total / batches.num_targets
    finally:
        model.train(was_training)


@dataclass
class EvalResult:
    """The loss of a model on a text.

    Attributes:
        nats: mean cross-entropy per predicted token (nats). tokens: tokens predicted.
        unknown: tokens of the text mapped to ``<unk>``. char_like: tokens are characters.
    """

    nats: float
    tokens: int
    unknown: int
    char_like: bool
    level: str

    @property
    def bits(self) -> float:
        """Bits per token (bits per character for character tokens)."""
        return self.nats / LN2

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nats, 700))

    def to_dict(self) -> dict[str, Any]:
        return {"nats_per_token": self.nats, "bits_per_token": self.bits,
                "perplexity": self.perplexity, "tokens": self.tokens, "unknown": self.unknown,
                "level": self.level, "char_like": self.char_like}

    def summary(self) -> str:
        unit = "char" if self.char_like else "word"
        unknown = f"; {self.unknown:,} mapped to {UNK}" if self.unknown else ""
        return (f"{self.tokens:,} {unit}s: {self.nats:.4f} nats/{unit}, {self.bits:.4f} "
                f"bits/{unit}, perplexity {self.perplexity:.2f}{unknown}")


def evaluate(checkpoint: str | Path, file: str | Path | None = None, *, text: str | None = None,
             batch_size: int = 16, seq_len: int = 100) -> EvalResult:
    """Loss of a checkpoint's model on a UTF-8 file (or ``text``): nats, bits per token and
    perplexity. Symbols outside the vocabulary become ``<unk>`` where it has one; otherwise a
    ValueError names them."""
    if (file is None) == (text is None):
        raise ValueError("evaluate needs a file or a text (one of them)")
    loaded = load_language_model(checkpoint)
    if file is not None:
        text = read_text(file, "evaluation")
    where = f"evaluation file {file}" if file is not None else "evaluation text"
    try:
        ids = loaded.vocab.encode(text)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    if len(ids) < 2:
        raise ValueError(f"{where} has {len(ids)} token(s); evaluation needs at least 2")
    unknown = 0
    if loaded.vocab.unk_id is not None:
        unknown = int((ids == loaded.vocab.unk_id).sum()) - tokenize(text, loaded.vocab.level
                                                                      ).count(UNK)
    nats = evaluate_ids(loaded.model, ids, batch_size, seq_len)
    return EvalResult(nats, len(ids) - 1, unknown, loaded.char_like, loaded.vocab.level)


# ----------------------------------------------------------------------------------------------
# Sampling


def _prime_ids(vocab: Vocabulary, prime: str | None) -> Tensor:
    if prime:
        try:
            ids = vocab.encode(prime)
        except ValueError:
            unknown = sorted({t for t in tokenize(prime, vocab.level) if t not in vocab})
            kind = "characters" if vocab.level == "char" else "words"
            shown = ", ".join(repr(t) for t in unknown[:10])
            raise ValueError(f"the prime has {len(unknown)} {kind} that the model's vocabulary "
                             f"lacks and it has no {UNK} to stand for them: {shown}"
                             f"{' ...' if len(unknown) > 10 else ''}; remove them") from None
        if len(ids):
            return ids
    # no prime: start as at the beginning of a line
    start = "\n" if vocab.level == "char" else EOS
    return torch.tensor([vocab.index(start) if start in vocab else 0])


def sample(checkpoint: str | Path, prime: str | None = None, length: int = 500, *,
           temperature: float = 1.0, top_k: int | None = None, seed: int | None = None
           ) -> Iterator[str]:
    """Stream generated text from a checkpoint, one token's text at a time.

    The prime is not repeated in the output. At word level each word is followed by a space
    and ``<eos>`` becomes a line break. Arguments are checked before anything is generated:
    temperature > 0, top_k >= 1, length >= 0, and a prime whose symbols the vocabulary lacks
    (with no ``<unk>``) raises a ValueError naming them.
    """
    check_sampling(length, temperature, top_k)  # before the checkpoint is read
    loaded = load_language_model(checkpoint)
    vocab = loaded.vocab
    ids = _prime_ids(vocab, prime)
    tokens = loaded.model.generate(ids, length, temperature=temperature, top_k=top_k,
                                   seed=seed)

    def pieces() -> Iterator[str]:
        if vocab.level == "word" and prime and not prime[-1].isspace():
            yield " "  # the first word must not run into the prime's last one
        for token_id in tokens:
            symbol = vocab.symbols[token_id]
            if vocab.level == "char":
                yield symbol
            else:
                yield "\n" if symbol == EOS else symbol + " "

    return pieces()


# ----------------------------------------------------------------------------------------------
# Training


@dataclass
class LMTrainResult:
    """What a training run reached. Losses in nats per token (None where not measured)."""

    config: LMConfig
    corpus: str
    out: str | None
    char_like: bool
    parameters: int
    steps: int
    tokens: int
    seconds: float
    epochs: float
    stopped_by: str
    best_valid: float | None
    last_valid: float | None
    test: float | None
    tokens_per_second: float
    history: list[dict[str, float]] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["config"] = asdict(self.config)
        return d

    def summary(self) -> str:
        lines = [f"{self.corpus}: {self.steps:,} steps, {self.tokens:,} tokens "
                 f"({self.epochs:.2f} epochs) in {self.seconds / 60:.1f} min, "
                 f"{self.tokens_per_second:,.0f} tokens/s; stopped by {self.stopped_by}"]
        for name, value in (("best valid", self.best_valid), ("last valid", self.last_valid),
                            ("test (best weights)", self.test)):
            if value is not None:
                lines.append(f"{name}: {describe_loss(value, self.char_like)}")
        return "\n".join(lines)


class WindowStep:
    """One training step of a language model, for ``Trainer.run``: the stream's next window,
    the recurrent state carried from the previous one (detached: truncated BPTT) and reset to
    zeros at each epoch's start. Reports the mean loss (nats per token), the rows as
    sequences, B*T tokens, and bits per character ("bpc") or perplexity ("ppl").

    Attributes:
        carry: the state carried into the next window (None: zeros).
    """

    def __init__(self, model: LanguageModel, stream: BatchStream, char_like: bool = True,
                 carry: Any = None) -> None:
        self.model, self.stream, self.char_like, self.carry = model, stream, char_like, carry

    def __call__(self) -> StepOutput:
        stream = self.stream
        if stream.step == 0:
            self.carry = None  # a new epoch: rows restart at their beginnings
        inputs, targets = next(iter(stream))  # each (T, B)
        loss, state = self.model.loss(inputs, targets, self.carry)
        self.carry = self.model.detach_state(state)
        nats = loss.item()
        metrics = ({"bpc": nats / LN2} if self.char_like else {"ppl": math.exp(min(nats, 50))})
        return StepOutput(loss, stream.batch_size, inputs.numel(), metrics)


def _merge_config(options: dict[str, Any], saved: LMConfig | None) -> LMConfig:
    unknown = sorted(set(options) - set(_CONFIG_FIELDS))
    if unknown:
        raise TypeError(f"unknown language-model options: {', '.join(unknown)}")
    given = {k: v for k, v in options.items() if v is not None}
    if saved is None:
        return LMConfig(**given)
    conflicts = []
    for name, value in given.items():
        before = getattr(saved, name)
        same = (math.isclose(value, before) if isinstance(value, float)
                and isinstance(before, (int, float)) and before is not None else value == before)
        if not same:
            conflicts.append(f"--{name.replace('_', '-')} {value} (the checkpoint has {before})")
    if conflicts:
        raise ValueError("cannot resume: these settings differ from the interrupted run's: "
                         + "; ".join(conflicts) + ". Drop them to continue that run, or train "
                         "into another --out directory")
    return saved


def train_language_model(source: str | Path | None = None, *, out: str | Path | None = None,
                         resume: bool = False, minutes: float | None = None,
                         epochs: float | None = None, steps: int | None = None,
                         eval_every: int | None = None, eval_tokens: int | None = None,
                         eval_batch: int = 16, tensorboard: bool = False,
                         progress: bool = True, console: Console | None = None,
                         **options: Any) -> LMTrainResult:
    """Train a language model on a text (None: the shipped Tiny Shakespeare).

    Args:
        source: a UTF-8 file (its last ``valid_fraction`` validates), a directory of split
            files, or a ``...train.txt`` beside its ``...valid.txt`` (and ``...test.txt``).
        out: the run directory for checkpoints (``best``, ``last``) and TensorBoard logs; None
            keeps nothing on disk.
        resume: continue the interrupted run in ``out`` exactly where its last checkpoint
            left it (data position, optimiser, schedule, random states, carried state).
            Options given here must agree with that run's.
        minutes / epochs / steps: budgets, the first reached stops (total over resumes);
            none given: one epoch.
        eval_every: steps between validations (default: an epoch, at most 200 steps).
        eval_tokens: validate on the first this many validation tokens (None: all); the
            final figures always use the whole validation split.
        eval_batch: rows of the evaluation batches (``EvalBatches``).
        tensorboard: write TensorBoard events to ``out/tensorboard``.
        progress, console: rich progress display and where to print.
        **options: the fields of ``LMConfig`` (level, model, layers, hidden, ..., seed); on a
            resumed run, None or absent means "as before".

    Returns:
        ``LMTrainResult`` with the best and last validation losses (nats per token) and, for
        a corpus with a test split, the test loss of the best weights.
    """
    console = console or Console(stderr=True)
    out_dir = Path(out) if out is not None else None
    saved_tensors: dict[str, Tensor] | None = None
    saved_meta: dict[str, Any] | None = None
    if resume:
        if out_dir is None:
            raise ValueError("--resume needs the --out directory of the run to continue")
        if not (out_dir / "last.json").exists():
            raise CheckpointError(f"nothing to resume in {out_dir}: it has no last.json")
        saved_tensors, saved_meta = load_checkpoint(out_dir / "last.json")
        if saved_meta.get("kind") != KIND or "lm" not in saved_meta:
            raise CheckpointError(f"{out_dir / 'last.json'} is not a language-model run")
        saved_config = LMConfig(**saved_meta["lm"]["config"])
        config = _merge_config(options, saved_config)
        saved_source = saved_meta["lm"]["source"]
        if source is not None and _resolve_source(source) != saved_source:
            raise ValueError(f"cannot resume: the run trained on {saved_source or DEFAULT_CORPUS}"
                             f", not {source}")
        source_path = saved_source
    else:
        config = _merge_config(options, None)
        source_path = _resolve_source(source)
        if out_dir is not None and (out_dir / "last.json").exists():
            raise ValueError(f"{out_dir} already holds a run; pass --resume to continue it, or "
                             "choose another --out directory")

    corpus = load_training_corpus(source_path, config)
    vocab = corpus.vocab
    if saved_meta is not None and Vocabulary.from_dict(saved_meta["vocabulary"]) != vocab:
        raise ValueError("cannot resume: the corpus's vocabulary differs from the checkpoint's "
                         "(the text changed)")
    char_like = is_char_like(vocab)
    stream = BatchStream(corpus.train, config.batch, config.seq_len)
    torch.manual_seed(config.seed)
    model = _model_from_config(config, len(vocab))
    spe = stream.steps_per_epoch
    if steps is None and minutes is None and epochs is None:
        epochs = 1
    max_steps = [s for s in (steps, None if epochs is None else math.ceil(epochs * spe))
                 if s is not None]
    decay = config.lr_decay != 1.0
    train_config = TrainConfig(
        optimizer=config.optimizer, lr=config.lr, clip=config.clip,
        schedule="step" if decay else "constant", gamma=config.lr_decay,
        decay_start=round(config.decay_after * spe),
        decay_every=max(1, round(config.decay_every * spe)) if decay else None,
        max_steps=min(max_steps) if max_steps else None,
        max_seconds=None if minutes is None else minutes * 60,
        log_every=max(1, min(20, spe)), progress=progress)
    trainer = Trainer(model, train_config, console=console)

    carry: Any = None
    best: float | None = None
    validations: list[dict[str, float]] = []
    if saved_meta is not None:
        trainer.restore(saved_tensors, saved_meta)
        stream.load_state_dict(saved_meta["lm"]["stream"])
        carried = [saved_tensors[f"carry.{i}"] for i in range(saved_meta["lm"]["carry"])]
        carry = None if not carried else carried[0] if len(carried) == 1 else tuple(carried)
        best = saved_meta["lm"]["best_valid"]
        validations = list(saved_meta["lm"]["validations"])
        console.print(f"resuming {out_dir} at step {trainer.state.step:,} (epoch "
                      f"{stream.epoch}, window {stream.step} of {spe})")

    board = None
    if tensorboard:
        if out_dir is None:
            raise ValueError("--tensorboard needs an --out directory for its logs")
        from lstmlab.train.tensorboard import TensorBoardLog

        board = TensorBoardLog(out_dir / "tensorboard", purge_step=trainer.state.step or None)
        board.start(trainer)

    valid_ids = corpus.valid if eval_tokens is None else corpus.valid[: eval_tokens + 1]
    eval_every = eval_every or min(spe, 200)
    committed: dict[str, Any] = {"stream": stream.state_dict(), "carry": carry}
    console.print(f"{corpus.summary()}\nmodel: {config.layers}x{config.hidden} {model.model_name}"
                  f", {model.num_parameters():,} parameters; windows of {config.seq_len} x "
                  f"{config.batch}, {spe:,} steps per epoch")

    step = WindowStep(model, stream, char_like, carry)

    def save_last() -> None:
        if out_dir is None:
            return
        state = committed["carry"]
        parts = () if state is None else (state,) if isinstance(state, Tensor) else state
        meta = _lm_meta(model, vocab, config, source_path, corpus.name,
                        stream=committed["stream"], carry=len(parts), best_valid=best,
                        validations=validations)
        trainer.save(out_dir, "last", meta, {f"carry.{i}": p for i, p in enumerate(parts)})

    best_state: dict[str, Tensor] | None = None

    def validate() -> float:
        nonlocal best, best_state
        nats = evaluate_ids(model, valid_ids, eval_batch, config.seq_len)
        improved = best is None or nats < best
        s = trainer.state
        validations.append({"step": s.step, "tokens": s.tokens, "seconds": round(s.seconds, 2),
                            "valid": nats})
        if improved:
            best = nats
            if out_dir is None:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                save_checkpoint(out_dir, "best",
                                {f"model.{k}": v for k, v in model.state_dict().items()},
                                _lm_meta(model, vocab, config, source_path, corpus.name,
                                         step=s.step, valid=nats))
        console.print(f"step {s.step:,} ({s.tokens / stream.tokens_per_epoch:.2f} epochs, "
                      f"{s.seconds / 60:.1f} min): valid {describe_loss(nats, char_like)}"
                      + ("  [best]" if improved else ""))
        if board is not None:
            board.scalar("valid/loss_nats", nats, s.step)
            board.scalar("valid/bits_per_char" if char_like else "valid/perplexity",
                         nats / LN2 if char_like else math.exp(min(nats, 50)), s.step)
        return nats

    last_valid_step = -1

    def on_step(trainer: Trainer, out: StepOutput) -> bool:
        nonlocal last_valid_step
        committed["stream"], committed["carry"] = stream.state_dict(), step.carry
        if board is not None:
            board.log_history(trainer)
        if trainer.state.step % eval_every == 0:
            validate()
            last_valid_step = trainer.state.step
            save_last()
        return False

    description = f"{corpus.name} {model.model_name}"
    run_start = (trainer.state.tokens, trainer.state.seconds)
    result = trainer.run(step, on_step, description=description)
    final_nats = None
    interrupted = result.stopped_by == "interrupt"
    if interrupted:  # Ctrl-C: keep the position and leave at once
        console.print(f"interrupted at step {trainer.state.step:,}; continue with --resume"
                      + (f" --out {out_dir}" if out_dir is not None else ""))
    elif trainer.state.step > 0:
        if last_valid_step != trainer.state.step:
            validate()
        final_nats = validations[-1]["valid"]
        if eval_tokens is not None:  # periodic validation saw part of the split: all of it now
            final_nats = evaluate_ids(model, corpus.valid, eval_batch, config.seq_len)
            console.print(f"whole validation split, last weights: "
                          f"{describe_loss(final_nats, char_like)}")
    save_last()
    best_model = model
    if interrupted:
        pass
    elif out_dir is not None and (out_dir / "best.json").exists():
        best_model = load_language_model(out_dir / "best.json").model
    elif best_state is not None:
        best_model = _model_from_config(config, len(vocab))
        best_model.load_state_dict(best_state)
    if eval_tokens is not None and trainer.state.step > 0 and not interrupted:
        best_step = min(validations, key=lambda v: v["valid"])["step"]
        if best_step == trainer.state.step:  # the last weights are the best
            best = final_nats
        else:
            best = evaluate_ids(best_model, corpus.valid, eval_batch, config.seq_len)
            console.print(f"whole validation split, best weights (step {best_step:,}): "
                          f"{describe_loss(best, char_like)}")
    test = None
    if corpus.test is not None and trainer.state.step > 0 and not interrupted:
        test = evaluate_ids(best_model, corpus.test, eval_batch, config.seq_len)
        console.print(f"test (best weights): {describe_loss(test, char_like)}")
    if board is not None:
        board.close()
    s = trainer.state
    run_seconds = s.seconds - run_start[1]
    speed = (s.tokens - run_start[0]) / run_seconds if run_seconds > 0 else 0.0
    return LMTrainResult(config, corpus.name, None if out_dir is None else str(out_dir),
                         char_like, model.num_parameters(), s.step, s.tokens, s.seconds,
                         s.tokens / stream.tokens_per_epoch, result.stopped_by, best, final_nats,
                         test, speed, list(trainer.history), validations)


# ----------------------------------------------------------------------------------------------
# Inspecting cells


FEATURES = ("inside quotes", "inside brackets", "position in line", "start of word")
_OPEN, _CLOSE = "([{", ")]}"


def text_features(tokens: list[str]) -> dict[str, np.ndarray]:
    """Per-token features (float arrays (N,)), each describing the text up to and including
    token t (the cell state at t has read it):

    - inside quotes: 1 after an opening '"' up to (not including) the closing one;
    - inside brackets: 1 while (, [ or { is open (nesting counted);
    - position in line: tokens since the last line break (0 at the break);
    - start of word: 1 on the first letter or digit of a word (char level), on every word
      at word level.
    """
    n = len(tokens)
    quotes, brackets, position, start = (np.zeros(n) for _ in range(4))
    inside, depth, column, previous = False, 0, 0, "\n"
    for t, token in enumerate(tokens):
        text = "\n" if token == EOS else token
        for ch in text:
            if ch == '"':
                inside = not inside
            elif ch in _OPEN:
                depth += 1
            elif ch in _CLOSE:
                depth = max(0, depth - 1)
        column = 0 if text == "\n" else column + 1
        quotes[t], brackets[t], position[t] = inside and text != '"', depth > 0, column
        if len(text) == 1:
            start[t] = text.isalnum() and not previous.isalnum()
        else:
            start[t] = text != "\n"
        previous = text[-1] if text else previous
    return {"inside quotes": quotes, "inside brackets": brackets,
            "position in line": position, "start of word": start}


@dataclass
class CellFinding:
    """A cell that tracks a feature: Pearson correlation r of its state with the feature."""

    feature: str
    cell: int  # layer * hidden + unit
    layer: int
    unit: int
    r: float

    @property
    def name(self) -> str:
        return f"cell {self.cell} (layer {self.layer + 1}, unit {self.unit})"


@dataclass
class InspectResult:
    """The cells most correlated with each feature, the cell shown, and the HTML page."""

    tokens: int
    findings: list[CellFinding]
    shown: int
    html: Path | None
    skipped: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "findings": [asdict(f) for f in self.findings],
                "shown": self.shown, "html": None if self.html is None else str(self.html),
                "skipped": self.skipped}


@torch.no_grad()
def cell_states(model: LanguageModel, ids: Tensor, window: int = 256) -> np.ndarray:
    """Every layer's cell state after each token of ids (N,): an array (N, L*H), layer-major
    (LSTM: the memory c_t; GRU and RNN: the state h_t). Runs one sequence in windows,
    carrying the state."""
    model.eval()
    name = "c" if model.model_name.startswith("lstm") else "h"
    chunks, state = [], None
    for start in range(0, len(ids), window):
        piece = ids[start:start + window].unsqueeze(1)
        with tracing(model) as recording:
            _, state = model(piece, state)
        trace = recording[0]
        chunks.append(torch.cat([trace[k][name][:, 0] for k in range(len(trace))], dim=1))
    return torch.cat(chunks).double().numpy()


def _correlations(states: np.ndarray, feature: np.ndarray) -> np.ndarray | None:
    """Pearson r of each column of states (N, C) with feature (N,); None if it is constant."""
    f = feature - feature.mean()
    if not np.any(f):
        return None
    s = states - states.mean(0)
    denominator = np.sqrt((s * s).sum(0) * (f * f).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (s * f[:, None]).sum(0) / denominator
    return np.nan_to_num(r)


def _parse_cell(cell: int | str, layers: int, hidden: int) -> int:
    if isinstance(cell, str) and ":" in cell:
        layer, _, unit = cell.partition(":")
        try:
            layer_i, unit_i = int(layer) - 1, int(unit)
        except ValueError:
            raise ValueError(f"--cell is N or LAYER:UNIT (layers from 1), got {cell!r}"
                             ) from None
        if not (0 <= layer_i < layers and 0 <= unit_i < hidden):
            raise ValueError(f"--cell {cell}: the model has layers 1..{layers} of units "
                             f"0..{hidden - 1}")
        return layer_i * hidden + unit_i
    try:
        index = int(cell)
    except ValueError:
        raise ValueError(f"--cell is N or LAYER:UNIT (layers from 1), got {cell!r}") from None
    if not 0 <= index < layers * hidden:
        raise ValueError(f"--cell {index} is out of range: the model has {layers * hidden} "
                         f"cells (0..{layers * hidden - 1}; or LAYER:UNIT)")
    return index


def _default_inspect_text(loaded: LoadedModel, max_tokens: int) -> str:
    """The validation text of the run (its first tokens), or a sample from the model."""
    lm = loaded.meta.get("lm", {})
    config = lm.get("config", {})
    source = lm.get("source")
    try:
        if source is None and config:
            text = default_corpus_text()
            start = int(len(text) * (1 - config.get("valid_fraction", 0.1)))
            return text[start:start + max_tokens]
        if source is not None and Path(source).is_file():
            path = Path(source)
            valid = path.with_name(path.name.removesuffix("train.txt") + "valid.txt")
            if path.name.endswith("train.txt") and valid.is_file():
                return read_text(valid)
            text = read_text(source)
            start = int(len(text) * (1 - config.get("valid_fraction", 0.1)))
            return text[start:][:max_tokens] if loaded.vocab.level == "char" else text[start:]
    except (OSError, ValueError):
        pass
    return "".join(sample(loaded.path, length=max_tokens, temperature=0.8, seed=0))


def inspect(checkpoint: str | Path, text: str | None = None, *,
            out: str | Path | None = "inspect.html", cell: int | str | None = None,
            top: int = 3, max_tokens: int = 4000, console: Console | None = None
            ) -> InspectResult:
    """Find the cells that track quotes, brackets, position in line and word starts, and
    write an HTML page of the text coloured by a cell's state (Karpathy, Johnson & Fei-Fei
    2015, "Visualizing and Understanding Recurrent Networks").

    Args:
        checkpoint: a run directory or checkpoint file.
        text: the text to read (default: the start of the run's validation text, else a
            sample from the model); at most ``max_tokens`` tokens are used.
        out: the HTML file to write (None: none).
        cell: the cell to colour the text by: an index over all cells, layer-major, or
            "LAYER:UNIT" with layers from 1 (default: the cell most correlated with any
            feature). The page also shows the top cell of each feature.
        top: cells listed per feature.
        console: where to print the summary table (None: no printing).

    Returns:
        ``InspectResult``: findings sorted by |r| within each feature.
    """
    loaded = load_language_model(checkpoint)
    model, vocab = loaded.model, loaded.vocab
    layers, hidden = model.num_layers, model.hidden_size
    shown = None if cell is None else _parse_cell(cell, layers, hidden)
    if text is None:
        text = _default_inspect_text(loaded, max_tokens)
    tokens = tokenize(text, vocab.level)[:max_tokens]
    if len(tokens) < 2:
        raise ValueError(f"inspect needs a text of at least 2 tokens, got {len(tokens)}")
    try:
        ids = torch.tensor(vocab.lookup(tokens), dtype=torch.long)
    except ValueError as error:
        raise ValueError(f"inspect text: {error}") from None
    states = cell_states(model, ids)  # (N, L*H)
    findings, skipped = [], []
    for name, feature in text_features(tokens).items():
        r = _correlations(states, feature)
        if r is None:
            skipped.append(name)
            continue
        for index in np.argsort(-np.abs(r))[:top]:
            findings.append(CellFinding(name, int(index), int(index) // hidden,
                                        int(index) % hidden, float(r[index])))
    if shown is None:
        shown = max(findings, key=lambda f: abs(f.r)).cell if findings else 0
    html_path = None
    if out is not None:
        from lstmlab.viz.text_html import CellPanel, render_cells_html

        panels, seen = [], set()
        chosen = [f for f in findings if f.cell == shown]
        label = (f"{chosen[0].feature}, r = {chosen[0].r:+.2f}" if chosen else "chosen cell")
        panels.append(CellPanel(f"cell {shown} (layer {shown // hidden + 1}, unit "
                                f"{shown % hidden})", label, states[:, shown]))
        seen.add(shown)
        for f in findings:
            if f.cell not in seen and f == next(g for g in findings if g.feature == f.feature):
                panels.append(CellPanel(f.name, f"{f.feature}, r = {f.r:+.2f}",
                                        states[:, f.cell]))
                seen.add(f.cell)
        title = f"lstmlab cells: {loaded.meta.get('lm', {}).get('corpus', loaded.path.parent.name)}"
        page = render_cells_html(tokens, panels, title=title,
                                 findings=[(f.feature, f.name, f.r) for f in findings],
                                 subtitle=f"{model.model_name} {layers}x{hidden}, "
                                          f"{loaded.path}; {len(tokens):,} tokens; "
                                          "colour = tanh of the cell state",
                                 word_level=vocab.level == "word")
        html_path = Path(out)
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(page, encoding="utf-8")
    result = InspectResult(len(tokens), findings, shown, html_path, skipped)
    if console is not None:
        table = Table(title=f"Most interpretable cells ({len(tokens):,} tokens read)")
        for column in ("feature", "cell", "layer", "unit", "r"):
            table.add_column(column, justify="right" if column != "feature" else "left")
        for f in findings:
            table.add_row(f.feature, str(f.cell), str(f.layer + 1), str(f.unit), f"{f.r:+.3f}")
        console.print(table)
        if skipped:
            console.print(f"not in this text (constant): {', '.join(skipped)}")
        if html_path is not None:
            console.print(f"wrote {html_path} (text coloured by cell {shown})")
    return result

