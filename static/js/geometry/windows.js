// Layout for the sliding-window animation. Every position comes from the API's `windows` field
// (computed by torch itself); this module only arranges those positions on a grid of cells.

import { prod, unravel, ravel } from "../util/format.js";

// Each frame cell is an input cell, padding, or (transposed conv) a zero inserted between inputs.
export function frameCellRole(coord, win) {
  // ceil_mode: the last window may hang past the (padded) input; frame_map says −2 there
  if (win.outside && coord.some((c, d) => win.frame_map?.[d]?.[c] === -2)) return "outside";
  const { input_origin: origin, input_step: step } = win.frame;
  let inside = true;
  let onGrid = true;
  for (let d = 0; d < coord.length; d++) {
    const rel = coord[d] - origin[d];
    const span = (win.input_spatial[d] - 1) * step[d];
    if (rel < 0 || rel > span) inside = false;
    else if (rel % step[d] !== 0) onGrid = false;
  }
  if (!inside) return "padding";
  return onGrid ? "input" : "zero";
}

// Whether the frame has padding around the input: the ceil_mode overhang past its end (frame_map −2)
// is not padding, torch reads nothing there.
export function hasPadding(win) {
  return win.padding.some((p, d) => p[0] > 0 || p[1] - (win.frame_map?.[d]?.filter((v) => v === -2).length ?? 0) > 0);
}

export function frameToInput(coord, win) {
  const { input_origin: origin, input_step: step } = win.frame;
  return coord.map((c, d) => (c - origin[d]) / step[d]);
}

export function stepCount(win, depth = null) {
  const out = win.output_spatial;
  if (win.spatial_dims === 3 && depth !== null) return out[1] * out[2];
  return prod(out);
}

// Output spatial coordinate shown at animation step `s` (for 3-D: within output depth `depth`).
export function stepToOutput(win, s, depth = 0) {
  if (win.spatial_dims === 3) return [depth, ...unravel(s, win.output_spatial.slice(1))];
  return unravel(s, win.output_spatial);
}

export function outputToStep(win, outCoord) {
  if (win.spatial_dims === 3) return ravel(outCoord.slice(1), win.output_spatial.slice(1));
  return ravel(outCoord, win.output_spatial);
}

// The API describes the windows compactly: output element o's window slot k (row-major over the
// kernel's shape) sits at frame coordinate o·window_step + unravel(k)·dilation, and frame coordinate
// f reads input coordinate frame_map[d][f] along each dimension d (−1: padding or an inserted zero,
// −2: past the padded input). These expand it, one window at a time.
export function windowAt(win, outCoord) {
  if (!win.window_step || outCoord.length !== win.window_step.length) return [];
  const K = prod(win.kernel);
  const cells = [];
  for (let k = 0; k < K; k++) {
    const kidx = unravel(k, win.kernel);
    cells.push(kidx.map((kd, d) => outCoord[d] * win.window_step[d] + kd * win.dilation[d]));
  }
  return cells;
}

// Input coordinate under frame cell `coord` (padding copies included), or null for padding / zeros.
export function frameSource(win, coord) {
  const src = coord.map((c, d) => win.frame_map?.[d]?.[c] ?? -1);
  return src.some((v) => v < 0) ? null : src;
}

export function windowSrc(win, outCoord) {
  return windowAt(win, outCoord).map((c) => frameSource(win, c));
}

// Padding cells that repeat an input element (reflect / replicate / circular): "f0,f1" → input coordinate.
export function frameCopies(win) {
  const copies = new Map();
  if (win.pad_value !== "copy" || !win.frame_map) return copies;
  const readable = win.frame_map.map((m) => m.flatMap((v, f) => (v >= 0 ? [f] : [])));
  const walk = (prefix) => {
    const d = prefix.length;
    if (d === readable.length) {
      if (frameCellRole(prefix, win) === "padding") copies.set(prefix.join(","), frameSource(win, prefix));
      return;
    }
    for (const f of readable[d]) walk([...prefix, f]);
  };
  walk([]);
  return copies;
}

// Input depth planes (3-D) that output depth slice `depth` reads, in order.
export function depthPlanes(win, depth) {
  const zs = [];
  for (let k = 0; k < win.kernel[0]; k++) zs.push(depth * win.window_step[0] + k * win.dilation[0]);
  return [...new Set(zs)].sort((a, b) => a - b);
}

