/**
 * Train in the browser: the page side. A module Web Worker (train-worker.js, which runs the
 * runtime's trainer, runtime/train.js) trains; this page draws its success rate as it comes and
 * measures its own responsiveness (the longest gap between animation frames while training).
 *
 * For tests and benchmarks: window.trainLab = {points: [{sequences, seconds, rate}], solved:
 * {sequences, seconds} | null, maxFrameGap (ms), running}.
 */

import { TRAINER_DEFAULTS } from "./runtime/train.js";

const $ = (id) => document.getElementById(id);
const lab = { points: [], solved: null, maxFrameGap: 0, running: false, worker: null };
window.trainLab = lab;

function drawChart() {
  const canvas = $("chart"), g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, left = 44, bottom = 28, top = 10, right = 10;
  g.clearRect(0, 0, W, H);
  g.font = "12px system-ui";
  g.fillStyle = "#5b6672";
  g.strokeStyle = "#d9dde2";
  const maxX = Math.max(2000, lab.points.length ? lab.points[lab.points.length - 1].sequences : 0);
  const x = (s) => left + (W - left - right) * s / maxX;
  const y = (r) => top + (H - top - bottom) * (1 - r);
  for (const r of [0, 0.25, 0.5, 0.75, 0.95, 1]) {
    g.beginPath(); g.moveTo(left, y(r)); g.lineTo(W - right, y(r)); g.stroke();
    g.fillText(`${Math.round(100 * r)}%`, 4, y(r) + 4);
  }
  g.fillText(`${maxX.toLocaleString("en")} sequences`, W - right - 110, H - 8);
  g.strokeStyle = "#2e8b57";
  g.setLineDash([4, 4]);
  g.beginPath(); g.moveTo(left, y(0.95)); g.lineTo(W - right, y(0.95)); g.stroke();
  g.setLineDash([]);
  g.strokeStyle = "#1f6fb2";
  g.lineWidth = 2;
  g.beginPath();
  lab.points.forEach((p, k) => (k ? g.lineTo : g.moveTo).call(g, x(p.sequences), y(p.rate)));
  g.stroke();
  g.lineWidth = 1;
}

function setRunning(running) {
  lab.running = running;
  $("start").disabled = running;
  $("stop").disabled = !running;
  for (const id of ["cell", "variant", "task", "hidden", "lr", "seed"]) $(id).disabled = running;
  $("variant").disabled = running || $("cell").value !== "lstm";
}

function stop(message) {
  if (lab.worker) lab.worker.terminate();
  lab.worker = null;
  setRunning(false);
  if (message) $("status").textContent = message;
}

let lastFrame = 0;
function watchFrames(now) {
  if (lab.running && lastFrame) {
    lab.maxFrameGap = Math.max(lab.maxFrameGap, now - lastFrame);
    $("frame-gap").textContent = `${Math.round(lab.maxFrameGap)} ms`;
  }
  lastFrame = now;
  requestAnimationFrame(watchFrames);
}

function start() {
  stop();
  lab.points = [];
  lab.solved = null;
  lab.maxFrameGap = 0;
  lastFrame = 0;
  const config = { cell: $("cell").value, variant: $("variant").value, task: $("task").value,
    hidden: Number($("hidden").value), lr: Number($("lr").value), seed: Number($("seed").value) };
  lab.worker = new Worker(new URL("./train-worker.js", import.meta.url), { type: "module" });
  lab.worker.onmessage = ({ data }) => {
    if (data.type === "progress") {
      lab.points.push(data);
      $("sequences").textContent = data.sequences.toLocaleString("en");
      $("rate").textContent = `${(100 * data.rate).toFixed(1)}%`;
      $("loss").textContent = data.loss.toFixed(3);
      $("status").textContent = `training: ${data.seconds.toFixed(1)} s`;
      drawChart();
    } else if (data.type === "solved") {
      lab.solved = { sequences: data.sequences, seconds: data.seconds };
      stop(`Learned: a block of 1,000 sequences ${(100 * data.rate).toFixed(1)}% right after ` +
        `${data.sequences.toLocaleString("en")} sequences, ${data.seconds.toFixed(1)} s.`);
    } else if (data.type === "error") {
      stop(`Error: ${data.message}`);
    }
  };
  lab.worker.onerror = (event) => stop(`Error: ${event.message}`);
  lab.worker.postMessage({ type: "start", config });
  setRunning(true);
  $("status").textContent = "starting...";
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", () => stop("Stopped."));
$("cell").addEventListener("change", () => { $("variant").disabled = $("cell").value !== "lstm"; });
$("variant").disabled = $("cell").value !== "lstm";
$("ping").addEventListener("click", () => {
  $("pong").textContent = `clicked at ${new Date().toLocaleTimeString()}${lab.running ? ", while training" : ""}`;
});
// the trainer's own defaults (one definition, in train.js)
$("hidden").value = String(TRAINER_DEFAULTS.hidden);
$("lr").value = String(TRAINER_DEFAULTS.lr);
$("seed").value = String(TRAINER_DEFAULTS.seed);
requestAnimationFrame(watchFrames);
drawChart();
document.body.dataset.ready = "1";
