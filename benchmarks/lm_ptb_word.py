"""Penn Treebank, word level: test perplexity of Zaremba et al.'s (2014) small model.

Goal: test perplexity <= 114.5 (Zaremba's small non-regularised 2x200 LSTM after 13 epochs)
trained here in <= 90 minutes. Zaremba's recipe: SGD lr 1 on the loss summed over the 20 steps
of a window (averaged over the batch), global-norm clip 5, seq 20, batch 20, 13 epochs, lr
halved every epoch after epoch 4, every weight uniform in [-0.1, 0.1], no dropout. lstmlab
averages the loss over the steps too, so the same updates are lr 20 and clip 0.25 (20 x the lr,
clip / 20), PyTorch's word_language_model defaults for the same reason.

    .venv/bin/python benchmarks/lm_ptb_word.py --minutes 90
    .venv/bin/python benchmarks/lm_ptb_word.py --minutes 3 --epochs 1     # a smoke run
"""

from __future__ import annotations

import math

from lm_common import data_file, parser, train, write_result

GOAL = 114.5
REFERENCES = {"Zaremba et al. 2014, small non-regularised LSTM, test": 114.5,
              "Zaremba et al. 2014, small, valid": 120.7}


def main() -> None:
    args = parser(__doc__.splitlines()[0], {
        "minutes": 90.0, "epochs": 13.0, "threads": 2, "eval_every": 2323,
        "eval_tokens": None, "cell": "lstm", "layers": 2, "hidden": 200, "seq_len": 20,
        "batch": 20, "dropout": 0.0, "lr": 20.0, "clip": 0.25, "lr_decay": 0.5,
        "decay_after": 4.0, "decay_every": 1.0, "init_range": 0.1, "seed": 0}).parse_args()
    train_file = data_file("ptb", "ptb.train.txt")  # beside ptb.valid.txt and ptb.test.txt
    r = train("ptb_word", train_file, args, {"level": "word", "optimizer": "sgd"})
    print(r.summary())
    test_ppl = math.exp(r.test)
    print(f"\nPTB word test perplexity (best-validation weights): {test_ppl:.2f} after "
          f"{r.seconds / 60:.1f} min, {r.epochs:.2f} epochs; goal <= {GOAL} -> "
          f"{'MET' if test_ppl <= GOAL else 'missed'}")
    for name, value in REFERENCES.items():
        print(f"  reference: {name}: {value}")
    write_result("ptb_word", {
        "figure": {"test_perplexity": test_ppl, "valid_perplexity": math.exp(r.best_valid),
                   "minutes": r.seconds / 60, "epochs": r.epochs,
                   "tokens_per_second": r.tokens_per_second, "parameters": r.parameters,
                   "goal": GOAL, "met": test_ppl <= GOAL},
        "references": REFERENCES, "result": r.to_dict()})


if __name__ == "__main__":
    main()
