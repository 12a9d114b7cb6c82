// Receptive-field grids, pure: a node's mask (0/1) or effective heat (0..1) as the grid of its last
// two dimensions, the leading ones folded (any / max), and the cell ↔ index mapping of the grid an
// element is picked from. No DOM. The API sends masks as run lengths and heat maps as PNG images
// (docs/API.md); `gridFromRuns` decodes the first, `gridFromLevels` reads the second's pixels.

// SVG_CELLS: up to this many cells a grid is SVG rects (one per cell, hit-testable); a larger one is
// painted as an image.
export const RF = { MAX_W: 252, MAX_CELL: 16, MIN_CELL: 2, SVG_CELLS: 4096 };

// Run lengths (0s, 1s, 0s, ... in C order, the first run of 0s possibly empty) -> 0/1 values.
export function unrle(lengths, n) {
  const out = new Float32Array(n);
  let at = 0;
  for (let i = 0; i < lengths.length; i++) {
    const len = lengths[i];
    if (i % 2 === 1) out.fill(1, at, Math.min(n, at + len));
    at += len;
  }
  return out;
}

// The API's structural grid {shape: [rows, cols], rle} as a grid to draw.
export function gridFromRuns(grid) {
  const [rows, cols] = grid.shape;
  return { rows, cols, values: unrle(grid.rle, rows * cols) };
}

// An effective grid's PNG pixels (one grey level per cell, 255 at the node's maximum, RGBA as a canvas
// reads them) as a grid of 0..1 values.
export function gridFromLevels(shape, rgba) {
  const [rows, cols] = shape;
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < values.length; i++) values[i] = rgba[4 * i] / 255;
  return { rows, cols, values };
}

// [rows, cols] of the grid a shape is drawn as: its last two dimensions (one row for a vector).
export function gridDims(shape) {
  if (!Array.isArray(shape) || !shape.length) return [1, 1];
  if (shape.length === 1) return [1, shape[0]];
  return [shape[shape.length - 2], shape[shape.length - 1]];
}

export function cellSize(rows, cols) {
  return Math.max(RF.MIN_CELL, Math.min(RF.MAX_CELL, Math.floor(RF.MAX_W / Math.max(cols, 1)), Math.floor(RF.MAX_W / Math.max(rows, 1))));
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
