"""Make the web lab's default models and game decks (the files under lstmlab/web/models/).

    python -m lstmlab.web.make_models games             # the three games: deck + LSTM + RNN
    python -m lstmlab.web.make_models games --game intern
    python -m lstmlab.web.make_models lm RUN_DIR        # export a trained character LM

The games. For each of intern, tasks and romaji an LSTM and an Elman RNN (``cell`` "lstm" and
"rnn", ``HIDDEN`` units, the memory suite's gradient learner: ``build_memory_model`` with chrono
initialisation, Adam, the task's own loss, through the one training loop) are trained on a mix
of the lags the page shows (``GAMES``; each batch has one lag, drawn uniformly), so one network
per game and cell plays every lag: the LSTM learns the long lags, the RNN at most the short
ones. Training stops when every lag is at least 99% right on held-out sequences (checked every
``CHECK_EVERY`` steps) or after ``--minutes``; the best check's weights are kept. The deck
(deck.json) holds, for each game and lag, ``DECK_SIZE`` sequences of the task's own generator
(``task.test_set(DECK_SEED, ...)``): the symbols shown at each step, the answer by the task's
rule, and whether the Python network got each one right (the page's JS networks must agree).

The language model: ``lstmlab lm train --layers 2 --hidden 128 --minutes 12 --threads 1
--seed 0 --out RUN_DIR`` (the command the shipped model was made with), then this script's
``lm RUN_DIR``: ``lm inspect`` on the validation text finds the interpretable cells
(cells.json) and ``to_web`` exports the model.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from lstmlab.experiments.learner import TaskStep
from lstmlab.experiments.memory_trial import LearnerConfig, evaluate_on
from lstmlab.models.memory import build_memory_model
from lstmlab.tasks.batch import Batch
from lstmlab.tasks.memory import VALIDATION_SEED, MemoryTask, make_task
from lstmlab.train.callbacks import Every, StopWhen
from lstmlab.train.loop import TrainConfig, Trainer

MODELS = Path(__file__).resolve().parent / "models"
GAMES: dict[str, list[int]] = {
    "intern": [10, 30, 100, 300, 1000],
    "tasks": [5, 10, 20, 50, 100],
    "romaji": [6, 10, 20, 30, 50],
}
"""Each game's lags, shortest first: the page plays them in this order."""
CELLS = ("lstm", "rnn")
HIDDEN = {"intern": 32, "tasks": 32, "romaji": 64}
"""Units of each game's networks (romaji's LSTM must hold up to six letters in order)."""
DECK_SIZE = 20
DECK_SEED = 14
CHECK_EVERY = 50
CHECK_SIZE = 512


# -- the deck: what the person (and the networks) play ----------------------------------------

def deck_entries(task: MemoryTask, batch: Batch) -> list[dict[str, Any]]:
    """Per sequence of ``batch``: the steps as shown ("steps"), the index of each step's input
    symbol or value ("inputs"; -1: no input, or the query of "tasks"), the steps a person sees
    ("shown": up to the last step with an input), the scored steps ("scored") and the classes
    the task's rule wants there ("answer")."""
    entries = []
    for b in range(batch.batch_size):
        length = int(batch.lengths[b])
        x = batch.inputs[:length, b]
        if task.name == "tasks":
            # line 0 is the day's change / max_change, line 1 the query
            values = [round(float(v) * task.max_change) for v in x[:, 0]]
            query = [bool(v) for v in x[:, 1]]
            steps = ["?" if q else (f"{v:+d}" if v else "") for v, q in zip(values, query,
                                                                             strict=True)]
            inputs = [-1 if q else v for v, q in zip(values, query, strict=True)]
        else:
            hot = x.sum(-1) > 0
            inputs = [int(i) if h else -1 for i, h in zip(x.argmax(-1), hot, strict=True)]
            steps = [task.symbols[i] if i >= 0 else "" for i in inputs]
        present = (x != 0).any(-1).nonzero().flatten()
        scored = batch.mask[:length, b].nonzero().flatten()
        entries.append({"steps": steps, "inputs": inputs, "shown": int(present[-1]) + 1,
                        "scored": [int(t) for t in scored],
                        "answer": [int(batch.targets[t, b]) for t in scored]})
    return entries


