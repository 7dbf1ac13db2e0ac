/**
 * Inside a language model: the shipped character LSTM (models/lm/) reads the text as it is
 * typed; the page shows its next-character distribution and colours the text by one cell's
 * state, tanh(c). The cells `lstmlab lm inspect` found interpretable (models/lm/cells.json) are
 * offered first.
 *
 * The model reads the text from its start with the zero state, as Python's
 * LanguageModel(ids) does; characters outside the vocabulary are left out (and counted).
 * For tests: window.lmLab = {model, ids, probs (the next-character distribution), vocabulary}.
 */

import { load, sample } from "./runtime/lstmlab.js";
import { colour, getJSON, softmax } from "./common.js";

const $ = (id) => document.getElementById(id);
const lab = { model: null, ids: [], probs: [], vocabulary: [] };
window.lmLab = lab;
let cells = null, trace = null, shownText = [], pending = null;

function vocabularyOf(model) {
  return model.manifest.vocabulary.symbols;
}

/** Text -> token ids, leaving out characters the vocabulary lacks: {ids, chars, left}. */
function encode(text) {
  const ids = [], chars = [];
  let left = 0;
  for (const ch of text) {
    const id = lab.index.get(ch);
    if (id === undefined) { left++; continue; }
    ids.push(id);
    chars.push(ch);
  }
  return { ids, chars, left };
}

function shown(token) { return token === "\n" ? "\\n" : token === " " ? "space" : token; }

function drawBars() {
  const order = lab.probs.map((p, k) => [p, k]).sort((a, b) => b[0] - a[0]).slice(0, 12);
  const top = order[0][0];
  $("bars").innerHTML = order.map(([p, k]) =>
    `<span data-token="${k}">${shown(lab.vocabulary[k]).replace(/</g, "&lt;")}</span>` +
    `<div class="bar" style="width:${(100 * p / top).toFixed(1)}%"></div><span>${(100 * p).toFixed(1)}%</span>`).join("");
}

function firstLayer() { return Object.values(lab.model.manifest.layers)[0]; }

function cellValue(t, index) {
  const hidden = firstLayer().hidden_size;
  const layer = Math.floor(index / hidden), unit = index % hidden;
  return Math.tanh(trace[layer].forward.c[t][unit]);
}

function drawColoured() {
  const index = Number($("cell").value);
  const box = $("coloured");
  box.innerHTML = "";
  const fragment = document.createDocumentFragment();
  shownText.forEach((ch, t) => {
    const span = document.createElement("span");
    span.textContent = ch;
    span.style.background = colour(cellValue(t, index));
    span.title = `tanh(c) = ${cellValue(t, index).toFixed(3)}`;
    fragment.append(span);
  });
  box.append(fragment);
  $("cell-name").textContent = $("cell").selectedOptions[0].textContent;
}

async function update() {
  const { ids, chars, left } = encode($("text").value);
  $("unknown").textContent = left ? `${left} character(s) the model does not know were left out.` : "";
  lab.ids = ids;
  shownText = chars;
  if (!ids.length) { lab.probs = []; $("bars").innerHTML = ""; $("coloured").innerHTML = ""; return; }
  const result = await lab.model.run(ids, { trace: true });
  trace = result.trace;
  lab.probs = softmax(Array.from(result.outputs[ids.length - 1]));
  drawBars();
  drawColoured();
  document.body.dataset.updated = String(Number(document.body.dataset.updated ?? 0) + 1);
}

function schedule() {
  clearTimeout(pending);
  pending = setTimeout(() => update().catch(showError), 60);
}

function fillCells() {
  const hidden = firstLayer().hidden_size;
  const layers = firstLayer().num_layers;
  const seen = new Set();
  const options = [];
  for (const f of cells.findings) {
    if (seen.has(f.cell)) continue;
    seen.add(f.cell);
    options.push(`<option value="${f.cell}">${f.feature}: cell ${f.cell} (layer ${f.layer + 1}, ` +
      `unit ${f.unit}, r = ${f.r >= 0 ? "+" : ""}${f.r.toFixed(2)})</option>`);
  }
  options.push('<option disabled>-- every other cell --</option>');
  for (let c = 0; c < layers * hidden; c++) {
    if (!seen.has(c)) options.push(`<option value="${c}">cell ${c} (layer ${Math.floor(c / hidden) + 1}, unit ${c % hidden})</option>`);
  }
  $("cell").innerHTML = options.join("");
}

async function generate() {
  $("generate").disabled = true;
  let { logits, state } = { logits: null, state: null };
  for (const id of lab.ids) ({ logits, state } = lab.model.step(id, state));
  const out = [];
  const start = performance.now();
  let seed = 1;
  const random = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  for (let k = 0; k < 200; k++) {
    const next = sample(logits, { temperature: 0.8, random });
    out.push(lab.vocabulary[next]);
    ({ logits, state } = lab.model.step(next, state));
  }
  const seconds = (performance.now() - start) / 1000;
  $("speed").textContent = `${Math.round(200 / seconds)} characters per second`;
  $("text").value += out.join("");
  $("generate").disabled = false;
  schedule();
}

function showError(error) {
  $("unknown").textContent = `Error: ${error.message}`;
  throw error;
}

async function main() {
  [lab.model, cells] = await Promise.all([load("models/lm/manifest.json"), getJSON("models/lm/cells.json")]);
  lab.vocabulary = vocabularyOf(lab.model);
  lab.index = new Map(lab.vocabulary.map((token, k) => [token, k]));
  const layer = firstLayer();
  $("about").textContent = `A character-level ${layer.num_layers} x ${layer.hidden_size} ` +
    `${layer.cell.toUpperCase()} trained on Tiny Shakespeare (${lab.vocabulary.length} characters).`;
  fillCells();
  $("text").addEventListener("input", schedule);
  $("cell").addEventListener("change", drawColoured);
  $("generate").addEventListener("click", () => generate().catch(showError));
  await update();
  document.body.dataset.ready = "1";
}

main().catch(showError);
