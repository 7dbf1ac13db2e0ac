/**
 * lstmlab.js - run a model exported by `lstmlab export web` (Python: lstmlab.export.web.to_web).
 *
 * A plain-JavaScript ES module: no dependencies, no build step; runs in browsers (fetch) and in
 * Node >= 18 (fs, imported dynamically so that a browser never touches a Node module). It
 * computes every LSTM variant of Greff et al. (read from the manifest's switches, never from a
 * variant's name), the GRU and the Elman RNN (tanh, relu): stacked, bidirectional, with an
 * LSTM projection, and traces every gate. Arithmetic is float64 on the float32 weights.
 *
 *   import { load } from "./lstmlab.js";
 *   const model = await load("out/manifest.json");        // a file path under Node, a URL in a browser
 *   const { outputs, trace, state } = await model.run(inputs, { trace: true });
 *
 * What `inputs` and `outputs` are, per kind (model.kind):
 *   "lstm" | "gru" | "rnn"   a bare layer: inputs T arrays of I numbers; outputs T arrays of D*Hy
 *                            numbers (the last layer's, directions concatenated forward first)
 *   "sequence"               inputs T arrays of I numbers; outputs T arrays of O numbers (the
 *                            linear read-out at every step)
 *   "music"                  inputs T frames of K keys (0/1); outputs T arrays of K probabilities
 *                            of the next frame's keys (sigmoid); result.logits too
 *   "language_model"         inputs token ids (or text, encoded with the vocabulary); outputs T
 *                            arrays of V logits of the next token
 *   "classifier"             inputs word ids, {words, chars}, or text; outputs the K class
 *                            probabilities; result.logits, result.label
 *   "tagger"                 inputs as the classifier; outputs T arrays of K tag probabilities;
 *                            result.logits, result.tags
 *
 * Options of run: {trace: true} adds result.trace; {state} starts from a previous result.state
 * (bare layers, sequence, music, language_model). The state is one entry per layer-direction
 * (index layer * D + direction): {h, c, gates} (c for an LSTM, gates for FGR) of Float64Arrays.
 *
 * trace[layer].forward (and trace[layer].reverse when bidirectional) maps a name to T arrays of
 * H numbers, aligned with the input steps: LSTM i, f, z, o, c, h (h is the output y; an absent
 * gate is its constant 1, CIFG's f is 1 - i), GRU r, z, n, h, RNN h - as lstmlab.layers.Trace.
 *
 * Language models step one token at a time, for generation:
 *   let { logits, state } = model.step(tokenId, null);     // null: the zero state
 *   const next = sample(logits, { temperature: 0.8, topK: 10, random: Math.random });
 *   ({ logits, state } = model.step(next, state));
 *   model.encode(text) -> ids, model.decode(ids) -> text   (text kinds)
 *
 * variantSpec("NFG+NP") gives a variant's switches; lstmGates(spec) its weight blocks.
 *
 * fromBuffer(manifest, arrayBuffer) builds the same model from a manifest object and the
 * weights' bytes already in hand. load() and fromBuffer() check the manifest against the
 * weights: each tensor's shape, length and byte range, and the file's size; an error names
 * the tensor.
 */

export const FORMAT = "lstmlab-web";
export const VERSION = 1;
export const KINDS = ["lstm", "gru", "rnn", "sequence", "language_model", "classifier",
  "tagger", "music"];

// --- reading -----------------------------------------------------------------------------------

const isNode = typeof process !== "undefined" && process.versions != null &&
  process.versions.node != null;

function isUrl(source) {
  return source instanceof URL || /^[a-z][a-z0-9+.-]*:\/\//i.test(String(source));
}

/** Read a file (Node path or file: URL) or fetch a URL: {bytes: ArrayBuffer}. */
async function readBytes(source) {
  if (isNode && (!isUrl(source) || String(source).startsWith("file:"))) {
    const fs = await import("node:fs/promises");
    let path = source;
    if (String(source).startsWith("file:")) {
      const { fileURLToPath } = await import("node:url");
      path = fileURLToPath(source);
    }
    const data = await fs.readFile(path);
    return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  }
  const response = await fetch(source);
  if (!response.ok) throw new Error(`lstmlab.js: cannot fetch ${source}: HTTP ${response.status}`);
  return await response.arrayBuffer();
}

/** The location of `name` beside the manifest at `source` (a path or a URL). */
async function beside(source, name) {
  if (isNode && !isUrl(source)) {
    const path = await import("node:path");
    return path.join(path.dirname(String(source)), name);
  }
  const base = typeof location !== "undefined" ? location.href : undefined;
  return new URL(name, new URL(String(source), base)).href;
}

/**
 * Load an exported model: `source` is the manifest's file path (Node) or URL (browser, or Node
 * with http:/https:/file:). The weights file named in the manifest is read from beside it.
 */
