"""Tiny Shakespeare, character level: validation loss after <= 60 minutes on this CPU.

Goal: validation <= 1.47 nats/char with nanoGPT's split (the last 10% of input.txt validates).
References: nanoGPT's 6-layer transformer reaches 1.4697 on an A100; its CPU configuration 1.88.

    .venv/bin/python benchmarks/lm_tinyshakespeare.py --minutes 60
    .venv/bin/python benchmarks/lm_tinyshakespeare.py --minutes 3      # a smoke run
"""

from __future__ import annotations

import math

from lm_common import data_file, parser, train, write_result

GOAL = 1.47
REFERENCES = {"nanoGPT 6-layer transformer, A100": 1.4697, "nanoGPT CPU configuration": 1.88}


def main() -> None:
    args = parser(__doc__.splitlines()[0], {
        "minutes": 60.0, "threads": 2, "eval_every": 250, "eval_tokens": 30_000,
        "cell": "lstm", "layers": 2, "hidden": 512, "embedding": 64, "seq_len": 100,
        "batch": 32, "dropout": 0.2, "lr": 2e-3, "clip": 5.0, "lr_decay": 0.9,
        "decay_after": 2.0, "decay_every": 1.0, "seed": 0}).parse_args()
    source = data_file("tinyshakespeare", "input.txt")
    r = train("tinyshakespeare", source, args, {"level": "char"})
    print(r.summary())
    best = r.best_valid
    print(f"\nTiny Shakespeare validation, best weights: {best:.4f} nats/char "
          f"({best / math.log(2):.4f} bits/char) after {r.seconds / 60:.1f} min; goal <= {GOAL}"
          f" -> {'MET' if best <= GOAL else 'missed'}")
    for name, value in REFERENCES.items():
        print(f"  reference: {name}: {value}")
    write_result("tinyshakespeare", {
        "figure": {"valid_nats_per_char": best, "valid_bits_per_char": best / math.log(2),
                   "last_valid_nats_per_char": r.last_valid, "minutes": r.seconds / 60,
                   "epochs": r.epochs, "tokens_per_second": r.tokens_per_second,
                   "parameters": r.parameters, "goal": GOAL, "met": best <= GOAL},
        "references": REFERENCES, "result": r.to_dict()})


if __name__ == "__main__":
    main()
