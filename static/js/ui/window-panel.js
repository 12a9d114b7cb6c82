// The sliding-window panel: timeline controls, the frame/output drawing, the channel map, and the
// selectors for sample, channel and depth slice. Shown only when /api/run returns `windows`.

import { createTimeline, SPEEDS, BASE_MS } from "../anim/timeline.js";
import { createWindowDrawing } from "../draw/windows.js";
import { drawChannelMap } from "../draw/channels.js";
import { valueColor } from "../draw/common.js";
import { valueDomain } from "../geometry/heatmap.js";
import { stepToOutput, outputToStep, sweepStride } from "../geometry/windows.js";
import { getAt, toNumber, fmt } from "../util/format.js";

// Past this many steps the animation starts in fast mode (a row per step): 4,096 steps at 650 ms is 44 minutes.
const FAST_ABOVE = 400;
const MAX_BANDS = 16;

const $ = (root, sel) => root.querySelector(sel);

function fillSelect(sel, n, value, label = (i) => String(i)) {
  const cur = Array.from(sel.options).map((o) => o.value).join(",");
  const next = Array.from({ length: n }, (_, i) => String(i)).join(",");
  if (cur !== next) sel.replaceChildren(...Array.from({ length: n }, (_, i) => new Option(label(i), String(i))));
  sel.value = String(value);
}