export async function load(source) {
  const text = new TextDecoder().decode(await readBytes(source));
  let manifest;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new Error(`lstmlab.js: ${source} is not JSON (${error.message})`);
  }
  if (typeof manifest.weights !== "string" || manifest.weights.includes("/") ||
      manifest.weights.includes("\\")) {
    throw new Error(`lstmlab.js: ${source}: "weights" must name a file beside the manifest`);
  }
  const bytes = await readBytes(await beside(source, manifest.weights));
  return fromBuffer(manifest, bytes, String(source));
}

// --- the manifest and the tensors ----------------------------------------------------------------

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Float32Array of each tensor in the manifest's table, checked against the bytes; and the
 * byte where the last one ends. */
function readTensors(manifest, buffer, where) {
  const table = manifest.tensors;
  if (table == null || typeof table !== "object") {
    throw new Error(`lstmlab.js: ${where}: the manifest has no "tensors" table`);
  }
  const size = buffer.byteLength;
  const tensors = {};
  let end = 0;
  for (const [name, entry] of Object.entries(table)) {
    const { dtype, shape, offset, length } = entry;
    if (dtype !== "float32") {
      throw new Error(`lstmlab.js: tensor ${name}: dtype ${dtype}, expected float32`);
    }
    if (!Array.isArray(shape) || !shape.every((n) => Number.isInteger(n) && n >= 0)) {
      throw new Error(`lstmlab.js: tensor ${name}: shape ${JSON.stringify(shape)} is not a ` +
        "list of sizes");
    }
    const count = shape.reduce((a, b) => a * b, 1);
    if (length !== count) {
      throw new Error(`lstmlab.js: tensor ${name}: length ${length} does not match its shape ` +
        `[${shape}] (${count} numbers)`);
    }
    if (!Number.isInteger(offset) || offset < 0 || offset % 4 !== 0) {
      throw new Error(`lstmlab.js: tensor ${name}: byte offset ${offset} is not a multiple of 4`);
    }
    if (offset + 4 * length > size) {
      throw new Error(`lstmlab.js: tensor ${name} needs bytes ${offset}..${offset + 4 * length} ` +
        `but the weights file ${manifest.weights} has ${size} bytes`);
    }
    end = Math.max(end, offset + 4 * length);
    let data;
    if (littleEndian) {
      data = new Float32Array(buffer, offset, length);
    } else { // the file is little-endian: convert on a big-endian machine
      const view = new DataView(buffer, offset, 4 * length);
      data = new Float32Array(length);
      for (let k = 0; k < length; k++) data[k] = view.getFloat32(4 * k, true);
    }
    tensors[name] = { shape, data };
  }
  return { tensors, end };
}

/** The LSTM's weight blocks (a subset of i, f, z, o in that order) from its switches. */
export function lstmGates(spec) {
  const gates = [];
  if (spec.input_gate) gates.push("i");
  if (spec.forget_gate && !spec.coupled) gates.push("f");
  gates.push("z");
  if (spec.output_gate) gates.push("o");
  return gates;
}

const SWITCHES = ["input_gate", "forget_gate", "output_gate", "peepholes", "input_activation",
  "output_activation", "coupled", "gate_recurrence"];

// Greff's names of the switches, as lstmlab.cells._SWITCHES: a name flips one field of V.
const NAMED = {
  NIG: ["input_gate", false], NFG: ["forget_gate", false], NOG: ["output_gate", false],
  NP: ["peepholes", false], NIAF: ["input_activation", false],
  NOAF: ["output_activation", false], CIFG: ["coupled", true], FGR: ["gate_recurrence", true],
};

/** The LSTM switches of a variant name ("V", "NP", "CIFG", "NFG+NP", ...), as lstm_spec. */
export function variantSpec(name) {
  const spec = { input_gate: true, forget_gate: true, output_gate: true, peepholes: true,
    input_activation: true, output_activation: true, coupled: false, gate_recurrence: false };
  for (const part of String(name).toUpperCase().replace(/\s+/g, "").split("+")) {
    if (part === "V") continue;
    if (!(part in NAMED)) {
      throw new Error(`lstmlab.js: unknown LSTM variant ${JSON.stringify(part)}; valid names: ` +
        `V, ${Object.keys(NAMED).join(", ")} (combine with '+', e.g. NFG+NP)`);
    }
    spec[NAMED[part][0]] = NAMED[part][1];
  }
  if (spec.coupled && !spec.input_gate) throw new Error("lstmlab.js: CIFG needs the input gate");
  if (spec.coupled && !spec.forget_gate) throw new Error("lstmlab.js: CIFG cannot go with NFG");
  if (spec.gate_recurrence && lstmGates(spec).length === 1) {
    throw new Error("lstmlab.js: FGR needs at least one learned gate");
  }
  return spec;
}

