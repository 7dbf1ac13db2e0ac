// lstmlab.js against PyTorch: every fixture folder (tests/js/make_fixtures.py) is loaded with
// load(), run on its inputs, and compared with lstmlab's float64 reference outputs and traces.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, mkdtempSync, writeFileSync, copyFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import { load, fromBuffer, sample } from "../../src/lstmlab/export/js/lstmlab.js";

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, "fixtures");
const TOLERANCE = 1e-5;

function maxDiff(actual, expected, path = "") {
  if (Array.isArray(expected)) {
    assert.equal(actual.length, expected.length, `length at ${path}`);
    return expected.reduce((m, e, k) => Math.max(m, maxDiff(actual[k], e, `${path}[${k}]`)), 0);
  }
  assert.equal(typeof actual, "number", `a number at ${path}`);
  return Math.abs(actual - expected);
}

function close(actual, expected, what) {
  const diff = maxDiff(actual, expected, what);
  assert.ok(diff <= TOLERANCE, `${what}: max |JS - PyTorch| = ${diff}`);
}

const folders = readdirSync(fixtures).filter((n) => statSync(join(fixtures, n)).isDirectory());

test("there is a fixture for every variant, GRU, RNN and each kind", () => {
  for (const v of ["V", "NP", "NIG", "NFG", "NOG", "NIAF", "NOAF", "CIFG", "FGR"]) {
    assert.ok(folders.includes(`lstm_${v}`), `lstm_${v}`);
  }
  for (const n of ["gru", "rnn_tanh", "rnn_relu_2layers_bidir", "model_sequence", "model_music",
    "model_lm_gru", "model_tagger", "model_classifier_attention"]) assert.ok(folders.includes(n), n);
});

for (const name of folders) {
  test(`${name}: outputs and trace equal PyTorch's`, async () => {
    const model = await load(join(fixtures, name, "manifest.json"));
    const expected = JSON.parse(readFileSync(join(fixtures, name, "expected.json"), "utf8"));
    const result = await model.run(expected.inputs, { trace: true });
    close(result.outputs, expected.outputs, "outputs");
    if (expected.logits) close(result.logits, expected.logits, "logits");
    if (expected.trace) {
      assert.equal(result.trace.length, expected.trace.length);
      expected.trace.forEach((entry, k) => {
        assert.deepEqual(Object.keys(result.trace[k]).sort(), Object.keys(entry).sort());
        for (const [dir, gates] of Object.entries(entry)) {
          assert.deepEqual(Object.keys(result.trace[k][dir]).sort(), Object.keys(gates).sort());
          for (const [gate, steps] of Object.entries(gates)) {
            close(result.trace[k][dir][gate], steps, `trace[${k}].${dir}.${gate}`);
          }
        }
      });
    }
    if (expected.text !== undefined) { // the text path: the runtime's encoding is Python's
      const ids = model.encode(expected.text);
      assert.deepEqual(ids, expected.inputs.words ?? expected.inputs);
      const fromText = await model.run(expected.text);
      close(fromText.outputs, expected.outputs, "outputs from text");
    }
  });
}

test("a language model stepped token by token gives run's logits, state carried", async () => {
  for (const name of ["model_lm_gru", "model_lm_lstm_FGR"]) {
    const model = await load(join(fixtures, name, "manifest.json"));
    const expected = JSON.parse(readFileSync(join(fixtures, name, "expected.json"), "utf8"));
    let state = null;
    expected.inputs.forEach((token, t) => {
      const r = model.step(token, state);
      state = r.state;
      close(r.logits, expected.outputs[t], `${name} step ${t}`);
    });
    assert.equal(model.decode(expected.inputs), expected.text);
  }
});

test("run continues from a given state", async () => {
  const model = await load(join(fixtures, "lstm_FGR_2layers_bidir", "manifest.json"));
  const uni = await load(join(fixtures, "lstm_CIFG+FGR", "manifest.json"));
  const expected = JSON.parse(readFileSync(join(fixtures, "lstm_CIFG+FGR", "expected.json")));
  const first = uni.runSync(expected.inputs.slice(0, 2));
  const rest = uni.runSync(expected.inputs.slice(2), { state: first.state });
  close([...first.outputs, ...rest.outputs], expected.outputs, "split run");
  assert.equal(model.layer.bidirectional, true);
});

