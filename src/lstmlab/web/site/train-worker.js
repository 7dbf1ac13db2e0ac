/**
 * Train in the browser: the worker side (a module Web Worker; no DOM). It trains the runtime's
 * plain-JavaScript network (runtime/train.js) on distracted sequence recall and posts
 *   {type: "progress", sequences, seconds, loss, rate}   rate: success over the last 1,000
 *   {type: "solved", sequences, seconds, rate}           a block of 1,000 sequences (0-999,
 *                                                        1000-1999, ...) >= 95% right
 *   {type: "error", message}
 * The page stops it with worker.terminate().
 */

import { createTrainer } from "./runtime/train.js";

const BLOCK = 1000;      // Synaptic's criterion: a block of 1,000 sequences ...
const CRITERION = 0.95;  // ... at least 95% right
const BATCH = 25;        // sequences per step

async function train(config) {
  const trainer = createTrainer({ ...config, task: "dsr", batch: BATCH });
  const start = performance.now();
  const recent = [];           // right (1) or wrong (0) per sequence, the last BLOCK
  let sequences = 0, blockRight = 0, lastPost = 0;
  for (;;) {
    const { loss, correct } = trainer.trainBatch(BATCH);
    for (const ok of correct) {
      recent.push(ok ? 1 : 0);
      if (recent.length > BLOCK) recent.shift();
      blockRight += ok ? 1 : 0;
      sequences++;
      if (sequences % BLOCK === 0) {
        const rate = blockRight / BLOCK;
        blockRight = 0;
        if (rate >= CRITERION) {
          const seconds = (performance.now() - start) / 1000;
          postMessage({ type: "progress", sequences, seconds, loss, rate });
          postMessage({ type: "solved", sequences, seconds, rate });
          return;
        }
      }
    }
    const now = performance.now();
    if (now - lastPost > 100) {
      lastPost = now;
      const rate = recent.reduce((a, b) => a + b, 0) / recent.length;
      postMessage({ type: "progress", sequences, seconds: (now - start) / 1000, loss, rate });
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
}

onmessage = ({ data }) => {
  if (data.type === "start") {
    train(data.config).catch((error) => postMessage({ type: "error", message: error.message }));
  }
};
