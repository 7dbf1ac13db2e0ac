"""UD English EWT, UPOS (gold tokenisation): test token accuracy of the best-validation tagger,
mean and spread over seeds, each run at most 30 minutes here.

References (UPOS accuracy, %): a feature-based logistic-regression tagger about 94.2 (dev);
Plank et al. 2016's word + character bi-LSTM taggers (UD 1.2, the English row of their Table
2: not restated here, see the paper); spaCy's transformer pipeline 96.9 (UD 2.5); fine-tuned
BERT 97.2-97.4. Goal: >= 95.5. Data: ud_english_ewt/en_ewt-ud-{train,dev,test}.conllu.gz
(12,544 / 2,001 / 2,077 sentences).

    .venv/bin/python benchmarks/ud_ewt.py --minutes 30              # 3 seeds, 30 minutes each
    .venv/bin/python benchmarks/ud_ewt.py --minutes 10 --seeds 0    # a short run
"""

from __future__ import annotations

from lm_common import data_file
from shapes_common import config_options, parser, report, run_seeds, spread, write_result

from lstmlab.experiments.tag import TagConfig, train_tagger

REFERENCES = {"feature-based logistic regression (dev)": 94.2,
              "Plank et al. 2016 word+char bi-LSTM (UD 1.2)": None,
              "spaCy transformer pipeline (UD 2.5)": 96.9,
              "fine-tuned BERT (low end of 97.2-97.4)": 97.2}
GOAL = ">= 95.5% test token accuracy"


def main() -> None:
    args = parser(__doc__.splitlines()[0],
                  {"minutes": 30.0, **config_options(TagConfig)}).parse_args()
    train, valid, test = (data_file("ud_english_ewt", f"en_ewt-ud-{s}.conllu.gz")
                          for s in ("train", "dev", "test"))
    results = run_seeds("ud_ewt", args, train_tagger, train=train, valid=valid, test=test)
    accuracies = [100 * r.test["accuracy"] for r in results]
    text = report("UD English EWT UPOS, test token accuracy (best-validation weights)", "%",
                  accuracies, REFERENCES, GOAL)
    write_result("ud_ewt", {
        "figure": {"test_accuracy_percent": spread(accuracies),
                   "valid_accuracy_percent": spread([100 * r.best_valid_accuracy
                                                     for r in results]),
                   "test_unknown_word_accuracy_percent": [
                       None if r.test["unknown_accuracy"] is None
                       else 100 * r.test["unknown_accuracy"] for r in results],
                   "minutes_per_run": [r.seconds / 60 for r in results],
                   "epochs_per_run": [r.epochs for r in results],
                   "parameters": results[0].parameters},
        "goal": GOAL, "references": REFERENCES, "summary": text,
        "runs": [{k: v for k, v in r.to_dict().items() if k != "history"} for r in results]})


if __name__ == "__main__":
    main()
