// Draws a geometry/attention.js heatmap layout as SVG: token labels on both axes (query tokens down
// the left, key tokens across the top), a cell per weight with its value where the cell is big enough.

import { d3 } from "./common.js";
import { fmt } from "../util/format.js";

const NS = "http://www.w3.org/2000/svg";
const el = (tag, attrs = {}, text) => {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
};

export function drawHeatmap(host, lay, { title }) {
  const svg = el("svg", { width: lay.width, height: lay.height, viewBox: `0 0 ${lay.width} ${lay.height}`, role: "img", "aria-label": title, class: "attn-map" });
  svg.append(el("title", {}, title));
  for (const r of lay.rows)
    svg.append(el("text", { x: r.x, y: r.y, "text-anchor": "end", "dominant-baseline": "central", class: "attn-row-label" }, r.text));
  for (const c of lay.cols)
    svg.append(el("text", { x: c.x, y: c.y, transform: `rotate(-60 ${c.x} ${c.y})`, "text-anchor": "start", class: "attn-col-label" }, c.text));
  const g = el("g", { class: "attn-cells" });
  for (const c of lay.cells) {
    // d3's sequential Blues: lightness falls steadily with the weight (near-white 0 … navy max)
    const rect = el("rect", { x: c.x, y: c.y, width: lay.cell, height: lay.cell, fill: d3.color(d3.interpolateBlues(c.t)).formatRgb(), "data-i": c.i, "data-j": c.j, "data-v": c.v });
    rect.append(el("title", {}, `${lay.rows[c.i].text} → ${lay.cols[c.j].text}: ${fmt(c.v, 4)}`));
    g.append(rect);
    if (lay.showValues)
      g.append(el("text", { x: c.x + lay.cell / 2, y: c.y + lay.cell / 2, "text-anchor": "middle", "dominant-baseline": "central", class: c.light ? "attn-v light" : "attn-v" }, fmt(c.v, 2)));
  }
  svg.append(g);
  host.replaceChildren(svg);
  return svg;
}
