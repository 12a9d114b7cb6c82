// Turns an API tensor (full `data`, or a strided `preview` of a large one) into 2-D slices for
// heatmaps: the last two axes form a matrix, leading axes enumerate the slices.

import { toNumber, prod, unravel, flatten } from "../util/format.js";

export function tensorValues(t) {
  if (t.data !== null && t.data !== undefined) return { values: t.data, step: null, full: true };
  if (t.preview !== null && t.preview !== undefined) return { values: t.preview, step: t.preview_step || null, full: false };
  return { values: null, step: null, full: false };
}

function shapeOfNested(v) {
  const s = [];
  while (Array.isArray(v)) {
    s.push(v.length);
    v = v[0];
  }
  return s;
}

export function tensorSlices(t, { maxSlices = 8 } = {}) {
  const { values, step, full } = tensorValues(t);
  if (values === null) return { slices: [], total: 0, full, step };
  const shape = shapeOfNested(values);
  if (shape.length === 0) return { slices: [{ prefix: [], rows: 1, cols: 1, get: () => toNumber(values), index: () => [] }], total: 1, full, step, shape };
  const lead = shape.slice(0, -2);
  const rows = shape.length >= 2 ? shape[shape.length - 2] : 1;
  const cols = shape[shape.length - 1];
  const total = prod(lead);
  const count = Math.min(total, maxSlices);
  const slices = [];
  for (let s = 0; s < count; s++) {
    const prefix = lead.length ? unravel(s, lead) : [];
    let m = values;
    for (const i of prefix) m = m[i];
    const get = shape.length === 1 ? (r, c) => toNumber(m[c]) : (r, c) => toNumber(m[r][c]);
    // Index into the real tensor: a preview cell stands for every step-th element.
    const index = (r, c) => {
      const local = shape.length === 1 ? [...prefix, c] : [...prefix, r, c];
      return step ? local.map((v, d) => v * (step[d] || 1)) : local;
    };
    slices.push({ prefix, rows, cols, get, index });
  }
  return { slices, total, full, step, shape };
}

export function valueDomain(t) {
  const s = t.summary;
  if (s && Number.isFinite(toNumber(s.min)) && Number.isFinite(toNumber(s.max))) {
    const m = Math.max(Math.abs(toNumber(s.min)), Math.abs(toNumber(s.max)));
    return [-m || -1, m || 1];
  }
  const { values } = tensorValues(t);
  const flat = values === null ? [] : flatten(values).map(toNumber).filter(Number.isFinite);
  const m = flat.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  return [-m || -1, m || 1];
}

export function heatmapLayout(sliceInfo, { width, maxCell = 40, minCell = 3, maxHeight = 240, gap = 14 }) {
  const { slices } = sliceInfo;
  if (!slices.length) return { cell: 0, placed: [], width: 0, height: 0 };
  const { rows, cols } = slices[0];
  const n = slices.length;
  // Try 1..n slices per row and keep the biggest cell that fits both width and height.
  // Ties (everything at the minimum size) go to more slices per row: shorter, same detail.
  let best = null;
  for (let perRow = 1; perRow <= n; perRow++) {
    const lines = Math.ceil(n / perRow);
    const byW = (width - (perRow - 1) * gap - 4) / (perRow * cols);
    if (perRow > 1 && byW < minCell) break;
    const byH = (maxHeight - lines * 18 - (lines - 1) * gap) / (lines * rows);
    const cell = Math.min(maxCell, byW, Math.max(byH, minCell));
    if (!best || cell > best.cell + 0.01 || (Math.abs(cell - best.cell) <= 0.01 && byW >= minCell)) best = { cell, perRow };
  }
  const cell = Math.max(minCell, Math.floor(best.cell * 2) / 2);
  const labelH = n > 1 || slices[0].prefix.length ? 16 : 0;
  const placed = slices.map((s, i) => {
    const col = i % best.perRow;
    const line = Math.floor(i / best.perRow);
    return { ...s, x: 2 + col * (cols * cell + gap), y: line * (rows * cell + labelH + gap) + labelH };
  });
  const lines = Math.ceil(n / best.perRow);
  return {
    cell,
    placed,
    width: 4 + Math.min(n, best.perRow) * cols * cell + (Math.min(n, best.perRow) - 1) * gap,
    height: lines * (rows * cell + labelH) + (lines - 1) * gap + 2,
  };
}
