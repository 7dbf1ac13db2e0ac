"""Penn Treebank, character level: the best test bits per character in 60 minutes here.

Reference: 1.36 bits/char for an LSTM of about 3M parameters (Bai et al. 2018, "An Empirical
Evaluation of Generic Convolutional and Recurrent Networks", Table 1). The files
ptb.char.{train,valid,test}.txt hold one character per space-separated symbol ("_" between
words) and a line break per sentence, which counts as a character (5,017,482 training tokens),
so they load at lstmlab's word level; with no <unk> the vocabulary has 50 symbols.

    .venv/bin/python benchmarks/lm_ptb_char.py --minutes 60
    .venv/bin/python benchmarks/lm_ptb_char.py --minutes 3       # a smoke run
"""

from __future__ import annotations

import math

from lm_common import data_file, parser, train, write_result

REFERENCE = 1.36


def main() -> None:
    args = parser(__doc__.splitlines()[0], {
        "minutes": 60.0, "threads": 2, "eval_every": 500, "eval_tokens": 40_000,
        "cell": "lstm", "layers": 2, "hidden": 512, "embedding": 64, "seq_len": 100,
        "batch": 32, "dropout": 0.0, "lr": 2e-3, "clip": 5.0, "lr_decay": 1.0,
        "decay_after": 0.0, "decay_every": 1.0, "seed": 0}).parse_args()
    train_file = data_file("ptb", "ptb.char.train.txt")
    r = train("ptb_char", train_file, args, {"level": "word", "unk": False})
    print(r.summary())
    bpc = r.test / math.log(2)
    print(f"\nPTB char test: {bpc:.4f} bits/char (best-validation weights) after "
          f"{r.seconds / 60:.1f} min, {r.epochs:.2f} epochs; reference {REFERENCE} "
          f"(Bai et al. 2018, LSTM ~3M parameters)")
    write_result("ptb_char", {
        "figure": {"test_bits_per_char": bpc, "valid_bits_per_char": r.best_valid / math.log(2),
                   "minutes": r.seconds / 60, "epochs": r.epochs,
                   "tokens_per_second": r.tokens_per_second, "parameters": r.parameters},
        "reference": {"Bai et al. 2018 LSTM (~3M parameters), test bits/char": REFERENCE},
        "result": r.to_dict()})


if __name__ == "__main__":
    main()
