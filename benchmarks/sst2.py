"""SST-2 (sentence labels only, no pretrained embeddings): test accuracy of the best-validation
classifier, mean and spread over seeds, each run at most 20 minutes here.

References (test accuracy, %): Kim 2014 CNN-rand 82.7 (trained with phrase labels too); Tai et
al. 2015 LSTM 84.9 and bidirectional LSTM 87.5 (both with GloVe vectors). Goal: >= 83.0.
Data: Kim 2014's split (sst2/stsa.binary.{train,dev,test}, 6,920 / 872 / 1,821 sentences).

    .venv/bin/python benchmarks/sst2.py --jobs 2                  # 3 seeds, 20 minutes each
    .venv/bin/python benchmarks/sst2.py --minutes 5 --seeds 0     # a short run
    .venv/bin/python benchmarks/sst2.py --minutes 8 --members 1   # one model, not an ensemble

Each run trains an ensemble of 3 classifiers (``--members``; seeds 3s, 3s + 1, 3s + 2 for seed
s), a third of the time each, and scores their averaged probabilities.
"""

from __future__ import annotations

from lm_common import data_file
from shapes_common import config_options, parser, report, run_seeds, spread, write_result

from lstmlab.experiments.classify import ClassifyConfig, train_classifier

REFERENCES = {"Kim 2014 CNN-rand (phrase labels too)": 82.7,
              "Tai et al. 2015 LSTM (GloVe)": 84.9,
              "Tai et al. 2015 bidirectional LSTM (GloVe)": 87.5}
GOAL = ">= 83.0% test accuracy"


def main() -> None:
    # ClassifyConfig's defaults but for a wider model with word dropout, and an ensemble of 3
    # members sharing the 20 minutes (--members 1: one model for the whole budget)
    args = parser(__doc__.splitlines()[0], {"minutes": 20.0, **config_options(
        ClassifyConfig, hidden=150, embedding=300, word_dropout=0.1, members=3)}).parse_args()
    train, valid, test = (data_file("sst2", f"stsa.binary.{s}")
                          for s in ("train", "dev", "test"))
    results = run_seeds("sst2", args, train_classifier, train=train, valid=valid, test=test)
    accuracies = [100 * r.test_accuracy for r in results]
    text = report("SST-2 test accuracy (best-validation weights)", "%", accuracies, REFERENCES,
                  GOAL)
    write_result("sst2", {
        "figure": {"test_accuracy_percent": spread(accuracies),
                   "valid_accuracy_percent": spread([100 * r.best_valid_accuracy
                                                     for r in results]),
                   "minutes_per_run": [r.seconds / 60 for r in results],
                   "epochs_per_run": [r.epochs for r in results],
                   "member_test_accuracy_percent": [[100 * m["test_accuracy"]
                                                     for m in r.members] for r in results],
                   "parameters": results[0].parameters},
        "goal": GOAL, "references": REFERENCES, "summary": text,
        "runs": [{k: v for k, v in r.to_dict().items() if k != "history"} for r in results]})


if __name__ == "__main__":
    main()
