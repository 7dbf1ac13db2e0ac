/**
 * train.js - train a small recurrent network in plain JavaScript: backpropagation through time
 * for an LSTM (any variant, by its switches), a GRU or an Elman RNN with a sigmoid or softmax
 * read-out, Adam or SGD with momentum, and the distracted sequence recall task (Synaptic's
 * Trainer.DSR). No DOM and no Node API: it runs in a Web Worker (`new Worker(url, {type:
 * "module"})`), a page or Node >= 18. Arithmetic is float64.
 *
 *   import { createTrainer, dsr, createRng } from "./train.js";
 *   const trainer = createTrainer({ cell: "lstm", variant: "NP", hidden: 8, seed: 1 });
 *   const { loss, success, sequences } = trainer.trainBatch();      // one update of `batch`
 *   trainer.evaluate(1000)        // success on fresh sequences, no training
 *   dsr.sample(createRng(1), dsr.DEMO) -> {symbols, inputs, targets}
 *
 * Options of createTrainer (defaults in TRAINER_DEFAULTS): cell "lstm" | "gru" | "rnn" |
 * "rnn:relu"; variant (an LSTM variant name or switches object); hidden; seed; task (a DSR
 * setting, default dsr.DEMO: Synaptic's demo); optimizer "adam" | "sgd"; lr; momentum (sgd);
 * batch (sequences per update); clip (global gradient norm, 0 for none); window (sequences
 * in the success rate); readout "sigmoid" | "softmax".
 *
 * Success, as Synaptic measures it: a sequence is correct when every output unit at every step
 * rounds to its target (Math.round of the sigmoid); success is the fraction of correct sequences
 * among the last `window` (1000) trained, each judged on the network's output before the
 * update that it takes part in. Synaptic stops at 0.95.
 *
 * The network's parameters use lstmlab's names (a SequenceModel's: recurrent.weight_ih_l0 ...,
 * head.weight, head.bias) so that PyTorch's gradients compare directly (tests/js/train.test.mjs).
 */

import { lstmGates, variantSpec } from "./lstmlab.js";

// --- random numbers ----------------------------------------------------------------------------

