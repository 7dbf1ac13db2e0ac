"""Multi30k German -> English (test_2016_flickr): BLEU of an LSTM encoder-decoder trained on this
CPU within a time budget, beside the published references, and its translation speed.

References (test BLEU by the tutorial protocol: lower-cased tokens, torchtext's bleu_score), all
from bentrevett/pytorch-seq2seq trained on a GPU: 13.8 for the LSTM encoder-decoder without
attention (Sutskever et al.), 28.3 with Bahdanau attention (bidirectional GRU encoder, 10
epochs), 34.1 for the convolutional sequence-to-sequence model. Goals: >= 28.3 with attention
(stretch >= 34.1, still an LSTM); without attention, the figure beside 13.8.

Trains on train (29,000 pairs), validates on val (1,014) with greedy decoding, then decodes the
test set (1,000) with the best weights by beam 5 and greedily, and reports for each: the
tutorial-protocol BLEU, sacreBLEU with its signature, chrF, and sentences per second.

    .venv/bin/python benchmarks/multi30k.py --minutes 60 --attention luong --threads 1
    .venv/bin/python benchmarks/multi30k.py --minutes 60 --attention none
    .venv/bin/python benchmarks/multi30k.py --minutes 1 --train-pairs 2000   # a check
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
from lm_common import ROOT, data_file
from rich.console import Console
from shapes_common import write_result

REFERENCES = {"bentrevett LSTM encoder-decoder, no attention (GPU)": 13.8,
              "bentrevett Bahdanau attention, bi-GRU encoder (GPU)": 28.3,
              "bentrevett convolutional seq2seq (GPU)": 34.1}
GOAL = {"attention": ">= 28.3 test BLEU (tutorial protocol); stretch >= 34.1",
        "none": "report beside 13.8"}
SETTINGS = {  # the translator's settings for a CPU hour (TranslateConfig fields)
    "cell": "lstm", "embedding": 256, "hidden": 256, "decoder": 256, "layers": 1,
    "dropout": 0.3, "label_smoothing": 0.1, "tie": True, "subwords": "none", "min_freq": 2,
    "lowercase": True, "batch": 64, "lr": 2e-3, "lr_decay": 0.5, "clip": 5.0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=60.0, help="training-time budget")
    p.add_argument("--attention", default="luong", choices=("bahdanau", "luong", "dot", "none"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--eval-every", type=int, default=None,
                   help="steps between validations (default: half an epoch)")
    p.add_argument("--train-pairs", type=int, default=None,
                   help="use only the first N training pairs (quick checks)")
    p.add_argument("--test-pairs", type=int, default=None,
                   help="score only the first N test pairs (quick checks)")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--out", default=None, help="run directory (default runs/bench-multi30k-A)")
    p.add_argument("--no-progress", action="store_true")
    for name, value in SETTINGS.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            p.add_argument(flag, type=type(value), default=value)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from lstmlab.experiments.translate import (
        DecodeConfig,
        evaluate_pairs,
        load_translator,
        train_translator,
    )
    from lstmlab.tasks.files import read_lines
    from lstmlab.tasks.translation import read_parallel

    def files(split: str) -> tuple[Path, Path]:
        return data_file("multi30k", f"{split}.de.gz"), data_file("multi30k", f"{split}.en.gz")

    train, valid, test = files("train"), files("val"), files("test_2016_flickr")
    scratch = tempfile.TemporaryDirectory()
    if args.train_pairs:  # a prefix of the training files, for a quick check of the script
        cut = []
        for path in train:
            target = Path(scratch.name) / path.name.removesuffix(".gz")
            target.write_text("\n".join(read_lines(path)[:args.train_pairs]) + "\n")
            cut.append(target)
        train = tuple(cut)
    options = {name: getattr(args, name) for name in SETTINGS}
    out = Path(args.out) if args.out else ROOT / "runs" / f"bench-multi30k-{args.attention}"
    console = Console(stderr=True)
    spe = -(-(args.train_pairs or 29000) // options["batch"])
    result = train_translator(*train, valid=valid, out=out, minutes=args.minutes,
                              eval_every=args.eval_every or max(1, spe // 2),
                              progress=not args.no_progress, console=console,
                              attention=args.attention, seed=args.seed, **options)
    print(result.summary(), flush=True)
    if result.best_valid_bleu is None:
        sys.exit("no validation was reached: nothing to evaluate")

    loaded = load_translator(out)
    pairs = read_parallel(*test, "test")[:args.test_pairs]
    reports = {}
    for beam in sorted({args.beam, 1}, reverse=True):
        report = evaluate_pairs(loaded, pairs, DecodeConfig(beam=beam), str(test[0]), console)
        reports[beam] = report
        print(f"\ntest_2016_flickr, {report.summary()}", flush=True)
    best = reports[args.beam]
    kind = "none" if args.attention == "none" else "attention"
    lines = [f"\nMulti30k de->en test_2016_flickr, {args.attention} attention, "
             f"{result.seconds / 60:.1f} min of training on {args.threads} thread(s), "
             f"{result.epochs:.2f} epochs",
             f"  BLEU, tutorial protocol, beam {args.beam}: {best.scores.protocol_bleu:.2f}"
             f"   (greedy: {reports[1].scores.protocol_bleu:.2f})",
             f"  sacreBLEU, beam {args.beam}: {best.scores.sacrebleu:.2f}  "
             f"{best.scores.sacrebleu_signature}",
             f"  chrF, beam {args.beam}: {best.scores.chrf:.2f}",
             f"  speed: {reports[1].sentences_per_second:.1f} sentences/s greedy, "
             f"{best.sentences_per_second:.1f} at beam {args.beam} (batches of "
             f"{best.decode.batch}, {args.threads} thread(s))",
             f"  goal: {GOAL[kind]}"]
    lines += [f"  {name}: {value}" for name, value in REFERENCES.items()]
    text = "\n".join(lines)
    print(text)
    write_result(f"multi30k_{args.attention}", {
        "figure": {"protocol_bleu": best.scores.protocol_bleu,
                   "protocol_bleu_greedy": reports[1].scores.protocol_bleu,
                   "sacrebleu": best.scores.sacrebleu,
                   "sacrebleu_signature": best.scores.sacrebleu_signature,
                   "chrf": best.scores.chrf,
                   "sentences_per_second": {str(b): r.sentences_per_second
                                            for b, r in reports.items()},
                   "best_valid_bleu_greedy": result.best_valid_bleu,
                   "minutes": result.seconds / 60, "epochs": result.epochs,
                   "parameters": result.parameters, "test_sentences": len(pairs)},
        "goal": GOAL[kind], "references": REFERENCES, "summary": text,
        "settings": {**asdict(result.config), "threads": args.threads},
        "decoding": {str(b): r.to_dict() for b, r in reports.items()},
        "samples": [{"source": p.source, "reference": p.target, "output": h}
                    for p, h in list(zip(pairs, best.hypotheses, strict=True))[:10]],
        "run": {k: v for k, v in result.to_dict().items() if k not in ("history", "config")}})
    scratch.cleanup()


if __name__ == "__main__":
    main()
