// Yielding to the browser between pieces of work, so input and painting run in between and no
// task blocks the main thread for long (a "long task" is one over 50 ms). No DOM.

// The next task: scheduler.yield() where the browser has it (the continuation keeps its place in
// line), else a message-channel task (setTimeout(0) is clamped to 4 ms after a few nestings).
export function nextTask() {
  if (globalThis.scheduler?.yield) return globalThis.scheduler.yield();
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => resolve();
    ch.port2.postMessage(null);
  });
}

const now = () => globalThis.performance?.now() ?? Date.now();

// Runs `jobs` (functions) in order, from the next task on (the caller's task stays short), yielding
// whenever `budgetMs` has passed since the last yield. Stops early, resolving false, once
// `cancelled()` is true (a newer drawing replaced this one).
export async function runChunked(jobs, { cancelled = () => false, budgetMs = 12 } = {}) {
  await nextTask();
  let t0 = now();
  for (const job of jobs) {
    if (cancelled()) return false;
    job();
    if (now() - t0 > budgetMs) {
      await nextTask();
      t0 = now();
    }
  }
  return !cancelled();
}

// A yield that happens only once the current task has run `budgetMs`: small drawings (Linear) finish
// in one task with no wait between their pieces, big ones (Conv2d on 64×64) are cut into tasks.
export function budgetYield(budgetMs = 12) {
  let t0 = now();
  return async () => {
    if (now() - t0 < budgetMs) return false;
    await nextTask();
    t0 = now();
    return true;
  };
}

// After the browser's next frame (its style, layout and paint done), or `maxMs` at most where no frame
// comes (a hidden tab): work that reads sizes then finds the layout clean instead of forcing it.
export function afterFrame(maxMs = 100) {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve();
    };
    if (globalThis.requestAnimationFrame) globalThis.requestAnimationFrame(() => nextTask().then(finish));
    setTimeout(finish, maxMs);
  });
}
