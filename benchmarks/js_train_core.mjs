// The measurement behind benchmarks/js_train.mjs (Node): lstmlab's train.js and Synaptic's
// LSTM learning the distracted sequence recall task of Synaptic's web demo to Synaptic's
// criterion, run by run alternately. No Node or browser API here.
import { createRng, createTrainer, dsr, TRAINER_DEFAULTS } from "../src/lstmlab/export/js/train.js";

export const CRITERION = 0.95;
export const TASK = dsr.DEMO;
export const SYNAPTIC_RATE = 0.17; // Synaptic's demo (scripts/controllers/dsr.js)

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function lstmlabRun(settings, seed, limit) {
  const start = performance.now();
  const trainer = createTrainer({ ...settings, seed, task: TASK });
  while ((trainer.success < CRITERION || trainer.sequences < 1000) &&
    trainer.sequences < limit) trainer.trainBatch();
  const seconds = (performance.now() - start) / 1000;
  return { seed, seconds, sequences: trainer.sequences, reached: trainer.success >= CRITERION,
    heldOut: trainer.evaluate(1000, createRng(1000 + seed)) };
}

function synapticRun(synaptic, limit) {
  const { Architect, Trainer } = synaptic;
  const inputs = dsr.symbols(TASK);
  const start = performance.now();
  const network = new Architect.LSTM(inputs, inputs * 0.8 | 0, TASK.targets.length);
  const result = new Trainer(network).DSR({ ...TASK, iterations: limit, rate: SYNAPTIC_RATE });
  const seconds = (performance.now() - start) / 1000;
  const random = createRng(4242); // the same held-out test as lstmlab's
  let right = 0;
  for (let n = 0; n < 1000; n++) {
    const seq = dsr.sample(random, TASK);
    network.clear?.();
    const outputs = seq.inputs.map((x) => network.activate(Array.from(x)));
    if (dsr.correct(outputs, seq.targets)) right++;
  }
  return { seconds, sequences: result.iterations, reached: result.success >= CRITERION,
    heldOut: right / 1000 };
}

function summary(name, rows) {
  const ok = rows.filter((r) => r.reached);
  return { name, runs: rows.length, reached: ok.length,
    median_seconds: ok.length ? median(ok.map((r) => r.seconds)) : null,
    median_sequences: ok.length ? median(ok.map((r) => r.sequences)) : null,
    median_held_out: median(rows.map((r) => r.heldOut)), rows };
}

/** Both trainers, `runs` times each, alternating (a busy machine slows both alike). */
export function runBenchmark({ runs = 5, synaptic = null, synapticVersion = "?", limit = 250000,
  settings = {} } = {}) {
  const s = { ...TRAINER_DEFAULTS, cell: "lstm", variant: "NP", ...settings };
  const mine = [], theirs = [];
  for (let k = 0; k < runs; k++) {
    mine.push(lstmlabRun(s, k + 1, limit));
    if (synaptic) theirs.push(synapticRun(synaptic, limit));
  }
  const results = [summary(`lstmlab train.js ${s.cell}:${s.variant} H=${s.hidden}`, mine)];
  if (synaptic) {
    results.push({ ...summary(`Synaptic ${synapticVersion} Architect.LSTM(6, 4, 2), rate ` +
      `${SYNAPTIC_RATE}`, theirs), version: synapticVersion });
  }
  return { task: TASK, criterion: CRITERION, settings: s, results };
}

/** The table, as lines of text. */
export function table(report, where) {
  const fmt = (v, d = 2) => (v == null ? "-" : v.toFixed(d));
  const lines = [`Distracted sequence recall, Synaptic's demo task ${JSON.stringify(report.task)}, ` +
    `to ${report.criterion * 100}% success; ${where}; ${report.results[0].runs} runs each, ` +
    "medians of the runs that reached it",
  `${"trainer".padEnd(52)} reached  seconds  sequences  held-out`];
  for (const r of report.results) {
    lines.push(`${r.name.padEnd(52)} ${`${r.reached}/${r.runs}`.padStart(7)} ` +
      `${fmt(r.median_seconds).padStart(8)} ${String(r.median_sequences ?? "-").padStart(10)} ` +
      `${fmt(r.median_held_out, 3).padStart(9)}`);
  }
  const [a, b] = report.results;
  if (b && a.median_seconds && b.median_seconds) {
    lines.push(`lstmlab is ${(b.median_seconds / a.median_seconds).toFixed(1)}x faster in wall time`);
  }
  return lines;
}
