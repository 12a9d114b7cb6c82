// Play/pause/step/seek over a fixed number of steps. Knows nothing of drawing: it calls
// `onStep(step)` and lets the caller render, so it can be driven (and tested) without a DOM.

export const SPEEDS = [0.25, 0.5, 1, 2, 4];
export const BASE_MS = 650;

export function createTimeline({ count, onStep, onPlayState = () => {}, loop = true, timers = globalThis }) {
  let step = 0;
  let playing = false;
  let speed = 1;
  let timer = null;
  let stride = 1; // fast mode: steps per tick (a whole output row)

  const clear = () => {
    if (timer !== null) timers.clearTimeout(timer);
    timer = null;
  };
  const schedule = (ms) => {
    clear();
    timer = timers.setTimeout(tick, ms);
  };
  function tick() {
    timer = null;
    if (!playing) return;
    if (step >= count - 1) {
      if (!loop) return pause();
      step = 0;
    } else step = Math.min(count - 1, step + stride);
    onStep(step);
    // Linger on the last step so the finished output can be seen before the loop restarts.
    schedule((step === count - 1 ? 4 : 1) * (BASE_MS / speed));
  }
  function pause() {
    if (!playing) return;
    playing = false;
    clear();
    onPlayState(false);
  }
  const api = {
    get step() {
      return step;
    },
    get count() {
      return count;
    },
    get playing() {
      return playing;
    },
    get speed() {
      return speed;
    },
    play() {
      if (playing || count <= 1) return;
      playing = true;
      if (step >= count - 1) {
        step = 0;
        onStep(step);
      }
      onPlayState(true);
      schedule(BASE_MS / speed);
    },
    pause,
    toggle() {
      playing ? pause() : api.play();
    },
    seek(s) {
      const next = Math.max(0, Math.min(count - 1, Math.round(s)));
      step = next;
      onStep(step);
      if (playing) schedule(BASE_MS / speed);
    },
    stepBy(delta) {
      pause();
      api.seek(step + delta);
    },
    setSpeed(x) {
      speed = x;
      if (playing) schedule(BASE_MS / speed);
    },
    get stride() {
      return stride;
    },
    setStride(n) {
      stride = Math.max(1, Math.round(n));
    },
    setCount(n) {
      count = Math.max(1, n);
      if (step > count - 1) api.seek(count - 1);
    },
    destroy() {
      playing = false;
      clear();
    },
  };
  return api;
}
