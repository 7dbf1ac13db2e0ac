"""Sequence to sequence: train, evaluate and apply a translator (``lstmlab translate``).

    >>> result = train_translator("train.de.gz", "train.en.gz", valid=("val.de.gz", "val.en.gz"),
    ...                           out="runs/de-en", minutes=60)
    >>> report = evaluate_translator("runs/de-en", "test.de.gz", "test.en.gz")   # BLEU, chrF
    >>> translate_texts(load_translator("runs/de-en"), ["Ein Hund läuft."])     # ["A dog runs."]

Data and tokenizers: ``lstmlab.tasks.translation``. Model: ``lstmlab.models.seq2seq``. Training
runs on the one loop (``experiments.supervised.fit``) with teacher forcing and label-smoothed
cross-entropy; every validation decodes the validation sources greedily and scores them by the
tutorial protocol's BLEU; the best weights are kept (and saved), and the learning rate is
multiplied by ``lr_decay`` after each validation that brings no new best.

Scores (``score_translations``):

- sacreBLEU: ``sacrebleu``'s corpus BLEU of the detokenised output against the raw reference
  (its own 13a tokenisation; lower-cased, as its signature then says, when the model is);
- tutorial protocol: output and reference lower-cased and split by ``protocol_tokens``
  (``WordTokenizer(lowercase=True)``), then corpus BLEU-4 as torchtext's ``bleu_score`` defines
  it - clipped n-gram precisions for n = 1..4 summed over the corpus, uniform weights, no
  smoothing (0 if any precision is 0), brevity penalty exp(min(0, 1 - r/c)) - computed by
  sacrebleu on the space-joined tokens with tokenize="none" and smooth_method="none";
- chrF: sacrebleu's character n-gram F-score (chrF2) on the detokenised text.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from lstmlab.experiments.supervised import (
    RunRecord,
    bucketed_batches,
    check_settings,
    fit,
    load_model,
    save_model,
    steps_per_epoch,
    train_config,
)
from lstmlab.models.decoding import beam_search, greedy
from lstmlab.models.recurrent import canonical_name
from lstmlab.models.seq2seq import ATTENTIONS, Translator
from lstmlab.tasks.files import DataError, at
from lstmlab.tasks.text import EOS, Vocabulary
from lstmlab.tasks.translation import (
    BOS,
    SUBWORD_KINDS,
    Pair,
    SubwordTokenizer,
    Tokenizer,
    WordTokenizer,
    build_vocabulary,
    decoder_inputs,
    protocol_tokens,
    read_parallel,
    tokenizer_from_dict,
    translation_batch,
)
from lstmlab.train.loop import StepOutput, Trainer

KIND = "translator"
LENGTH_PENALTIES = ("none", "mean", "gnmt")


@dataclass
class TranslateConfig:
    """What defines a translator run: tokens, model and optimisation.

    Attributes:
        cell: the encoder's cell: "lstm" (= lstm:NP), "lstm:CIFG", ..., "gru", "rnn".
        decoder_cell: the decoder's LSTM cell, "lstm" or "lstm:VARIANT".
        attention: "none" (Sutskever et al.), "bahdanau" (additive), "luong" (general), "dot".
        input_feeding: feed the last attentional vector into the decoder (Luong et al.).
        embedding, hidden, decoder, layers: token vector width, encoder units per direction,
            decoder units, encoder layers.
        dropout: on embeddings, between encoder layers and on the attentional vector.
        label_smoothing: spread this much of each target's probability over the vocabulary.
        tie: the output layer shares the target embedding.
        subwords: "none" (words: ``WordTokenizer``), "bpe" or "unigram" (sentencepiece,
            ``vocab_size`` pieces per language, trained on the training files).
        min_freq: words seen fewer times in training become ``<unk>`` (words only).
        lowercase: lower-case all text (the output is then lower-case too).
        max_length: the most tokens of a sentence: longer training pairs are skipped, longer
            sources are truncated (with a warning) when translating.
        batch, optimizer, lr, weight_decay, clip: sentence pairs per step and the optimiser.
        lr_decay: the learning rate is multiplied by this after a validation with no new best.
        patience: stop after this many validations without a new best (0: never).
        valid_fraction: held out of the training files when no validation files are given.
        seed: initialisation, dropout and batch order.
    """

    cell: str = "lstm"
    decoder_cell: str = "lstm"
    attention: str = "luong"
    input_feeding: bool = True
    embedding: int = 256
    hidden: int = 256
    decoder: int = 256
    layers: int = 1
    dropout: float = 0.3
    label_smoothing: float = 0.1
    tie: bool = True
    subwords: str = "none"
    vocab_size: int = 8000
    min_freq: int = 2
    lowercase: bool = False
    max_length: int = 100
    batch: int = 64
    optimizer: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 0.0
    clip: float | None = 5.0
    lr_decay: float = 0.5
    patience: int = 0
    valid_fraction: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        self.cell = canonical_name(self.cell)
        self.decoder_cell = canonical_name(self.decoder_cell)
        check_settings(self, ("layers", "hidden", "embedding", "decoder", "min_freq", "batch",
                              "max_length", "vocab_size"), ("dropout", "label_smoothing"))
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got "
                             f"{self.attention!r}")
        if self.subwords not in ("none", *SUBWORD_KINDS):
            raise ValueError(f"subwords must be none, bpe or unigram, got {self.subwords!r}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr-decay must be in (0, 1], got {self.lr_decay}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")


@dataclass
class DecodeConfig:
    """How to translate: ``beam`` 1 is greedy decoding; ``length_penalty`` ranks finished beam
    hypotheses by log-probability divided by 1 ("none"), the length ("mean") or GNMT's
    ((5 + length) / 6) ** alpha ("gnmt"); at most ``max_ratio`` x the source's tokens + 10 are
    generated; ``batch`` sentences are decoded at once."""

    beam: int = 5
    length_penalty: str = "gnmt"
    alpha: float = 0.6
    max_ratio: float = 1.5
    batch: int = 64

    def __post_init__(self) -> None:
        if not isinstance(self.beam, int) or self.beam < 1:
            raise ValueError(f"beam must be a positive integer, got {self.beam!r}")
        if self.length_penalty not in LENGTH_PENALTIES:
            raise ValueError(f"length-penalty must be one of {', '.join(LENGTH_PENALTIES)}, "
                             f"got {self.length_penalty!r}")
        if not self.max_ratio > 0 or not self.alpha >= 0 or self.batch < 1:
            raise ValueError("max-ratio must be > 0, alpha >= 0 and batch >= 1")


def build_model(config: TranslateConfig, source: Vocabulary, target: Vocabulary) -> Translator:
    return Translator(len(source), len(target), config.cell, config.decoder_cell,
                      config.embedding, config.hidden, config.decoder, config.layers,
                      config.attention, config.input_feeding, config.dropout, config.tie)


class TranslateStep:
    """One training step: teacher-forced, label-smoothed cross-entropy over the target tokens
    (nats per token, ``<eos>`` included); reports the tokens."""

    def __init__(self, label_smoothing: float = 0.0, bos: int = 1) -> None:
        self.label_smoothing, self.bos = label_smoothing, bos

    def __call__(self, model: nn.Module, batch: Any) -> StepOutput:
        logits = model(batch.inputs, batch.lengths, decoder_inputs(batch.targets, self.bos))
        mask = batch.mask
        loss = F.cross_entropy(logits[mask], batch.targets[mask],
                               label_smoothing=self.label_smoothing)
        return StepOutput(loss, batch.batch_size, int(mask.sum()))


# --- a translator with its tokenizers and vocabularies ----------------------------------------


@dataclass
class LoadedTranslator:
    """A translator and what turns text into its ids and back."""

    model: Translator
    source_tokenizer: Tokenizer
    target_tokenizer: Tokenizer
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    max_length: int
    path: Path | None = None

    @property
    def lowercase(self) -> bool:
        return self.target_tokenizer.lowercase

    def extra(self, config: TranslateConfig) -> dict[str, Any]:
        """What a checkpoint keeps beside the weights (JSON)."""
        return {"source_tokenizer": self.source_tokenizer.to_dict(),
                "target_tokenizer": self.target_tokenizer.to_dict(),
                "source_vocabulary": self.source_vocab.to_dict(),
                "target_vocabulary": self.target_vocab.to_dict(),
                "max_length": self.max_length, "config": asdict(config)}

    def source_ids(self, texts: Sequence[str], where: str = "text",
                   console: Console | None = None) -> list[list[int]]:
        """Token ids of source texts, each cut to ``max_length`` tokens; a warning names the
        first cut sentence ("``where``, line N") and counts them; an empty text is an error."""
        out, cut = [], []
        for number, text in enumerate(texts, 1):
            tokens = self.source_tokenizer.tokenize(text)
            if not tokens:
                raise DataError(at(where, number, "empty sentence: expected a sentence to "
                                                  "translate"))
            if len(tokens) > self.max_length:
                cut.append((number, len(tokens)))
                tokens = tokens[:self.max_length]
            out.append(self.source_vocab.lookup(tokens))
        if cut:
            number, length = cut[0]
            more = f" (and {len(cut) - 1} more)" if len(cut) > 1 else ""
            (console or Console(stderr=True)).print(
                f"[yellow]warning: {at(where, number, '')}source of {length} tokens is longer "
                f"than the model's maximum of {self.max_length}: truncated{more}[/]",
                highlight=False)
        return out

    def target_text(self, ids: Sequence[int]) -> str:
        """The detokenised text of target ids (specials dropped)."""
        symbols = self.target_vocab.symbols
        return self.target_tokenizer.detokenize([symbols[i] for i in ids
                                                 if symbols[i] not in (BOS, EOS)])


def load_translator(path: str | Path) -> LoadedTranslator:
    """A translator saved by ``train_translator`` (its run directory or ``best.json``)."""
    model, extra, index = load_model(path, KIND, "translate")
    return LoadedTranslator(model, tokenizer_from_dict(extra["source_tokenizer"]),
                            tokenizer_from_dict(extra["target_tokenizer"]),
                            Vocabulary.from_dict(extra["source_vocabulary"]),
                            Vocabulary.from_dict(extra["target_vocabulary"]),
                            int(extra["max_length"]), index)


# --- decoding ------------------------------------------------------------------------------------


@torch.no_grad()
def translate_ids(model: Translator, sources: Sequence[Sequence[int]], target: Vocabulary,
                  decode: DecodeConfig | None = None) -> list[list[int]]:
    """The best translation (target ids, without ``<eos>``) of each source id list, decoded
    in batches of similar length (greedy for beam 1, else beam search), in the sources' order."""
    decode = decode or DecodeConfig()
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    bos, eos = target.index(BOS), target.index(EOS)
    out: list[list[int]] = [[] for _ in sources]
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    try:
        for start in range(0, len(order), decode.batch):
            chunk = order[start:start + decode.batch]
            batch = translation_batch([sources[i] for i in chunk], None, eos).to(device)
            decoder, state = model.start(batch.inputs, batch.lengths)
            first = torch.full((len(chunk),), bos, dtype=torch.long, device=device)
            longest = math.ceil(decode.max_ratio * int(batch.lengths.max())) + 10
            if decode.beam == 1:
                found = greedy(decoder, first, state, max_length=longest, end_token=eos)
                rows = [row[:n].tolist() for row, n in zip(found.tokens, found.lengths,
                                                           strict=True)]
            else:
                normalization = None if decode.length_penalty == "none" else \
                    decode.length_penalty
                hyps = beam_search(decoder, first, state, width=decode.beam,
                                   max_length=longest, end_token=eos,
                                   length_normalization=normalization, alpha=decode.alpha)
                rows = [h[0].tokens for h in hyps]
            for i, row in zip(chunk, rows, strict=True):
                out[i] = [t for t in row if t != eos]
    finally:
        model.train(was_training)
    return out


