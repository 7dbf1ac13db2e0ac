// Wall time to learn distracted sequence recall in plain JavaScript under Node: lstmlab's
// trainer (src/lstmlab/export/js/train.js, the code the web lab's Web Worker runs) against
// Synaptic's own LSTM on the task of Synaptic's web demo, measured in the same run
// (benchmarks/js_train_core.mjs; benchmarks/web_train.py measures the train page in Chromium).
//
// The task (Synaptic's demo, scripts/controllers/dsr.js of its gh-pages branch): targets 2, 4,
// distractors 3, 5, prompts 0, 1, length 10; Synaptic's network Architect.LSTM(6, 4, 2) trained
// by Trainer.DSR with rate 0.17. The criterion (Synaptic's): 95% of 1000 consecutive training
// sequences entirely right (every output unit at every step rounds to its target), each judged
// before its own update. Synaptic checks it at every 1000th sequence; lstmlab after every batch
// over the last 1000. Afterwards both networks are tested on 1000 fresh sequences (held-out).
//
//   node benchmarks/js_train.mjs                                  # lstmlab only
//   node benchmarks/js_train.mjs --synaptic /tmp/synaptic/node_modules/synaptic --runs 10
//
// Synaptic is never vendored: install it into a folder outside the repository (cd /tmp/synaptic
// && npm install synaptic) and pass its package folder. Writes benchmarks/results/js_train.json.
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import os from "node:os";
import { runBenchmark, table } from "./js_train_core.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const k = args.indexOf(`--${name}`);
  return k >= 0 ? args[k + 1] : fallback;
};
const synapticPath = option("synaptic", null);
let synaptic = null, synapticVersion = "?";
if (synapticPath) {
  synaptic = createRequire(import.meta.url)(resolve(synapticPath));
  const pkg = join(resolve(synapticPath), "package.json");
  if (existsSync(pkg)) synapticVersion = JSON.parse(readFileSync(pkg, "utf8")).version;
}
const settings = {};
for (const key of ["cell", "variant"]) if (option(key)) settings[key] = option(key);
if (option("hidden")) settings.hidden = Number(option("hidden"));
const report = runBenchmark({ runs: Number(option("runs", 5)), synaptic, synapticVersion,
  limit: Number(option("limit", 250000)), settings });
const where = `Node ${process.version}, ${os.cpus()[0]?.model}`;
for (const line of table(report, where)) console.log(line);
const out = join(here, "results", "js_train.json");
mkdirSync(dirname(out), { recursive: true });
let saved = {};
if (existsSync(out)) saved = JSON.parse(readFileSync(out, "utf8"));
saved.node = { ...report, where, command: `node benchmarks/js_train.mjs ${args.join(" ")}` };
writeFileSync(out, JSON.stringify({ benchmark: "js_train", ...saved }, null, 1) + "\n");
console.log(`wrote ${out}`);