/** A seeded generator of numbers in [0, 1) (mulberry32): the same seed, the same run. */
export function createRng(seed = 1) {
  let a = (seed >>> 0) || 0x9e3779b9;
  return function random() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// --- the distracted sequence recall task -------------------------------------------------------

/**
 * Distracted sequence recall (Monner & Reggia; Synaptic's Trainer.DSR). A sequence of `length`
 * symbols: length - P distractors drawn at random, P of them replaced by targets at distinct
 * random positions, then the P prompts. At prompt k the network must output (one unit per
 * target symbol) the k-th target in order of position; at every other step, all zeros. Inputs
 * are one-hot over all symbols, whose ids are the numbers in targets, distractors and prompts.
 * Synaptic's task (SYNAPTIC) and the setting of its web demo (DEMO: 6 symbols, length 10).
 * Positions are ordered by number (Synaptic's Array.sort orders them as text, which differs
 * from numeric order only for lengths above 11).
 */
export const dsr = {
  SYNAPTIC: Object.freeze({ targets: [2, 4, 7, 8], distractors: [3, 5, 6, 9], prompts: [0, 1],
    length: 24 }),
  DEMO: Object.freeze({ targets: [2, 4], distractors: [3, 5], prompts: [0, 1], length: 10 }),

  /** Symbols in the task (the input width). */
  symbols(task) {
    return task.targets.length + task.distractors.length + task.prompts.length;
  },

  /** One sequence: {symbols (T ids), inputs (T one-hot arrays), targets (T arrays of K)}. */
  sample(random, task = dsr.DEMO) {
    const { targets, distractors, prompts, length } = task;
    const body = length - prompts.length;
    if (!(body >= prompts.length)) throw new Error("dsr: length too short for the prompts");
    const symbols = [];
    for (let t = 0; t < body; t++) symbols.push(distractors[Math.floor(random() * distractors.length)]);
    const which = [];
    const positions = [];
    for (let k = 0; k < prompts.length; k++) {
      which.push(Math.floor(random() * targets.length));
      let p;
      do p = Math.floor(random() * body); while (positions.includes(p));
      positions.push(p);
    }
    positions.sort((a, b) => a - b);
    for (let k = 0; k < prompts.length; k++) {
      symbols[positions[k]] = targets[which[k]];
      symbols.push(prompts[k]);
    }
    const width = dsr.symbols(task);
    const inputs = symbols.map((s) => {
      const x = new Float64Array(width);
      x[s] = 1;
      return x;
    });
    const outs = symbols.map((_, t) => {
      const y = new Float64Array(targets.length);
      if (t >= body) y[which[t - body]] = 1;
      return y;
    });
    return { symbols, inputs, targets: outs };
  },

  /** Synaptic's test of one sequence: every unit at every step rounds to its target. */
  correct(predictions, targets) {
    return predictions.every((p, t) => p.every((v, k) => (v >= 0.5 ? 1 : 0) === targets[t][k]));
  },
};

// --- the network -------------------------------------------------------------------------------

function parseCell(cell, variant) {
  const [kind, option] = String(cell).toLowerCase().split(":");
  if (kind === "lstm") {
    const spec = typeof variant === "object" && variant !== null ? { ...variant }
      : variantSpec(option ?? variant ?? "NP");
    return { kind, spec };
  }
  if (kind === "gru") return { kind };
  if (kind === "rnn") {
    const nonlinearity = option ?? "tanh";
    if (!["tanh", "relu"].includes(nonlinearity)) {
      throw new Error(`train.js: rnn takes tanh or relu, got ${nonlinearity}`);
    }
    return { kind, nonlinearity };
  }
  throw new Error(`train.js: unknown cell ${JSON.stringify(cell)}; choose lstm, gru or rnn`);
}

/** Names and shapes of the parameters (lstmlab's SequenceModel with one layer). */
function parameterShapes(net) {
  const { I, H, O } = net;
  const G = net.kind === "lstm" ? net.gates.length : net.kind === "gru" ? 3 : 1;
  const shapes = {
    "recurrent.weight_ih_l0": [G * H, I], "recurrent.weight_hh_l0": [G * H, H],
    "recurrent.bias_ih_l0": [G * H], "recurrent.bias_hh_l0": [G * H],
  };
  if (net.kind === "lstm") {
    if (net.spec.peepholes) for (const g of net.sig) shapes[`recurrent.weight_c${g}_l0`] = [H];
    if (net.spec.gate_recurrence) {
      const S = net.sig.length * H;
      shapes["recurrent.weight_gates_l0"] = [S, S];
    }
  }
  shapes["head.weight"] = [O, H];
  shapes["head.bias"] = [O];
  return shapes;
}

/**
 * A one-layer network: {kind, spec, I, H, O, params: name -> Float64Array, shapes}. Weights
 * start uniform in [-1/sqrt(H), 1/sqrt(H)] (torch.nn's), the forget-gate bias at +1
 * (lstmlab's default).
 */
export function createNetwork({ cell = "lstm", variant = "NP", inputs, hidden, outputs,
  seed = 1, readout = "sigmoid" }) {
  const net = { ...parseCell(cell, variant), I: inputs, H: hidden, O: outputs, readout };
  if (!["sigmoid", "softmax"].includes(readout)) {
    throw new Error(`train.js: readout must be sigmoid or softmax, got ${readout}`);
  }
  if (net.kind === "lstm") {
    net.gates = lstmGates(net.spec);
    net.sig = net.gates.filter((g) => g !== "z");
    net.at = {}; // each block's offset in the pre-activations
    net.gates.forEach((g, n) => { net.at[g] = n * hidden; });
  }
  net.shapes = parameterShapes(net);
  net.params = {};
  const random = createRng(seed);
  const bound = 1 / Math.sqrt(hidden);
  for (const [name, shape] of Object.entries(net.shapes)) {
    const p = new Float64Array(shape.reduce((a, b) => a * b, 1));
    for (let k = 0; k < p.length; k++) p[k] = (2 * random() - 1) * bound;
    net.params[name] = p;
  }
  if (net.kind === "lstm" && net.gates.includes("f")) {
    const f = net.gates.indexOf("f");
    const b = net.params["recurrent.bias_ih_l0"];
    for (let u = 0; u < hidden; u++) b[f * hidden + u] += 1;
  }
  return net;
}

/** Set parameters from nested arrays by name (e.g. PyTorch's, from a fixture). */
export function setParameters(net, values) {
  for (const [name, value] of Object.entries(values)) {
    if (!(name in net.params)) throw new Error(`train.js: the network has no parameter ${name}`);
    const flat = [value].flat(Infinity);
    if (flat.length !== net.params[name].length) {
      throw new Error(`train.js: ${name} has ${net.params[name].length} numbers, got ${flat.length}`);
    }
    net.params[name].set(flat);
  }
}

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

function matVec(W, rows, cols, x, out, b) { // out = W x (+ b)
  for (let r = 0; r < rows; r++) {
    let s = b ? b[r] : 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) s += W[base + c] * x[c];
    out[r] = s;
  }
  return out;
}