def game_info(task: MemoryTask) -> dict[str, Any]:
    """What the page needs to present a game: sizes, symbols, classes, scored steps."""
    info = {"input_size": task.input_size, "output_size": task.output_size,
            "classes": list(task.classes), "symbols": list(task.symbols)}
    if task.name == "tasks":
        info.update(capacity=task.capacity, max_change=task.max_change)
    if task.name == "romaji":
        info.update(recall_steps=task.recall_steps, end_class=task.latin)
    return info


# -- training one network on a mix of lags ---------------------------------------------------

def mixed_batches(tasks: list[MemoryTask], batch_size: int, seed: int):
    """Endless fresh batches, each from one of ``tasks`` chosen uniformly (seeded)."""
    generator, pick = torch.Generator().manual_seed(seed), random.Random(seed)
    while True:
        yield pick.choice(tasks).sample(batch_size, generator)


def accuracy_by_lag(net: torch.nn.Module, tasks: list[MemoryTask], size: int, seed: int
                    ) -> dict[int, float]:
    """Share of ``size`` held-out sequences right, per lag."""
    out = {}
    for task in tasks:
        batches = list(task.test_batches(seed=seed, size=size, batch_size=size))
        correct, _ = evaluate_on(net, task, batches)
        out[task.lag] = float(correct.float().mean())
    return out


def train_game_network(game: str, cell: str, lags: list[int], minutes: float, seed: int = 0,
                       log=print) -> tuple[torch.nn.Module, dict[int, float], float]:
    """A ``cell`` network for ``game`` trained on the mix of ``lags`` until every lag is >= 99%
    right on held-out sequences or ``minutes`` pass; the weights kept are those of the check
    with the best mean held-out accuracy over the lags (a long-lag accumulator can swing from
    one check to the next). Returns (net, accuracy by lag, seconds)."""
    tasks = [make_task(game, lag) for lag in lags]
    config = LearnerConfig(hidden=HIDDEN[game])
    net = build_memory_model(tasks[-1], cell, config.hidden, init=config.init,
                             head_init=config.head_init, seed=seed)
    trainer = Trainer(net, TrainConfig(optimizer=config.optimizer, lr=config.lr,
                                       clip=config.clip, max_seconds=60 * minutes,
                                       progress=False))
    scores: dict[int, float] = {}
    best: dict[str, Any] = {"mean": -1.0, "state": None}

    def check(t: Trainer) -> None:
        scores.clear()
        scores.update(accuracy_by_lag(t.model, tasks, CHECK_SIZE, VALIDATION_SEED))
        mean = sum(scores.values()) / len(scores)
        if mean > best["mean"]:
            best.update(mean=mean, state={k: v.clone() for k, v in net.state_dict().items()})
        log(f"  {game} {cell}: step {t.state.step}, {t.state.seconds:.0f} s: "
            + ", ".join(f"lag {lag} {100 * a:.1f}%" for lag, a in scores.items()))

    start = time.perf_counter()
    trainer.run(TaskStep(tasks[-1], config.loss), mixed_batches(tasks, config.batch, seed),
                [Every(CHECK_EVERY, check),
                 StopWhen(lambda: bool(scores) and min(scores.values()) >= 0.99)])
    if best["state"] is not None:
        net.load_state_dict(best["state"])
    net.eval()
    return net, accuracy_by_lag(net, tasks, CHECK_SIZE, VALIDATION_SEED), \
        time.perf_counter() - start


