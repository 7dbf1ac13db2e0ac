/**
 * The memory games page: a person plays a round of a game, then the shipped LSTM and Elman RNN
 * play the very same sequences at every lag of the deck, and the LSTM's gates are drawn step by
 * step on the person's last sequence.
 *
 * Everything comes from models/games/deck.json, made by the task's Python generator
 * (python -m lstmlab.web.make_models games): per game its symbols and classes, and per lag a
 * deck of sequences with the symbols shown, the inputs, the scored steps and the answer the
 * task's rule wants there. A sequence is right, for the person and for a network alike, when
 * every scored step is right (the task's own rule: docs/tasks.md).
 *
 * For tests: window.gamesLab holds {deck, played: [{game, lag, index, given, right}],
 * networks: {cell: {lag: [right per sequence]}}} once a round is scored.
 */

import { load } from "./runtime/lstmlab.js";
import { argmax, colour, drawHeatmap, getJSON, shade, transpose } from "./common.js";

const $ = (id) => document.getElementById(id);
const RULES = {
  intern: "A name appears, then a stream of distractor symbols, then '?': who was the intern?",
  tasks: "Each day shows the change in open tasks (+new, -done; blank: nothing happened). " +
    "At '?': how many tasks are open? (You start with none.)",
  romaji: "A stream of letters and symbols of other scripts. At <recall>, type only the Latin " +
    "letters, in the order they appeared, then press Done.",
};
const lab = { deck: null, played: [], networks: {}, next: {} };
window.gamesLab = lab;
const models = {};

function game() { return lab.deck.games[$("game").value]; }
function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

function fillLags() {
  const lags = Object.keys(game().lags);
  $("lag").innerHTML = lags.map((l) => `<option>${l}</option>`).join("");
  $("lag").value = lags[Math.min(1, lags.length - 1)];
  $("rules").textContent = RULES[$("game").value];
}

/** The text shown for step t of a sequence. */
function shownText(name, seq, t) {
  if (name === "tasks") {
    if (seq.steps[t] === "?") return "?";
    return seq.steps[t] ? `day ${t + 1}: ${seq.steps[t]}` : `day ${t + 1}: -`;
  }
  return seq.steps[t];
}

/** The person's answer buttons for game `name`; resolves with the list of classes given. */
function ask(name, g) {
  return new Promise((resolve) => {
    const box = $("answers");
    box.innerHTML = "";
    const button = (label, onClick, extra = "") => {
      const b = document.createElement("button");
      b.textContent = label;
      b.className = extra;
      b.dataset.answer = label;
      b.addEventListener("click", onClick);
      box.append(b);
      return b;
    };
    if (name === "romaji") {
      const typed = [];
      const R = g.recall_steps;
      $("typed").hidden = false;
      const show = () => { $("typed").textContent = typed.map((k) => g.classes[k]).join("") || "\u00a0"; };
      show();
      g.classes.slice(0, g.end_class).forEach((letter, k) => button(letter, () => {
        if (typed.length < R) typed.push(k);
        show();
      }));
      button("\u232b", () => { typed.pop(); show(); }, "plain");
      button("Done", () => {
        $("typed").hidden = true;
        resolve([...typed, ...Array(R - typed.length).fill(g.end_class)].slice(0, R));
      }, "plain").id = "done";
    } else {
      g.classes.forEach((label, k) => button(label, () => resolve([k])));
    }
  });
}

function same(a, b) { return a.length === b.length && a.every((v, k) => v === b[k]); }

function describe(name, g, answer) {
  if (name === "romaji") return answer.filter((k) => k !== g.end_class).map((k) => g.classes[k]).join("") || "(none)";
  return g.classes[answer[0]];
}

async function playOne(name, g, seq, speed) {
  $("feedback").textContent = "";
  for (let t = 0; t < seq.shown; t++) {
    $("symbol").textContent = shownText(name, seq, t) || "\u00a0";
    $("step-count").textContent = `step ${t + 1} of ${seq.shown}`;
    await sleep(speed);
    if (speed >= 100) { $("symbol").innerHTML = "&nbsp;"; await sleep(speed / 5); }
  }
  $("symbol").textContent = name === "romaji" ? "Latin letters, in order?" : "?";
  const given = await ask(name, g);
  $("answers").innerHTML = "";
  const right = same(given, seq.answer);
  $("feedback").className = "feedback " + (right ? "right" : "wrong");
  $("feedback").textContent = right ? `Right: ${describe(name, g, seq.answer)}.`
    : `Wrong: the answer was ${describe(name, g, seq.answer)}, you said ${describe(name, g, given)}.`;
  return { given, right };
}

/** One-hot (or the tasks game's two lines) inputs of a deck sequence: T arrays of I numbers. */
function networkInputs(name, g, seq) {
  return seq.inputs.map((v, t) => {
    const x = new Array(g.input_size).fill(0);
    if (name === "tasks") {
      if (seq.steps[t] === "?") x[1] = 1; else x[0] = v / g.max_change;
    } else if (v >= 0) x[v] = 1;
    return x;
  });
}

async function model(name, cell) {
  const key = `${name}-${cell}`;
  if (!models[key]) models[key] = await load(`models/games/${game().networks[cell].folder}/manifest.json`);
  return models[key];
}

