"""Training a language model on any text (``lstmlab lm train``), on the one training loop.

    >>> result = train_language_model(None, out="runs/shakespeare", minutes=10, hidden=256)

Sampling, evaluation and cell inspection are ``lm_sample``, ``lm_eval`` and ``lm_inspect``.
Under torchrun every rank trains its share of the B rows (``lstmlab.train.distributed``); rank 0
prints and writes the checkpoints.

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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor, nn

from lstmlab.cells import lstm_spec
from lstmlab.experiments.lm_eval import (
    LN2,
    describe_loss,
    evaluate_ids,
    load_language_model,
)
from lstmlab.io import copy_checkpoint, writable_folder
from lstmlab.models.language import LanguageModel
from lstmlab.models.recurrent import parse_cell
from lstmlab.models.registry import describe, model_meta, model_tensors
from lstmlab.tasks.batch import Batch
from lstmlab.tasks.text import (
    DEFAULT_CORPUS,
    BatchStream,
    Corpus,
    Vocabulary,
    is_char_like,
    load_corpus,
)
from lstmlab.train import (
    Callback,
    CheckpointError,
    EarlyStopping,
    StepOutput,
    TensorBoard,
    TrainConfig,
    Trainer,
    Validation,
    load_checkpoint,
    save_checkpoint,
)


@dataclass
class LMConfig:
    """What defines a language-model run: data, model and optimisation. A resumed run must
    keep all of these (budgets, validation and logging may change).

    Attributes:
        level: "char" or "word" (see ``lstmlab.tasks.text``).
        unk: give the vocabulary an ``<unk>`` symbol (None: word level yes, char level no).
        cell: "lstm" (= lstm:NP), "lstm:CIFG", ..., "gru", "rnn".
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
    cell: str = "lstm"
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
        if self.init_range is not None and not 0 < self.init_range <= 1000:
            raise ValueError(f"init-range r draws every weight from U(-r, r): r must be in "
                             f"(0, 1000], got {self.init_range:g} (Zaremba et al. use 0.1)")


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
    return load_corpus(source, config.level, valid_fraction=config.valid_fraction,
                       unk=config.unk)


def _unbounded_hint(cell: str) -> str:
    """Why a variant without tanh on the cell's input or output diverges, and what to try."""
    kind, option = parse_cell(cell)
    if kind != "lstm":
        return ""
    spec = lstm_spec(option)
    missing = [name for name, on in (("input (NIAF)", spec.input_activation),
                                     ("output (NOAF)", spec.output_activation)) if not on]
    if not missing:
        return ""
    return (f". {cell} has no tanh on the cell's {' and '.join(missing)}: its activations are "
            "unbounded and can overflow float32 over long windows and texts; try a smaller "
            "--init-range (e.g. 0.05), a shorter --seq-len, a lower --lr, or a variant that "
            "keeps both activations")


def _build_model(config: LMConfig, vocab_size: int) -> LanguageModel:
    """The run's model, or a clear error when its weights cannot be allocated."""
    try:
        return _model_from_config(config, vocab_size)
    except (RuntimeError, MemoryError) as error:
        if "alloc" not in str(error).lower() and not isinstance(error, MemoryError):
            raise
        size = config.layers * 4 * config.hidden * (config.hidden + (config.embedding
                                                                     or config.hidden) + 2)
        raise ValueError(f"a {config.layers}x{config.hidden} model needs about "
                         f"{size * 4 / 2**30:,.1f} GiB for its recurrent weights alone, more "
                         "than this machine can allocate; use a smaller --hidden") from None


def _model_from_config(config: LMConfig, vocab_size: int) -> LanguageModel:
    return LanguageModel(vocab_size, config.cell, config.hidden, config.layers,
                         embedding_size=config.embedding, dropout=config.dropout,
                         tie_weights=config.tie, init_range=config.init_range)


def _lm_meta(model: LanguageModel, vocab: Vocabulary, config: LMConfig, source: str | None,
             corpus_name: str, **extra: Any) -> dict[str, Any]:
    """A checkpoint's description of the model (``lstmlab.load`` reads it) with the vocabulary
    and the run's record (configuration, source, corpus, and what ``extra`` adds)."""
    return model_meta(model, {"vocabulary": vocab.to_dict(),
                              "lm": {"config": asdict(config), "source": source,
                                     "corpus": corpus_name, **extra}})


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


