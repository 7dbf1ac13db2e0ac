"""Training speed: tokens/s of lstmlab's language-model training loop against a plain
torch.nn.LSTM training loop of the same model, measured in the same run.

Goal: lstmlab within 10% of the plain loop (ratio >= 0.90).

lstmlab: ``Trainer.run`` (clipping, schedule, counters, progress bookkeeping) driving
``WindowStep`` (a BatchStream window, the LanguageModel with lstmlab's LSTM, state carried).
Plain: nn.Embedding -> nn.LSTM -> nn.Linear, the same windows, Adam, the same clip, the state
carried - the loop a PyTorch user would write. Both start from the same weights. The two are
measured in alternating rounds (so a busy machine slows both alike); each step is timed and
tokens/s = B*T / the median step time over all rounds, warm-up steps left out. Tokens per
CPU second (the process's CPU time per step) are given too: on a machine whose cores other work
shares, they move less with the load than wall-clock time (with one thread they are the
tokens/s of an otherwise idle core).

    .venv/bin/python benchmarks/lm_speed.py                    # char (V=65) and word (V=10k)
    .venv/bin/python benchmarks/lm_speed.py --configs char --threads 1
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import torch
import torch.nn.functional as F
from lm_common import write_result
from rich.console import Console
from rich.table import Table
from torch import nn

from lstmlab.experiments.lm_train import WindowStep, windows
from lstmlab.models.language import LanguageModel
from lstmlab.tasks.text import BatchStream
from lstmlab.train import Every, TrainConfig, Trainer

CONFIGS = {  # vocabulary, hidden, layers, embedding, seq_len, batch, steps per round
    "char": dict(vocab=65, hidden=512, layers=2, embedding=64, seq_len=100, batch=32, steps=5),
    "word": dict(vocab=10_000, hidden=200, layers=2, embedding=200, seq_len=20, batch=20,
                 steps=15),
}
GOAL = 0.90


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _durations(marks: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks, marks[1:], strict=False)]


def lstmlab_round(model: LanguageModel, stream: BatchStream,
                  steps: int) -> list[tuple[float, float]]:
    """Per-step (wall, CPU) seconds of lstmlab's loop for ``steps`` steps."""
    trainer = Trainer(model, TrainConfig(lr=2e-3, clip=5.0, max_steps=steps, progress=False),
                      console=Console(file=io.StringIO()))
    marks = [_now()]
    trainer.run(WindowStep(), windows(stream), [Every(1, lambda t: marks.append(_now()))])
    return _durations(marks)


class PlainLM(nn.Module):
    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.embedding = nn.Embedding(model.vocab_size, model.embedding_size)
        self.rnn = nn.LSTM(model.embedding_size, model.hidden_size, model.num_layers)
        self.decoder = nn.Linear(model.hidden_size, model.vocab_size)
        self.embedding.load_state_dict(model.embedding.state_dict())
        self.rnn.load_state_dict(model.recurrent.state_dict())
        self.decoder.load_state_dict(model.decoder.state_dict())


def plain_round(plain: PlainLM, stream: BatchStream, steps: int) -> list[tuple[float, float]]:
    """Per-step (wall, CPU) seconds of the plain PyTorch loop."""
    optimizer = torch.optim.Adam(plain.parameters(), lr=2e-3)
    state, marks = None, [_now()]
    for _ in range(steps):
        if stream.step == 0:
            state = None
        inputs, targets = next(iter(stream))
        output, state = plain.rnn(plain.embedding(inputs), state)
        logits = plain.decoder(output)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        state = tuple(s.detach() for s in state)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(plain.parameters(), 5.0)
        optimizer.step()
        loss.item()
        marks.append(_now())
    return _durations(marks)


def measure(name: str, c: dict, rounds: int, warmup: int, seconds: float | None = None
            ) -> dict:
    torch.manual_seed(0)
    data = torch.randint(0, c["vocab"], (c["batch"] * c["seq_len"] * (c["steps"] + 1) * 4,))
    model = LanguageModel(c["vocab"], "lstm", c["hidden"], c["layers"],
                          embedding_size=c["embedding"])
    plain = PlainLM(model)
    ours, theirs = [], []
    start = time.perf_counter()
    for r in range(rounds):
        if seconds is not None and r >= 2 and time.perf_counter() - start > seconds:
            rounds = r
            break
        order = [("lstmlab", ours), ("plain", theirs)]
        for who, times in (order if r % 2 == 0 else order[::-1]):
            stream = BatchStream(data, c["batch"], c["seq_len"])
            if who == "lstmlab":
                times += lstmlab_round(model, stream, c["steps"])[warmup:]
            else:
                times += plain_round(plain, stream, c["steps"])[warmup:]
    tokens = c["batch"] * c["seq_len"]
    a, b = (tokens / statistics.median(t[0] for t in x) for x in (ours, theirs))
    cpu_a, cpu_b = (tokens / statistics.median(t[1] for t in x) for x in (ours, theirs))
    return {"config": name, **c, "rounds": rounds, "steps_measured": len(ours),
            "lstmlab_tokens_per_s": a, "plain_tokens_per_s": b, "ratio": a / b,
            "lstmlab_tokens_per_cpu_s": cpu_a, "plain_tokens_per_cpu_s": cpu_b,
            "cpu_ratio": cpu_a / cpu_b, "met": a / b >= GOAL}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1, help="steps left out of each round")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop adding rounds (after 2) once a config has run this long")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.configs:
        rows.append(measure(name, CONFIGS[name], args.rounds, args.warmup,
                            None if args.minutes is None else args.minutes * 60))
        r = rows[-1]
        print(f"{name}: lstmlab {r['lstmlab_tokens_per_s']:,.0f} tok/s, plain nn.LSTM "
              f"{r['plain_tokens_per_s']:,.0f} tok/s, ratio {r['ratio']:.3f}; per CPU second "
              f"{r['lstmlab_tokens_per_cpu_s']:,.0f} vs {r['plain_tokens_per_cpu_s']:,.0f}, "
              f"ratio {r['cpu_ratio']:.3f}", flush=True)
    table = Table(title=f"Training speed, {args.threads} thread(s), median step over "
                        f"{args.rounds} alternating rounds")
    for column in ("config", "model", "B x T", "lstmlab tok/s", "nn.LSTM loop tok/s", "ratio",
                   f">= {GOAL}", "ratio per CPU s"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["config"], f"V={r['vocab']:,} E={r['embedding']} "
                      f"{r['layers']}x{r['hidden']}", f"{r['batch']}x{r['seq_len']}",
                      f"{r['lstmlab_tokens_per_s']:,.0f}", f"{r['plain_tokens_per_s']:,.0f}",
                      f"{r['ratio']:.3f}", "yes" if r["met"] else "no", f"{r['cpu_ratio']:.3f}")
    Console().print(table)
    write_result("speed", {"goal_ratio": GOAL, "threads": args.threads, "results": rows})


if __name__ == "__main__":
    main()