function addMatVec(W, rows, cols, x, out, b) { // out += W x (+ b)
  for (let r = 0; r < rows; r++) {
    let s = b ? b[r] : 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) s += W[base + c] * x[c];
    out[r] += s;
  }
}

function addMatTVec(W, rows, cols, d, out) { // out += W^T d
  for (let r = 0; r < rows; r++) {
    const v = d[r];
    if (v === 0) continue;
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c] += W[base + c] * v;
  }
}

function addOuter(G, rows, cols, d, x) { // G += d x^T
  for (let r = 0; r < rows; r++) {
    const v = d[r];
    if (v === 0) continue;
    const base = r * cols;
    for (let c = 0; c < cols; c++) G[base + c] += v * x[c];
  }
}

// --- forward -----------------------------------------------------------------------------------

/** Forward pass over xs (T Float64Arrays of I): per-step records and the read-out's outputs
 * (probabilities: sigmoid per unit or softmax over units) and logits. */
export function forward(net, xs) {
  const { H, O, params: P } = net;
  const steps = [];
  let y = new Float64Array(H);
  let c = new Float64Array(H);
  const S = net.kind === "lstm" ? net.sig.length : 0;
  let hist = new Float64Array(S * H);
  const Wih = P["recurrent.weight_ih_l0"], Whh = P["recurrent.weight_hh_l0"];
  const bih = P["recurrent.bias_ih_l0"], bhh = P["recurrent.bias_hh_l0"];
  const G = Wih.length / (H * net.I);
  const outputs = [], logits = [];
  for (const x of xs) {
    const rec = { x, yPrev: y };
    const a = matVec(Wih, G * H, net.I, x, new Float64Array(G * H), bih);
    if (net.kind === "gru") {
      const hh = matVec(Whh, 3 * H, H, y, new Float64Array(3 * H), bhh);
      const r = new Float64Array(H), z = new Float64Array(H), n = new Float64Array(H);
      const h = new Float64Array(H);
      for (let u = 0; u < H; u++) {
        r[u] = sigmoid(a[u] + hh[u]);
        z[u] = sigmoid(a[H + u] + hh[H + u]);
        n[u] = Math.tanh(a[2 * H + u] + r[u] * hh[2 * H + u]);
        h[u] = (1 - z[u]) * n[u] + z[u] * y[u];
      }
      Object.assign(rec, { hh, r, z, n });
      y = h;
    } else {
      addMatVec(Whh, G * H, H, y, a, bhh);
      if (net.kind === "rnn") {
        const h = new Float64Array(H);
        for (let u = 0; u < H; u++) h[u] = net.nonlinearity === "relu" ? Math.max(0, a[u]) : Math.tanh(a[u]);
        y = h;
      } else {
        y = lstmStep(net, a, rec, c, hist);
        c = rec.c;
        hist = rec.hist;
      }
    }
    rec.y = y;
    const l = matVec(P["head.weight"], O, H, y, new Float64Array(O), P["head.bias"]);
    const p = new Float64Array(O);
    if (net.readout === "sigmoid") {
      for (let k = 0; k < O; k++) p[k] = sigmoid(l[k]);
    } else {
      let max = -Infinity, total = 0;
      for (const v of l) max = Math.max(max, v);
      for (let k = 0; k < O; k++) total += (p[k] = Math.exp(l[k] - max));
      for (let k = 0; k < O; k++) p[k] /= total;
    }
    steps.push(rec);
    outputs.push(p);
    logits.push(l);
  }
  return { steps, outputs, logits };
}

