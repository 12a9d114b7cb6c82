// The sliding-window picture: the frame (padded input, or the zero-stretched input of a
// transposed convolution) with the kernel's cells at one output position, and the output grid
// filling in. Positions are read from the API's `windows`; nothing here re-derives them.

import { d3, svgIn, tooltip, escapeHtml, gridKeys } from "./common.js";
import { CELL } from "../geometry/palette.js";
import {
  frameLayout, frameCells, placeFrameCoord, placeOutputCoord, stepToOutput, outputToStep,
  windowAt, frameToInput, stepCount,
} from "../geometry/windows.js";
import { fmt, fmtFull } from "../util/format.js";

function patterns(svg) {
  const defs = svg.append("defs");
  defs.append("pattern").attr("id", "pad-hatch").attr("width", 6).attr("height", 6).attr("patternUnits", "userSpaceOnUse").attr("patternTransform", "rotate(45)")
    .call((p) => {
      p.append("rect").attr("width", 6).attr("height", 6).attr("fill", CELL.padding);
      p.append("line").attr("x1", 0).attr("y1", 0).attr("x2", 0).attr("y2", 6).attr("stroke", "#cbd5e1").attr("stroke-width", 2);
    });
  defs.append("pattern").attr("id", "zero-dots").attr("width", 6).attr("height", 6).attr("patternUnits", "userSpaceOnUse")
    .call((p) => {
      p.append("rect").attr("width", 6).attr("height", 6).attr("fill", CELL.zero);
      p.append("circle").attr("cx", 3).attr("cy", 3).attr("r", 0.9).attr("fill", "#d97706");
    });
}

