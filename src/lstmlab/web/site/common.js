/**
 * Helpers shared by the web lab's pages (an ES module, no dependencies).
 *
 *   await getJSON(url)                 the parsed JSON at url (throws naming it on HTTP errors)
 *   softmax(logits) / argmax(values)   over a plain array
 *   drawHeatmap(canvas, rows, opts)    rows: arrays of values in [lo, hi], drawn as coloured cells
 *   colour(value)                      a CSS colour for a value in [-1, 1] (blue < 0 < red)
 */

export async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot load ${url}: HTTP ${response.status}`);
  return response.json();
}

export function softmax(logits) {
  const top = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

export function argmax(values) {
  let best = 0;
  for (let k = 1; k < values.length; k++) if (values[k] > values[best]) best = k;
  return best;
}

/** A diverging colour for v in [-1, 1]: white at 0, blue below, red above (light enough at the
 * ends for dark text on it). */
export function colour(v) {
  const a = Math.max(-1, Math.min(1, v));
  const fade = Math.round(255 * (1 - 0.7 * Math.abs(a)));
  return a >= 0 ? `rgb(255,${fade},${fade})` : `rgb(${fade},${fade},255)`;
}

/** A sequential colour for v in [0, 1]: white to dark blue (gate activations). */
export function shade(v) {
  const a = Math.max(0, Math.min(1, v));
  return `rgb(${Math.round(255 - 225 * a)},${Math.round(255 - 160 * a)},${Math.round(255 - 60 * a)})`;
}

/**
 * Draw rows (R arrays of T values) as an R x T grid of cells on canvas; only the first `upto`
 * columns are filled (step-by-step playback). opts: {cell: column width px, row: row height
 * px, paint: value -> colour, marker: column to outline}.
 */
export function drawHeatmap(canvas, rows, { cell = 6, row = 5, paint = shade, upto = Infinity,
  marker = -1 } = {}) {
  const R = rows.length, T = R ? rows[0].length : 0;
  canvas.width = Math.max(1, T * cell);
  canvas.height = Math.max(1, R * row);
  const g = canvas.getContext("2d");
  g.fillStyle = "#f4f4f4";
  g.fillRect(0, 0, canvas.width, canvas.height);
  for (let t = 0; t < Math.min(T, upto); t++) {
    for (let r = 0; r < R; r++) {
      g.fillStyle = paint(rows[r][t]);
      g.fillRect(t * cell, r * row, cell, row);
    }
  }
  if (marker >= 0 && marker < T) {
    g.strokeStyle = "#222";
    g.lineWidth = 1;
    g.strokeRect(marker * cell + 0.5, 0.5, cell - 1, canvas.height - 1);
  }
}

/** rows[r][t] = steps[t][r]: a T x H trace as H rows of T steps. */
export function transpose(steps) {
  if (!steps.length) return [];
  return Array.from(steps[0], (_, r) => steps.map((s) => s[r]));
}
