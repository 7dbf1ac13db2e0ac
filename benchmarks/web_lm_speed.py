"""Generation speed of a 2x512 character LSTM language model in the browser: characters per
second of lstmlab.js (the plain-JavaScript runtime) in headless Chromium, against the goal of
100 characters per second.

The model is Tiny Shakespeare's shape (65 characters, embedding 512, 2 layers of 512, decoder
512 -> 65). Without --checkpoint it is an untrained model of that shape (seeded): generation
does the same arithmetic whatever the weights are. It is exported with to_web into a temporary
folder, served beside the lab's site, and stepped one character at a time through
``model.step`` after a prime, each next character drawn by ``sample`` (temperature 0.8) from
a seeded generator. chars/s = characters / wall time of the generation loop; the median of
--runs runs is reported. On a machine whose cores other work shares, wall time depends on the
load, so the renderer processes' CPU time over each run is read too (Chrome DevTools Protocol,
SystemInfo.getProcessInfo) and chars per CPU second given beside: what an otherwise idle core
would do.

    .venv/bin/python benchmarks/web_lm_speed.py                       # 5 runs of 500 chars
    .venv/bin/python benchmarks/web_lm_speed.py --chars 100 --runs 1  # a quick check
    .venv/bin/python benchmarks/web_lm_speed.py --checkpoint runs/lm-tinyshakespeare
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import torch
from web_common import browser_version, chromium, served, write_result

from lstmlab.export.web import to_web
from lstmlab.models.language import LanguageModel
from lstmlab.tasks.text import Vocabulary, default_corpus_text

GOAL = 100.0  # characters per second (issue #14)
PRIME = "ROMEO:\n"

GENERATE = """async ([chars, prime]) => {
  const { load, sample } = await import("/runtime/lstmlab.js");
  window.benchModel ??= await load("/bench/manifest.json");  // loaded once, before the runs
  const model = window.benchModel;
  let seed = 7;
  const random = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  let logits = null, state = null;
  for (const id of model.encode(prime)) ({ logits, state } = model.step(id, state));
  const start = performance.now();
  const out = [];
  for (let k = 0; k < chars; k++) {
    const next = sample(logits, { temperature: 0.8, random });
    out.push(next);
    ({ logits, state } = model.step(next, state));
  }
  const seconds = (performance.now() - start) / 1000;
  return { seconds, text: model.decode(out) };
}"""


def renderer_cpu_seconds(session) -> float:
    """Cumulative CPU seconds of the browser's renderer processes."""
    info = session.send("SystemInfo.getProcessInfo")["processInfo"]
    return sum(p["cpuTime"] for p in info if p["type"] == "renderer")


def export_model(folder: Path, checkpoint: str | None, seed: int) -> str:
    """Export the model to measure into ``folder``; returns its description."""
    if checkpoint:
        to_web(checkpoint, folder)
        return f"trained checkpoint {checkpoint}"
    torch.manual_seed(seed)
    vocab = Vocabulary.build(default_corpus_text(), level="char")
    model = LanguageModel(len(vocab), "lstm", hidden_size=512, num_layers=2)
    to_web(model, folder, extra={"vocabulary": vocab.to_dict()})
    return f"untrained 2x512 LSTM (seed {seed}), vocabulary of {len(vocab)} characters"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chars", type=int, default=500, help="characters per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--checkpoint", help="a trained 2x512 char LM (default: untrained)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bench"
        described = export_model(folder, args.checkpoint, args.seed)
        with served({"/bench/": folder}) as url, chromium() as browser:
            page = browser.new_page()
            page.goto(url + "index.html")
            session = browser.new_browser_cdp_session()
            page.evaluate(GENERATE, [1, PRIME])  # load the model (and warm up) once
            rates, per_cpu, text = [], [], ""
            for run in range(args.runs):
                cpu = renderer_cpu_seconds(session)
                result = page.evaluate(GENERATE, [args.chars, PRIME])
                cpu = renderer_cpu_seconds(session) - cpu
                rates.append(args.chars / result["seconds"])
                per_cpu.append(args.chars / cpu)
                text = result["text"]
                print(f"run {run + 1}: {rates[-1]:,.0f} chars/s, {per_cpu[-1]:,.0f} chars per "
                      f"CPU second")
            version = browser_version(browser)
    median, median_cpu = statistics.median(rates), statistics.median(per_cpu)
    print(f"\n{described}; {version}; {args.chars} chars per run, {args.runs} runs; load "
          f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"lstmlab.js generation: {median:,.0f} chars/s (median; {median_cpu:,.0f} per CPU "
          f"second)   goal: >= {GOAL:.0f} chars/s   {'met' if median >= GOAL else 'NOT met'}")
    print(f"sample: {text[:80]!r}")
    write_result("web_lm_speed", {
        "model": described, "browser": version, "chars": args.chars, "runs": args.runs,
        "chars_per_second": rates, "median_chars_per_second": median,
        "chars_per_cpu_second": per_cpu, "median_chars_per_cpu_second": median_cpu,
        "goal": GOAL, "met": median >= GOAL})


if __name__ == "__main__":
    main()