test("classifier labels and tagger tags come with the probabilities", async () => {
  const clf = await load(join(fixtures, "model_classifier_attention", "manifest.json"));
  const r = await clf.run("the film was fine");
  assert.ok(["neg", "neutral", "pos"].includes(r.label));
  assert.ok(Math.abs(r.outputs.reduce((a, b) => a + b) - 1) < 1e-12);
  const tagger = await load(join(fixtures, "model_tagger", "manifest.json"));
  const t = await tagger.run("the film");
  assert.equal(t.tags.length, 2);
});

test("load reads a file: URL and fromBuffer takes bytes in hand", async () => {
  const dir = join(fixtures, "gru");
  const viaUrl = await load(pathToFileURL(join(dir, "manifest.json")));
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  const viaBytes = fromBuffer(manifest, new Uint8Array(readFileSync(join(dir, "weights.bin"))));
  const x = [[0.1, 0.2, 0.3]];
  assert.deepEqual(viaUrl.runSync(x).outputs, viaBytes.runSync(x).outputs);
});

function brokenCopy(change) {
  const src = join(fixtures, "lstm_V");
  const dir = mkdtempSync(join(tmpdir(), "lstmlab-js-"));
  const manifest = JSON.parse(readFileSync(join(src, "manifest.json"), "utf8"));
  let weights = readFileSync(join(src, "weights.bin"));
  weights = change(manifest, weights) ?? weights;
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  writeFileSync(join(dir, "weights.bin"), weights);
  return join(dir, "manifest.json");
}

test("a manifest whose sizes do not match the weights names the tensor", async () => {
  const short = brokenCopy((m, w) => w.subarray(0, w.length - 8));
  await assert.rejects(load(short), /tensor weight_co_l0 needs bytes .* has \d+ bytes/);
  const shape = brokenCopy((m) => { m.tensors.weight_hh_l0.shape = [4, 16]; });
  await assert.rejects(load(shape), /tensor weight_hh_l0 has shape \[4,16\].*needs \[16,4\]/);
  const length = brokenCopy((m) => { m.tensors.bias_ih_l0.length = 15; });
  await assert.rejects(load(length), /tensor bias_ih_l0: length 15 does not match/);
  const long = brokenCopy((m, w) => Buffer.concat([w, Buffer.alloc(4)]));
  await assert.rejects(load(long), /weights file weights.bin has \d+ bytes but .* end at byte/);
  const missing = brokenCopy((m) => { delete m.tensors.weight_ci_l0; });
  await assert.rejects(load(missing), /tensor weight_ci_l0 is missing from the manifest/);
  const version = brokenCopy((m) => { m.version = 99; });
  await assert.rejects(load(version), /format version 99/);
  await assert.rejects(load(join(tmpdir(), "no-such-export", "manifest.json")), /ENOENT/);
});

test("sample draws from softmax(logits / temperature), top-k kept", () => {
  let seed = 1;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const counts = [0, 0, 0];
  for (let k = 0; k < 3000; k++) counts[sample([0, Math.log(3), -50], { random })]++;
  assert.equal(counts[2], 0);
  assert.ok(counts[1] > 2 * counts[0] && counts[1] < 4 * counts[0], `${counts}`);
  assert.equal(sample([1, 5, 2], { topK: 1, random }), 1);
});

test("variantSpec gives lstmlab's switches for every variant name", async () => {
  const { variantSpec } = await import("../../src/lstmlab/export/js/lstmlab.js");
  let checked = 0;
  for (const name of folders.filter((n) => n.startsWith("lstm_"))) {
    const desc = JSON.parse(readFileSync(join(fixtures, name, "manifest.json"))).layers.recurrent;
    assert.deepEqual(variantSpec(desc.variant), desc.spec, desc.variant);
    checked++;
  }
  assert.ok(checked >= 13);
  assert.throws(() => variantSpec("XYZ"), /unknown LSTM variant "XYZ"/);
  assert.throws(() => variantSpec("CIFG+NIG"), /CIFG needs the input gate/);
});