@torch.no_grad()
def python_plays(net: torch.nn.Module, task: MemoryTask, batch: Batch) -> list[bool]:
    """Whether ``net`` gets each deck sequence right by the task's rule."""
    correct, _ = task.evaluate(net(batch.inputs), batch)
    return [bool(c) for c in correct]


def export(net_or_run, folder: Path) -> None:
    """``to_web`` into ``folder`` (replaced), less the runtime's copies: the site serves one
    runtime for every model, at /runtime/."""
    from lstmlab.export.web import to_web

    if folder.exists():
        shutil.rmtree(folder)
    to_web(net_or_run, folder)
    for name in ("lstmlab.js", "train.js"):
        (folder / name).unlink(missing_ok=True)


def make_games(games: list[str], minutes: float, out: Path = MODELS / "games",
               log=print) -> None:
    """Train, export and write the deck for ``games`` (others already in deck.json are kept)."""
    out.mkdir(parents=True, exist_ok=True)
    deck_path = out / "deck.json"
    deck = json.loads(deck_path.read_text()) if deck_path.exists() else {"games": {}}
    for game in games:
        lags = GAMES[game]
        tasks = [make_task(game, lag) for lag in lags]
        entry: dict[str, Any] = {**game_info(tasks[-1]), "lags": {}, "networks": {}}
        decks = {task.lag: task.test_set(seed=DECK_SEED, size=DECK_SIZE) for task in tasks}
        for task in tasks:
            entry["lags"][str(task.lag)] = {"sequences": deck_entries(task, decks[task.lag])}
        for cell in CELLS:
            net, held_out, seconds = train_game_network(game, cell, lags, minutes, log=log)
            folder = out / f"{game}-{cell}"
            export(net, folder)
            entry["networks"][cell] = {
                "folder": folder.name, "hidden": HIDDEN[game], "seconds": round(seconds, 1),
                "held_out": {str(k): v for k, v in held_out.items()},
                "right": {str(task.lag): python_plays(net, task, decks[task.lag])
                          for task in tasks}}
            log(f"{game} {cell}: {seconds:.0f} s; held-out accuracy "
                + ", ".join(f"{k}: {100 * v:.1f}%" for k, v in held_out.items()))
        deck["games"][game] = entry
        deck.update(deck_seed=DECK_SEED, deck_size=DECK_SIZE)
        deck_path.write_text(json.dumps(deck, ensure_ascii=False, separators=(",", ":")))


# -- the language model ----------------------------------------------------------------------

def make_lm(run: str | Path, out: Path = MODELS / "lm", top: int = 3, log=print) -> None:
    """Export the language model of run directory ``run`` and its interpretable cells."""
    from lstmlab.experiments.lm_eval import load_language_model
    from lstmlab.experiments.lm_inspect import inspect

    loaded = load_language_model(run)
    result = inspect(run, out=None, top=top)
    export(loaded.path, out)
    (out / "cells.json").write_text(json.dumps(
        {"tokens_read": result.tokens, "shown": result.shown,
         "findings": [{"feature": f.feature, "cell": f.cell, "layer": f.layer, "unit": f.unit,
                       "r": round(f.r, 4)} for f in result.findings]}, indent=1))
    log(f"exported {run} to {out}; interpretable cells: "
        + ", ".join(f"{f.feature}: {f.cell} (r {f.r:+.2f})" for f in result.findings[::top]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lstmlab.web.make_models",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    g = sub.add_parser("games", help="train and export the games' networks and their deck")
    g.add_argument("--game", action="append", choices=tuple(GAMES),
                   help="only this game (repeatable; default all three)")
    g.add_argument("--minutes", type=float, default=4.0,
                   help="training time limit per network (default 4)")
    m = sub.add_parser("lm", help="export a trained character LM and its interpretable cells")
    m.add_argument("run", help="the run directory of `lstmlab lm train`")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.what == "games":
        make_games(args.game or list(GAMES), args.minutes)
    else:
        make_lm(args.run)


if __name__ == "__main__":
    main()