def windows(stream: BatchStream) -> Iterator[Batch]:
    """The stream's training windows as batches: inputs and targets (T, B) token ids, and
    ``extras["restart"]`` (B,) True on the first window of an epoch (rows start afresh)."""
    while True:
        restart = stream.step == 0
        inputs, targets = next(iter(stream))  # each (T, B)
        yield Batch(inputs, targets,
                    extras={"restart": torch.full((stream.batch_size,), restart)})


class WindowStep:
    """One training step of a language model: logits for the window from the recurrent state
    carried from the previous one (detached: truncated BPTT; zeros at each epoch's start), and
    the mean cross-entropy in nats per token. Reports the rows as sequences, B*T tokens, and
    bits per character ("bpc") or perplexity ("ppl").

    Attributes:
        carry: the state carried into the next window, this process's rows (None: zeros).
    """

    def __init__(self, char_like: bool = True, carry: Any = None) -> None:
        self.char_like, self.carry = char_like, carry

    def __call__(self, model: nn.Module, batch: Batch) -> StepOutput:
        if bool(batch.extras["restart"][0]):
            self.carry = None  # a new epoch: rows restart at their beginnings
        logits, state = model(batch.inputs, self.carry)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1))
        # a step that diverged is skipped by the loop; its state must not poison the next one
        self.carry = LanguageModel.detach_state(state) if torch.isfinite(loss) else None
        nats = loss.item()
        metrics = ({"bpc": nats / LN2} if self.char_like else {"ppl": math.exp(min(nats, 50))})
        return StepOutput(loss, batch.batch_size, batch.inputs.numel(), metrics)


def _state_parts(state: Any) -> tuple[Tensor, ...]:
    return () if state is None else (state,) if isinstance(state, Tensor) else tuple(state)


def _whole_carry(trainer: Trainer, carry: Any) -> tuple[Tensor, ...]:
    """The carried state of all B rows (each part (L, B, H)): under torchrun the ranks' rows
    joined in rank order."""
    parts = tuple(p.detach().cpu() for p in _state_parts(carry))
    world = trainer.world
    if not world.distributed:
        return parts
    import torch.distributed as dist

    gathered: list[Any] = [None] * world.size
    dist.all_gather_object(gathered, parts)
    if any(len(g) == 0 for g in gathered):
        return ()
    return tuple(torch.cat([g[k] for g in gathered], dim=1) for k in range(len(parts)))


def _my_rows(trainer: Trainer, parts: list[Tensor], batch: int) -> Any:
    """This rank's rows of a carried state saved for all rows (as ``Batch.shard`` splits)."""
    if not parts:
        return None
    world = trainer.world
    if world.distributed:
        base, extra = divmod(batch, world.size)
        start = world.rank * base + min(world.rank, extra)
        rows = slice(start, start + base + (world.rank < extra))
        parts = [p[:, rows] for p in parts]
    parts = [p.to(trainer.device) for p in parts]
    return parts[0] if len(parts) == 1 else tuple(parts)