/** The shape of every tensor a recurrent layer needs, by full name. */
function layerShapes(layer) {
  const { cell, input_size: I, hidden_size: H, num_layers: L, bias } = layer;
  const D = layer.bidirectional ? 2 : 1;
  const P = layer.proj_size || 0;
  const Hy = P > 0 ? P : H;
  let G = cell === "gru" ? 3 : 1;
  let sigmoid = [];
  if (cell === "lstm") {
    const gates = lstmGates(layer.spec);
    G = gates.length;
    sigmoid = gates.filter((g) => g !== "z");
  }
  const shapes = {};
  for (let k = 0; k < L; k++) {
    for (let d = 0; d < D; d++) {
      const s = `_l${k}${d ? "_reverse" : ""}`;
      const p = layer.prefix;
      shapes[`${p}weight_ih${s}`] = [G * H, k === 0 ? I : D * Hy];
      shapes[`${p}weight_hh${s}`] = [G * H, Hy];
      if (bias) {
        shapes[`${p}bias_ih${s}`] = [G * H];
        shapes[`${p}bias_hh${s}`] = [G * H];
      }
      if (cell === "lstm") {
        if (layer.spec.peepholes) for (const g of sigmoid) shapes[`${p}weight_c${g}${s}`] = [H];
        if (layer.spec.gate_recurrence) {
          shapes[`${p}weight_gates${s}`] = [sigmoid.length * H, sigmoid.length * H];
        }
        if (P > 0) shapes[`${p}weight_hr${s}`] = [P, H];
      }
    }
  }
  return shapes;
}

function checkLayer(layer, name) {
  if (layer == null || typeof layer !== "object") {
    throw new Error(`lstmlab.js: the manifest lacks the layer "${name}"`);
  }
  if (!["lstm", "gru", "rnn"].includes(layer.cell)) {
    throw new Error(`lstmlab.js: layer ${name}: cell ${JSON.stringify(layer.cell)}, expected ` +
      "lstm, gru or rnn");
  }
  for (const key of ["input_size", "hidden_size", "num_layers"]) {
    if (!Number.isInteger(layer[key]) || layer[key] < 1) {
      throw new Error(`lstmlab.js: layer ${name}: ${key} must be a positive integer`);
    }
  }
  if (layer.cell === "lstm") {
    for (const s of SWITCHES) {
      if (typeof layer.spec?.[s] !== "boolean") {
        throw new Error(`lstmlab.js: layer ${name}: the LSTM switch spec.${s} is missing`);
      }
    }
  }
  if (layer.cell === "rnn" && !["tanh", "relu"].includes(layer.nonlinearity)) {
    throw new Error(`lstmlab.js: layer ${name}: nonlinearity must be tanh or relu`);
  }
}

/** Every tensor the model's kind needs and its shape, from the manifest's configuration. */
function expectedShapes(manifest) {
  const { kind, config, layers } = manifest;
  const rec = layers.recurrent;
  const shapes = { ...layerShapes(rec) };
  const width = (rec.proj_size || rec.hidden_size) * (rec.bidirectional ? 2 : 1);
  const linear = (name, out, inp, bias = true) => {
    shapes[`${name}.weight`] = [out, inp];
    if (bias) shapes[`${name}.bias`] = [out];
  };
  if (kind === "sequence") linear("head", config.output_size, width);
  if (kind === "music") linear("head", config.keys, width);
  if (kind === "language_model") {
    shapes["embedding.weight"] = [config.vocab_size, config.embedding_size];
    linear("decoder", config.vocab_size, width);
  }
  if (kind === "classifier" || kind === "tagger") {
    shapes["words.embedding.weight"] = [config.vocab_size, config.embedding_size];
    if (config.char_vocab_size) {
      shapes["words.char_embedding.weight"] = [config.char_vocab_size,
        config.char_embedding_size];
      Object.assign(shapes, layerShapes(layers.char_layer));
    }
    if (kind === "classifier" && config.pooling === "attention") {
      linear("attention.0", width, width);
      linear("attention.2", 1, width, false);
    }
    linear("head", kind === "classifier" ? config.num_classes : config.num_tags, width);
  }
  return shapes;
}

/**
 * The model of `manifest` (an object, as manifest.json holds) with its weights `buffer` (an
 * ArrayBuffer of little-endian float32). `where` names the source in error messages.
 */
