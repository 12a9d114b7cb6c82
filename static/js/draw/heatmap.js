// A tensor as heatmap slices (last two axes), values on hover, numbers inside when they fit.

import { svgIn, valueColor, tooltip, escapeHtml } from "./common.js";
import { tensorSlices, heatmapLayout, valueDomain } from "../geometry/heatmap.js";
import { fmt, fmtFull } from "../util/format.js";

export function drawHeatmap(container, t, { width, maxSlices = 8, maxHeight = 220 }) {
  const info = tensorSlices(t, { maxSlices });
  if (!info.slices.length) {
    container.replaceChildren();
    return { shown: 0, total: 0 };
  }
  const lay = heatmapLayout(info, { width, maxHeight });
  const color = valueColor(valueDomain(t));
  const svg = svgIn(container, lay.width, lay.height, `Heatmap of ${t.name} ${t.shape.join("×")}`);
  const g = svg.append("g");
  const cell = lay.cell;
  const showNumbers = cell >= 38;
  for (const s of lay.placed) {
    const sg = g.append("g").attr("class", "slice");
    if (s.prefix.length) {
      const label = `[${s.prefix.map((p, d) => (info.step ? p * (info.step[d] || 1) : p)).join(",")}]`;
      sg.append("text").attr("class", "slice-label").attr("x", s.x).attr("y", s.y - 4).text(label);
    }
    const data = [];
    for (let r = 0; r < s.rows; r++) for (let c = 0; c < s.cols; c++) data.push({ r, c, v: s.get(r, c) });
    sg.selectAll("rect").data(data).join("rect")
      .attr("class", "hcell")
      .attr("x", (d) => s.x + d.c * cell).attr("y", (d) => s.y + d.r * cell)
      .attr("width", Math.max(cell - (cell > 6 ? 1 : 0), 0.5)).attr("height", Math.max(cell - (cell > 6 ? 1 : 0), 0.5))
      .attr("fill", (d) => color(d.v))
      .on("mousemove", (event, d) => tooltip.show(event, `<b>${escapeHtml(t.name)}</b>[${s.index(d.r, d.c).join(", ")}] = <code>${fmtFull(d.v)}</code>`))
      .on("mouseleave", () => tooltip.hide());
    if (showNumbers)
      sg.selectAll("text.hval").data(data).join("text").attr("class", "hval")
        .attr("x", (d) => s.x + (d.c + 0.5) * cell).attr("y", (d) => s.y + (d.r + 0.5) * cell)
        .attr("text-anchor", "middle").attr("dominant-baseline", "central")
        .attr("fill", (d) => (Math.abs(d.v) > 0.6 * Math.abs(valueDomain(t)[1]) ? "#fff" : "#111"))
        .text((d) => fmt(d.v, 2));
  }
  return { shown: info.slices.length, total: info.total, full: info.full, step: info.step };
}