function spanOf(rects) {
  const x0 = d3.min(rects, (r) => r.x);
  const y0 = d3.min(rects, (r) => r.y);
  const x1 = d3.max(rects, (r) => r.x + r.w);
  const y1 = d3.max(rects, (r) => r.y + r.h);
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

export function createWindowDrawing(container, opts) {
  const { win, width, depth = 0, inputValue, outputValue, colorIn, colorOut, onPick, names, paddingMode } = opts;
  const L = frameLayout(win, { width, depth });
  const cell = L.cell;
  const kind = win.kind;
  const label = kind === "transposed"
    ? "Transposed convolution as a direct convolution over the zero-stretched, padded input"
    : "Sliding window over the padded input";
  const svg = svgIn(container, L.width, L.height, label);
  patterns(svg);
  const g = svg.append("g");
  const frameRect = (coord) => {
    const p = placeFrameCoord(coord, L);
    if (p.plane < 0) return null;
    const f = L.frames[p.plane];
    return { x: f.x + p.c * cell, y: f.y + p.r * cell, w: cell, h: cell };
  };
  const outRect = (coord) => {
    const p = placeOutputCoord(coord, L);
    return { x: L.output.x + p.c * cell, y: L.output.y + p.r * cell, w: cell, h: cell };
  };

  // Padding copied from the input (reflect/replicate/circular): learn, from the windows, which
  // input element each padding cell repeats.
  const copies = new Map();
  if (paddingMode && paddingMode !== "zeros") {
    const walk = (at, src) => {
      if (!Array.isArray(at)) return;
      if (at.length && Array.isArray(at[0]) && typeof at[0][0] === "number") {
        at.forEach((c, k) => src?.[k] && copies.set(c.join(","), src[k]));
        return;
      }
      at.forEach((a, i) => walk(a, src?.[i]));
    };
    walk(win.at, win.src);
  }

  const roleText = { input: "input", padding: kind === "transposed" ? "padding (zeros)" : "padding", zero: "inserted zero" };
  for (const f of L.frames) {
    const fg = g.append("g").attr("class", "frame");
    const title = kind === "transposed" ? "stretched input" : win.padding.some((p) => p[0] || p[1]) ? "padded input" : "input";
    fg.append("text").attr("class", "grid-title").attr("x", f.x).attr("y", f.y - 10)
      .attr("class", L.sd === 3 ? "grid-title small" : "grid-title")
      .text(L.sd === 3 ? `z=${f.z}${frameDepthNote(win, f.z)}` : title);
    const cells = frameCells(win, f);
    fg.selectAll("rect.fcell").data(cells).join("rect")
      .attr("class", (d) => `fcell role-${d.role}`)
      .attr("x", (d) => f.x + d.c * cell).attr("y", (d) => f.y + d.r * cell)
      .attr("width", cell).attr("height", cell)
      .attr("fill", (d) => {
        if (d.role === "input") {
          const v = inputValue(frameToInput(d.coord, win));
          return v === undefined ? CELL.input : colorIn(v);
        }
        if (d.role === "zero") return CELL.zero;
        return copies.has(d.coord.join(",")) ? "#e2e8f0" : "url(#pad-hatch)";
      })
      .on("mousemove", (event, d) => {
        let html = `<b>${roleText[d.role]}</b> · frame (${d.coord.join(", ")})`;
        if (d.role === "input") {
          const ic = frameToInput(d.coord, win);
          const v = inputValue(ic);
          html += `<br>${escapeHtml(names.input)}[${ic.join(", ")}]${v === undefined ? "" : ` = <code>${fmtFull(v)}</code>`}`;
        } else if (copies.has(d.coord.join(","))) {
          html += `<br>${paddingMode}: copies input[${copies.get(d.coord.join(",")).join(", ")}]`;
        } else html += " = 0";
        tooltip.show(event, html);
      })
      .on("mouseleave", () => tooltip.hide());
    if (cell >= 18) {
      fg.selectAll("text.zero").data(cells.filter((d) => d.role !== "input" && !copies.has(d.coord.join(",")))).join("text")
        // A little low of centre, clear of the kernel-index label in the window's top corner.
        .attr("class", "zero-mark").attr("x", (d) => f.x + (d.c + 0.5) * cell).attr("y", (d) => f.y + (d.r + 0.62) * cell)
        .attr("text-anchor", "middle").attr("dominant-baseline", "central").text("0");
    }
    // Input indices along the top and left, so stride and dilation can be counted.
    if (cell >= 14) {
      const origin = win.frame.input_origin;
      const stepv = win.frame.input_step;
      const d0 = L.sd - 1;
      const colIdx = d3.range(win.input_spatial[d0]);
      fg.selectAll("text.cidx").data(colIdx).join("text").attr("class", "idx")
        .attr("x", (i) => f.x + (origin[d0] + i * stepv[d0] + 0.5) * cell).attr("y", f.y + L.rows * cell + 12)
        .attr("text-anchor", "middle").text((i) => i);
      if (L.sd >= 2) {
        const d1 = L.sd - 2;
        fg.selectAll("text.ridx").data(d3.range(win.input_spatial[d1])).join("text").attr("class", "idx")
          .attr("x", f.x - 4).attr("y", (i) => f.y + (origin[d1] + i * stepv[d1] + 0.5) * cell)
          .attr("text-anchor", "end").attr("dominant-baseline", "central").text((i) => i);
      }
    }
  }

  // Output grid.
  const og = g.append("g").attr("class", "out-grid");
  og.append("text").attr("class", "grid-title").attr("x", L.output.x).attr("y", L.output.y - 10)
    .text(L.sd === 3 ? `output d=${depth}` : "output");
  const outCells = [];
  for (let r = 0; r < L.output.rows; r++)
    for (let c = 0; c < L.output.cols; c++) {
      const coord = L.sd === 1 ? [c] : L.sd === 2 ? [r, c] : [depth, r, c];
      outCells.push({ r, c, coord, step: outputToStep(win, coord) });
    }
  const outSel = og.selectAll("rect.ocell").data(outCells).join("rect")
    .attr("class", "ocell")
    .attr("x", (d) => L.output.x + d.c * cell).attr("y", (d) => L.output.y + d.r * cell)
    .attr("width", cell).attr("height", cell)
    .attr("data-coord", (d) => d.coord.join(","))
    .attr("fill", CELL.pending)
    .on("click", (event, d) => onPick(d.coord))
    .on("mousemove", (event, d) => {
      const v = outputValue(d.coord);
      tooltip.show(event, `<b>${escapeHtml(names.output)}</b>[${d.coord.join(", ")}]${v === undefined ? "" : ` = <code>${fmtFull(v)}</code>`}<br>click to explain`);
    })
    .on("mouseleave", () => tooltip.hide());
  const outText = cell >= 30
    ? og.selectAll("text.oval").data(outCells).join("text").attr("class", "oval")
        .attr("x", (d) => L.output.x + (d.c + 0.5) * cell).attr("y", (d) => L.output.y + (d.r + 0.5) * cell)
        .attr("text-anchor", "middle").attr("dominant-baseline", "central")
    : null;
  if (cell >= 14) {
    og.selectAll("text.oidx").data(d3.range(L.output.cols)).join("text").attr("class", "idx")
      .attr("x", (i) => L.output.x + (i + 0.5) * cell).attr("y", L.output.y + L.output.rows * cell + 12).attr("text-anchor", "middle").text((i) => i);
    if (L.sd >= 2)
      og.selectAll("text.oridx").data(d3.range(L.output.rows)).join("text").attr("class", "idx")
        .attr("x", L.output.x - 4).attr("y", (i) => L.output.y + (i + 0.5) * cell).attr("text-anchor", "end").attr("dominant-baseline", "central").text((i) => i);
  }
  const keys = gridKeys(og, {
    rows: L.output.rows, cols: L.output.cols, label: "Output grid: arrow keys move, Enter explains the element",
    onMove: ([r, c]) => {
      const d = outCells.find((o) => o.r === r && o.c === c);
      if (d) opts.onCursor?.(d.coord);
    },
    onActivate: ([r, c]) => {
      const d = outCells.find((o) => o.r === r && o.c === c);
      if (d) onPick(d.coord);
    },
  });

  const overlay = g.append("g").attr("class", "win-overlay").attr("pointer-events", "none");
  const ghost = overlay.append("rect").attr("class", "win-ghost");
  const span = overlay.append("rect").attr("class", "win-span");
  const link = overlay.append("path").attr("class", "win-link");
  const cellsG = overlay.append("g");
  const pinG = overlay.append("g");
  const total = stepCount(win, L.sd === 3 ? depth : null);

  function rectsFor(step) {
    const oc = stepToOutput(win, step, depth);
    return { oc, rects: windowAt(win, oc).map((c, k) => ({ ...frameRect(c), k, coord: c })).filter((r) => r.x !== undefined) };
  }

  function showStep(step) {
    const { oc, rects } = rectsFor(step);
    outSel.attr("fill", (d) => (d.step <= step ? fillOut(d.coord) : CELL.pending)).classed("current", (d) => d.step === step);
    if (outText) outText.text((d) => (d.step <= step ? fmtOut(d.coord) : ""));
    cellsG.selectAll("rect").data(rects).join("rect").attr("class", "win-cell")
      .attr("x", (r) => r.x + 1).attr("y", (r) => r.y + 1).attr("width", cell - 2).attr("height", cell - 2);
    cellsG.selectAll("text").data(cell >= 26 ? rects : []).join("text").attr("class", "kidx")
      .attr("x", (r) => r.x + cell - 3).attr("y", (r) => r.y + 9).attr("text-anchor", "end")
      .text((r) => `${kind === "pool" ? "k" : "w"}${win.kernel_index[r.k].join("")}`);
    if (!rects.length) return;
    const s = spanOf(rects);
    span.attr("x", s.x - 2).attr("y", s.y - 2).attr("width", s.w + 4).attr("height", s.h + 4);
    if (step > 0) {
      const prev = spanOf(rectsFor(step - 1).rects);
      ghost.attr("x", prev.x - 2).attr("y", prev.y - 2).attr("width", prev.w + 4).attr("height", prev.h + 4).attr("visibility", "visible");
    } else ghost.attr("visibility", "hidden");
    const o = outRect(oc);
    const x1 = s.x + s.w / 2;
    const y1 = L.stacked ? s.y + s.h : s.y;
    const x2 = o.x + cell / 2;
    const y2 = L.stacked ? o.y : o.y;
    const lift = L.stacked ? 0 : 22;
    link.attr("d", L.stacked
      ? `M${x1},${y1 + 2} C${x1},${(y1 + y2) / 2} ${x2},${(y1 + y2) / 2} ${x2},${y2 - 2}`
      : `M${x1},${y1 - 2} C${x1},${Math.min(y1, y2) - lift} ${x2},${Math.min(y1, y2) - lift} ${x2},${y2 - 2}`);
  }

  function fillOut(coord) {
    const v = outputValue(coord);
    return v === undefined ? CELL.output : colorOut(v);
  }
  function fmtOut(coord) {
    const v = outputValue(coord);
    return v === undefined ? "" : fmt(v, 2);
  }

  // A pinned element: ring the output cell, and for max pooling mark the input that won.
  function pin(outCoord, explain) {
    pinG.selectAll("*").remove();
    if (!outCoord || outCoord.length !== L.sd) return;
    const o = outRect(outCoord);
    const pc = placeOutputCoord(outCoord, L);
    keys.set([pc.r, pc.c]);
    pinG.append("rect").attr("class", "pin-ring").attr("x", o.x - 2).attr("y", o.y - 2).attr("width", cell + 4).attr("height", cell + 4);
    if (explain && explain.winner !== undefined && explain.winner !== null) {
      // `terms[i].at` is the term's frame cell; older responses only list the window's cells.
      const at = explain.terms?.[explain.winner]?.at ?? explain.window?.at?.[explain.winner] ?? null;
      const fr = at ? frameRect(at) : null;
      if (fr) {
        pinG.append("rect").attr("class", "winner").attr("x", fr.x + 2).attr("y", fr.y + 2).attr("width", cell - 4).attr("height", cell - 4);
        pinG.append("text").attr("class", "winner-label").attr("x", fr.x + cell / 2).attr("y", fr.y + cell - 4).attr("text-anchor", "middle").text("max");
      }
    }
  }

  return { showStep, pin, count: total, layout: L, svg: svg.node() };
}

function frameDepthNote(win, z) {
  const o = win.frame.input_origin[0];
  const st = win.frame.input_step[0];
  const rel = z - o;
  if (rel < 0 || rel > (win.input_spatial[0] - 1) * st) return " pad";
  if (rel % st) return " zeros";
  return ` (d=${rel / st})`;
}