/** One LSTM step from pre-activations a (G*H, all but peepholes and FGR); fills rec. */
function lstmStep(net, a, rec, cPrev, histPrev) {
  const { H, spec, sig, at, params: P } = net;
  if (spec.gate_recurrence) {
    const S = sig.length * H;
    const r = matVec(P["recurrent.weight_gates_l0"], S, S, histPrev, new Float64Array(S));
    sig.forEach((g, j) => { for (let u = 0; u < H; u++) a[at[g] + u] += r[j * H + u]; });
  }
  const peep = (g) => (spec.peepholes && sig.includes(g) ? P[`recurrent.weight_c${g}_l0`] : null);
  const pi = peep("i"), pf = peep("f"), po = peep("o");
  const i = new Float64Array(H).fill(1), f = new Float64Array(H).fill(1);
  const z = new Float64Array(H), o = new Float64Array(H).fill(1), c = new Float64Array(H);
  const hc = new Float64Array(H), y = new Float64Array(H);
  for (let u = 0; u < H; u++) {
    z[u] = spec.input_activation ? Math.tanh(a[at.z + u]) : a[at.z + u];
    if (spec.input_gate) i[u] = sigmoid(a[at.i + u] + (pi ? pi[u] * cPrev[u] : 0));
    if (spec.coupled) f[u] = 1 - i[u];
    else if (spec.forget_gate) f[u] = sigmoid(a[at.f + u] + (pf ? pf[u] * cPrev[u] : 0));
    c[u] = z[u] * i[u] + cPrev[u] * f[u];
    if (spec.output_gate) o[u] = sigmoid(a[at.o + u] + (po ? po[u] * c[u] : 0));
    hc[u] = spec.output_activation ? Math.tanh(c[u]) : c[u];
    y[u] = hc[u] * o[u];
  }
  const act = { i, f, o };
  let hist = histPrev;
  if (spec.gate_recurrence) {
    hist = new Float64Array(sig.length * H);
    sig.forEach((g, j) => hist.set(act[g], j * H));
  }
  Object.assign(rec, { cPrev, histPrev, i, f, z, o, c, hc, hist, at });
  return y;
}

// --- backward ----------------------------------------------------------------------------------

/**
 * Loss and gradients of one sequence: the read-out's loss (binary cross-entropy of each sigmoid
 * unit, or the cross-entropy of the softmax against the target distribution) summed over units
 * and the steps where mask is 1 (default all). Returns {loss, grads: name -> Float64Array,
 * outputs}; gradients are d loss / d parameter (backpropagation through time, full length),
 * added into `into` (name -> Float64Array) when given, else into new arrays.
 */
export function lossAndGradients(net, xs, targets, mask = null, into = null) {
  const { H, O, I, params: P } = net;
  const { steps, outputs, logits } = forward(net, xs);
  let grads = into;
  if (!grads) {
    grads = {};
    for (const [name, p] of Object.entries(P)) grads[name] = new Float64Array(p.length);
  }
  let loss = 0;
  const T = xs.length;
  const G = P["recurrent.weight_ih_l0"].length / (H * I);
  let dyNext = new Float64Array(H); // from step t+1 through the recurrent weights
  let dcNext = new Float64Array(H); // from step t+1 through the cell state
  const S = net.kind === "lstm" ? net.sig.length * H : 0;
  let dhistNext = new Float64Array(S); // from step t+1 through FGR
  for (let t = T - 1; t >= 0; t--) {
    const rec = steps[t];
    const dl = new Float64Array(O);
    if (!mask || mask[t]) {
      const target = targets[t];
      const l = logits[t];
      if (net.readout === "sigmoid") {
        for (let k = 0; k < O; k++) {
          // BCE with logits, stably: max(l, 0) - l * y + log(1 + exp(-|l|))
          loss += Math.max(l[k], 0) - l[k] * target[k] + Math.log1p(Math.exp(-Math.abs(l[k])));
          dl[k] = outputs[t][k] - target[k];
        }
      } else {
        let max = -Infinity, total = 0, mass = 0;
        for (const v of l) max = Math.max(max, v);
        for (const v of l) total += Math.exp(v - max);
        const logZ = max + Math.log(total);
        for (let k = 0; k < O; k++) { loss -= target[k] * (l[k] - logZ); mass += target[k]; }
        for (let k = 0; k < O; k++) dl[k] = outputs[t][k] * mass - target[k];
      }
      addOuter(grads["head.weight"], O, H, dl, rec.y);
      for (let k = 0; k < O; k++) grads["head.bias"][k] += dl[k];
    }
    const dy = Float64Array.from(dyNext);
    addMatTVec(P["head.weight"], O, H, dl, dy);

    const da = new Float64Array(G * H); // gradient of the input-side pre-activations
    let dah = da; // of the recurrent-side ones (differs for the GRU's n block)
    const dyPrev = new Float64Array(H);
    if (net.kind === "rnn") {
      for (let u = 0; u < H; u++) {
        const h = rec.y[u];
        da[u] = dy[u] * (net.nonlinearity === "relu" ? (h > 0 ? 1 : 0) : 1 - h * h);
      }
    } else if (net.kind === "gru") {
      dah = new Float64Array(3 * H);
      for (let u = 0; u < H; u++) {
        const { r, z, n, hh } = rec;
        const dn = dy[u] * (1 - z[u]);
        const dz = dy[u] * (rec.yPrev[u] - n[u]);
        dyPrev[u] += dy[u] * z[u];
        const dxn = dn * (1 - n[u] * n[u]);
        const dr = dxn * hh[2 * H + u];
        da[u] = dah[u] = dr * r[u] * (1 - r[u]);
        da[H + u] = dah[H + u] = dz * z[u] * (1 - z[u]);
        da[2 * H + u] = dxn;
        dah[2 * H + u] = dxn * r[u];
      }
    } else {
      dcNext = lstmBackward(net, rec, dy, dcNext, dhistNext, da, grads);
      if (net.spec.gate_recurrence) {
        const { at, histPrev } = rec;
        const daSig = new Float64Array(S);
        net.sig.forEach((g, j) => { for (let u = 0; u < H; u++) daSig[j * H + u] = da[at[g] + u]; });
        addOuter(grads["recurrent.weight_gates_l0"], S, S, daSig, histPrev);
        dhistNext = new Float64Array(S);
        addMatTVec(P["recurrent.weight_gates_l0"], S, S, daSig, dhistNext);
      }
    }
    addOuter(grads["recurrent.weight_ih_l0"], G * H, I, da, rec.x);
    addOuter(grads["recurrent.weight_hh_l0"], G * H, H, dah, rec.yPrev);
    for (let k = 0; k < G * H; k++) {
      grads["recurrent.bias_ih_l0"][k] += da[k];
      grads["recurrent.bias_hh_l0"][k] += dah[k];
    }
    addMatTVec(P["recurrent.weight_hh_l0"], G * H, H, dah, dyPrev);
    dyNext = dyPrev;
  }
  return { loss, grads, outputs };
}

