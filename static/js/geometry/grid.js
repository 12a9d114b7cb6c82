// Grids drawn on a <canvas> instead of one SVG element per cell: when to, which cell lies under a
// point (hit-testing by geometry, since a canvas has no elements to receive events), and how to
// split the painting into pieces short enough that no task blocks the main thread for long.
// No DOM, no d3.

// Past this many cells in one drawing, cells go on a canvas: a few thousand SVG nodes cost a
// long task (16,000 cost 0.3–0.8 s for Conv2d on 64×64), a canvas a few milliseconds.
export const CANVAS_ABOVE = 1024;

// Cells painted per task: about 5–15 ms of colour look-ups and fills on a slow machine.
export const CHUNK_CELLS = 2048;

export function useCanvas(cellCount, threshold = CANVAS_ABOVE) {
  return cellCount > threshold;
}

// The cell of a grid {x, y, rows, cols, cell} under the point (x, y), or null outside it.
// Right and bottom edges belong to the next cell, as with SVG rectangles.
export function cellAt(grid, x, y) {
  const c = Math.floor((x - grid.x) / grid.cell);
  const r = Math.floor((y - grid.y) / grid.cell);
  if (!(r >= 0 && r < grid.rows && c >= 0 && c < grid.cols)) return null;
  return { r, c };
}

// The top-left corner of cell (r, c).
export function cellOrigin(grid, r, c) {
  return { x: grid.x + c * grid.cell, y: grid.y + r * grid.cell };
}

// Sliding-window layout (geometry/windows.js frameLayout) → the frame plane and cell under a point.
// Returns {plane, band, z, r, c, coord} (coord: the frame coordinate the SVG cell would carry).
export function frameHit(layout, x, y) {
  for (let i = 0; i < layout.frames.length; i++) {
    const f = layout.frames[i];
    const hit = cellAt({ x: f.x, y: f.y, rows: f.rows, cols: f.cols, cell: layout.cell }, x, y);
    if (hit) return { plane: i, band: f.band, z: f.z, ...hit, coord: frameCoord(layout, f, hit.r, hit.c) };
  }
  return null;
}

// Frame coordinate of cell (r, c) of plane `f`: [c] in 1-D, [r, c] in 2-D, [z, r, c] in 3-D.
export function frameCoord(layout, f, r, c) {
  if (layout.sd === 1) return [c];
  if (layout.sd === 2) return [r, c];
  return [f.z, r, c];
}

// The output coordinate under a point, or null: [c], [r, c] or [depth, r, c].
export function outputHit(layout, x, y, depth = 0) {
  const o = layout.output;
  const hit = cellAt({ x: o.x, y: o.y, rows: o.rows, cols: o.cols, cell: layout.cell }, x, y);
  if (!hit) return null;
  return { ...hit, coord: outputCoord(layout, hit.r, hit.c, depth) };
}

export function outputCoord(layout, r, c, depth = 0) {
  if (layout.sd === 1) return [c];
  if (layout.sd === 2) return [r, c];
  return [depth, r, c];
}

// Heatmap layout (geometry/heatmap.js heatmapLayout) → {slice, r, c} under a point, or null.
export function heatmapHit(layout, x, y) {
  for (let i = 0; i < layout.placed.length; i++) {
    const s = layout.placed[i];
    const hit = cellAt({ x: s.x, y: s.y, rows: s.rows, cols: s.cols, cell: layout.cell }, x, y);
    if (hit) return { slice: i, ...hit };
  }
  return null;
}

// Rows [from, to) of a grid of `cols` columns, in pieces of about `chunk` cells (at least a row each).
export function rowChunks(rows, cols, chunk = CHUNK_CELLS) {
  const per = Math.max(1, Math.floor(chunk / Math.max(1, cols)));
  const out = [];
  for (let r = 0; r < rows; r += per) out.push([r, Math.min(rows, r + per)]);
  return out;
}
