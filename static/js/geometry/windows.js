// Layout for the sliding-window animation. Every position comes from the API's `windows` field
// (computed by torch itself); this module only arranges those positions on a grid of cells.

import { prod, unravel, ravel } from "../util/format.js";

// Each frame cell is an input cell, padding, or (transposed conv) a zero inserted between inputs.
export function frameCellRole(coord, win) {
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

export function windowAt(win, outCoord) {
  let v = win.at;
  for (const i of outCoord) v = v?.[i];
  return Array.isArray(v) ? v : [];
}

export function windowSrc(win, outCoord) {
  let v = win.src;
  for (const i of outCoord) v = v?.[i];
  return Array.isArray(v) ? v : [];
}

// Grid geometry. 1-D frames are a single row; 2-D frames rows × columns; 3-D frames show the
// depth planes the chosen output slice reads, side by side.
export function frameLayout(win, { width, maxCell = 34, minCell = 6, depth = 0 }) {
  const sd = win.spatial_dims;
  const fs = win.frame.shape;
  const os = win.output_spatial;
  let planes = [null];
  if (sd === 3) {
    const zs = new Set();
    const outPlane = win.at?.[depth] || [];
    for (const row of outPlane) for (const cell of row) for (const c of cell) zs.add(c[0]);
    planes = [...zs].sort((a, b) => a - b);
    if (!planes.length) planes = [0];
  }
  const rows = sd === 1 ? 1 : fs[sd - 2];
  const cols = fs[sd - 1];
  const outRows = sd === 1 ? 1 : os[sd - 2];
  const outCols = os[sd - 1];
  const gap = 28;
  const planeGap = 14;
  const arrowW = 40;
  const nPlanes = planes.length;
  // Frame planes and output grid share one cell size so their proportions can be compared.
  const units = nPlanes * cols + outCols;
  const fixed = (nPlanes - 1) * planeGap + arrowW + gap * 2;
  let cell = Math.floor((width - fixed) / Math.max(units, 1));
  let stacked = false;
  if (cell < minCell * 1.6 && sd !== 1) {
    // Too narrow side by side: output goes below the frame.
    stacked = true;
    cell = Math.floor((width - (nPlanes - 1) * planeGap - gap) / Math.max(nPlanes * cols, outCols, 1));
  }
  cell = Math.max(minCell, Math.min(maxCell, cell));
  const top = 30;
  const frames = planes.map((z, i) => ({ z, x: gap / 2 + i * (cols * cell + planeGap), y: top, rows, cols }));
  const frameW = nPlanes * cols * cell + (nPlanes - 1) * planeGap;
  const frameH = rows * cell;
  let output;
  if (stacked) output = { x: gap / 2, y: top + frameH + 48, rows: outRows, cols: outCols };
  else output = { x: gap / 2 + frameW + arrowW + gap, y: top, rows: outRows, cols: outCols };
  const w = Math.max(frames[frames.length - 1].x + cols * cell, output.x + outCols * cell) + gap / 2;
  const h = Math.max(top + frameH, output.y + outRows * cell) + 34;
  return { cell, frames, output, width: w, height: h, stacked, rows, cols, sd };
}

// Frame coordinate → (plane index, row, col) within frameLayout's planes.
export function placeFrameCoord(coord, layout) {
  if (layout.sd === 1) return { plane: 0, r: 0, c: coord[0] };
  if (layout.sd === 2) return { plane: 0, r: coord[0], c: coord[1] };
  const plane = layout.frames.findIndex((f) => f.z === coord[0]);
  return { plane, r: coord[1], c: coord[2] };
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
