// Receptive-field grids, pure: a node's mask (0/1) or effective heat (0..1) as the grid of its last
// two dimensions, the leading ones folded (any / max), and the cell ↔ index mapping of the grid an
// element is picked from. No DOM.

export const RF = { MAX_W: 252, MAX_CELL: 16, MIN_CELL: 2 };

// [rows, cols] of the grid a shape is drawn as: its last two dimensions (one row for a vector).
export function gridDims(shape) {
  if (!Array.isArray(shape) || !shape.length) return [1, 1];
  if (shape.length === 1) return [1, shape[0]];
  return [shape[shape.length - 2], shape[shape.length - 1]];
}

export function cellSize(rows, cols) {
  return Math.max(RF.MIN_CELL, Math.min(RF.MAX_CELL, Math.floor(RF.MAX_W / Math.max(cols, 1)), Math.floor(RF.MAX_W / Math.max(rows, 1))));
}

// Fold a nested list down to its last two dimensions with `fold` (max of values: 0/1 masks become "any").
export function foldToGrid(nested, shape) {
  const [rows, cols] = gridDims(shape);
  const out = new Float32Array(rows * cols);
  const lead = shape.length > 2 ? shape.length - 2 : 0;
  function visit(node, depth) {
    if (depth === lead) {
      const m = shape.length === 1 ? [node] : node;
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
        const v = Number(m[r][c]) || 0;
        if (v > out[r * cols + c]) out[r * cols + c] = v;
      }
      return;
    }
    for (const child of node) visit(child, depth + 1);
  }
  visit(nested, 0);
  return { rows, cols, values: out, folded: shape.slice(0, lead) };
}

// The full index of the cell (r, c) of the picker grid, with the leading dimensions fixed at `lead`.
export function cellIndex(shape, lead, r, c) {
  if (shape.length === 1) return [c];
  return [...lead.slice(0, shape.length - 2), r, c];
}

export function gridCaption(shape) {
  const names = shape.length >= 4 ? ["N", "C", "D"].slice(0, shape.length - 2) : shape.length === 3 ? ["N"] : [];
  return names.length ? `any over ${names.join(", ")}` : "";
}
