// The dataflow graph's viewport: what a layout covers, and the zoom transforms that fit it, show it
// from the top, or centre one node. Pure: no DOM. A transform is d3-zoom's {k, x, y}: a drawing
// point p lands at (x + k·p.x, y + k·p.y) in the viewport.

import { FLOW } from "./dataflow.js";

export const ZOOM = { MIN: 0.01, MAX: 4, STEP: 1.25, PAN: 60, PAD: 16, READABLE: 0.55 };

// Everything the layout draws: node boxes, frames, edge routes and the shape labels beside them
// (estimated from their length, as the layout sized them). {x, y, w, h} in drawing units.
export function layoutBounds(lay) {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  const add = (x, y, w = 0, h = 0) => {
    x0 = Math.min(x0, x);
    y0 = Math.min(y0, y);
    x1 = Math.max(x1, x + w);
    y1 = Math.max(y1, y + h);
  };
  for (const n of lay.nodes || []) add(n.x, n.y, n.w, n.h);
  for (const g of lay.groups || []) add(g.x, g.y, g.w, g.h);
  for (const e of lay.edges || []) {
    for (const [x, y] of e.points || []) add(x, y);
    if (e.text) {
      const w = e.text.length * FLOW.MONO;
      add(e.lx - w / 2, e.ly - 10, w, 16);
    }
  }
  if (!Number.isFinite(x0)) return { x: 0, y: 0, w: lay.width || 0, h: lay.height || 0 };
  // the layout's own margins count too: a box never touches the edge of the picture
  add(0, 0, lay.width || 0, lay.height || 0);
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

// The union of two boxes (the layout's and what the page drew beside it, e.g. receptive-field counts).
export function unionBox(a, b) {
  if (!b || !(b.w > 0 || b.h > 0)) return a;
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, w: Math.max(a.x + a.w, b.x + b.w) - x, h: Math.max(a.y + a.h, b.y + b.h) - y };
}

export function clampK(k) {
  return Math.min(ZOOM.MAX, Math.max(ZOOM.MIN, k));
}

// The whole drawing in the viewport, centred; never enlarged past 1:1 (a small graph stays its size).
export function fitTransform(box, view, pad = ZOOM.PAD) {
  const w = Math.max(1, view.width - 2 * pad);
  const h = Math.max(1, view.height - 2 * pad);
  const k = clampK(Math.min(1, w / Math.max(1, box.w), h / Math.max(1, box.h)));
  return { k, x: view.width / 2 - k * (box.x + box.w / 2), y: view.height / 2 - k * (box.y + box.h / 2) };
}

// What the graph opens at: the whole graph where that leaves its text readable (k ≥ READABLE);
// otherwise its full width (at most 1:1) from the top, the input first, to be read downwards.
export function initialTransform(box, view, pad = ZOOM.PAD) {
  const fit = fitTransform(box, view, pad);
  if (fit.k >= ZOOM.READABLE) return fit;
  const k = clampK(Math.min(1, (view.width - 2 * pad) / Math.max(1, box.w)));
  return { k, x: view.width / 2 - k * (box.x + box.w / 2), y: pad - k * box.y };
}

// Centre the drawing point p in the viewport at zoom k.
export function centreTransform(p, k, view) {
  return { k, x: view.width / 2 - k * p.x, y: view.height / 2 - k * p.y };
}

// Whether the box (drawing units) lies inside the viewport under transform t, with a margin.
export function boxVisible(b, t, view, margin = 8) {
  const x = t.x + t.k * b.x;
  const y = t.y + t.k * b.y;
  return x >= margin && y >= margin && x + t.k * b.w <= view.width - margin && y + t.k * b.h <= view.height - margin;
}

// The viewport's height: the drawing's at 1:1 where it is short (a small net takes no more room than
// it needs), else `most` (the screen's share the graph may take), never under `least`.
export function viewportHeight(box, most, least = 220, pad = ZOOM.PAD) {
  return Math.round(Math.max(least, Math.min(most, box.h + 2 * pad)));
}