/** The LSTM step's backward: fills da (G*H) and the peephole gradients; returns d c_{t-1}. */
function lstmBackward(net, rec, dy, dcNext, dhistNext, da, grads) {
  const { H, spec, sig, params: P } = net;
  const { cPrev, i, f, z, o, c, hc, at } = rec;
  const hist = {}; // gradients reaching this step's gate activations from the next step (FGR)
  sig.forEach((g, j) => { hist[g] = dhistNext.subarray(j * H, (j + 1) * H); });
  const has = (g) => spec.peepholes && sig.includes(g);
  const dcPrev = new Float64Array(H);
  for (let u = 0; u < H; u++) {
    let dc = dcNext[u] + dy[u] * o[u] * (spec.output_activation ? 1 - hc[u] * hc[u] : 1);
    if (spec.output_gate) {
      const dao = (dy[u] * hc[u] + (hist.o ? hist.o[u] : 0)) * o[u] * (1 - o[u]);
      da[at.o + u] = dao;
      if (has("o")) {
        dc += dao * P["recurrent.weight_co_l0"][u];
        grads["recurrent.weight_co_l0"][u] += dao * c[u];
      }
    }
    let di = dc * z[u] + (hist.i ? hist.i[u] : 0);
    const df = dc * cPrev[u] + (hist.f ? hist.f[u] : 0);
    dcPrev[u] = dc * f[u];
    if (spec.coupled) di -= df; // f = 1 - i
    const dz = dc * i[u];
    da[at.z + u] = spec.input_activation ? dz * (1 - z[u] * z[u]) : dz;
    if (spec.input_gate) {
      const dai = di * i[u] * (1 - i[u]);
      da[at.i + u] = dai;
      if (has("i")) {
        dcPrev[u] += dai * P["recurrent.weight_ci_l0"][u];
        grads["recurrent.weight_ci_l0"][u] += dai * cPrev[u];
      }
    }
    if (spec.forget_gate && !spec.coupled) {
      const daf = df * f[u] * (1 - f[u]);
      da[at.f + u] = daf;
      if (has("f")) {
        dcPrev[u] += daf * P["recurrent.weight_cf_l0"][u];
        grads["recurrent.weight_cf_l0"][u] += daf * cPrev[u];
      }
    }
  }
  return dcPrev;
}

// --- optimisers --------------------------------------------------------------------------------

