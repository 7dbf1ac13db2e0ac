/**
 * Train in the browser: the worker side (a module Web Worker; no DOM). It trains the runtime's
 * plain-JavaScript network (runtime/train.js: createTrainer, BPTT) on distracted sequence recall
 * and posts
 *   {type: "progress", sequences, seconds, loss, rate}   rate: the trainer's success, the share
 *                                                        of the last 1,000 training sequences right
 *   {type: "solved", sequences, seconds, rate}           Synaptic's criterion: a block of 1,000
 *                                                        training sequences (1-1,000, 1,001-2,000,
 *                                                        ...) at least 95% right
 *   {type: "error", message}
 * Each sequence is judged before the update it takes part in, as Synaptic judges it. The page
 * stops the worker with worker.terminate().
 */

import { createTrainer, dsr } from "./runtime/train.js";

const BLOCK = 1000;
const CRITERION = 0.95;
const POST_EVERY_MS = 100;

async function train({ task, ...options }) {
  const trainer = createTrainer({ ...options, task: dsr[task], window: BLOCK });
  const batch = trainer.options.batch;
  const start = performance.now();
  let lastPost = 0, blockRight = 0;
  for (;;) {
    // batches end on block boundaries, so that every block is scored whole
    const n = Math.min(batch, BLOCK - (trainer.sequences % BLOCK));
    const { loss, success, sequences, correct } = trainer.trainBatch(n);
    blockRight += correct;
    const now = performance.now();
    const seconds = (now - start) / 1000;
    if (sequences % BLOCK === 0) {
      const rate = blockRight / BLOCK;
      blockRight = 0;
      if (rate >= CRITERION) {
        postMessage({ type: "progress", sequences, seconds, loss, rate: success });
        postMessage({ type: "solved", sequences, seconds, rate });
        return;
      }
    }
    if (now - lastPost > POST_EVERY_MS) {
      lastPost = now;
      postMessage({ type: "progress", sequences, seconds, loss, rate: success });
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
}

onmessage = ({ data }) => {
  if (data.type === "start") {
    train(data.config).catch((error) => postMessage({ type: "error", message: error.message }));
  }
};
