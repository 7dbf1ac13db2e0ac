"""JSB Chorales: test frame negative log-likelihood (nats) of the best-validation model, by the
protocol of Bai et al. 2018's code (per predicted frame the sum over 88 keys of the binary
cross-entropy, frame-weighted over every test piece), mean and spread over seeds, each run at
most 30 minutes here.

References (test NLL, lower is better): Bai et al. 2018 LSTM 8.45, GRU 8.43, TCN 8.10;
Chung et al. 2014 LSTM 8.67. Goal: <= 8.45 (stretch: <= 8.10). Data:
jsb_chorales/jsb_chorales.json (229 / 76 / 77 pieces).

    .venv/bin/python benchmarks/jsb.py --minutes 30              # 3 seeds, 30 minutes each
    .venv/bin/python benchmarks/jsb.py --minutes 5 --seeds 0     # a short run
"""

from __future__ import annotations

from lm_common import data_file
from shapes_common import config_options, parser, report, run_seeds, spread, write_result

from lstmlab.experiments.music import MusicConfig, train_music

REFERENCES = {"Bai et al. 2018 LSTM": 8.45, "Bai et al. 2018 GRU": 8.43,
              "Bai et al. 2018 TCN": 8.10, "Chung et al. 2014 LSTM": 8.67}
GOAL = "<= 8.45 nats test frame NLL (stretch <= 8.10)"


def main() -> None:
    args = parser(__doc__.splitlines()[0],
                  {"minutes": 30.0, **config_options(MusicConfig)}).parse_args()
    results = run_seeds("jsb", args, train_music,
                        file=data_file("jsb_chorales", "jsb_chorales.json"))
    nlls = [r.test_nll for r in results]
    text = report("JSB Chorales test frame NLL (best-validation weights)", "nats", nlls,
                  REFERENCES, GOAL, fmt="{:.3f}")
    write_result("jsb", {
        "figure": {"test_nll": spread(nlls),
                   "valid_nll": spread([r.best_valid_nll for r in results]),
                   "test_frames": results[0].test_frames,
                   "minutes_per_run": [r.seconds / 60 for r in results],
                   "epochs_per_run": [r.epochs for r in results],
                   "parameters": results[0].parameters},
        "goal": GOAL, "references": REFERENCES, "summary": text,
        "runs": [{k: v for k, v in r.to_dict().items() if k != "history"} for r in results]})


if __name__ == "__main__":
    main()