/** Adam (Kingma & Ba) or SGD with momentum over net.params; step(grads) updates in place. */
export function createOptimizer(net, { optimizer = "adam", lr = 0.01, momentum = 0.9,
  beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = {}) {
  if (!["adam", "sgd"].includes(optimizer)) {
    throw new Error(`train.js: optimizer must be adam or sgd, got ${optimizer}`);
  }
  const m = {}, v = {};
  for (const [name, p] of Object.entries(net.params)) {
    m[name] = new Float64Array(p.length);
    v[name] = new Float64Array(p.length);
  }
  let t = 0;
  return {
    step(grads) {
      t++;
      const c1 = 1 - beta1 ** t, c2 = 1 - beta2 ** t;
      for (const [name, p] of Object.entries(net.params)) {
        const g = grads[name], mn = m[name], vn = v[name];
        for (let k = 0; k < p.length; k++) {
          if (optimizer === "sgd") {
            mn[k] = momentum * mn[k] + g[k];
            p[k] -= lr * mn[k];
          } else {
            mn[k] = beta1 * mn[k] + (1 - beta1) * g[k];
            vn[k] = beta2 * vn[k] + (1 - beta2) * g[k] * g[k];
            p[k] -= lr * (mn[k] / c1) / (Math.sqrt(vn[k] / c2) + eps);
          }
        }
      }
    },
  };
}

// --- the trainer -------------------------------------------------------------------------------

export const TRAINER_DEFAULTS = Object.freeze({
  cell: "lstm", variant: "NP", hidden: 8, seed: 1, optimizer: "adam", lr: 0.03, momentum: 0.9,
  batch: 4, clip: 1, window: 1000, readout: "sigmoid",
});

/**
 * A DSR trainer (see the module's comment for the options). trainBatch(n) trains on n fresh
 * sequences (default: the batch size) in one update and returns {loss (mean per sequence),
 * success (over the last `window` sequences), correct (of these n), sequences (trained so
 * far), updates}.
 */
export function createTrainer(options = {}) {
  const o = { ...TRAINER_DEFAULTS, task: dsr.DEMO, ...options };
  const task = o.task;
  const net = createNetwork({ cell: o.cell, variant: o.variant, inputs: dsr.symbols(task),
    hidden: o.hidden, outputs: task.targets.length, seed: o.seed, readout: o.readout });
  const opt = createOptimizer(net, o);
  const random = createRng((o.seed * 2654435761) >>> 0);
  const recent = []; // 1 / 0 per trained sequence, the last `window`
  let hits = 0, sequences = 0, updates = 0;

  const total = {}; // the batch's gradient, reused
  for (const [name, p] of Object.entries(net.params)) total[name] = new Float64Array(p.length);

  function trainBatch(n = o.batch) {
    for (const g of Object.values(total)) g.fill(0);
    let loss = 0, correct = 0;
    for (let s = 0; s < n; s++) {
      const seq = dsr.sample(random, task);
      const r = lossAndGradients(net, seq.inputs, seq.targets, null, total);
      loss += r.loss;
      const ok = dsr.correct(r.outputs, seq.targets) ? 1 : 0;
      correct += ok;
      recent.push(ok);
      hits += ok;
      if (recent.length > o.window) hits -= recent.shift();
    }
    for (const g of Object.values(total)) for (let k = 0; k < g.length; k++) g[k] /= n;
    if (o.clip > 0) {
      let norm = 0;
      for (const g of Object.values(total)) for (const v of g) norm += v * v;
      norm = Math.sqrt(norm);
      if (norm > o.clip) for (const g of Object.values(total)) for (let k = 0; k < g.length; k++) g[k] *= o.clip / norm;
    }
    opt.step(total);
    sequences += n;
    updates++;
    return { loss: loss / n, success: hits / recent.length, correct, sequences, updates };
  }

  /** Success on n fresh sequences (from `random`, default a generator of its own), no update. */
  function evaluate(n = 1000, rng = createRng(12345)) {
    let ok = 0;
    for (let s = 0; s < n; s++) {
      const seq = dsr.sample(rng, task);
      if (dsr.correct(forward(net, seq.inputs).outputs, seq.targets)) ok++;
    }
    return ok / n;
  }

  /** The network's outputs (T arrays of K probabilities) for inputs (T arrays). */
  function predict(inputs) {
    return forward(net, inputs.map((x) => Float64Array.from(x))).outputs.map((p) => Array.from(p));
  }

  return {
    options: o, network: net, trainBatch, evaluate, predict,
    get success() { return recent.length ? hits / recent.length : 0; },
    get sequences() { return sequences; },
  };
}