export function fromBuffer(manifest, buffer, where = "manifest") {
  if (manifest == null || manifest.format !== FORMAT) {
    throw new Error(`lstmlab.js: ${where} is not an lstmlab web export (format ` +
      `${JSON.stringify(manifest?.format)}, expected "${FORMAT}")`);
  }
  if (manifest.version !== VERSION) {
    throw new Error(`lstmlab.js: ${where}: format version ${manifest.version}; this runtime ` +
      `reads version ${VERSION}`);
  }
  if (!KINDS.includes(manifest.kind)) {
    throw new Error(`lstmlab.js: ${where}: unknown kind ${JSON.stringify(manifest.kind)} ` +
      `(known: ${KINDS.join(", ")})`);
  }
  if (buffer instanceof Uint8Array) {
    buffer = buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
  }
  const layers = manifest.layers || {};
  checkLayer(layers.recurrent, "recurrent");
  if (layers.char_layer) checkLayer(layers.char_layer, "char_layer");
  const { tensors, end } = readTensors(manifest, buffer, where);
  for (const [name, shape] of Object.entries(expectedShapes(manifest))) {
    const t = tensors[name];
    if (t == null) throw new Error(`lstmlab.js: tensor ${name} is missing from the manifest`);
    if (t.shape.length !== shape.length || t.shape.some((n, k) => n !== shape[k])) {
      throw new Error(`lstmlab.js: tensor ${name} has shape [${t.shape}] in the manifest; the ` +
        `model's configuration needs [${shape}]`);
    }
  }
  if (end !== buffer.byteLength) {
    throw new Error(`lstmlab.js: the weights file ${manifest.weights} has ${buffer.byteLength} ` +
      `bytes but the manifest's tensors end at byte ${end}`);
  }
  return new Model(manifest, tensors);
}

// --- arithmetic ----------------------------------------------------------------------------------

function sigmoid(x) {
  return 1 / (1 + Math.exp(-x));
}

/**
 * out += W x (+ b): W (rows, cols) row-major, x (cols). Four running sums per row: one sum
 * waits on the latency of every addition before it, four keep the processor's adders busy.
 */
function addMatVec(out, W, rows, cols, x, b) {
  const tail = cols - (cols % 4);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let c = 0; c < tail; c += 4) {
      s0 += W[base + c] * x[c];
      s1 += W[base + c + 1] * x[c + 1];
      s2 += W[base + c + 2] * x[c + 2];
      s3 += W[base + c + 3] * x[c + 3];
    }
    for (let c = tail; c < cols; c++) s0 += W[base + c] * x[c];
    out[r] += (b ? b[r] : 0) + ((s0 + s1) + (s2 + s3));
  }
  return out;
}

/**
 * out += W_ih x + b_ih, the input's part of a step. An input may carry that part already
 * (x.projection, `rows` numbers): a language model's first layer sees one of V embeddings, so
 * step() computes each token's projection once and reuses it.
 */
function addInput(out, w, rows, x) {
  if (x.projection) {
    for (let r = 0; r < rows; r++) out[r] += x.projection[r];
    return out;
  }
  return addMatVec(out, w.weight_ih, rows, x.length, x, w.bias_ih);
}

/** A linear layer {weight, bias} applied to x: a new Float64Array. */
function applyLinear(lin, x) {
  const [rows, cols] = lin.weight.shape;
  return addMatVec(new Float64Array(rows), lin.weight.data, rows, cols, x, lin.bias?.data);
}

function softmax(logits) {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const out = new Float64Array(logits.length);
  let total = 0;
  for (let k = 0; k < logits.length; k++) total += (out[k] = Math.exp(logits[k] - max));
  for (let k = 0; k < logits.length; k++) out[k] /= total;
  return out;
}

const plain = (v) => Array.from(v);

// --- one direction of one layer ------------------------------------------------------------------

/** One layer-direction's weights by short name (weight_ih, ...), Float32Arrays or undefined. */
function directionWeights(tensors, layer, k, reverse) {
  const s = `_l${k}${reverse ? "_reverse" : ""}`;
  const get = (name) => tensors[`${layer.prefix}${name}${s}`]?.data;
  return {
    weight_ih: get("weight_ih"), weight_hh: get("weight_hh"), bias_ih: get("bias_ih"),
    bias_hh: get("bias_hh"), weight_ci: get("weight_ci"), weight_cf: get("weight_cf"),
    weight_co: get("weight_co"), weight_gates: get("weight_gates"), weight_hr: get("weight_hr"),
  };
}

/**
 * An LSTM direction over xs (T Float64Arrays of I), from `init` ({h, c, gates} or null).
 * Returns {outputs: T arrays of Hy, state, records} (records: name -> T arrays, when asked).
 */