def translate_texts(loaded: LoadedTranslator, texts: Sequence[str],
                    decode: DecodeConfig | None = None, where: str = "text",
                    console: Console | None = None) -> list[str]:
    """Translations of source texts (detokenised)."""
    ids = loaded.source_ids(texts, where, console)
    found = translate_ids(loaded.model, ids, loaded.target_vocab, decode)
    return [loaded.target_text(row) for row in found]


# --- scores --------------------------------------------------------------------------------------


def _sacrebleu():
    try:
        import sacrebleu.metrics
    except ImportError:
        raise ValueError("BLEU and chrF need sacrebleu: pip install 'lstmlab[translate]'") \
            from None
    return sacrebleu.metrics


def protocol_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """The tutorial protocol's corpus BLEU-4 (0-100) of detokenised texts (see the module)."""
    BLEU = _sacrebleu().BLEU

    hyps = [" ".join(protocol_tokens(h)) for h in hypotheses]
    refs = [" ".join(protocol_tokens(r)) for r in references]
    return BLEU(tokenize="none", smooth_method="none", force=True).corpus_score(
        hyps, [refs]).score


@dataclass
class TranslationScores:
    """BLEU (0-100) three ways and chrF, with sacrebleu's signatures."""

    sacrebleu: float
    sacrebleu_signature: str
    protocol_bleu: float
    chrf: float
    chrf_signature: str
    sentences: int

    def summary(self) -> str:
        return (f"sacreBLEU {self.sacrebleu:.2f} ({self.sacrebleu_signature})\n"
                f"BLEU, tutorial protocol (lower-cased tokens, torchtext bleu_score): "
                f"{self.protocol_bleu:.2f}\n"
                f"chrF {self.chrf:.2f} ({self.chrf_signature})")


