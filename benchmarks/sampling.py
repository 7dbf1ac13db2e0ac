"""Sampling speed: characters per second of ``LanguageModel.generate`` stepping the recurrent net
as cells (one cell step per layer per character) against the loop it replaced (the whole layer
called on each new character with the carried state), measured in the same run.

Model: a char LSTM (NP), V=65, embedding 64, 2 layers of 512, random weights (speed does not
depend on them). Each run samples 2,000 characters after a one-character prime at temperature 1
with the same seed; both loops draw the same random numbers, and the benchmark checks that they
produce the same characters. The two loops alternate over the rounds (so a busy machine slows both
alike); the figure is the median run's wall time (process CPU time beside it). One torch thread.

    .venv/bin/python benchmarks/sampling.py                 # 3 rounds
    .venv/bin/python benchmarks/sampling.py --rounds 5 --length 500
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable

import torch
from lm_common import RESULTS, ROOT, machine
from rich.console import Console
from rich.table import Table

from lstmlab.models.language import LanguageModel

CONFIG = dict(vocab=65, embedding=64, hidden=512, layers=2)


@torch.no_grad()
def layer_per_token(model: LanguageModel, prime: list[int], length: int, seed: int) -> list[int]:
    """The loop before cells: the model (embedding, the LSTM layer, decoder) called on each new
    token with the carried state; each id drawn from softmax(logits) as generate draws it."""
    generator = torch.Generator().manual_seed(seed)
    logits, state = model(torch.tensor(prime).unsqueeze(1))
    ids = []
    for _ in range(length):
        probs = torch.softmax(logits[-1].float(), dim=-1)  # (1, V)
        ids.append(int(torch.multinomial(probs, 1, generator=generator)))
        logits, state = model(torch.tensor([[ids[-1]]]), state)
    return ids


def cells(model: LanguageModel, prime: list[int], length: int, seed: int) -> list[int]:
    """Today's ``generate``: the layers' cells stepped once per token."""
    return list(model.generate(prime, length, seed=seed))


def timed(run: Callable[[], list[int]]) -> tuple[float, float, list[int]]:
    wall, cpu = time.perf_counter(), time.process_time()
    ids = run()
    return time.perf_counter() - wall, time.process_time() - cpu, ids


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--length", type=int, default=2000, help="characters per run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = LanguageModel(CONFIG["vocab"], "lstm", CONFIG["hidden"], CONFIG["layers"],
                          embedding_size=CONFIG["embedding"]).eval()
    prime = [0]
    loops = {"layer per token": layer_per_token, "cells": cells}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in loops}
    outputs: dict[str, list[int]] = {}
    cells(model, prime, 50, args.seed)  # warm-up: first calls allocate
    layer_per_token(model, prime, 50, args.seed)
    for r in range(args.rounds):
        order = list(loops) if r % 2 == 0 else list(loops)[::-1]
        for name in order:
            wall, cpu, ids = timed(lambda f=loops[name]: f(model, prime, args.length, args.seed))
            times[name].append((wall, cpu))
            outputs[name] = ids
            print(f"round {r + 1}: {name}: {wall:.2f} s ({args.length / wall:,.0f} chars/s)",
                  flush=True)
    same = outputs["layer per token"] == outputs["cells"]
    rows = {}
    for name in loops:
        wall = statistics.median(t[0] for t in times[name])
        cpu = statistics.median(t[1] for t in times[name])
        rows[name] = {"seconds": wall, "cpu_seconds": cpu, "chars_per_s": args.length / wall,
                      "ms_per_char": 1000 * wall / args.length,
                      "runs": [t[0] for t in times[name]]}
    ratio = rows["layer per token"]["seconds"] / rows["cells"]["seconds"]
    cpu_ratio = rows["layer per token"]["cpu_seconds"] / rows["cells"]["cpu_seconds"]

    table = Table(title=f"Sampling {args.length:,} characters, V={CONFIG['vocab']} "
                        f"E={CONFIG['embedding']} {CONFIG['layers']}x{CONFIG['hidden']} LSTM, "
                        f"1 thread, median of {args.rounds} alternating runs")
    for column in ("loop", "seconds", "chars/s", "ms/char", "CPU seconds"):
        table.add_column(column, justify="right")
    for name, row in rows.items():
        table.add_row(name, f"{row['seconds']:.2f}", f"{row['chars_per_s']:,.0f}",
                      f"{row['ms_per_char']:.2f}", f"{row['cpu_seconds']:.2f}")
    Console().print(table)
    print(f"cells are {ratio:.2f}x faster (CPU time {cpu_ratio:.2f}x); same characters: {same}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "sampling.json"
    document = {"benchmark": "sampling", "command": " ".join(shlex.quote(a) for a in sys.argv),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
                "model": CONFIG, "length": args.length, "rounds": args.rounds,
                "seed": args.seed, "threads": 1, "results": rows, "speedup": ratio,
                "cpu_speedup": cpu_ratio, "same_characters": same}
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    if not same:
        sys.exit("the two loops sampled different characters")


if __name__ == "__main__":
    main()