function runLSTM(layer, w, xs, reverse, init, record) {
  const spec = layer.spec;
  const H = layer.hidden_size;
  const P = layer.proj_size || 0;
  const Hy = P > 0 ? P : H;
  const gates = lstmGates(spec);
  const G = gates.length;
  const sig = gates.filter((g) => g !== "z");
  const S = sig.length;
  const at = Object.fromEntries(gates.map((g, n) => [g, n * H])); // block offsets
  const peep = { i: w.weight_ci, f: w.weight_cf, o: w.weight_co };
  const usePeep = (g) => spec.peepholes && sig.includes(g);
  const g = spec.input_activation ? Math.tanh : (x) => x;
  const h = spec.output_activation ? Math.tanh : (x) => x;

  let y = init?.h ? Float64Array.from(init.h) : new Float64Array(Hy);
  let c = init?.c ? Float64Array.from(init.c) : new Float64Array(H);
  let hist = spec.gate_recurrence
    ? (init?.gates ? Float64Array.from(init.gates) : new Float64Array(S * H)) : null;
  const T = xs.length;
  const outputs = new Array(T);
  const rec = record ? { i: [], f: [], z: [], o: [], c: [], h: [] } : null;
  const pre = new Float64Array(G * H);
  for (let n = 0; n < T; n++) {
    const t = reverse ? T - 1 - n : n;
    pre.fill(0);
    addInput(pre, w, G * H, xs[t]);
    addMatVec(pre, w.weight_hh, G * H, Hy, y, w.bias_hh);
    if (hist) { // FGR: the previous step's learned gates feed every learned gate
      const r = addMatVec(new Float64Array(S * H), w.weight_gates, S * H, S * H, hist);
      sig.forEach((name, j) => {
        for (let u = 0; u < H; u++) pre[at[name] + u] += r[j * H + u];
      });
    }
    const vi = new Float64Array(H), vf = new Float64Array(H), vz = new Float64Array(H);
    const vo = new Float64Array(H), vc = new Float64Array(H), hy = new Float64Array(H);
    for (let u = 0; u < H; u++) {
      const cp = c[u];
      const z = g(pre[at.z + u]);
      const i = spec.input_gate
        ? sigmoid(pre[at.i + u] + (usePeep("i") ? peep.i[u] * cp : 0)) : 1;
      let f = 1;
      if (spec.coupled) f = 1 - i;
      else if (spec.forget_gate) f = sigmoid(pre[at.f + u] + (usePeep("f") ? peep.f[u] * cp : 0));
      const cn = z * i + cp * f;
      const o = spec.output_gate
        ? sigmoid(pre[at.o + u] + (usePeep("o") ? peep.o[u] * cn : 0)) : 1;
      vi[u] = i; vf[u] = f; vz[u] = z; vo[u] = o; vc[u] = cn;
      hy[u] = h(cn) * o;
    }
    y = P > 0 ? addMatVec(new Float64Array(P), w.weight_hr, P, H, hy) : hy;
    c = vc;
    if (hist) {
      const act = { i: vi, f: vf, o: vo };
      hist = new Float64Array(S * H);
      sig.forEach((name, j) => hist.set(act[name], j * H));
    }
    outputs[t] = y;
    if (rec) {
      rec.i[t] = vi; rec.f[t] = vf; rec.z[t] = vz; rec.o[t] = vo; rec.c[t] = vc; rec.h[t] = y;
    }
  }
  const state = { h: y, c };
  if (hist) state.gates = hist;
  return { outputs, state, records: rec };
}

/** A GRU direction (torch.nn.GRU's equations, blocks r, z, n). */
function runGRU(layer, w, xs, reverse, init, record) {
  const H = layer.hidden_size;
  let hPrev = init?.h ? Float64Array.from(init.h) : new Float64Array(H);
  const T = xs.length;
  const outputs = new Array(T);
  const rec = record ? { r: [], z: [], n: [], h: [] } : null;
  for (let k = 0; k < T; k++) {
    const t = reverse ? T - 1 - k : k;
    const wx = addInput(new Float64Array(3 * H), w, 3 * H, xs[t]);
    const wh = addMatVec(new Float64Array(3 * H), w.weight_hh, 3 * H, H, hPrev, w.bias_hh);
    const r = new Float64Array(H), z = new Float64Array(H), n = new Float64Array(H);
    const hNew = new Float64Array(H);
    for (let u = 0; u < H; u++) {
      r[u] = sigmoid(wx[u] + wh[u]);
      z[u] = sigmoid(wx[H + u] + wh[H + u]);
      n[u] = Math.tanh(wx[2 * H + u] + r[u] * wh[2 * H + u]);
      hNew[u] = (1 - z[u]) * n[u] + z[u] * hPrev[u];
    }
    hPrev = hNew;
    outputs[t] = hNew;
    if (rec) { rec.r[t] = r; rec.z[t] = z; rec.n[t] = n; rec.h[t] = hNew; }
  }
  return { outputs, state: { h: hPrev }, records: rec };
}

/** An Elman RNN direction: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh). */
function runRNN(layer, w, xs, reverse, init, record) {
  const H = layer.hidden_size;
  const act = layer.nonlinearity === "relu" ? (x) => Math.max(0, x) : Math.tanh;
  let hPrev = init?.h ? Float64Array.from(init.h) : new Float64Array(H);
  const T = xs.length;
  const outputs = new Array(T);
  const rec = record ? { h: [] } : null;
  for (let k = 0; k < T; k++) {
    const t = reverse ? T - 1 - k : k;
    const a = addInput(new Float64Array(H), w, H, xs[t]);
    addMatVec(a, w.weight_hh, H, H, hPrev, w.bias_hh);
    for (let u = 0; u < H; u++) a[u] = act(a[u]);
    hPrev = a;
    outputs[t] = a;
    if (rec) rec.h[t] = a;
  }
  return { outputs, state: { h: hPrev }, records: rec };
}

