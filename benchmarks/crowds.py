"""People in generated crowds: AP at IoU 0.5 of ReInspect (an LSTM decoder per grid cell,
Hungarian loss, stitching) against the NMS baseline (one box per cell, then non-maximum
suppression) on the same encoder and training budget, overall and by crowd density and
overlap, over seeds; the PR curves as a PNG.

Goal - the paper's claim (Stewart, Andriluka & Ng 2016), measured: ReInspect's AP >= the
baseline's overall, and ahead by >= 0.10 on the people of crowds (16+ people) whose box
overlaps another person's by IoU >= 0.5 (per-person buckets: ``lstmlab.experiments.detect``).
For scale, on the Brainwash data set the paper reports AP 0.78 for ReInspect against 0.67 for
OverFeat-GoogLeNet.

--minutes is the training time of the whole benchmark, shared equally by its 2 x seeds runs
(90% of it; the rest is left for evaluation), so `--minutes 30` takes about 30 minutes.

    .venv/bin/python benchmarks/crowds.py --minutes 30 --seeds 0,1,2
    .venv/bin/python benchmarks/crowds.py --minutes 2 --seeds 0 --scenes 100
"""

from __future__ import annotations

from pathlib import Path

from lm_common import ROOT
from rich.console import Console
from shapes_common import RESULTS, parser, seeds, spread, write_result

REFERENCES = {"Brainwash AP, ReInspect (Stewart et al. 2016)": 0.78,
              "Brainwash AP, OverFeat-GoogLeNet (Stewart et al. 2016)": 0.67}
GOAL = ("ReInspect AP >= NMS AP overall, and >= NMS AP + 0.10 on the people of 16+ crowds "
        "whose box overlaps another's by IoU >= 0.5")


def main() -> None:
    p = parser(__doc__.splitlines()[0], {
        "minutes": 30.0, "cell": "lstm", "max_boxes": 5, "hidden": 64, "batch": 16,
        "lr": 1e-3, "region": 0.25})
    p.add_argument("--scenes", type=int, default=500, help="fresh crowds to evaluate on")
    args = p.parse_args()
    import torch

    from lstmlab.experiments.detect import HARDEST, evaluate_detectors, train_detector
    from lstmlab.tasks.crowds import SEEDS
    from lstmlab.viz.vision import pr_plot

    torch.set_num_threads(args.threads)
    chosen = seeds(args)
    minutes = 0.9 * args.minutes / (2 * len(chosen))
    options = {k: getattr(args, k) for k in args.option_names}
    base = ROOT / "runs" / "bench-crowds" if args.out is None else Path(args.out)
    print(f"{2 * len(chosen)} runs, {minutes:.2f} min of training each, {args.threads} "
          f"thread(s); evaluation on {args.scenes:,} fresh crowds (seeds {SEEDS['eval']}..)",
          flush=True)
    per_seed, trained = [], []
    for seed in chosen:
        outs = {}
        for model in ("lstm", "nms"):
            print(f"--- {model}, seed {seed} ---", flush=True)
            outs[model] = base / f"{model}-seed{seed}"
            result = train_detector(out=outs[model], minutes=minutes, epochs=args.epochs,
                                    eval_every=args.eval_every, progress=not args.no_progress,
                                    console=Console(stderr=True),
                                    **{**options, "model": model, "seed": seed})
            print(result.summary(), flush=True)
            trained.append({"model": model, "seed": seed, "steps": result.steps,
                            "minutes": result.seconds / 60, "parameters": result.parameters,
                            "best_valid_ap": result.best_valid_ap})
        report = evaluate_detectors([outs["lstm"], outs["nms"]], scenes_count=args.scenes,
                                    out=base / f"eval-seed{seed}")
        print(report.table(), flush=True)
        per_seed.append(report)
    names = list(per_seed[0].models)
    buckets = list(per_seed[0].people)
    figure = {name: {b: spread([r.models[name][b]["ap"] or 0.0 for r in per_seed])
                     for b in buckets} for name in names}
    lines = [f"\nAP at IoU 0.5 on {args.scenes:,} fresh crowds, mean +- std over "
             f"{len(chosen)} seed(s)", f"  {'people':<32}" + "".join(f"{n:>24}" for n in names)]
    for b in buckets:
        lines.append(f"  {b + f' ({per_seed[0].people[b]})':<32}" + "".join(
            f"{figure[n][b]['mean']:>15.3f} +- {figure[n][b]['std']:.3f}" for n in names))
    lstm, nms = names
    overall = figure[lstm]["all"]["mean"] - figure[nms]["all"]["mean"]
    hardest = figure[lstm][HARDEST]["mean"] - figure[nms][HARDEST]["mean"]
    holds = overall >= 0 and hardest >= 0.10
    per_seed_holds = [bool(r.claim and r.claim["holds"]) for r in per_seed]
    lines.append(f"  goal: {GOAL}")
    lines.append(f"  measured: overall {overall:+.3f}, hardest bucket {hardest:+.3f} -> "
                 f"{'holds' if holds else 'does NOT hold'} on the means; per seed: "
                 + ", ".join("holds" if h else "no" for h in per_seed_holds))
    for ref, value in REFERENCES.items():
        lines.append(f"  for scale, on real photos: {ref}: {value}")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    import json

    curves = json.loads((base / f"eval-seed{chosen[0]}" / "report.json").read_text())["curves"]
    plot = pr_plot({f"{b} (seed {chosen[0]}, {per_seed[0].people[b]} people)": {
        n: (curves[n][b]["precision"], curves[n][b]["recall"], curves[n][b]["ap"])
        for n in names} for b in ("all", HARDEST)}, RESULTS / "crowds_pr.png")
    print(f"PR curves: {plot.relative_to(ROOT)}")
    write_result("crowds", {"figure": figure, "claim": {"overall_margin": overall,
                                                        "hardest_margin": hardest,
                                                        "holds": holds,
                                                        "per_seed": per_seed_holds},
                            "goal": GOAL, "references": REFERENCES, "minutes_per_run": minutes,
                            "people_per_bucket": per_seed[0].people, "summary": text,
                            "runs": trained, "pr_curves": str(plot.relative_to(ROOT)),
                            "reports": [r.to_dict() for r in per_seed]})


if __name__ == "__main__":
    main()