class LMCheckpoints(Callback):
    """The run directory's checkpoints: ``best`` whenever validation improves (weights, model
    configuration, vocabulary) and ``last`` after each validation and at the end (everything
    to resume exactly: the trainer, the stream's position and the carried state). Rank 0
    writes; every rank takes part in gathering the carried state."""

    def __init__(self, out: Path | None, meta: Any, stream: BatchStream, step: WindowStep,
                 validation: Validation) -> None:
        self.out, self.meta, self.stream, self.step = out, meta, stream, step
        self.validation = validation
        self.best_state: dict[str, Tensor] | None = None
        self.position = (stream.state_dict(), step.carry)  # what the last step has consumed

    def save_best(self, trainer: Trainer, nats: float) -> None:
        model = trainer.model
        if self.out is None:
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif trainer.world.is_main:
            save_checkpoint(self.out, "best", model_tensors(model),
                            self.meta(step=trainer.state.step, valid=nats))

    def save_last(self, trainer: Trainer) -> None:
        if self.out is None:
            return
        stream_state, carry = self.position
        parts = _whole_carry(trainer, carry)
        if not trainer.world.is_main:
            return
        meta = self.meta(stream=stream_state, carry=len(parts), best_valid=self.validation.best,
                         validations=self.validation.records)
        copy_checkpoint(self.out, "last", "previous")  # a fallback should "last" be damaged
        trainer.save(self.out, "last", meta, {f"carry.{i}": p for i, p in enumerate(parts)})

    def on_step(self, trainer: Trainer, out: StepOutput) -> None:
        self.position = (self.stream.state_dict(), self.step.carry)
        if self.validation.last_step == trainer.state.step:
            self.save_last(trainer)

    def on_end(self, trainer: Trainer, result: Any) -> None:
        self.save_last(trainer)


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
                         device: str | None = None, patience: int | None = None,
                         loop: dict[str, Any] | None = None,
                         on_validation: Callable[[int, float], None] | None = None,
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
        eval_batch: rows evaluated at once (``EvalSpans``; the speed, not the figure).
        tensorboard: write TensorBoard events to ``out/tensorboard``.
        progress, console: rich progress display and where to print (rank 0 only).
        device: "cpu" (None) or "cuda" (under torchrun: each process's own GPU).
        patience: stop after that many validations without a new best (None: never early).
        loop: further ``TrainConfig`` fields (momentum, nesterov, ...).
        on_validation: called with (step, nats) after each validation (may raise to stop).
        **options: the fields of ``LMConfig`` (level, cell, layers, hidden, ..., seed); on a
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
        try:
            saved_tensors, saved_meta = load_checkpoint(out_dir / "last.json")
        except CheckpointError as error:
            if not (out_dir / "previous.json").exists():
                raise
            saved_tensors, saved_meta = load_checkpoint(out_dir / "previous.json")
            (console or Console(stderr=True)).print(
                f"[yellow]{error}\nresuming from the checkpoint before it, "
                f"{out_dir / 'previous.json'}[/]")
        kind, _, saved_extra = describe(out_dir / "last.json", saved_meta)
        if kind != "language_model" or "lm" not in saved_extra or "trainer" not in saved_meta:
            raise CheckpointError(f"{out_dir / 'last.json'} is not a language-model run")
        saved_meta = {**saved_meta, **saved_extra}  # the run's record: "lm", "vocabulary"
        saved_config = LMConfig(**{("cell" if k == "model" else k): v  # "model" before "cell"
                                   for k, v in saved_meta["lm"]["config"].items()})
        config = _merge_config(options, saved_config)
        saved_source = saved_meta["lm"]["source"]
        if source is not None and _resolve_source(source) != saved_source:
            raise ValueError(f"cannot resume: the run trained on {saved_source or DEFAULT_CORPUS}"
                             f", not {source}")
        source_path = saved_source
    else:
        config = _merge_config(options, None)
        source_path = _resolve_source(source)
        if out_dir is not None:
            writable_folder(out_dir)
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
    model = _build_model(config, len(vocab))
    spe = stream.steps_per_epoch
    if steps is None and minutes is None and epochs is None:
        saved_budget = (saved_meta or {}).get("lm", {}).get("budget")
        if saved_budget:  # a resumed run goes on to the budget it was given
            steps, minutes, epochs = (saved_budget.get(k) for k in ("steps", "minutes",
                                                                     "epochs"))
        else:
            epochs = 1
    budget = {"steps": steps, "minutes": minutes, "epochs": epochs}
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
        log_every=max(1, min(20, spe)), progress=progress, device=device, nonfinite="backoff",
        **(loop or {}))
    trainer = Trainer(model, train_config, console=console)
    if not trainer.world.is_main:  # only rank 0 prints
        console = Console(quiet=True)
    if trainer.world.size > config.batch:
        raise ValueError(f"{trainer.world.size} processes cannot share --batch {config.batch}: "
                         f"use at most {config.batch} processes (torchrun --nproc_per_node) or "
                         "a larger --batch")

    carry: Any = None
    best: float | None = None
    validations: list[dict[str, float]] = []
    if saved_meta is not None:
        trainer.restore(saved_tensors, saved_meta)
        stream.load_state_dict(saved_meta["lm"]["stream"])
        carry = _my_rows(trainer, [saved_tensors[f"carry.{i}"]
                                   for i in range(saved_meta["lm"]["carry"])], config.batch)
        best = saved_meta["lm"]["best_valid"]
        validations = list(saved_meta["lm"]["validations"])
        console.print(f"resuming {out_dir} at step {trainer.state.step:,} (epoch "
                      f"{stream.epoch}, window {stream.step} of {spe})")

    board = None
    if tensorboard:
        if out_dir is None:
            raise ValueError("--tensorboard needs an --out directory for its logs")
        board = TensorBoard(out_dir / "tensorboard")

    valid_ids = corpus.valid if eval_tokens is None else corpus.valid[: eval_tokens + 1]
    eval_every = eval_every or min(200, max(spe, 100))
    console.print(f"{corpus.summary()}\nmodel: {config.layers}x{config.hidden} {model.cell}"
                  f", {model.num_parameters():,} parameters; windows of {config.seq_len} x "
                  f"{config.batch}, {spe:,} steps per epoch"
                  + (f"; {trainer.world.size} processes" if trainer.world.distributed else ""))

    def report(trainer: Trainer, nats: float, improved: bool) -> None:
        s = trainer.state
        if not math.isfinite(nats):
            console.print(f"[yellow]validation loss is {nats}: the model's outputs overflow on "
                          f"the validation text{_unbounded_hint(config.cell)}[/]")
        console.print(f"step {s.step:,} ({s.tokens / stream.tokens_per_epoch:.2f} epochs, "
                      f"{s.seconds / 60:.1f} min): valid {describe_loss(nats, char_like)}"
                      + ("  [best]" if improved else ""))
        if board is not None:
            board.scalar("valid/loss_nats", nats, s.step)
            board.scalar("valid/bits_per_char" if char_like else "valid/perplexity",
                         nats / LN2 if char_like else math.exp(min(nats, 50)), s.step)
        if on_validation is not None:
            on_validation(s.step, nats)

    def meta(**extra: Any) -> dict[str, Any]:
        return _lm_meta(model, vocab, config, source_path, corpus.name, budget=budget, **extra)

    step = WindowStep(char_like, carry)
    validation = Validation(lambda m: evaluate_ids(m, valid_ids, eval_batch, config.seq_len),
                            eval_every, on_result=report, best=best, records=validations)
    checkpoints = LMCheckpoints(out_dir, meta, stream, step, validation)
    validation.on_best = checkpoints.save_best
    callbacks: list[Callback] = [validation, checkpoints] + ([board] if board else [])
    if patience is not None:
        callbacks.append(EarlyStopping(validation, patience))

    run_start = (trainer.state.tokens, trainer.state.seconds)
    try:
        result = trainer.run(step, windows(stream), callbacks,
                             description=f"{corpus.name} {model.cell}")
    except FloatingPointError as error:
        raise FloatingPointError(f"{error}{_unbounded_hint(config.cell)}") from None
    validations, best = validation.records, validation.best
    final_nats = None
    interrupted = result.stopped_by == "interrupt"
    if best is None and validations and not interrupted:
        raise FloatingPointError(f"no validation gave a finite loss (the last: "
                                 f"{validations[-1]['valid']}){_unbounded_hint(config.cell)}")
    if interrupted:  # Ctrl-C: the position is saved; leave at once
        console.print(f"interrupted at step {trainer.state.step:,}; continue with --resume"
                      + (f" --out {out_dir}" if out_dir is not None else ""))
    elif trainer.state.step > 0:
        final_nats = validations[-1]["valid"]
        if eval_tokens is not None:  # periodic validation saw part of the split: all of it now
            final_nats = evaluate_ids(model, corpus.valid, eval_batch, config.seq_len)
            console.print(f"whole validation split, last weights: "
                          f"{describe_loss(final_nats, char_like)}")
    best_model = model
    if interrupted:
        pass
    elif out_dir is not None and (out_dir / "best.json").exists():
        if trainer.world.distributed:  # rank 0 wrote it: wait before reading
            import torch.distributed as dist

            dist.barrier()
        best_model = load_language_model(out_dir / "best.json").model.to(trainer.device)
    elif checkpoints.best_state is not None:
        best_model = _model_from_config(config, len(vocab)).to(trainer.device)
        best_model.load_state_dict(checkpoints.best_state)
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
    s = trainer.state
    run_seconds = s.seconds - run_start[1]
    speed = (s.tokens - run_start[0]) / run_seconds if run_seconds > 0 else 0.0
    return LMTrainResult(config, corpus.name, None if out_dir is None else str(out_dir),
                         char_like, model.num_parameters(), s.step, s.tokens, s.seconds,
                         s.tokens / stream.tokens_per_epoch, result.stopped_by, best, final_nats,
                         test, speed, list(trainer.history), validations)