def score_translations(hypotheses: Sequence[str], references: Sequence[str],
                       lowercase: bool = False) -> TranslationScores:
    """sacreBLEU, the tutorial protocol's BLEU and chrF of detokenised hypotheses against raw
    references (``lowercase``: the model writes lower case, so sacreBLEU and chrF compare
    lower-cased text, as their signatures say)."""
    metrics = _sacrebleu()
    BLEU, CHRF = metrics.BLEU, metrics.CHRF
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} translations but {len(references)} references")
    bleu, chrf = BLEU(lowercase=lowercase), CHRF(lowercase=lowercase)
    b = bleu.corpus_score(list(hypotheses), [list(references)])
    c = chrf.corpus_score(list(hypotheses), [list(references)])
    return TranslationScores(b.score, str(bleu.get_signature()),
                             protocol_bleu(hypotheses, references), c.score,
                             str(chrf.get_signature()), len(hypotheses))


@dataclass
class TranslationReport:
    """Scores of one decoding of a test set, its speed and its output."""

    scores: TranslationScores
    decode: DecodeConfig
    seconds: float
    hypotheses: list[str] = field(default_factory=list)

    @property
    def sentences_per_second(self) -> float:
        return self.scores.sentences / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {"scores": asdict(self.scores), "decode": asdict(self.decode),
                "seconds": self.seconds, "sentences_per_second": self.sentences_per_second}

    def summary(self) -> str:
        how = "greedy" if self.decode.beam == 1 else \
            f"beam {self.decode.beam} ({self.decode.length_penalty} length penalty)"
        return (f"{self.scores.sentences:,} sentences, {how}, {self.seconds:.1f} s "
                f"({self.sentences_per_second:.1f} sentences/s)\n{self.scores.summary()}")


