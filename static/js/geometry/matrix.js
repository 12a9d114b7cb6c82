// Equation layouts for the matrix families: every matrix is drawn to proportion with one shared
// cell size, laid out left to right exactly as the formula is written.

const TITLE_H = 40; // name line + column-dimension line above each matrix
const ROW_LABEL_W = 24; // row-dimension label left of each matrix
const OP_W = 32;
const STACK_STEP = 5;
const MAX_STACK_SHOWN = 4;

const STACK_LABEL_W = 48; // room for the "× N=2" label beside a stack
const stackCount = (it) => Math.min(Math.max((it.stack || 1) - 1, 0), MAX_STACK_SHOWN);

function lineMetrics(items, width, margin) {
  const mats = items.filter((it) => it.kind === "matrix");
  const ops = items.filter((it) => it.kind === "op");
  const colUnits = mats.reduce((a, m) => a + m.cols, 0);
  const fixedW = margin * 2 + ops.length * OP_W + mats.reduce((a, m) => a + ROW_LABEL_W + stackCount(m) * STACK_STEP + 6 + (m.stackLabel && m.stack > 1 ? STACK_LABEL_W : 0), 0);
  return {
    byWidth: (width - fixedW) / Math.max(colUnits, 1),
    maxRows: Math.max(...mats.map((m) => m.rows), 1),
    maxStack: Math.max(...mats.map((m) => stackCount(m) * STACK_STEP), 0),
  };
}

// Ways to cut the equation into lines, always just before an operator ("= y" moves down whole).
function splits(items, maxLines) {
  const cuts = items.map((it, i) => (it.kind === "op" && i > 0 ? i : -1)).filter((i) => i > 0);
  const out = [[items]];
  const cutAt = (points) => {
    const lines = [];
    let from = 0;
    for (const p of points) {
      lines.push(items.slice(from, p));
      from = p;
    }
    lines.push(items.slice(from));
    return lines;
  };
  if (maxLines >= 2) for (const a of cuts) out.push(cutAt([a]));
  if (maxLines >= 3) for (const a of cuts) for (const b of cuts) if (b > a + 1) out.push(cutAt([a, b]));
  return out;
}

// items: [{kind: "matrix", id, rows, cols, stack?}, {kind: "op", text}, ...]. One line when the
// cells stay readable; on a narrow screen the equation wraps before an operator instead of
// shrinking every matrix to a smudge.
export function equationLayout(items, { width, maxHeight = 360, maxCell = 30, minCell = 0.5, margin = 10, readable = 8 }) {
  let best = null;
  for (const lines of splits(items, 3)) {
    const ms = lines.map((l) => lineMetrics(l, width, margin));
    const perLineH = maxHeight / (lines.length === 1 ? 1 : 1.25);
    const cell = Math.max(
      minCell,
      Math.min(maxCell, ...ms.map((m) => m.byWidth), ...ms.map((m) => (perLineH - TITLE_H - m.maxStack - 30) / m.maxRows)),
    );
    // Readable in one line beats bigger in two; below readable, the bigger cells win.
    const score = cell >= readable ? 1000 - lines.length + cell / 1000 : cell;
    if (!best || score > best.score + 1e-9) best = { lines, ms, cell, score };
  }
  const { cell } = best;
  let top = margin;
  const placed = [];
  let right = 0;
  for (let li = 0; li < best.lines.length; li++) {
    const line = best.lines[li];
    const m = best.ms[li];
    const bodyH = m.maxRows * cell;
    const mid = top + TITLE_H + m.maxStack + bodyH / 2;
    let x = margin;
    for (const it of line) {
      if (it.kind === "op") {
        placed.push({ ...it, x: x + OP_W / 2, y: mid });
        x += OP_W;
        continue;
      }
      x += ROW_LABEL_W;
      const w = it.cols * cell;
      // A one-row vector at sub-pixel cells would vanish; keep every matrix visible.
      const h = Math.max(it.rows * cell, 4);
      placed.push({ ...it, x, y: mid - h / 2, w, h, stackShown: stackCount(it), stackStep: STACK_STEP, line: li });
      x += w + stackCount(it) * STACK_STEP + 6 + (it.stackLabel && it.stack > 1 ? STACK_LABEL_W : 0);
    }
    right = Math.max(right, x + margin);
    top = mid + bodyH / 2 + 34;
  }
  return { cell, items: placed, width: right, height: top, lines: best.lines.length };
}

export function cellRect(item, r, c, cell) {
  return { x: item.x + c * cell, y: item.y + r * cell, w: cell, h: cell };
}

// Which cell of a drawn matrix a point falls in (for matrices too large to draw cell by cell).
export function cellAt(item, px, py, cell) {
  const c = Math.floor((px - item.x) / cell);
  const r = Math.floor((py - item.y) / cell);
  if (r < 0 || c < 0 || r >= item.rows || c >= item.cols) return null;
  return { r, c };
}

// Matrices past this many cells are drawn as one rectangle: thousands of SVG nodes per matrix
// make editing sluggish and the individual cells are sub-pixel anyway.
export const MAX_DRAWN_CELLS = 12000;
