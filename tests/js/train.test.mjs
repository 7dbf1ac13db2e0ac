// train.js: its gradients equal PyTorch's autograd on fixed sequences (grad_*.json from
// tests/js/make_fixtures.py), the DSR task follows Synaptic's definition, and a tiny case learns.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import {
  createNetwork, createRng, createTrainer, dsr, lossAndGradients, setParameters,
} from "../../src/lstmlab/export/js/train.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const gradFiles = readdirSync(fixtures).filter((n) => n.startsWith("grad_"));

test("there are gradient fixtures for LSTM variants, GRU, RNN and the softmax read-out", () => {
  for (const n of ["grad_lstm_V", "grad_lstm_FGR", "grad_lstm_CIFG", "grad_gru", "grad_rnn",
    "grad_lstm_V_softmax"]) assert.ok(gradFiles.includes(`${n}.json`), n);
});

for (const file of gradFiles) {
  test(`${file}: loss and every gradient equal PyTorch's (1e-9)`, () => {
    const f = JSON.parse(readFileSync(join(fixtures, file), "utf8"));
    const net = createNetwork({ cell: f.cell, inputs: f.inputs, hidden: f.hidden,
      outputs: f.outputs, readout: f.readout });
    assert.deepEqual(Object.keys(net.params).sort(), Object.keys(f.params).sort());
    setParameters(net, f.params);
    const xs = f.symbols.map((s) => { const x = new Float64Array(f.inputs); x[s] = 1; return x; });
    const r = lossAndGradients(net, xs, f.targets, f.mask);
    assert.ok(Math.abs(r.loss - f.loss) < 1e-9, `loss ${r.loss} vs ${f.loss}`);
    for (const [name, expected] of Object.entries(f.grads)) {
      const flat = [expected].flat(Infinity);
      const diff = Math.max(...flat.map((v, k) => Math.abs(r.grads[name][k] - v)));
      assert.ok(diff < 1e-9, `${name}: max |JS - PyTorch| = ${diff}`);
    }
  });
}

test("a DSR sequence has Synaptic's shape: distractors, targets in order, prompts", () => {
  const random = createRng(7);
  for (const task of [dsr.DEMO, dsr.SYNAPTIC]) {
    for (let n = 0; n < 200; n++) {
      const s = dsr.sample(random, task);
      const body = task.length - task.prompts.length;
      assert.equal(s.symbols.length, task.length);
      assert.deepEqual(s.symbols.slice(body), task.prompts);
      const placed = s.symbols.slice(0, body).filter((x) => task.targets.includes(x));
      assert.equal(placed.length, task.prompts.length);
      assert.ok(s.symbols.slice(0, body).every((x) => task.targets.includes(x) ||
        task.distractors.includes(x)));
      s.targets.forEach((y, t) => {
        const want = t < body ? -1 : task.targets.indexOf(placed[t - body]);
        assert.deepEqual(Array.from(y), task.targets.map((_, k) => (k === want ? 1 : 0)));
      });
      s.inputs.forEach((x, t) => assert.equal(x[s.symbols[t]], 1));
    }
  }
  const seq = dsr.sample(createRng(1));
  assert.equal(dsr.correct(seq.targets.map((y) => y.map((v) => 0.9 * v + 0.05)), seq.targets), true);
  const wrong = seq.targets.map((y) => Array.from(y));
  wrong[0][0] = 0.6;
  assert.equal(dsr.correct(wrong, seq.targets), false);
});

test("the same seed trains the same network", () => {
  const a = createTrainer({ seed: 3 }), b = createTrainer({ seed: 3 });
  for (let k = 0; k < 5; k++) assert.deepEqual(a.trainBatch(), b.trainBatch());
  assert.notDeepEqual(createTrainer({ seed: 4 }).trainBatch(), createTrainer({ seed: 3 }).trainBatch());
});

test("an LSTM learns the demo's distracted sequence recall within bounded steps", () => {
  const trainer = createTrainer({ cell: "lstm", variant: "NP", hidden: 8, seed: 1 });
  const before = trainer.evaluate(300);
  let updates = 0;
  while (trainer.success < 0.95 || trainer.sequences < 1000) {
    trainer.trainBatch();
    assert.ok(++updates <= 2500, `no 95% success after ${trainer.sequences} sequences`);
  }
  const after = trainer.evaluate(300);
  assert.ok(before < 0.2, `untrained success ${before}`);
  assert.ok(after >= 0.9, `held-out success ${after} after ${trainer.sequences} sequences`);
});

test("bad options are refused with a message", () => {
  assert.throws(() => createTrainer({ cell: "transformer" }), /unknown cell "transformer"/);
  assert.throws(() => createTrainer({ optimizer: "lbfgs" }), /adam or sgd/);
  assert.throws(() => createTrainer({ variant: "XYZ" }), /unknown LSTM variant/);
});