def evaluate_pairs(loaded: LoadedTranslator, pairs: Sequence[Pair], decode: DecodeConfig,
                   where: str = "source", console: Console | None = None) -> TranslationReport:
    """Translate the pairs' sources and score them against their targets."""
    start = time.perf_counter()
    hyps = translate_texts(loaded, [p.source for p in pairs], decode, where, console)
    seconds = time.perf_counter() - start
    scores = score_translations(hyps, [p.target for p in pairs], loaded.lowercase)
    return TranslationReport(scores, decode, seconds, hyps)


def evaluate_translator(path: str | Path, source: str | Path, reference: str | Path,
                        decode: DecodeConfig | None = None,
                        console: Console | None = None) -> TranslationReport:
    """Scores of a saved translator on line-aligned source and reference files."""
    loaded = load_translator(path)
    pairs = read_parallel(source, reference, "eval")
    return evaluate_pairs(loaded, pairs, decode or DecodeConfig(), str(source), console)


@torch.no_grad()
def attention_matrix(loaded: LoadedTranslator, text: str, decode: DecodeConfig | None = None
                     ) -> tuple[list[str], list[str], torch.Tensor]:
    """(source tokens, output tokens with ``<eos>``, attention weights (T, S)) of one sentence:
    the output is decoded, then read again with teacher forcing to record the weights."""
    model = loaded.model
    ids = loaded.source_ids([text])[0]
    output = translate_ids(model, [ids], loaded.target_vocab, decode)[0]
    eos, bos = loaded.target_vocab.index(EOS), loaded.target_vocab.index(BOS)
    batch = translation_batch([ids], [output], eos)
    model.eval()
    _, weights = model(batch.inputs, batch.lengths, decoder_inputs(batch.targets, bos),
                       return_attention=True)
    source = [loaded.source_vocab.symbols[i] for i in ids]
    target = [loaded.target_vocab.symbols[i] for i in output] + [EOS]
    return source, target, weights[:, 0].cpu()