const DIRECTION = { lstm: runLSTM, gru: runGRU, rnn: runRNN };

/**
 * A whole recurrent layer (every stacked layer, both directions) over xs, T Float64Arrays of I.
 * Returns {outputs: T Float64Arrays of D*Hy, state: per layer-direction, trace (or null)}.
 */
export function runLayer(layer, tensors, xs, { trace = false, state = null } = {}) {
  const D = layer.bidirectional ? 2 : 1;
  const run = DIRECTION[layer.cell];
  const finals = [];
  const traced = trace ? [] : null;
  let input = xs;
  for (let k = 0; k < layer.num_layers; k++) {
    const outs = [];
    const entry = {};
    for (let d = 0; d < D; d++) {
      const w = directionWeights(tensors, layer, k, d === 1);
      const r = run(layer, w, input, d === 1, state ? state[k * D + d] : null, trace);
      outs.push(r.outputs);
      finals.push(r.state);
      if (trace) entry[d ? "reverse" : "forward"] = r.records;
    }
    if (trace) traced.push(entry);
    input = D === 1 ? outs[0] : outs[0].map((f, t) => {
      const both = new Float64Array(f.length + outs[1][t].length);
      both.set(f);
      both.set(outs[1][t], f.length);
      return both;
    });
  }
  return { outputs: input, state: finals, trace: traced };
}

/** A trace with plain arrays: trace[layer].forward[name][t] -> H numbers. */
function plainTrace(trace) {
  if (!trace) return undefined;
  return trace.map((entry) => Object.fromEntries(Object.entries(entry).map(([dir, recs]) => [
    dir, Object.fromEntries(Object.entries(recs).map(([name, steps]) => [name, steps.map(plain)])),
  ])));
}

// --- vocabularies ------------------------------------------------------------------------------

const UNK = "<unk>";
const EOS = "<eos>";

function indexOf(symbols) {
  const index = new Map();
  symbols.forEach((s, k) => index.set(s, k));
  return index;
}

function lookup(index, tokens, what) {
  const unk = index.get(UNK);
  return tokens.map((t) => {
    const id = index.get(t);
    if (id !== undefined) return id;
    if (unk !== undefined) return unk;
    throw new Error(`lstmlab.js: the ${what} ${JSON.stringify(t)} is not in the vocabulary, ` +
      `which has no ${UNK}`);
  });
}

/** Whitespace-separated words as one symbol each (lstmlab.tasks.words.clean_token). */
function splitWords(text) {
  return text.split(/\s+/u).filter((w) => w.length > 0);
}

// --- models --------------------------------------------------------------------------------------

function toRows(inputs, width, what) {
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw new Error(`lstmlab.js: ${what} must be a non-empty array of steps, each ${width} numbers`);
  }
  return inputs.map((row, t) => {
    if (row == null || row.length !== width) {
      throw new Error(`lstmlab.js: ${what}: step ${t} has ${row?.length} numbers, expected ${width}`);
    }
    return Float64Array.from(row);
  });
}

/** A loaded model; see the module's comment for run, step, encode and decode. */
export class Model {
  constructor(manifest, tensors) {
    this.manifest = manifest;
    this.kind = manifest.kind;
    this.config = manifest.config || {};
    this.layer = manifest.layers.recurrent;
    this.vocabulary = manifest.vocabulary ?? null;
    this.labels = manifest.labels ?? null;
    this.tensors = tensors;
    const lin = (name) => tensors[`${name}.weight`]
      ? { weight: tensors[`${name}.weight`], bias: tensors[`${name}.bias`] } : null;
    this.head = lin("head");
    this.decoder = lin("decoder");
    if (this.kind === "language_model" && this.vocabulary) {
      this._index = indexOf(this.vocabulary.symbols);
    }
    if ((this.kind === "classifier" || this.kind === "tagger") && this.vocabulary) {
      this._words = indexOf(this.vocabulary.words.symbols);
      this._chars = this.vocabulary.chars ? indexOf(this.vocabulary.chars.symbols) : null;
    }
  }

  /** Token ids of `text` with the model's vocabulary (language model, classifier, tagger). */
  encode(text) {
    if (this.kind === "language_model") {
      const v = this.vocabulary;
      if (!v) throw new Error("lstmlab.js: this export has no vocabulary");
      const tokens = v.level === "char" ? Array.from(text)
        : splitWords(text.replace(/\n/g, ` ${EOS} `));
      return lookup(this._index, tokens, v.level === "char" ? "character" : "word");
    }
    if (this.kind === "classifier" || this.kind === "tagger") {
      if (!this.vocabulary) throw new Error("lstmlab.js: this export has no vocabulary");
      return this._encodeWords(splitWords(text)).words;
    }
    throw new Error(`lstmlab.js: a ${this.kind} model reads numbers, not text`);
  }

