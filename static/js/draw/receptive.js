// Receptive-field grids drawn with d3: one small SVG grid per node, lit where the chosen element depends
// on it (structural: on/off; effective: shaded by |∂y/∂x|), and the picker grid of the chosen node whose
// cells are buttons.

import { d3, gridKeys, tooltip, escapeHtml } from "./common.js";
import { fmtFull } from "../util/format.js";
import { canvasIn } from "./canvas.js";
import { RF, cellSize } from "../geometry/receptive.js";

const ON = "#ea580c";
const OFF = "#f1f5f9";
const PICK = "#e2e8f0";
const heatColor = (v) => (v > 0 ? d3.interpolateBlues(0.15 + 0.85 * v) : OFF);

// A grid too large for one rect per cell (a 224 × 224 input): painted once, a pixel per cell, on a
// canvas scaled to the drawing's width without smoothing, so each cell stays a sharp square.
export function drawImage(container, grid, { mode = "structural", label = "" } = {}) {
  const cell = Math.min(RF.MAX_CELL, RF.MAX_W / Math.max(grid.cols, 1), RF.MAX_W / Math.max(grid.rows, 1));
  const w = grid.cols * cell;
  const h = grid.rows * cell;
  const svg = d3
    .select(container)
    .append("svg")
    .attr("class", "drawing rf-grid rf-image")
    .attr("width", w)
    .attr("height", h)
    .attr("viewBox", `0 0 ${w} ${h}`)
    .attr("role", "img")
    .attr("aria-label", label);
  const c = canvasIn(svg, { x: 0, y: 0, width: w, height: h, cls: "rf-canvas" });
  const pixels = new ImageData(grid.cols, grid.rows);
  const colours = new Map();
  const rgb = (v) => {
    const k = mode === "effective" ? Math.round(v * 255) : v > 0 ? 1 : 0;
    if (!colours.has(k)) colours.set(k, d3.rgb(mode === "effective" ? heatColor(k / 255) : k ? ON : OFF));
    return colours.get(k);
  };
  for (let i = 0; i < grid.rows * grid.cols; i++) {
    const col = rgb(grid.values[i]);
    pixels.data.set([col.r, col.g, col.b, 255], 4 * i);
  }
  const src = document.createElement("canvas");
  src.width = grid.cols;
  src.height = grid.rows;
  src.getContext("2d").putImageData(pixels, 0, 0);
  c.ctx.imageSmoothingEnabled = false;
  c.ctx.drawImage(src, 0, 0, w, h);
  svg.attr("data-on", String(grid.values.reduce((a, v) => a + (v > 0 ? 1 : 0), 0)));
  return { svg, setPicked() {} };
}

// The picker is one Tab stop (gridKeys: arrow keys move a cursor, Enter or Space picks), as the
// layer view's output grids are; a click picks too. `valueAt(r, c)` (optional) gives the value a
// cell holds, for its tooltip. Returns {setPicked([r, c])} so a pick does not rebuild the grid (and
// the keyboard focus stays where it is).
export function drawGrid(container, grid, { mode = "structural", label = "", onPick = null, picked = null, valueAt = null, name = "" } = {}) {
  const cell = cellSize(grid.rows, grid.cols);
  const w = grid.cols * cell;
  const h = grid.rows * cell;
  const svg = d3
    .select(container)
    .append("svg")
    .attr("class", `drawing rf-grid${onPick ? " rf-picker" : ""}`)
    .attr("width", w + 2)
    .attr("height", h + 2)
    .attr("viewBox", `-1 -1 ${w + 2} ${h + 2}`)
    .attr("role", onPick ? null : "img")
    .attr("aria-label", onPick ? null : label);
  const data = [];
  for (let r = 0; r < grid.rows; r++) for (let c = 0; c < grid.cols; c++) data.push({ r, c, v: grid.values ? grid.values[r * grid.cols + c] : 0 });
  const g = svg.append("g");
  const rects = g
    .selectAll("rect")
    .data(data)
    .join("rect")
    .attr("x", (d) => d.c * cell)
    .attr("y", (d) => d.r * cell)
    .attr("width", Math.max(1, cell - (cell > 4 ? 1 : 0)))
    .attr("height", Math.max(1, cell - (cell > 4 ? 1 : 0)))
    .attr("data-r", (d) => d.r)
    .attr("data-c", (d) => d.c)
    .attr("class", (d) => (d.v > 0 ? "rf-on" : "rf-off"))
    .attr("fill", (d) => (onPick ? PICK : mode === "effective" ? heatColor(d.v) : d.v > 0 ? ON : OFF));
  if (!onPick) return { svg, setPicked() {} };
  const tipHtml = (r, c) => {
    const v = valueAt?.(r, c);
    return `<b>${escapeHtml(name)}</b> row ${r}, column ${c}${v === undefined || v === null ? "" : ` = <code>${fmtFull(v)}</code>`}`;
  };
  rects.style("cursor", "pointer");
  rects.on("click", (ev, d) => {
    keys.set([d.r, d.c]);
    moveCursor([d.r, d.c]);
    onPick(d.r, d.c);
  });
  rects.on("mousemove", (ev, d) => tooltip.show(ev, tipHtml(d.r, d.c))).on("mouseleave", () => tooltip.hide());
  const cursor = g.append("rect").attr("class", "rf-cursor").attr("width", cell).attr("height", cell).attr("fill", "none").attr("pointer-events", "none").attr("hidden", true);
  function moveCursor([r, c]) {
    cursor.attr("x", c * cell - 0.5).attr("y", r * cell - 0.5).attr("hidden", null);
  }
  // the keyboard cursor follows a pick (a click, or one restored from the link), so arrows start there
  function setPicked(rc, { cursorToo = true } = {}) {
    rects.classed("picked", false).attr("fill", PICK);
    if (!rc) return;
    rects.filter((d) => d.r === rc[0] && d.c === rc[1]).attr("fill", ON).classed("picked", true);
    if (cursorToo && keys) {
      keys.set(rc);
      g.attr("data-cursor", rc.join(","));
      cursor.attr("x", rc[1] * cell - 0.5).attr("y", rc[0] * cell - 0.5);
    }
  }
  let keys = null;
  keys = gridKeys(g, {
    rows: grid.rows,
    cols: grid.cols,
    start: picked || [0, 0],
    label: `${label}: arrow keys move, Enter picks the element`,
    onMove: (rc) => {
      moveCursor(rc);
      const v = valueAt?.(rc[0], rc[1]);
      g.attr("data-cursor", rc.join(","));
      if (v !== undefined && v !== null) g.attr("aria-description", `value ${fmtFull(v)}`);
    },
    onActivate: (rc) => onPick(rc[0], rc[1]),
  });
  g.attr("class", "rf-keys").on("blur", () => cursor.attr("hidden", true));
  setPicked(picked, { cursorToo: false });
  return { svg, setPicked };
}