export function createWindowPanel(root, { getUi, setUi, onPick, onNeedSlice = () => {}, onTermHover = () => {} }) {
  const el = {
    back: $(root, "#win-back"), play: $(root, "#win-play"), fwd: $(root, "#win-fwd"), scrub: $(root, "#win-scrub"),
    speed: $(root, "#win-speed"), step: $(root, "#win-step"), batch: $(root, "#win-batch"), channel: $(root, "#win-channel"),
    depth: $(root, "#win-depth"), drawing: $(root, "#win-drawing"),
    channels: $(root, "#win-channels"), caption: $(root, "#win-caption"), legendZero: $(root, ".legend li.zero"),
    legendPad: $(root, ".legend li.pad .txt"),
    pinLine: $(root, "#win-pin"), fast: $(root, "#win-fast"), valuesNote: $(root, "#win-values-note"),
    exportDepths: $(root, "#win-export .export-depths"), exportAllDepths: $(root, "#win-export-all-depths"),
  };
  el.speed.replaceChildren(...SPEEDS.map((s) => new Option(`${s}×`, String(s))));
  // Speed and fast mode are the user's choices: they live in ui (and so in the link).
  const uiSpeed = () => (SPEEDS.includes(Number(getUi().speed)) ? Number(getUi().speed) : 1);
  el.speed.value = String(uiSpeed());
  const motionQuery = window.matchMedia?.("(prefers-reduced-motion: reduce)");
  const reduceMotion = motionQuery?.matches ?? false;
  const fastChosen = () => (typeof getUi().fast === "boolean" ? getUi().fast : null); // null: automatic (fast past FAST_ABOVE steps)

  let run = null;
  let drawing = null;
  let timeline = null;
  let shownInput = null;
  let lastType = null;
  let pinned = null;
  let pinnedExplain = null;
  let request = null;

  const refreshControls = () => {
    if (!timeline) return;
    el.play.textContent = timeline.playing ? "❚❚" : "▶";
    el.play.setAttribute("aria-label", timeline.playing ? "Pause" : "Play");
    el.play.setAttribute("aria-pressed", String(timeline.playing));
    el.scrub.max = String(timeline.count - 1);
    el.scrub.value = String(timeline.step);
    const oc = stepToOutput(run.windows, timeline.step, getUi().depth || 0);
    el.step.textContent = `step ${timeline.step + 1} / ${timeline.count} · output (${oc.join(", ")})`;
    el.scrub.setAttribute("aria-valuetext", `step ${timeline.step + 1} of ${timeline.count}, output (${oc.join(", ")})`);
    el.fast.checked = timeline.stride > 1;
    root.dataset.step = String(timeline.step);
  };

  el.play.addEventListener("click", () => timeline?.toggle());
  el.back.addEventListener("click", () => timeline?.stepBy(-1));
  el.fwd.addEventListener("click", () => timeline?.stepBy(1));
  el.scrub.addEventListener("input", () => {
    timeline?.pause();
    timeline?.seek(Number(el.scrub.value));
  });
  const setSpeed = (x) => {
    el.speed.value = String(x);
    timeline?.setSpeed(x);
    setUi({ speed: x });
  };
  el.speed.addEventListener("change", () => setSpeed(Number(el.speed.value)));
  el.fast.addEventListener("change", () => {
    setUi({ fast: el.fast.checked });
    timeline?.setStride(sweepStride(run.windows, timeline.count, el.fast.checked));
    refreshControls();
  });
  el.batch.addEventListener("change", () => setUi({ batch: Number(el.batch.value) }));
  el.channel.addEventListener("change", () => setUi({ channel: Number(el.channel.value) }));
  el.depth.addEventListener("change", () => setUi({ depth: Number(el.depth.value) }));
  // Space/arrow shortcuts while focus is inside the panel but not in a form control.
  root.addEventListener("keydown", (e) => {
    // Keys a part of the drawing handled (the output grid, the channel strip) are theirs alone.
    if (!timeline || e.defaultPrevented || e.target.closest("input, select, textarea, [role=grid], [role=radiogroup]")) return;
    if (e.key === "ArrowRight") timeline.stepBy(1);
    else if (e.key === "ArrowLeft") timeline.stepBy(-1);
    else if (e.key === "k" || (e.key === " " && e.target === root)) timeline.toggle();
    else if (e.key === "Home") timeline.seek(0);
    else if (e.key === "End") timeline.seek(timeline.count - 1);
    else if (e.key === "+" || e.key === "=" || e.key === "-") {
      // One notch faster or slower.
      const i = SPEEDS.indexOf(uiSpeed()) + (e.key === "-" ? -1 : 1);
      setSpeed(SPEEDS[Math.max(0, Math.min(SPEEDS.length - 1, i))]);
    } else return;
    e.preventDefault();
  });

  function dims() {
    const w = run.windows;
    const xShape = run.inputs[0].shape;
    const hasBatch = xShape.length === w.spatial_dims + 2;
    const yShape = run.output.shape;
    // Pooling reports no channel map: every channel is pooled on its own.
    const cOut = w.out_channels ?? yShape[hasBatch ? 1 : 0] ?? 1;
    return { w, hasBatch, n: hasBatch ? xShape[0] : 1, cOut };
  }

  let firstDraw = false;
  // The window glides between positions (d3 transitions) unless the user asked for reduced motion.
  function motionMs() {
    if (firstDraw || (motionQuery?.matches ?? reduceMotion)) return 0;
    return Math.round(Math.min(280, (0.45 * BASE_MS) / Number(el.speed.value || 1)));
  }

  // Real values for the drawn planes: the response's `windows.values` (the sample and channel asked
  // for, at any tensor size), else the full tensors when small, else none yet (asked for again).
  function planeSource({ w, input, output, batch, channel, hasBatch, feeds }) {
    const v = w.values;
    const pre = (c) => (hasBatch ? [batch, c] : [c]);
    const at = (nested, coord) => maybe(getAt(nested, coord));
    if (v && v.batch === batch && v.channel === channel) {
      const bands = v.input_channels.map((c, i) => ({
        channel: c,
        weightChannel: w.kind === "transposed" ? c : c - v.input_channels[0],
        inputValue: (coord) => at(v.input[i], coord),
        kernelValue: v.kernel ? (kidx) => at(v.kernel[i], kidx) : null,
      }));
      const cut = v.input_channels_total > v.input_channels.length;
      return {
        kind: "slice", bands, outputValue: (coord) => at(v.output, coord),
        inDomain: domainOf(v.input), outDomain: domainOf(v.output),
        wDomain: v.kernel ? domainOf(v.kernel) : null,
        note: cut ? `Showing ${v.input_channels.length} of the ${v.input_channels_total} input channels this output channel reads.` : "",
      };
    }
    const shown = feeds.slice(0, MAX_BANDS);
    if (input.data && output.data) {
      const wp = (run.params || []).find((p) => p.name === "weight");
      const perOut = w.out_channels && w.groups ? w.out_channels / w.groups : 1;
      const kernelValue = (c) => (wp?.data && w.kind !== "pool"
        ? (kidx) => at(wp.data, w.kind === "transposed" ? [c, channel % perOut, ...kidx] : [channel, c - feeds[0], ...kidx])
        : null);
      return {
        kind: "data",
        bands: shown.map((c) => ({ channel: c, weightChannel: w.kind === "transposed" ? c : c - feeds[0], inputValue: (coord) => at(input.data, [...pre(c), ...coord]), kernelValue: kernelValue(c) })),
        outputValue: (coord) => at(output.data, [...pre(channel), ...coord]),
        wDomain: wp?.summary ? [wp.summary.min, wp.summary.max] : null,
        note: feeds.length > shown.length ? `Showing ${shown.length} of the ${feeds.length} input channels this output channel reads.` : "",
      };
    }
    onNeedSlice({ batch, channel });
    return {
      kind: "pending",
      bands: shown.map((c) => ({ channel: c, inputValue: () => undefined, kernelValue: null })),
      outputValue: () => undefined,
      note: `Fetching the values of sample ${batch}, channel ${channel} (the tensors are too large to send whole)…`,
    };
  }

  function redraw() {
    const { w, hasBatch, n, cOut } = dims();
    const ui = getUi();
    const batch = Math.min(ui.batch || 0, n - 1);
    const channel = Math.min(ui.channel || 0, cOut - 1);
    const depth = w.spatial_dims === 3 ? Math.min(ui.depth || 0, w.output_spatial[0] - 1) : 0;
    const feeds = w.channel_map?.[channel] ?? (w.kind === "pool" ? [channel] : null) ?? [channel];
    fillSelect(el.batch, n, batch);
    el.batch.closest("label").hidden = !hasBatch || n <= 1;
    fillSelect(el.channel, cOut, channel);
    el.channel.closest("label").firstChild.textContent = w.kind === "pool" ? "channel " : "output channel ";
    el.channels.closest("figure").hidden = !w.channel_map;
    el.depth.closest("label").hidden = w.spatial_dims !== 3;
    if (el.exportDepths) el.exportDepths.hidden = w.spatial_dims !== 3;
    if (w.spatial_dims === 3) fillSelect(el.depth, w.output_spatial[0], depth);
    el.legendZero.hidden = w.kind !== "transposed";
    const padLegend = { "-inf": "padding (reads −∞)", excluded: "padding (excluded)", copy: `padding (${w.padding_mode} copy)` }[w.pad_value];
    el.legendPad.textContent = padLegend ?? (w.kind === "pool" ? "padding (0, counted)" : "padding (0)");

    const input = run.inputs[0];
    const output = run.output;
    const src = planeSource({ w, input, output, batch, channel, hasBatch, feeds });
    shownInput = src.bands[0]?.channel ?? 0;
    el.valuesNote.textContent = src.note;
    el.valuesNote.hidden = !src.note;
    root.dataset.values = src.kind;
    const width = Math.max(260, el.drawing.clientWidth || 600);
    // 2-D and 3-D windows draw one input channel at a time (the strip chooses; ui.inChannel).
    const band = Math.max(0, src.bands.findIndex((b) => b.channel === ui.inChannel));
    const stripFocused = !!document.activeElement?.closest?.("#win-drawing .chan-strip");
    drawing = createWindowDrawing(el.drawing, {
      win: w, width, depth, bands: src.bands, band, outputValue: src.outputValue, outChannel: channel,
      onBand: (b) => setUi({ inChannel: src.bands[b].channel }),
      colorIn: valueColor(src.inDomain ?? valueDomain(input)), colorOut: valueColor(src.outDomain ?? valueDomain(output)),
      colorW: valueColor(src.wDomain ?? [-1, 1]),
      names: { input: input.name || "input", output: output.name || "output" },
      paddingMode: request?.layer?.padding_mode,
      onPick: (coord) => onPick([...(hasBatch ? [batch] : []), channel, ...coord]),
      onCursor: (coord) => {
        timeline?.pause();
        timeline?.seek(outputToStep(w, coord));
      },
      onTermHover,
    });
    // The strip keeps the keyboard focus across the redraw its choice causes.
    if (stripFocused) el.drawing.querySelector(".chan-strip .thumb[aria-checked=true]")?.focus();
    shownInput = src.bands[drawing.layout.shown[0]]?.channel ?? shownInput;
    drawChannelMap(el.channels, w, {
      selected: channel, shownInput, isPool: w.kind === "pool",
      onSelect: (o) => setUi({ channel: o }),
    });
    const count = drawing.count;
    const keep = timeline ? Math.min(timeline.step, count - 1) : 0;
    const wasPlaying = timeline?.playing ?? false;
    timeline?.destroy();
    timeline = createTimeline({
      count,
      onStep: (s) => {
        drawing.showStep(s, motionMs());
        refreshControls();
      },
      onPlayState: refreshControls,
    });
    el.speed.value = String(uiSpeed());
    timeline.setSpeed(uiSpeed());
    timeline.setStride(sweepStride(w, count, fastChosen() ?? count > FAST_ABOVE));
    firstDraw = true;
    timeline.seek(keep);
    firstDraw = false;
    drawing.highlightTerm(null);
    const pinHere = pinned && samePlane(pinned, hasBatch, batch, channel, w, depth);
    drawing.pin(pinHere ? pinned.slice(hasBatch ? 2 : 1) : null, pinHere ? pinnedExplain : null);
    return wasPlaying;
  }

  // The result in one line next to the grid; the full arithmetic is in the panel below, which may
  // be out of view on a laptop screen.
  function showPinLine(index, explain) {
    const line = el.pinLine;
    if (!index || !explain) {
      line.hidden = true;
      line.replaceChildren();
      return;
    }
    const n = explain.terms?.length ?? 0;
    const what = { max: `max of ${n}`, avg: `mean of ${n} (÷${explain.divisor})`, lp: `Lp norm of ${n}` }[explain.operation] ?? `Σ of ${n} terms${explain.bias ? " + b" : ""}`;
    const a = document.createElement("a");
    a.href = "#explain-panel";
    a.textContent = "arithmetic ↓";
    line.replaceChildren(
      `${run?.output?.name || "output"}[${index.join(", ")}] = ${fmt(explain.value, 6)} · ${what} · `,
      Object.assign(document.createElement("strong"), { textContent: explain.match ? "✓ matches torch" : "✗ differs from torch", className: explain.match ? "ok" : "bad" }),
      " · ",
      a,
    );
    line.hidden = false;
  }

  function samePlane(index, hasBatch, batch, channel, w, depth) {
    const off = hasBatch ? 1 : 0;
    if (index.length !== off + 1 + w.spatial_dims) return false;
    if (hasBatch && index[0] !== batch) return false;
    if (index[off] !== channel) return false;
    return w.spatial_dims !== 3 || index[off + 1] === depth;
  }

  function describe(w) {
    const bits = [];
    if (w.kind === "transposed")
      bits.push("The transposed convolution drawn as a direct convolution: the input is stretched (zeros inserted between its cells by the stride) and padded, and the kernel slides over that frame with stride 1.");
    else if (w.kind === "pool") bits.push("The pooling window slides over each channel on its own.");
    else bits.push("The kernel slides over the padded input; each position gives one output element per output channel.");
    return bits.join(" ");
  }

  return {
    update(newRun, { layerType, request: req }) {
      run = newRun;
      request = req;
      const w = run.windows;
      if (!w || w.omitted) {
        root.hidden = !w?.omitted;
        timeline?.destroy();
        timeline = null;
        if (w?.omitted) {
          el.caption.textContent = `Sliding windows omitted: ${w.omitted}`;
          el.drawing.replaceChildren();
          el.channels.replaceChildren();
        }
        lastType = layerType;
        return;
      }
      root.hidden = false;
      el.caption.textContent = describe(w);
      const opened = layerType !== lastType;
      lastType = layerType;
      const wasPlaying = redraw();
      if ((opened && !reduceMotion && !pinned) || wasPlaying) timeline.play();
      refreshControls();
    },
    uiChanged() {
      if (!run?.windows || run.windows.omitted) return;
      const was = redraw();
      if (was) timeline.play();
      refreshControls();
    },
    // `follow`: the user pinned this element, so show its sample/channel/slice. A pin restored from
    // a link or a re-run keeps the channel the user chose (the ring shows only on its own plane).
    pin(index, explain, { follow = false } = {}) {
      pinned = index;
      pinnedExplain = explain;
      showPinLine(index, explain);
      if (!run?.windows || run.windows.omitted || !index) {
        drawing?.pin(null);
        return;
      }
      const { w, hasBatch } = dims();
      const off = hasBatch ? 1 : 0;
      const spatial = index.slice(off + 1);
      timeline?.pause();
      const ui = getUi();
      const want = { batch: hasBatch ? index[0] : 0, channel: index[off], depth: w.spatial_dims === 3 ? spatial[0] : ui.depth };
      if (follow && (want.batch !== (ui.batch || 0) || want.channel !== (ui.channel || 0) || want.depth !== (ui.depth || 0))) {
        setUi(want); // triggers uiChanged → redraw, which re-pins
      }
      const here = samePlane(index, hasBatch, getUi().batch || 0, getUi().channel || 0, w, getUi().depth || 0);
      if (here || follow) timeline?.seek(outputToStep(w, spatial));
      drawing?.pin(here || follow ? spatial : null, explain);
    },
    pause: () => timeline?.pause(),
    // A term of the pinned element's sum: show that element's window first, so the cell is its own.
    highlightTerm(t) {
      if (t !== null && t !== undefined && pinned && run?.windows && !run.windows.omitted && timeline) {
        const { w, hasBatch } = dims();
        const ui = getUi();
        if (samePlane(pinned, hasBatch, ui.batch || 0, ui.channel || 0, w, ui.depth || 0)) {
          const s = outputToStep(w, pinned.slice(hasBatch ? 2 : 1));
          if (timeline.step !== s) {
            timeline.pause();
            timeline.seek(s);
          }
        }
      }
      // A term on an input channel not drawn (one channel at a time): draw that channel.
      if (t !== null && t !== undefined && drawing?.layout.strip) {
        const b = drawing.bandOfTerm(t);
        const ch = drawing.layout.shown[0] === b ? null : el.drawing && drawing.layout.strip.thumbs[b] ? b : null;
        if (ch !== null) {
          const chan = Number(el.drawing.querySelector(`.chan-strip .thumb[data-band="${b}"]`)?.dataset.channel);
          if (Number.isFinite(chan)) setUi({ inChannel: chan });
        }
      }
      drawing?.highlightTerm(t);
    },
    // The window_slice the next /api/run should ask for.
    slice() {
      const ui = getUi();
      return { batch: ui.batch || 0, channel: ui.channel || 0 };
    },
    // The window_slice of an exported animation: the plane shown, and for 3-D windows the output
    // depth slice shown (or every slice, when the Export menu's box is ticked).
    animationSlice() {
      const ui = getUi();
      const out = { batch: ui.batch || 0, channel: ui.channel || 0 };
      const w = run?.windows;
      if (w && !w.omitted && w.spatial_dims === 3)
        out.depth = el.exportAllDepths?.checked ? "all" : Math.min(ui.depth || 0, w.output_spatial[0] - 1);
      return out;
    },
    get timeline() {
      return timeline;
    },
    get svg() {
      return el.drawing.querySelector("svg");
    },
  };
}

// [min, max] of the finite values of a nested list, walked in place (a 3×64×64 slice would cost a
// flattened copy, and the garbage collection after it, on every edit).
function domainOf(nested) {
  let lo = Infinity;
  let hi = -Infinity;
  const walk = (a) => {
    if (Array.isArray(a)) {
      for (const x of a) walk(x);
      return;
    }
    const v = toNumber(a);
    if (!Number.isFinite(v)) return;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  };
  walk(nested);
  return lo <= hi ? [lo, hi] : [-1, 1];
}

function maybe(v) {
  return v === undefined ? undefined : toNumber(v);
}
