"""Captions of held-out shapes scenes: truthfulness, BLEU-4 and exact match of Show and Tell
(no attention) and Show, Attend and Tell (soft attention), side by side, over seeds.

Goal: >= 99% of the captions of fresh scenes truthful (every fact they state holds in the
scene), each run <= 30 minutes here. References for scale only - they caption real photographs
(COCO), not these scenes: Show and Tell 27.7 BLEU-4 (Vinyals et al. 2015); Show, Attend and
Tell 24.3 (soft) to 25.0 (hard attention) (Xu et al. 2015).

--minutes is each run's training time (a run: one seed of one attention kind); evaluation comes
after it. --jobs runs that many at once, each in its own process with --threads torch threads.
The model options default to ``CaptionConfig``'s (the learning rate falls to 0 by the cosine
schedule over each run's minutes).

    .venv/bin/python benchmarks/captions.py --minutes 28 --seeds 0,1,2 --attention soft --jobs 2
    .venv/bin/python benchmarks/captions.py --minutes 2 --seeds 0 --attention soft --scenes 200
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any

from lm_common import ROOT
from shapes_common import parser, seeds, spread, write_result

from lstmlab.experiments.caption import CaptionConfig

REFERENCES = {"Show and Tell, COCO BLEU-4 (Vinyals et al. 2015)": 27.7,
              "Show, Attend and Tell soft, COCO BLEU-4 (Xu et al. 2015)": 24.3,
              "Show, Attend and Tell hard, COCO BLEU-4 (Xu et al. 2015)": 25.0}
GOAL = ">= 99% truthful captions on held-out scenes"
OPTIONS = ("cell", "embedding", "hidden", "attention_size", "batch", "lr", "schedule", "beam")


def run(kind: str, seed: int, minutes: float, args: dict[str, Any],
        options: dict[str, Any]) -> dict[str, Any]:
    """Train one captioner and score it on the fresh scenes: the run's row."""
    import torch
    from rich.console import Console

    from lstmlab.experiments.caption import evaluate_captioner, train_captioner

    torch.set_num_threads(args["threads"])
    out = Path(args["base"]) / f"{kind}-seed{seed}"
    result = train_captioner(out=out, minutes=minutes, epochs=args["epochs"],
                             eval_every=args["eval_every"], progress=args["progress"],
                             console=Console(stderr=True), attention=kind,
                             **{**options, "seed": seed})
    report = evaluate_captioner(out, scenes=args["scenes"], out=out / "eval")
    s = report.scores
    print(f"[{kind} seed {seed}] {result.summary()}\n[{kind} seed {seed}] {s.summary()}",
          flush=True)
    return {"attention": kind, "seed": seed, "truthful": 100 * s.truthful, "bleu4": s.bleu4,
            "exact_match": 100 * s.exact_match, "steps": result.steps,
            "minutes": result.seconds / 60, "parameters": result.parameters,
            "gallery": report.gallery, "examples": report.examples[:5]}


def main() -> None:
    defaults = {f.name: f.default for f in fields(CaptionConfig) if f.name in OPTIONS}
    p = parser(__doc__.splitlines()[0], {"minutes": 28.0, **defaults})
    p.add_argument("--attention", choices=("none", "soft", "both"), default="both")
    p.add_argument("--scenes", type=int, default=1000, help="held-out scenes to caption")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    p.add_argument("--result", default="captions",
                   help="benchmarks/results/RESULT.json (default captions)")
    args = p.parse_args()
    from lstmlab.tasks.shapes import SEEDS

    kinds = ["none", "soft"] if args.attention == "both" else [args.attention]
    runs = [(kind, seed) for kind in kinds for seed in seeds(args)]
    options = {k: getattr(args, k) for k in args.option_names}
    shared = {"threads": args.threads, "epochs": args.epochs, "eval_every": args.eval_every,
              "progress": not args.no_progress and args.jobs == 1, "scenes": args.scenes,
              "base": str(ROOT / "runs" / "bench-captions" if args.out is None
                          else Path(args.out))}
    print(f"{len(runs)} runs, {args.minutes:g} min of training each, {args.jobs} at once, "
          f"{args.threads} thread(s) each; evaluation on {args.scenes:,} fresh scenes (seeds "
          f"{SEEDS['eval']}..); options {options}", flush=True)
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run, kind, seed, args.minutes, shared, options)
                   for kind, seed in runs]
        rows = [f.result() for f in futures]
    figure, lines = {}, [f"\nheld-out shapes scenes ({args.scenes:,}), beam {args.beam}, "
                         f"{args.minutes:g} min of training per run, mean +- std over seeds"]
    lines.append(f"  {'attention':<10}{'truthful %':>18}{'BLEU-4':>18}{'exact match %':>18}")
    for kind in kinds:
        mine = [r for r in rows if r["attention"] == kind]
        figure[kind] = {key: spread([r[key] for r in mine])
                        for key in ("truthful", "bleu4", "exact_match")}
        cells = [f"{figure[kind][key]['mean']:.2f} +- {figure[kind][key]['std']:.2f}"
                 for key in ("truthful", "bleu4", "exact_match")]
        lines.append(f"  {kind:<10}" + "".join(f"{c:>18}" for c in cells))
        lines.append("      per seed, truthful %: " + ", ".join(
            f"{r['seed']}: {r['truthful']:.1f} ({r['minutes']:.1f} min)" for r in mine))
    lines.append(f"  goal: {GOAL}: " + ", ".join(
        f"{kind} {'met' if figure[kind]['truthful']['min'] >= 99 else 'NOT met'}"
        for kind in kinds) + " (every seed)")
    for ref, value in REFERENCES.items():
        lines.append(f"  for scale, on real photos: {ref}: {value}")
    text = "\n".join(lines)
    print(text)
    write_result(args.result, {"figure": figure, "goal": GOAL, "references": REFERENCES,
                               "minutes_per_run": args.minutes, "options": options,
                               "summary": text, "runs": rows})


if __name__ == "__main__":
    main()
