// Receptive-field grids drawn with d3: one small SVG grid per node, lit where the chosen element depends
// on it (structural: on/off; effective: shaded by |∂y/∂x|), and the picker grid of the chosen node whose
// cells are buttons.

import { d3 } from "./common.js";
import { cellSize } from "../geometry/receptive.js";

const ON = "#ea580c";
const OFF = "#f1f5f9";
const heatColor = (v) => (v > 0 ? d3.interpolateBlues(0.15 + 0.85 * v) : OFF);

export function drawGrid(container, grid, { mode = "structural", label = "", onPick = null, picked = null } = {}) {
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
    .attr("role", onPick ? "group" : "img")
    .attr("aria-label", label);
  const data = [];
  for (let r = 0; r < grid.rows; r++) for (let c = 0; c < grid.cols; c++) data.push({ r, c, v: grid.values ? grid.values[r * grid.cols + c] : 0 });
  const rects = svg
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
    .attr("fill", (d) => (onPick ? "#e2e8f0" : mode === "effective" ? heatColor(d.v) : d.v > 0 ? ON : OFF));
  if (onPick) {
    rects
      .attr("tabindex", 0)
      .attr("role", "button")
      .attr("aria-label", (d) => `element row ${d.r}, column ${d.c}`)
      .style("cursor", "pointer");
    rects.on("click", (ev, d) => onPick(d.r, d.c));
    rects.on("keydown", (ev, d) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        onPick(d.r, d.c);
      }
    });
    if (picked) rects.filter((d) => d.r === picked[0] && d.c === picked[1]).attr("fill", ON).classed("picked", true);
  }
  return svg;
}