// Grid geometry. 1-D frames are a single row; 2-D frames rows × columns; 3-D frames show the
// depth planes the chosen output slice reads, side by side. `bands` input channels (every channel
// that feeds the output channel) are stacked one under another, each with its kernel slice beside
// it (1-D and 2-D), so the picture holds every term of the sum.
export function frameLayout(win, { width, maxCell = 34, minCell = 6, depth = 0, bands = 1, kernel = false, maxHeight = 240 }) {
  const sd = win.spatial_dims;
  const fs = win.frame.shape;
  const os = win.output_spatial;
  let planes = [null];
  if (sd === 3) {
    planes = depthPlanes(win, depth);
    if (!planes.length) planes = [0];
  }
  const rows = sd === 1 ? 1 : fs[sd - 2];
  const cols = fs[sd - 1];
  const outRows = sd === 1 ? 1 : os[sd - 2];
  const outCols = os[sd - 1];
  const kShape = kernel && sd <= 2 ? (sd === 1 ? [1, win.kernel[0]] : win.kernel) : null;
  const kRows = kShape ? kShape[0] : 0;
  const kCols = kShape ? kShape[1] : 0;
  const gap = 28;
  const planeGap = 14;
  const kGap = kShape ? 22 : 0;
  const arrowW = 40;
  const bandGap = bands > 1 ? 24 : 0;
  const nPlanes = planes.length;
  // Frame planes, kernel slices and the output grid share one cell size so their proportions can be compared.
  const units = nPlanes * cols + kCols + outCols;
  const fixed = (nPlanes - 1) * planeGap + kGap + arrowW + gap * 2;
  let cell = Math.floor((width - fixed) / Math.max(units, 1));
  let stacked = false;
  // Stacked channels are capped by height anyway: side by side as long as cells stay ≥ 4 px.
  const sideMin = bands > 1 ? 4 : minCell * 1.6;
  if (cell < sideMin && sd !== 1) {
    // Too narrow side by side: output goes below the frame.
    stacked = true;
    cell = Math.floor((width - (nPlanes - 1) * planeGap - kGap - gap) / Math.max(nPlanes * cols + kCols, outCols, 1));
  }
  // Several stacked channels share a height budget, so the output stays in view beside them.
  if (bands > 1) cell = Math.min(cell, Math.floor((maxHeight - (bands - 1) * bandGap) / (bands * Math.max(rows, kRows))));
  const floor = bands > 1 ? Math.min(minCell, 4) : minCell;
  cell = Math.max(floor, Math.min(maxCell, cell));
  const top = 30;
  const frameW = nPlanes * cols * cell + (nPlanes - 1) * planeGap;
  const frameH = rows * cell;
  const bandH = Math.max(frameH, kRows * cell) + bandGap;
  const frames = [];
  const kernels = [];
  for (let b = 0; b < bands; b++) {
    const y = top + b * bandH;
    planes.forEach((z, i) => frames.push({ band: b, z, x: gap / 2 + i * (cols * cell + planeGap), y, rows, cols }));
    if (kShape) kernels.push({ band: b, x: gap / 2 + frameW + kGap, y, rows: kRows, cols: kCols });
  }
  const blockW = frameW + (kShape ? kGap + kCols * cell : 0);
  const blockH = bands * bandH - bandGap;
  let output;
  if (stacked) output = { x: gap / 2, y: top + blockH + 48, rows: outRows, cols: outCols };
  else output = { x: gap / 2 + blockW + arrowW + gap, y: top, rows: outRows, cols: outCols };
  const w = Math.max(gap / 2 + blockW, output.x + outCols * cell) + gap / 2;
  const h = Math.max(top + blockH, output.y + outRows * cell) + 34;
  return { cell, frames, kernels, nPlanes, output, width: w, height: h, stacked, rows, cols, sd, bands };
}