  /** The text of token ids (language model: characters joined, words spaced, <eos> a line
   * break; classifier and tagger: the words spaced). */
  decode(ids) {
    const symbols = this.kind === "language_model" ? this.vocabulary?.symbols
      : this.vocabulary?.words?.symbols;
    if (!symbols) throw new Error(`lstmlab.js: a ${this.kind} model has no vocabulary to decode`);
    const words = ids.map((id) => {
      if (!Number.isInteger(id) || id < 0 || id >= symbols.length) {
        throw new Error(`lstmlab.js: token id ${id} is out of range [0, ${symbols.length})`);
      }
      return symbols[id];
    });
    if (this.kind === "language_model" && this.vocabulary.level === "char") return words.join("");
    let text = "";
    for (const w of words) {
      if (w === EOS) text += "\n";
      else text += (text && !text.endsWith("\n") ? " " : "") + w;
    }
    return text;
  }

  _encodeWords(tokens) {
    if (tokens.length === 0) throw new Error("lstmlab.js: a text needs at least one word");
    const cleaned = tokens.map((t) => this.vocabulary.lowercase ? t.toLowerCase() : t);
    const words = lookup(this._words, cleaned, "word");
    const chars = this._chars ? tokens.map((t) => lookup(this._chars, Array.from(t),
      "character")) : null;
    return { words, chars };
  }

