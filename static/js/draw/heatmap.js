// A tensor as heatmap slices (last two axes), values on hover, numbers inside when they fit.
// Past geometry/grid.js's CANVAS_ABOVE cells the slices are painted on one canvas, a few rows at a
// time between which the browser may run other tasks (`painted` resolves when done), and hovering
// finds the cell by geometry.

import { svgIn, valueColor, tooltip, escapeHtml } from "./common.js";
import { canvasIn, pointIn, cellText, drawingFont } from "./canvas.js";
import { tensorSlices, heatmapLayout, valueDomain } from "../geometry/heatmap.js";
import { useCanvas, heatmapHit, rowChunks } from "../geometry/grid.js";
import { fitFont } from "../geometry/windows.js";
import { runChunked } from "../util/schedule.js";
import { fmtCell, fmtFull } from "../util/format.js";

// `domain`: the colour scale's range when shared with other tensors (else this tensor's own).
// `labels`: {rows, cols} (e.g. a text's tokens) drawn beside the rows / above the columns of a
// tensor drawn as one slice whose rows / columns they count.
export function drawHeatmap(container, t, { width, maxSlices = 8, maxHeight = 220, domain = null, labels = null }) {
  const info = tensorSlices(t, { maxSlices });
  if (!info.slices.length) {
    container.replaceChildren();
    return { shown: 0, total: 0, painted: Promise.resolve(true) };
  }
  const one = info.slices.length === 1 && info.full ? info.slices[0] : null;
  const rowLabels = one && labels?.rows?.length === one.rows ? labels.rows : null;
  const colLabels = one && labels?.cols?.length === one.cols ? labels.cols : null;
  const longest = (ls) => Math.max(...ls.map((s) => String(s).length));
  const left = rowLabels ? Math.min(96, 10 + 7 * longest(rowLabels)) : 0;
  const top = colLabels ? Math.min(64, 10 + 6 * longest(colLabels)) : 0;
  const lay = heatmapLayout(info, { width: width - left, maxHeight });
  const range = domain ?? valueDomain(t);
  const color = valueColor(range);
  const svg = svgIn(container, lay.width + left, lay.height + top, `Heatmap of ${t.name} ${t.shape.join("×")}`);
  const g = svg.append("g").attr("transform", left || top ? `translate(${left},${top})` : null);
  const cell = lay.cell;
  const size = Math.max(cell - (cell > 6 ? 1 : 0), 0.5);
  const showNumbers = cell >= 38;
  const numberColor = (v) => (Math.abs(v) > 0.6 * Math.max(Math.abs(range[0]), Math.abs(range[1])) ? "#fff" : "#111");
  const tip = (event, s, r, c) => tooltip.show(event, `<b>${escapeHtml(t.name)}</b>[${s.index(r, c).join(", ")}] = <code>${fmtFull(s.get(r, c))}</code>`);
  const onCanvas = useCanvas(lay.placed.reduce((n, s) => n + s.rows * s.cols, 0));
  svg.attr("data-cells", onCanvas ? "canvas" : "svg").attr("data-cell", cell);
  const jobs = [];
  let cv = null;
  if (onCanvas) {
    cv = canvasIn(g, { x: 0, y: 0, width: lay.width, height: lay.height, cls: "hcanvas" });
    const font = drawingFont(svg.node());
    cv.fo.on("mousemove", (event) => {
      const p = pointIn(cv, event);
      const hit = heatmapHit(lay, p.x, p.y);
      if (hit) tip(event, lay.placed[hit.slice], hit.r, hit.c);
      else tooltip.hide();
    }).on("mouseleave", () => tooltip.hide());
    for (const s of lay.placed)
      for (const [r0, r1] of rowChunks(s.rows, s.cols))
        jobs.push(() => {
          const ctx = cv.ctx;
          for (let r = r0; r < r1; r++)
            for (let c = 0; c < s.cols; c++) {
              const v = s.get(r, c);
              ctx.fillStyle = color(v);
              ctx.fillRect(s.x + c * cell, s.y + r * cell, size, size);
              if (showNumbers) {
                const text = fmtCell(v);
                cellText(ctx, text, s.x + (c + 0.5) * cell, s.y + (r + 0.5) * cell, { size: fitFont(text, cell, 9.5), color: numberColor(v), family: font });
              }
            }
        });
  }
  for (const s of lay.placed) {
    const sg = g.append("g").attr("class", "slice").attr("data-x", s.x).attr("data-y", s.y);
    if (s.prefix.length) {
      const label = `[${s.prefix.map((p, d) => (info.step ? p * (info.step[d] || 1) : p)).join(",")}]`;
      sg.append("text").attr("class", "slice-label").attr("x", s.x).attr("y", s.y - 4).text(label);
    }
    if (onCanvas) continue;
    const data = [];
    for (let r = 0; r < s.rows; r++) for (let c = 0; c < s.cols; c++) data.push({ r, c, v: s.get(r, c) });
    sg.selectAll("rect").data(data).join("rect")
      .attr("class", "hcell")
      .attr("x", (d) => s.x + d.c * cell).attr("y", (d) => s.y + d.r * cell)
      .attr("width", size).attr("height", size)
      .attr("fill", (d) => color(d.v))
      .on("mousemove", (event, d) => tip(event, s, d.r, d.c))
      .on("mouseleave", () => tooltip.hide());
    if (showNumbers)
      sg.selectAll("text.hval").data(data).join("text").attr("class", "hval")
        .attr("x", (d) => s.x + (d.c + 0.5) * cell).attr("y", (d) => s.y + (d.r + 0.5) * cell)
        .attr("text-anchor", "middle").attr("dominant-baseline", "central")
        .attr("fill", (d) => numberColor(d.v))
        .text((d) => fmtCell(d.v))
        .style("font-size", function () {
          return `${fitFont(this.textContent, cell, 9.5)}px`; // a style: the stylesheet's would win over an attribute
        });
  }
  if (rowLabels || colLabels) {
    const s = lay.placed[0];
    const size = `${Math.max(8, Math.min(12, cell * 0.8))}px`;
    if (rowLabels)
      g.append("g").attr("class", "row-labels").selectAll("text").data(rowLabels).join("text")
        .attr("x", s.x - 4).attr("y", (_, r) => s.y + (r + 0.5) * cell)
        .attr("text-anchor", "end").attr("dominant-baseline", "central").style("font-size", size).text((d) => d);
    if (colLabels)
      g.append("g").attr("class", "col-labels").selectAll("text").data(colLabels).join("text")
        .attr("transform", (_, c) => `translate(${s.x + (c + 0.5) * cell},${s.y - 4}) rotate(-60)`)
        .attr("text-anchor", "start").style("font-size", size).text((d) => d);
  }
  const painted = onCanvas ? runChunked(jobs, { cancelled: () => !cv.canvas.isConnected }) : Promise.resolve(true);
  return { shown: info.slices.length, total: info.total, full: info.full, step: info.step, onCanvas, painted };
}
