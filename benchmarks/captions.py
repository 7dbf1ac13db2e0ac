"""Captions of held-out shapes scenes: truthfulness, BLEU-4 and exact match of Show and Tell
(no attention) and Show, Attend and Tell (soft attention), side by side, over seeds.

Goal: >= 99% of the captions of fresh scenes truthful (every fact they state holds in the
scene). References for scale only - they caption real photographs (COCO), not these scenes:
Show and Tell 27.7 BLEU-4 (Vinyals et al. 2015); Show, Attend and Tell 24.3 (soft) to 25.0
(hard attention) (Xu et al. 2015).

--minutes is the training time of the whole benchmark, shared equally by its runs (seeds x
attention kinds; 90% of it, the rest is left for evaluation), so `--minutes 30` takes about 30
minutes on one thread.

    .venv/bin/python benchmarks/captions.py --minutes 30 --seeds 0,1,2 --attention both
    .venv/bin/python benchmarks/captions.py --minutes 2 --seeds 0 --attention soft --scenes 200
"""

from __future__ import annotations

from pathlib import Path

from lm_common import ROOT
from rich.console import Console
from shapes_common import parser, seeds, spread, write_result

REFERENCES = {"Show and Tell, COCO BLEU-4 (Vinyals et al. 2015)": 27.7,
              "Show, Attend and Tell soft, COCO BLEU-4 (Xu et al. 2015)": 24.3,
              "Show, Attend and Tell hard, COCO BLEU-4 (Xu et al. 2015)": 25.0}
GOAL = ">= 99% truthful captions on held-out scenes"


def main() -> None:
    p = parser(__doc__.splitlines()[0], {
        "minutes": 30.0, "cell": "lstm", "embedding": 64, "hidden": 256, "batch": 32,
        "lr": 2e-3, "schedule": "constant", "beam": 3})
    p.add_argument("--attention", choices=("none", "soft", "both"), default="both")
    p.add_argument("--scenes", type=int, default=1000, help="held-out scenes to caption")
    args = p.parse_args()
    import torch

    from lstmlab.experiments.caption import evaluate_captioner, train_captioner
    from lstmlab.tasks.shapes import SEEDS

    torch.set_num_threads(args.threads)
    kinds = ["none", "soft"] if args.attention == "both" else [args.attention]
    runs = [(kind, seed) for kind in kinds for seed in seeds(args)]
    minutes = 0.9 * args.minutes / len(runs)
    options = {k: getattr(args, k) for k in args.option_names}
    base = ROOT / "runs" / "bench-captions" if args.out is None else Path(args.out)
    print(f"{len(runs)} runs, {minutes:.2f} min of training each, {args.threads} thread(s); "
          f"evaluation on {args.scenes:,} fresh scenes (seeds {SEEDS['eval']}..)", flush=True)
    rows = []
    for kind, seed in runs:
        print(f"--- attention {kind}, seed {seed} ---", flush=True)
        out = base / f"{kind}-seed{seed}"
        result = train_captioner(out=out, minutes=minutes, epochs=args.epochs,
                                 eval_every=args.eval_every, progress=not args.no_progress,
                                 console=Console(stderr=True), attention=kind,
                                 **{**options, "seed": seed})
        report = evaluate_captioner(out, scenes=args.scenes, out=out / "eval")
        s = report.scores
        print(f"{result.summary()}\n{s.summary()}", flush=True)
        rows.append({"attention": kind, "seed": seed, "truthful": 100 * s.truthful,
                     "bleu4": s.bleu4, "exact_match": 100 * s.exact_match,
                     "steps": result.steps, "minutes": result.seconds / 60,
                     "parameters": result.parameters, "gallery": report.gallery,
                     "examples": report.examples[:5]})
    figure, lines = {}, [f"\nheld-out shapes scenes ({args.scenes:,}), beam {args.beam}, "
                         f"mean +- std over seeds"]
    lines.append(f"  {'attention':<10}{'truthful %':>18}{'BLEU-4':>18}{'exact match %':>18}")
    for kind in kinds:
        mine = [r for r in rows if r["attention"] == kind]
        figure[kind] = {key: spread([r[key] for r in mine])
                        for key in ("truthful", "bleu4", "exact_match")}
        cells = [f"{figure[kind][key]['mean']:.2f} +- {figure[kind][key]['std']:.2f}"
                 for key in ("truthful", "bleu4", "exact_match")]
        lines.append(f"  {kind:<10}" + "".join(f"{c:>18}" for c in cells))
    lines.append(f"  goal: {GOAL}: " + ", ".join(
        f"{kind} {'met' if figure[kind]['truthful']['min'] >= 99 else 'NOT met'}"
        for kind in kinds) + " (every seed)")
    for ref, value in REFERENCES.items():
        lines.append(f"  for scale, on real photos: {ref}: {value}")
    text = "\n".join(lines)
    print(text)
    write_result("captions", {"figure": figure, "goal": GOAL, "references": REFERENCES,
                              "minutes_per_run": minutes, "summary": text, "runs": rows})


if __name__ == "__main__":
    main()
