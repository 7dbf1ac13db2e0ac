/**
 * Train in the browser: the worker side (a module Web Worker; no DOM). It trains the runtime's
 * plain-JavaScript network (runtime/train.js: createTrainer, BPTT) on distracted sequence recall
 * and posts
 *   {type: "progress", sequences, seconds, loss, rate}   rate: the trainer's success, the share
 *                                                        of the last 1,000 training sequences right
 *   {type: "solved", sequences, seconds, rate}           rate >= 0.95 over a full 1,000
 *                                                        (Synaptic's criterion)
 *   {type: "error", message}
 * The page stops it with worker.terminate().
 */

import { createTrainer, dsr } from "./runtime/train.js";

const CRITERION = 0.95;
const POST_EVERY_MS = 100;

async function train({ task, ...options }) {
  const trainer = createTrainer({ ...options, task: dsr[task], window: 1000 });
  const start = performance.now();
  let lastPost = 0;
  for (;;) {
    const { loss, success, sequences } = trainer.trainBatch();
    const now = performance.now();
    const seconds = (now - start) / 1000;
    if (sequences >= 1000 && success >= CRITERION) {
      postMessage({ type: "progress", sequences, seconds, loss, rate: success });
      postMessage({ type: "solved", sequences, seconds, rate: success });
      return;
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
