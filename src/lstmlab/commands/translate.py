"""`lstmlab translate ...`: sequence to sequence translation (train, eval, and translating).

    lstmlab translate train SRC TGT [--valid SRC TGT] [--minutes M | --epochs E] --out DIR
    lstmlab translate eval DIR SRC REF [--beam 5]
    lstmlab translate DIR [TEXT ...] [--show-attention FILE.png]    (short for `predict DIR`)

Each subcommand parses its flags and calls one function of ``lstmlab.experiments.translate``;
the training and decoding options and their defaults come from ``TranslateConfig`` and
``DecodeConfig``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from lstmlab.commands.classify import add_budget_options, set_threads
from lstmlab.commands.options import (
    add_config_options,
    clear_file_errors,
    config_from_args,
    input_texts,
    positive_float,
)

SUBCOMMANDS = ("train", "eval", "predict")


def shorthand(argv: list[str]) -> list[str]:
    """``translate DIR ...`` is ``translate predict DIR ...``: insert "predict" when the word
    after "translate" is neither a subcommand nor an option."""
    if len(argv) >= 2 and argv[0] == "translate" and argv[1] not in SUBCOMMANDS \
            and not argv[1].startswith("-"):
        return [argv[0], "predict", *argv[1:]]
    return argv


def add_decode_options(p: argparse.ArgumentParser) -> None:
    from lstmlab.experiments.translate import LENGTH_PENALTIES, DecodeConfig

    add_config_options(p, DecodeConfig, {
        "beam": "beam width (1: greedy decoding)",
        "length_penalty": "rank beam hypotheses by log-probability / none, the length (mean) "
                          "or GNMT's ((5 + length) / 6) ** alpha",
        "alpha": "GNMT length-penalty exponent",
        "max_ratio": "generate at most this many times the source's tokens, plus 10",
        "batch": "sentences decoded at once",
    }, types={"alpha": float, "max_ratio": positive_float},
        choices={"length_penalty": LENGTH_PENALTIES}, unset=True)


def decode_config(args: argparse.Namespace):
    from lstmlab.experiments.translate import DecodeConfig

    return config_from_args(DecodeConfig, args)


@clear_file_errors
def train(args: argparse.Namespace) -> None:
    from lstmlab.experiments.translate import TranslateConfig, train_translator

    set_threads(args)
    console = Console(stderr=True)
    config = config_from_args(TranslateConfig, args)
    out = args.out or str(Path("runs") / f"translate-{Path(args.source).name.split('.')[0]}")
    result = train_translator(args.source, args.target, valid=args.valid, test=args.test,
                              out=out, minutes=args.minutes, epochs=args.epochs,
                              steps=args.steps, eval_every=args.eval_every,
                              progress=not args.no_progress, console=console,
                              device=args.device, **vars(config))
    console.print(result.summary())
    if result.test is not None:
        console.print(f"test (best weights): sacreBLEU {result.test['scores']['sacrebleu']:.2f}"
                      f", tutorial-protocol BLEU {result.test['scores']['protocol_bleu']:.2f}")
    console.print(f"best model in {out}/; try: lstmlab translate {out} \"a sentence\"")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))


@clear_file_errors
def evaluate(args: argparse.Namespace) -> None:
    from lstmlab.experiments.translate import evaluate_translator

    report = evaluate_translator(args.checkpoint, args.source, args.reference,
                                 decode_config(args), Console(stderr=True))
    print(f"{args.source} -> {args.reference}: {report.summary()}")
    if args.output:
        Path(args.output).write_text("".join(f"{h}\n" for h in report.hypotheses))
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1))


@clear_file_errors
def predict(args: argparse.Namespace) -> None:
    from lstmlab.experiments.translate import (
        attention_matrix,
        load_translator,
        translate_texts,
    )

    loaded = load_translator(args.checkpoint)
    decode = decode_config(args)
    texts, where = input_texts(args.text)
    for translation in translate_texts(loaded, texts, decode, where, Console(stderr=True)):
        print(translation)
    if args.show_attention:
        from lstmlab.viz.attention import plot_attention

        if not texts:
            raise ValueError("--show-attention needs a sentence to translate")
        if loaded.model.attention == "none":
            raise ValueError(f"{loaded.path} was trained without attention: there is no "
                             "attention to show")
        source, target, weights = attention_matrix(loaded, texts[0], decode)
        plot_attention(weights.numpy(), source, target, args.show_attention,
                       title=texts[0] if len(texts[0]) <= 80 else texts[0][:77] + "...")
        print(f"attention of the first sentence drawn in {args.show_attention}",
              file=sys.stderr)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``lstmlab translate train|eval|predict`` (``translate DIR ...`` = predict)."""
    from lstmlab.experiments.translate import TranslateConfig
    from lstmlab.models.seq2seq import ATTENTIONS

    translate = commands.add_parser(
        "translate", help="sequence to sequence: translate text (train, eval; "
                          "`translate DIR [TEXT ...]` translates)",
        description="Translation with an encoder-decoder: embeddings -> bidirectional RNN / "
                    "LSTM (any variant) / GRU encoder -> LSTM decoder with attention (none, "
                    "bahdanau, luong, dot) and input feeding. `lstmlab translate DIR [TEXT "
                    "...]` is short for `lstmlab translate predict DIR [TEXT ...]`.")
    sub = translate.add_subparsers(dest="translate_command", required=True)

    p = sub.add_parser("train", help="train a translator on line-aligned parallel files",
                       description="Train on SOURCE and TARGET: line-aligned text files (plain "
                                   "or gzip), one sentence a line; both must have the same "
                                   "number of lines and no empty line. Without --valid a fixed "
                                   "random --valid-fraction of the pairs validates (greedy "
                                   "decoding, BLEU). Pairs longer than --max-length tokens are "
                                   "skipped. The run directory keeps the model of the best "
                                   "validation BLEU with its tokenizers and vocabularies.")
    p.add_argument("source", help="training source file")
    p.add_argument("target", help="training target file (line-aligned with SOURCE)")
    p.add_argument("--valid", nargs=2, metavar=("SRC", "TGT"),
                   help="validation files (default: held out of the training files)")
    p.add_argument("--test", nargs=2, metavar=("SRC", "REF"),
                   help="test files, scored with the best weights at the end (beam 5)")
    add_config_options(p, TranslateConfig, {
        "cell": "the encoder's cell: lstm (= lstm:NP), lstm:VARIANT (V, CIFG, NFG, ...), gru, "
                "rnn",
        "decoder_cell": "the decoder's LSTM: lstm or lstm:VARIANT",
        "attention": "none (Sutskever), bahdanau (additive), luong (general) or dot",
        "embedding": "token vector size (both languages)",
        "hidden": "encoder units per direction",
        "decoder": "decoder units",
        "layers": "encoder layers",
        "dropout": "dropout on embeddings, between encoder layers and on the attentional "
                   "vector",
        "label_smoothing": "label smoothing of the training loss",
        "subwords": "none (words), bpe or unigram (sentencepiece, trained on the training "
                    "files)",
        "vocab_size": "sentencepiece pieces per language (with --subwords)",
        "min_freq": "words seen fewer times become <unk> (words only)",
        "lowercase": "lower-case all text (the output too)",
        "max_length": "most tokens of a sentence: longer training pairs are skipped, longer "
                      "sources truncated with a warning when translating",
        "batch": "sentence pairs per step",
        "optimizer": "adam, adamw or sgd",
        "lr": "learning rate",
        "weight_decay": "weight decay",
        "clip": "gradient-norm clip",
        "lr_decay": "multiply the learning rate by this after a validation with no new best",
        "patience": "stop after this many validations without a new best (0: never)",
        "valid_fraction": "part of the training pairs held out without --valid",
        "seed": "random seed",
    }, types={"dropout": float, "label_smoothing": float, "lr": positive_float,
              "weight_decay": float, "clip": positive_float, "lr_decay": positive_float,
              "patience": int, "valid_fraction": float, "seed": int},
        choices={"attention": tuple(ATTENTIONS), "subwords": ("none", "bpe", "unigram"),
                 "optimizer": ("adam", "adamw", "sgd")},
        unset=True)
    p.add_argument("--no-input-feeding", dest="input_feeding", action="store_false",
                   default=None, help="do not feed the attentional vector back into the "
                                      "decoder (default: fed)")
    p.add_argument("--no-tie", dest="tie", action="store_false", default=None,
                   help="an output layer of its own (default: the target embedding is the "
                        "output layer's matrix)")
    add_budget_options(p)
    p.set_defaults(run=train)

    p = sub.add_parser("eval", help="sacreBLEU, tutorial-protocol BLEU and chrF on a test set",
                       description="Translate SOURCE (batched; beam search or greedy) and score "
                                   "the output against REFERENCE: sacreBLEU on detokenised text "
                                   "(with its signature), the lower-cased tokenised corpus BLEU "
                                   "of the Multi30k tutorials, and chrF. Sources longer than "
                                   "the model's maximum are truncated with a warning.")
    p.add_argument("checkpoint", help="run directory (or its best.json)")
    p.add_argument("source", help="source file")
    p.add_argument("reference", help="reference translations (line-aligned with SOURCE)")
    add_decode_options(p)
    p.add_argument("--output", help="also write the translations here, one a line")
    p.add_argument("--json", help="also write the scores as JSON here")
    p.set_defaults(run=evaluate)

    p = sub.add_parser("predict", help="translate texts (also: lstmlab translate DIR [TEXT])",
                       description="Translate each TEXT, or each line of standard input (blank "
                                   "lines skipped and counted); one translation a line. Sources "
                                   "longer than the model's maximum are truncated with a "
                                   "warning.")
    p.add_argument("checkpoint", help="run directory (or its best.json)")
    p.add_argument("text", nargs="*", help="texts to translate (default: lines of stdin)")
    add_decode_options(p)
    p.add_argument("--show-attention", metavar="FILE.png",
                   help="draw the attention matrix of the first sentence into this PNG")
    p.set_defaults(run=predict)
