"""In-browser training: wall time until distracted sequence recall (DSR) is learned by Synaptic's
criterion (a block of 1,000 training sequences at least 95% right), in headless Chromium -
lstmlab's trainer (the train page: a Web Worker running runtime/train.js, BPTT in plain
JavaScript) against Synaptic's own LSTM and trainer in the same browser.

The task and network are those of Synaptic's web demo of DSR (its gh-pages
scripts/controllers/dsr.js: targets [2, 4], distractors [3, 5], prompts [0, 1], length 10; ``new
Architect.LSTM(6, 4, 2)``, hidden = 0.8 x inputs, trained by ``trainer.DSR({...})`` online at
rate 0.17, cross-entropy, its own success rule and blocks). lstmlab's side is the train page
with its defaults (an LSTM NP of train.js's default size, Adam), seeds 1..--runs. Synaptic is
not part of lstmlab: install it outside the repository and pass its browser build,

    cd /tmp/synaptic && npm install synaptic
    .venv/bin/python benchmarks/web_train.py \
        --synaptic /tmp/synaptic/node_modules/synaptic/dist/synaptic.js

Synaptic trains on the page's main thread (as its demo does); each run is capped by --timeout
seconds. Both sides report the median of --runs runs."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from web_common import browser_version, chromium, served, write_result

SYNAPTIC_RUN = """async (iterations) => {
  const net = new synaptic.Architect.LSTM(6, 4, 2);
  const result = new synaptic.Trainer(net).DSR({ targets: [2, 4], distractors: [3, 5],
    prompts: [0, 1], length: 10, iterations, rate: 0.17 });
  return result;
}"""


def ours(browser, url: str, seed: int, timeout: float) -> dict:
    page = browser.new_page()
    page.goto(url + "train.html")
    page.wait_for_selector("body[data-ready]", state="attached")
    page.select_option("#task", "DEMO")
    page.fill("#seed", str(seed))
    page.click("#start")
    page.wait_for_function("window.trainLab.solved !== null", timeout=timeout * 1000)
    solved = page.evaluate("({...window.trainLab.solved, gap: window.trainLab.maxFrameGap, "
                           "hidden: document.getElementById('hidden').value})")
    page.close()
    return solved


def synaptic(browser, url: str, script: Path, timeout: float) -> dict:
    page = browser.new_page()
    page.route("**/synaptic.js", lambda route: route.fulfill(path=str(script),
                                                              content_type="text/javascript"))
    page.goto(url + "index.html")
    page.add_script_tag(url=url + "synaptic.js")
    page.set_default_timeout(timeout * 1000)
    result = page.evaluate(SYNAPTIC_RUN, 100_000)
    page.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--synaptic", type=Path, help="Synaptic's dist/synaptic.js (npm)")
    parser.add_argument("--synaptic-runs", type=int, default=None,
                        help="runs of Synaptic (default --runs)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    args = parser.parse_args()
    document: dict = {"task": "DSR, targets [2, 4], distractors [3, 5], prompts [0, 1], "
                              "length 10; solved: a block of 1,000 sequences >= 95% right"}
    with served() as url, chromium() as browser:
        document["browser"] = browser_version(browser)
        runs = []
        for seed in range(1, args.runs + 1):
            runs.append(ours(browser, url, seed, args.timeout))
            print(f"lstmlab.js, seed {seed}: {runs[-1]['seconds']:.2f} s, "
                  f"{runs[-1]['sequences']:,} sequences (longest frame gap "
                  f"{runs[-1]['gap']:.0f} ms)")
        document["lstmlab"] = {"runs": runs, "hidden": runs[0]["hidden"],
                               "median_seconds": statistics.median(r["seconds"] for r in runs)}
        if args.synaptic:
            if not args.synaptic.is_file():
                raise SystemExit(f"--synaptic {args.synaptic}: no such file")
            sruns = []
            for k in range(args.synaptic_runs or args.runs):
                result = synaptic(browser, url, args.synaptic, args.timeout)
                result["seconds"] = result["time"] / 1000
                sruns.append(result)
                print(f"Synaptic, run {k + 1}: {result['seconds']:.2f} s, "
                      f"{result['iterations']:,} sequences, success {result['success']:.3f}")
            document["synaptic"] = {"runs": sruns,
                                    "network": "Architect.LSTM(6, 4, 2), rate 0.17",
                                    "solved_runs": sum(r["success"] >= 0.95 for r in sruns),
                                    "median_seconds": statistics.median(
                                        r["seconds"] for r in sruns)}
    print(f"\n{document['browser']}; {document['task']}")
    ours_s = document["lstmlab"]["median_seconds"]
    print(f"lstmlab.js (Web Worker, BPTT, LSTM NP, hidden {document['lstmlab']['hidden']}): "
          f"{ours_s:.2f} s median of {args.runs}")
    if "synaptic" in document:
        theirs = document["synaptic"]["median_seconds"]
        print(f"Synaptic (its demo: Architect.LSTM(6, 4, 2), Trainer.DSR, rate 0.17): "
              f"{theirs:.2f} s "
              f"median of {len(document['synaptic']['runs'])} "
              f"({document['synaptic']['solved_runs']} solved)")
        print(f"goal, lstmlab faster than Synaptic: {'met' if ours_s < theirs else 'NOT met'} "
              f"({theirs / ours_s:.1f}x)")
        document["goal_met"] = ours_s < theirs
    else:
        print("Synaptic not measured (no --synaptic): its figure is missing")
    write_result("web_train", document)


if __name__ == "__main__":
    main()