/** Whether `net` gets seq right: the arg-max at every scored step is the answer. */
async function networkPlays(net, name, g, seq, trace = false) {
  const result = await net.run(networkInputs(name, g, seq), { trace });
  const right = seq.scored.every((t, k) => argmax(result.outputs[t]) === seq.answer[k]);
  return { right, result };
}

async function scoreNetworks(name, g, lag, mine) {
  const body = $("scores").querySelector("tbody");
  body.innerHTML = "";
  lab.networks = {};
  const cells = ["lstm", "rnn"];
  for (const cell of cells) lab.networks[cell] = {};
  for (const l of Object.keys(g.lags)) {
    const counts = {};
    for (const cell of cells) {
      const net = await model(name, cell);
      const rights = [];
      for (const seq of g.lags[l].sequences) rights.push((await networkPlays(net, name, g, seq)).right);
      lab.networks[cell][l] = rights;
      counts[cell] = rights;
    }
    const n = g.lags[l].sequences.length;
    const you = l === lag ? `${mine.filter((p) => p.right).length} / ${mine.length}` : "";
    const count = (r) => `${r.filter(Boolean).length} / ${n}`;
    body.insertAdjacentHTML("beforeend", `<tr data-lag="${l}"><td>${l}</td><td class="you">${you}</td>` +
      `<td class="lstm">${count(counts.lstm)}</td><td class="rnn">${count(counts.rnn)}</td></tr>`);
    if (l === lag) {
      const on = (cell) => mine.filter((p) => counts[cell][p.index]).length;
      body.insertAdjacentHTML("beforeend", `<tr class="yours"><td>${l}, your ${mine.length}</td>` +
        `<td class="you">${mine.filter((p) => p.right).length} / ${mine.length}</td>` +
        `<td class="lstm">${on("lstm")} / ${mine.length}</td><td class="rnn">${on("rnn")} / ${mine.length}</td></tr>`);
    }
  }
  $("results-note").textContent = `Every lag has ${g.lags[lag].sequences.length} sequences made ` +
    `by the task's own generator; the networks (${g.networks.lstm.hidden} cells each, trained on a mix of ` +
    `these lags) play them all, including the ${mine.length} you played at lag ${lag}.`;
}

let gateTimer = null;
async function drawGates(name, g, seq, speed) {
  const { result } = await networkPlays(await model(name, "lstm"), name, g, seq, true);
  const steps = result.trace[0].forward;
  const rows = { i: transpose(steps.i), f: transpose(steps.f), o: transpose(steps.o),
    c: transpose(steps.c).map((r) => r.map(Math.tanh)) };
  $("hidden-size").textContent = rows.i.length;
  const T = seq.steps.length;
  const cell = Math.max(3, Math.min(24, Math.floor(500 / T)));
  clearInterval(gateTimer);
  let t = 0;
  const frame = () => {
    for (const k of ["i", "f", "o", "c"]) {
      drawHeatmap($(`gate-${k}`), rows[k], { cell, upto: t + 1, marker: t, paint: k === "c" ? colour : shade });
    }
    const scoredAt = seq.scored.indexOf(t);
    const says = scoredAt >= 0 ? `; the LSTM answers ${g.classes[argmax(result.outputs[t])]}` : "";
    $("gate-step").textContent = `step ${t + 1} of ${T}: ${shownText(name, seq, t) || "(no input)"}${says}`;
    if (++t >= T) clearInterval(gateTimer);
  };
  frame();
  gateTimer = setInterval(frame, Math.max(30, Math.min(200, speed / 2)));
}

async function playRound() {
  const name = $("game").value, g = game(), lag = $("lag").value;
  const speed = Number($("speed").value), size = Number($("round-size").value);
  const deck = g.lags[lag].sequences;
  $("start").disabled = true;
  $("results").hidden = true;
  const key = `${name}/${lag}`;
  const mine = [];
  for (let k = 0; k < size; k++) {
    const index = (lab.next[key] ?? 0) % deck.length;
    lab.next[key] = index + 1;
    const { given, right } = await playOne(name, g, deck[index], speed);
    mine.push({ game: name, lag, index, given, right });
    await sleep(Math.min(speed * 2, 1200));
  }
  lab.played.push(...mine);
  $("symbol").innerHTML = "&nbsp;";
  $("step-count").textContent = `You: ${mine.filter((p) => p.right).length} of ${mine.length} right at lag ${lag}.`;
  $("step-count").dataset.score = `${mine.filter((p) => p.right).length}/${mine.length}`;
  await scoreNetworks(name, g, lag, mine);
  $("results").hidden = false;
  lab.lastSequence = deck[mine[mine.length - 1].index];
  await drawGates(name, g, lab.lastSequence, speed);
  $("start").disabled = false;
  document.body.dataset.scored = String(lab.played.length);
}

async function main() {
  lab.deck = await getJSON("models/games/deck.json");
  fillLags();
  $("game").addEventListener("change", fillLags);
  $("start").addEventListener("click", () => playRound().catch(showError));
  $("replay").addEventListener("click", () => lab.lastSequence &&
    drawGates($("game").value, game(), lab.lastSequence, Number($("speed").value)));
  document.body.dataset.ready = "1";
}

function showError(error) {
  $("feedback").className = "feedback wrong";
  $("feedback").textContent = `Error: ${error.message}`;
  $("start").disabled = false;
  throw error;
}

main().catch(showError);