// Frame coordinate → (plane index, row, col) within frameLayout's planes.
// `band` picks the stacked input channel; `plane` indexes layout.frames.
export function placeFrameCoord(coord, layout, band = 0) {
  const base = band * (layout.nPlanes ?? 1);
  if (layout.sd === 1) return { plane: base, r: 0, c: coord[0] };
  if (layout.sd === 2) return { plane: base, r: coord[0], c: coord[1] };
  const i = layout.frames.slice(base, base + (layout.nPlanes ?? layout.frames.length)).findIndex((f) => f.z === coord[0]);
  return { plane: i < 0 ? -1 : base + i, r: coord[1], c: coord[2] };
}

// Kernel element (its index in the weight, e.g. [kh, kw]) → row and column of the kernel grid.
export function placeKernelIndex(kidx, layout) {
  return layout.sd === 1 ? { r: 0, c: kidx[0] } : { r: kidx[0], c: kidx[1] };
}

// Fast mode: one step per output row (the window sweeps a row at a time); the last step is the last cell.
export function sweepStride(win, stepTotal, fast) {
  if (!fast) return 1;
  const cols = win.output_spatial[win.spatial_dims - 1];
  return stepTotal > cols ? cols : Math.max(1, Math.ceil(stepTotal / 8));
}

// Relative luminance of "#rrggbb" or "rgb(r, g, b)": dark fills get white text.
export function textOn(fill) {
  let rgb = null;
  const hex = /^#([0-9a-f]{6})$/i.exec(fill || "");
  if (hex) rgb = [0, 2, 4].map((i) => parseInt(hex[1].slice(i, i + 2), 16));
  const m = /rgb\((\d+),\s*(\d+),\s*(\d+)\)/.exec(fill || "");
  if (m) rgb = m.slice(1, 4).map(Number);
  if (!rgb) return "#0f172a";
  const [r, g, b] = rgb.map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  // contrast against white vs against near-black (#0f172a, luminance ≈ 0.0089)
  return (1.05 / (lum + 0.05)) >= ((lum + 0.05) / 0.0589) ? "#ffffff" : "#0f172a";
}

// Font size that fits `text` in a cell of `cell` px (monospace-ish digits ≈ 0.6 em wide).
export function fitFont(text, cell, max = 11) {
  const n = Math.max(1, String(text).length);
  return Math.max(6, Math.min(max, Math.floor(((cell - 4) / (n * 0.6)) * 10) / 10));
}

export function placeOutputCoord(coord, layout) {
  if (layout.sd === 1) return { r: 0, c: coord[0] };
  if (layout.sd === 2) return { r: coord[0], c: coord[1] };
  return { r: coord[1], c: coord[2] };
}

// The frame cells of one plane with their roles; 3-D planes pass their depth `z`.
export function frameCells(win, plane) {
  const sd = win.spatial_dims;
  const fs = win.frame.shape;
  const rows = sd === 1 ? 1 : fs[sd - 2];
  const cols = fs[sd - 1];
  const cells = [];
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const coord = sd === 1 ? [c] : sd === 2 ? [r, c] : [plane.z, r, c];
      cells.push({ r, c, coord, role: frameCellRole(coord, win) });
    }
  return cells;
}

// The channel map as a bipartite layout: input channels left, output channels right.
export function channelLayout(channelMap, cIn, { width = 170, maxRow = 18, minRow = 6, maxChannels = 64 } = {}) {
  const cOut = channelMap.length;
  if (cIn > maxChannels || cOut > maxChannels) return null;
  const n = Math.max(cIn, cOut, 1);
  const row = Math.max(minRow, Math.min(maxRow, Math.floor(260 / n)));
  const top = 26;
  const xIn = 40;
  const xOut = width - 40;
  const yOf = (i, count) => top + (i + 0.5) * row + ((n - count) * row) / 2;
  const ins = Array.from({ length: cIn }, (_, i) => ({ i, x: xIn, y: yOf(i, cIn) }));
  const outs = Array.from({ length: cOut }, (_, o) => ({ o, x: xOut, y: yOf(o, cOut) }));
  const links = [];
  channelMap.forEach((srcs, o) => srcs.forEach((i) => links.push({ i, o })));
  return { ins, outs, links, row, width, height: top + n * row + 12 };
}

// Which group an output channel belongs to, from the channel map (contiguous blocks in torch).
export function groupOf(channelMap, o, groups) {
  if (!groups || groups <= 1) return 0;
  return Math.floor(o / Math.max(1, channelMap.length / groups));
}
