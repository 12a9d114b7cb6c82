// Equation layouts for the matrix families: every matrix is drawn to proportion with one shared
// cell size, laid out left to right exactly as the formula is written.

const TITLE_H = 40; // name line + column-dimension line above each matrix
const ROW_LABEL_W = 24; // row-dimension label left of each matrix
const OP_W = 32;
const STACK_STEP = 5;
const MAX_STACK_SHOWN = 4;

// items: [{kind: "matrix", id, rows, cols, stack?}, {kind: "op", text}, ...]
export function equationLayout(items, { width, maxHeight = 360, maxCell = 30, minCell = 0.5, margin = 10 }) {
  const mats = items.filter((it) => it.kind === "matrix");
  const ops = items.filter((it) => it.kind === "op");
  const stackPx = (it) => Math.min(Math.max((it.stack || 1) - 1, 0), MAX_STACK_SHOWN) * STACK_STEP;
  const colUnits = mats.reduce((a, m) => a + m.cols, 0);
  const fixedW = margin * 2 + ops.length * OP_W + mats.reduce((a, m) => a + ROW_LABEL_W + stackPx(m) + 6 + ((m.stack || 1) > 1 ? 48 : 0), 0);
  const maxRows = Math.max(...mats.map((m) => m.rows), 1);
  const maxStack = Math.max(...mats.map(stackPx), 0);
  const byWidth = (width - fixedW) / Math.max(colUnits, 1);
  const byHeight = (maxHeight - TITLE_H - maxStack - 30) / maxRows;
  const cell = Math.max(minCell, Math.min(maxCell, byWidth, byHeight));
  const bodyH = maxRows * cell;
  const mid = margin + TITLE_H + maxStack + bodyH / 2;
  let x = margin;
  const placed = items.map((it) => {
    if (it.kind === "op") {
      const p = { ...it, x: x + OP_W / 2, y: mid };
      x += OP_W;
      return p;
    }
    const sp = stackPx(it);
    x += ROW_LABEL_W;
    const w = it.cols * cell;
    const h = it.rows * cell;
    const p = { ...it, x, y: mid - h / 2, w, h, stackShown: Math.min(Math.max((it.stack || 1) - 1, 0), MAX_STACK_SHOWN), stackStep: STACK_STEP };
    // Room for the "× N=2" label beside a stack.
    x += w + sp + 6 + ((it.stack || 1) > 1 ? 48 : 0);
    return p;
  });
  const height = mid + bodyH / 2 + 34;
  return { cell, items: placed, width: Math.max(x + margin, 0), height, mid };
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