  _ids(ids, size, what) {
    if (!Array.isArray(ids) || ids.length === 0) {
      throw new Error(`lstmlab.js: ${what} must be a non-empty array of token ids or a text`);
    }
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= size) {
        throw new Error(`lstmlab.js: token id ${id} is out of range [0, ${size})`);
      }
    }
    return ids;
  }

  /** Run the model over one sequence; see the module's comment. Returns a promise (so that a
   * later runtime may compute elsewhere) of {outputs, trace?, state, ...}. */
  async run(inputs, options = {}) {
    return this.runSync(inputs, options);
  }

  /** `run` without the promise. */
  runSync(inputs, { trace = false, state = null } = {}) {
    const layer = this.layer;
    const opts = { trace, state };
    const c = this.config;
    switch (this.kind) {
      case "lstm": case "gru": case "rnn": {
        const r = runLayer(layer, this.tensors, toRows(inputs, layer.input_size, "inputs"), opts);
        return { outputs: r.outputs.map(plain), state: r.state, trace: plainTrace(r.trace) };
      }
      case "sequence": case "music": {
        const r = runLayer(layer, this.tensors, toRows(inputs, layer.input_size, "inputs"), opts);
        const logits = r.outputs.map((y) => applyLinear(this.head, y));
        if (this.kind === "sequence") {
          return { outputs: logits.map(plain), state: r.state, trace: plainTrace(r.trace) };
        }
        return {
          outputs: logits.map((l) => Array.from(l, sigmoid)), logits: logits.map(plain),
          state: r.state, trace: plainTrace(r.trace),
        };
      }
      case "language_model": {
        const ids = typeof inputs === "string" ? this.encode(inputs)
          : this._ids(inputs, c.vocab_size, "inputs");
        const r = runLayer(layer, this.tensors, ids.map((id) => this._embed(id)), opts);
        return {
          outputs: r.outputs.map((y) => plain(applyLinear(this.decoder, y))), state: r.state,
          trace: plainTrace(r.trace),
        };
      }
      case "classifier": case "tagger":
        return this._runWords(inputs, trace);
      default:
        throw new Error(`lstmlab.js: unknown kind ${this.kind}`);
    }
  }

  _embed(id) {
    const E = this.config.embedding_size;
    return Float64Array.from(this.tensors["embedding.weight"].data.subarray(id * E, (id + 1) * E));
  }

  /** A token's embedding carrying its first-layer input projection (computed once a token). */
  _projected(token) {
    this._projections ??= new Map();
    let x = this._projections.get(token);
    if (!x) {
      x = this._embed(token);
      const w = directionWeights(this.tensors, this.layer, 0, false);
      const rows = this.tensors[`${this.layer.prefix}weight_ih_l0`].shape[0];
      x.projection = addMatVec(new Float64Array(rows), w.weight_ih, rows, x.length, x, w.bias_ih);
      this._projections.set(token, x);
    }
    return x;
  }

  /**
   * One token of a language model: {logits (V numbers), state}; `state` null for the zero
   * state, else the previous step's (or run's) state. Stepping a sequence gives run's outputs.
   */
  step(token, state = null) {
    if (this.kind !== "language_model") {
      throw new Error(`lstmlab.js: step() is for language models; this is a ${this.kind}`);
    }
    if (this.layer.bidirectional) {
      throw new Error("lstmlab.js: a bidirectional layer cannot run one token at a time");
    }
    this._ids([token], this.config.vocab_size, "token");
    const r = runLayer(this.layer, this.tensors, [this._projected(token)], { state });
    return { logits: plain(applyLinear(this.decoder, r.outputs[0])), state: r.state };
  }

  _runWords(inputs, trace) {
    const c = this.config;
    let enc;
    if (typeof inputs === "string") enc = this._encodeWords(splitWords(inputs));
    else if (Array.isArray(inputs)) enc = { words: inputs, chars: null };
    else enc = { words: inputs?.words, chars: inputs?.chars ?? null };
    const words = this._ids(enc.words, c.vocab_size, "words");
    if (c.char_vocab_size && (!Array.isArray(enc.chars) || enc.chars.length !== words.length)) {
      throw new Error("lstmlab.js: this model reads characters: give {words, chars} with one " +
        "array of character ids per word, or a text");
    }
    const E = c.embedding_size;
    const table = this.tensors["words.embedding.weight"].data;
    const xs = words.map((id, t) => {
      const x = Array.from(table.subarray(id * E, (id + 1) * E));
      if (c.char_vocab_size) x.push(...this._spell(enc.chars[t]));
      return Float64Array.from(x);
    });
    const r = runLayer(this.layer, this.tensors, xs, { trace });
    if (this.kind === "tagger") {
      const logits = r.outputs.map((y) => applyLinear(this.head, y));
      const probabilities = logits.map((l) => plain(softmax(l)));
      const tags = this.labels ? probabilities.map((p) => this.labels[argmax(p)]) : undefined;
      return { outputs: probabilities, logits: logits.map(plain), tags,
        trace: plainTrace(r.trace) };
    }
    const logits = applyLinear(this.head, this._pool(r));
    const probabilities = plain(softmax(logits));
    return {
      outputs: probabilities, logits: plain(logits),
      label: this.labels ? this.labels[argmax(probabilities)] : undefined,
      trace: plainTrace(r.trace),
    };
  }

  /** A word's character features: the final states of the bidirectional character layer. */
  _spell(chars) {
    const layer = this.manifest.layers.char_layer;
    const C = layer.hidden_size;
    if (!chars || chars.length === 0) return new Array(2 * C).fill(0);
    this._ids(chars, this.config.char_vocab_size, "chars");
    const Ec = this.config.char_embedding_size;
    const table = this.tensors["words.char_embedding.weight"].data;
    const xs = chars.map((id) => Float64Array.from(table.subarray(id * Ec, (id + 1) * Ec)));
    const r = runLayer(layer, this.tensors, xs);
    return [...r.state[0].h, ...r.state[1].h];
  }

  /** The classifier's pooling of the outputs over the steps (last, max, mean, attention). */
  _pool(r) {
    const outs = r.outputs;
    const T = outs.length;
    const width = outs[0].length;
    const pooled = new Float64Array(width);
    const how = this.config.pooling;
    if (how === "last") { // the last layer's final state of each direction
      const D = this.layer.bidirectional ? 2 : 1;
      const finals = r.state.slice(-D).map((s) => s.h);
      let k = 0;
      for (const h of finals) { pooled.set(h, k); k += h.length; }
    } else if (how === "max") {
      pooled.fill(-Infinity);
      for (const o of outs) for (let u = 0; u < width; u++) pooled[u] = Math.max(pooled[u], o[u]);
    } else if (how === "mean") {
      for (const o of outs) for (let u = 0; u < width; u++) pooled[u] += o[u] / T;
    } else if (how === "attention") {
      const hidden = { weight: this.tensors["attention.0.weight"],
        bias: this.tensors["attention.0.bias"] };
      const v = this.tensors["attention.2.weight"].data;
      const scores = outs.map((o) => {
        const a = applyLinear(hidden, o);
        let s = 0;
        for (let u = 0; u < a.length; u++) s += v[u] * Math.tanh(a[u]);
        return s;
      });
      const weights = softmax(scores);
      outs.forEach((o, t) => { for (let u = 0; u < width; u++) pooled[u] += weights[t] * o[u]; });
    } else {
      throw new Error(`lstmlab.js: unknown pooling ${JSON.stringify(how)}`);
    }
    return pooled;
  }
}

function argmax(values) {
  let best = 0;
  for (let k = 1; k < values.length; k++) if (values[k] > values[best]) best = k;
  return best;
}

/**
 * Draw a token id from logits: softmax(logits / temperature), kept to the topK most likely when
 * given. `random` returns numbers in [0, 1) (default Math.random; pass a seeded one to repeat).
 */
export function sample(logits, { temperature = 1, topK = null, random = Math.random } = {}) {
  if (!(temperature > 0)) throw new Error("lstmlab.js: temperature must be positive");
  let ids = logits.map((_, k) => k);
  if (topK != null) {
    if (!(Number.isInteger(topK) && topK >= 1)) {
      throw new Error("lstmlab.js: topK must be a positive integer");
    }
    ids = ids.sort((a, b) => logits[b] - logits[a]).slice(0, topK);
  }
  const p = softmax(ids.map((k) => logits[k] / temperature));
  let u = random();
  for (let k = 0; k < ids.length; k++) {
    u -= p[k];
    if (u < 0) return ids[k];
  }
  return ids[ids.length - 1];
}
