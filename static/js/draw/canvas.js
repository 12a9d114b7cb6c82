// Canvases inside SVG drawings: a big grid is painted on a <canvas> held by a <foreignObject>, so
// it sits in the drawing's coordinates (titles, labels and overlays stay SVG on top of it), scales
// with it, and exports with it (export.js turns each such canvas into an <image>).

import { CELL } from "../geometry/palette.js";

const XHTML = "http://www.w3.org/1999/xhtml";

// A canvas of `width` × `height` drawing units at (x, y) inside the d3 selection `parent`.
// Painting uses drawing units: the context is scaled by the device pixel ratio.
export function canvasIn(parent, { x, y, width, height, cls }) {
  const dpr = Math.max(1, Math.min(3, window.devicePixelRatio || 1));
  // Hidden from assistive technology like the SVG cells it stands for: the grid's keyboard cursor
  // (gridKeys) and the tooltips say what a cell holds.
  const fo = parent.append("foreignObject").attr("class", cls).attr("x", x).attr("y", y)
    .attr("width", width).attr("height", height).attr("aria-hidden", "true");
  const canvas = document.createElementNS(XHTML, "canvas");
  canvas.width = Math.max(1, Math.ceil(width * dpr));
  canvas.height = Math.max(1, Math.ceil(height * dpr));
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.style.display = "block";
  fo.node().append(canvas);
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  return { fo, canvas, ctx, x, y, width, height };
}

// The pointer's position in drawing units (the SVG may be scaled by CSS).
export function pointIn(c, event) {
  const r = c.fo.node().getBoundingClientRect();
  const sx = r.width ? c.width / r.width : 1;
  const sy = r.height ? c.height / r.height : 1;
  return { x: c.x + (event.clientX - r.left) * sx, y: c.y + (event.clientY - r.top) * sy };
}

// The SVG drawings' padding hatch (#pad-hatch in draw/windows.js) as a canvas pattern.
export function hatchPattern(ctx) {
  const tile = document.createElement("canvas");
  tile.width = 6;
  tile.height = 6;
  const t = tile.getContext("2d");
  t.fillStyle = CELL.padding;
  t.fillRect(0, 0, 6, 6);
  t.strokeStyle = "#cbd5e1";
  t.lineWidth = 2;
  t.beginPath();
  t.moveTo(0, 0);
  t.lineTo(0, 6);
  t.stroke();
  const p = ctx.createPattern(tile, "repeat");
  p.setTransform(new DOMMatrix().rotate(45));
  return p;
}

// One cell as SVG draws a <rect> with a 1-unit stroke centred on its edge.
export function paintCell(ctx, x, y, size, fill, stroke) {
  ctx.fillStyle = fill;
  ctx.fillRect(x, y, size, size);
  if (stroke) {
    ctx.strokeStyle = stroke;
    ctx.strokeRect(x, y, size, size);
  }
}

// Centred text in a cell, like the SVG cells' <text text-anchor=middle dominant-baseline=central>.
export function cellText(ctx, text, x, y, { size, color = "#334155", weight = 400, family = "sans-serif" }) {
  ctx.font = `${weight} ${size}px ${family}`;
  ctx.fillStyle = color;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, x, y);
}

// The font family the page gives drawings (svg.drawing in app.css).
export function drawingFont(svgNode) {
  return window.getComputedStyle(svgNode).fontFamily || "sans-serif";
}