# --- training ------------------------------------------------------------------------------------


@dataclass
class TranslateResult(RunRecord):
    """What a training run reached (BLEU 0-100; None where not measured)."""

    config: TranslateConfig
    out: str | None
    vocabulary: str
    parameters: int
    train_pairs: int
    skipped_pairs: int
    valid_pairs: int
    steps: int
    epochs: float
    seconds: float
    stopped_by: str
    best_valid_bleu: float | None
    test: dict[str, Any] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [self.run_line()]
        if self.best_valid_bleu is not None:
            lines.append(f"best valid BLEU (greedy, tutorial protocol): "
                         f"{self.best_valid_bleu:.2f}")
        return "\n".join(lines)


def _tokenizer(config: TranslateConfig, texts: list[str]) -> Tokenizer:
    if config.subwords == "none":
        return WordTokenizer(config.lowercase)
    return SubwordTokenizer.train(texts, config.subwords, config.vocab_size, config.lowercase,
                                  config.seed)


def _held_out(pairs: list[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    import random

    if len(pairs) < 2:
        raise DataError("cannot hold out validation pairs from fewer than 2; give --valid")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    count = min(len(pairs) - 1, max(1, round(fraction * len(pairs))))
    held = set(order[:count])
    return ([p for i, p in enumerate(pairs) if i not in held],
            [p for i, p in enumerate(pairs) if i in held])


def train_translator(source: str | Path, target: str | Path, *,
                     valid: tuple[str | Path, str | Path] | None = None,
                     test: tuple[str | Path, str | Path] | None = None,
                     out: str | Path | None = None, minutes: float | None = None,
                     epochs: float | None = None, steps: int | None = None,
                     eval_every: int | None = None, decode: DecodeConfig | None = None,
                     progress: bool = True, console: Console | None = None,
                     device: str | None = None, **options: Any) -> TranslateResult:
    """Train a translator on line-aligned source and target files.

    Args:
        source, target: the training files (one sentence a line, plain or gzip).
        valid: (source, target) validation files; None holds out ``valid_fraction`` pairs.
        test: (source, reference) files scored with the best weights at the end (``decode``).
        out: the run directory (the best-validation model as ``best.json`` + weights, with its
            tokenizers and vocabularies); None keeps nothing on disk.
        minutes / epochs / steps: budgets, the first reached stops (none: 10 epochs).
        eval_every: steps between validations (default: one epoch).
        progress, console, device: the progress bar, where to print, "cpu" or "cuda".
        **options: the fields of ``TranslateConfig``.
    """
    console = console or Console(stderr=True)
    config = TranslateConfig(**options)
    pairs = read_parallel(source, target, "train")
    if valid is None:
        pairs, valid_pairs = _held_out(pairs, config.valid_fraction, config.seed)
        console.print(f"validation: {len(valid_pairs):,} pairs held out of {source}")
        valid_where = str(source)
    else:
        valid_pairs = read_parallel(valid[0], valid[1], "valid")
        valid_where = str(valid[0])
    test_pairs = read_parallel(test[0], test[1], "test") if test is not None else None

    src_tok = _tokenizer(config, [p.source for p in pairs])
    tgt_tok = _tokenizer(config, [p.target for p in pairs])
    src_tokens = [src_tok.tokenize(p.source) for p in pairs]
    tgt_tokens = [tgt_tok.tokenize(p.target) for p in pairs]
    keep = [i for i in range(len(pairs)) if 0 < len(src_tokens[i]) <= config.max_length
            and 0 < len(tgt_tokens[i]) <= config.max_length]
    skipped = len(pairs) - len(keep)
    if not keep:
        raise DataError(f"no training pair of {source} / {target} fits max-length "
                        f"{config.max_length}")
    min_freq = config.min_freq if config.subwords == "none" else 1
    src_vocab = build_vocabulary((src_tokens[i] for i in keep), min_freq)
    tgt_vocab = build_vocabulary((tgt_tokens[i] for i in keep), min_freq)
    items = [(src_vocab.lookup(src_tokens[i]), tgt_vocab.lookup(tgt_tokens[i])) for i in keep]

    torch.manual_seed(config.seed)
    model = build_model(config, src_vocab, tgt_vocab)
    loaded = LoadedTranslator(model, src_tok, tgt_tok, src_vocab, tgt_vocab, config.max_length)
    valid_ids = loaded.source_ids([p.source for p in valid_pairs], valid_where, console)
    valid_refs = [p.target for p in valid_pairs]
    spe = steps_per_epoch(len(items), config.batch)
    loop = train_config(config, spe, minutes=minutes, epochs=epochs, steps=steps,
                        progress=progress, device=device)
    parameters = sum(p.numel() for p in model.parameters())
    tokens = "words" if config.subwords == "none" else f"{config.subwords} subwords"
    vocabulary = f"{len(src_vocab):,} source / {len(tgt_vocab):,} target {tokens}" + \
        (" (lower-cased)" if config.lowercase else "")
    console.print(f"{len(items):,} training pairs" + (f" ({skipped:,} longer than "
                                                       f"{config.max_length} tokens skipped)"
                                                       if skipped else "")
                  + f"; vocabulary: {vocabulary}\nmodel: {model.cell} encoder 2x"
                  f"{config.hidden}, {model.decoder_cell} decoder {config.decoder}, attention "
                  f"{config.attention}{' + input feeding' if model.input_feeding else ''}, "
                  f"{parameters:,} parameters; {spe:,} steps per epoch")
    eos = tgt_vocab.index(EOS)
    batches = bucketed_batches(items, [len(s) for s, _ in items], config.batch,
                               lambda chunk: translation_batch([s for s, _ in chunk],
                                                               [t for _, t in chunk], eos),
                               seed=config.seed)
    greedy_decode = DecodeConfig(beam=1, batch=max(64, config.batch))

    def valid_error(model: nn.Module) -> float:
        found = translate_ids(model, valid_ids, tgt_vocab, greedy_decode)
        return 100.0 - protocol_bleu([loaded.target_text(row) for row in found], valid_refs)

    def report(trainer: Trainer, error: float, improved: bool) -> None:
        s = trainer.state
        lr = trainer.optimizer.param_groups[0]["lr"]
        console.print(f"step {s.step:,} ({s.sequences / len(items):.2f} epochs, "
                      f"{s.seconds / 60:.1f} min): valid BLEU {100 - error:.2f} (greedy) lr "
                      f"{lr:.2g}" + ("  [best]" if improved else ""))

    save = (lambda m: save_model(m, out, loaded.extra(config))) if out is not None else None
    run = fit(model, loop, TranslateStep(config.label_smoothing, tgt_vocab.index(BOS)), batches,
              error=valid_error, eval_every=eval_every or spe, save=save, report=report,
              console=console, description=f"translate {model.cell}",
              patience=config.patience or None, lr_decay=config.lr_decay)
    test_report = None
    if test_pairs is not None and run.train.state.step > 0:
        test_report = evaluate_pairs(loaded, test_pairs, decode or DecodeConfig(),
                                     str(test[0]), console).to_dict()
    s = run.train.state
    return TranslateResult(config, None if out is None else str(out), vocabulary, parameters,
                           len(items), skipped, len(valid_pairs), s.step,
                           s.sequences / len(items), s.seconds, run.stopped_by,
                           None if run.best is None else 100 - run.best, test_report,
                           list(run.train.history), run.validations)


__all__ = ["DecodeConfig", "LoadedTranslator", "TranslateConfig", "TranslateResult",
           "TranslationReport", "TranslationScores", "attention_matrix", "evaluate_pairs",
           "evaluate_translator", "load_translator", "protocol_bleu", "score_translations",
           "train_translator", "translate_ids", "translate_texts"]
