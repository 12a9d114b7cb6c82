// The sliding-window picture: the frame (padded input, or the zero-stretched input of a
// transposed convolution) of every input channel that feeds the output channel, each with its
// kernel slice, the kernel's cells at one output position, and the output grid filling in.
// Positions are read from the API's `windows`; nothing here re-derives them. Padding cells show
// what the operation reads there (the API's `pad_value`): −∞ for max pooling, 0, a copied input
// value (reflect/replicate/circular) or "excluded" (average pooling with count_include_pad=False).

import { d3, svgIn, tooltip, escapeHtml, gridKeys } from "./common.js";
import { canvasIn, pointIn, hatchPattern, paintCell, cellText, drawingFont } from "./canvas.js";
import { CELL } from "../geometry/palette.js";
import {
  frameLayout, frameCells, placeFrameCoord, placeOutputCoord, placeKernelIndex, stepToOutput, outputToStep,
  windowAt, frameToInput, frameCopies, frameCellRole, stepCount, textOn, fitFont, placeThumbCoord, READABLE_CELL,
  framesOf, outputsFedBy, outputsReading,
} from "../geometry/windows.js";
import { useCanvas, frameHit, outputHit, frameCoord, rowChunks } from "../geometry/grid.js";
import { runChunked } from "../util/schedule.js";
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

// What a padding cell reads, as the cell's text and the tooltip's sentence.
export function padReading(padValue, paddingMode, kind) {
  if (kind === "transposed") return { text: "0", say: "padding: zeros" };
  if (padValue === "-inf") return { text: "−∞", say: "padding: max pooling reads −∞ here, so it never wins" };
  if (padValue === "excluded") return { text: "×", say: "padding: excluded from the sum and the divisor (count_include_pad=False)" };
  if (padValue === "copy") return { text: null, say: `${paddingMode} padding: a copy of an input element` };
  if (kind === "pool") return { text: "0", say: "padding: adds 0 and counts in the divisor (count_include_pad=True)" };
  return { text: "0", say: "zero padding: adds 0" };
}

// Past geometry/grid.js's CANVAS_ABOVE cells the frames and the output grid are painted on canvases
// (the frames in pieces, between which the browser may run other tasks; `painted` resolves when
// done) and hit-tested by geometry; kernels, titles, labels and the moving window stay SVG.
export function createWindowDrawing(container, opts) {
  const {
    win, width, depth = 0, outputValue, colorIn, colorOut, colorW, onPick, names, onTermHover = () => {},
  } = opts;
  // One band per input channel drawn: {channel, inputValue(coord) → number|undefined, kernelValue(kidx) → number|undefined|null}.
  const bands = opts.bands?.length ? opts.bands : [{ channel: 0, inputValue: opts.inputValue ?? (() => undefined), kernelValue: null }];
  const withKernel = bands.some((b) => b.kernelValue);
  const L = frameLayout(win, { width, depth, bands: bands.length, band: opts.band ?? 0, kernel: withKernel });
  const cell = L.cell;
  const kind = win.kind;
  const K = win.kernel_index.length;
  const paddingMode = win.padding_mode ?? opts.paddingMode ?? "zeros";
  const padValue = win.pad_value ?? (paddingMode !== "zeros" ? "copy" : kind === "pool" ? "0" : "0");
  const reading = padReading(padValue, paddingMode, kind);
  const label = kind === "transposed"
    ? "Transposed convolution as a direct convolution over the zero-stretched, padded input"
    : `Sliding window over the padded input${bands.length > 1 ? `, ${bands.length} input channels` : ""}`;
  const svg = svgIn(container, L.width, L.height, label);
  const onCanvas = useCanvas(L.frames.length * L.rows * L.cols + L.output.rows * L.output.cols, opts.canvasAbove);
  svg.attr("data-pad-value", padValue).classed("tiny-cells", cell < 8).attr("data-cells", onCanvas ? "canvas" : "svg")
    .attr("data-cell", cell).attr("data-painted", onCanvas ? "false" : "true");
  const font = onCanvas ? drawingFont(svg.node()) : null;
  const paints = []; // canvas painting, in pieces
  patterns(svg);
  const g = svg.append("g");
  const frameRect = (coord, band = 0) => {
    const p = placeFrameCoord(coord, L, band);
    if (p.plane < 0) return null;
    const f = L.frames[p.plane];
    return { x: f.x + p.c * cell, y: f.y + p.r * cell, w: cell, h: cell };
  };
  const outRect = (coord) => {
    const p = placeOutputCoord(coord, L);
    return { x: L.output.x + p.c * cell, y: L.output.y + p.r * cell, w: cell, h: cell };
  };

  // Padding copied from the input (reflect/replicate/circular): the frame map says which input
  // element each padding cell repeats.
  const copies = frameCopies(win);

  const roleText = { input: "input", padding: "padding", zero: "inserted zero" };
  const showValues = cell >= READABLE_CELL;
  // What frame cell `d` ({r, c, coord, role}) of band `bi` holds: its value and the input element it is.
  function cellDatum(bi, d) {
    const key = copies.size && d.role === "padding" ? d.coord.join(",") : null;
    const copy = key !== null && copies.has(key);
    let value;
    let src = null;
    if (d.role === "input") {
      src = frameToInput(d.coord, win);
      value = bands[bi].inputValue(src);
    } else if (copy) {
      src = copies.get(key);
      value = bands[bi].inputValue(src);
    }
    return { ...d, value, src, copy };
  }
  const fill = (d) => {
    if (d.role === "input") return d.value === undefined ? CELL.input : colorIn(d.value);
    if (d.role === "zero") return CELL.zero;
    if (d.copy) return d.value === undefined ? "#e2e8f0" : colorIn(d.value);
    return "url(#pad-hatch)";
  };
  // The tooltip of a frame cell: over the cell itself, and through the window's cells on top of it.
  function frameTip(event, bi, d) {
    const band = bands[bi];
    let html = `<b>${roleText[d.role]}</b> · frame (${d.coord.join(", ")})`;
    if (d.role === "input") {
      html += `<br>${escapeHtml(names.input)}[${[band.channel, ...d.src].join(", ")}]${d.value === undefined ? "" : ` = <code>${fmtFull(d.value)}</code>`}`;
    } else if (d.copy) {
      html += `<br>${escapeHtml(reading.say)}: ${escapeHtml(names.input)}[${[band.channel, ...d.src].join(", ")}]${d.value === undefined ? "" : ` = <code>${fmtFull(d.value)}</code>`}`;
    } else if (d.role === "zero") html += " = 0";
    else html += `<br>${escapeHtml(reading.say)}${reading.text === "×" ? "" : ` = <code>${reading.text}</code>`}`;
    tooltip.show(event, html);
  }
  const tipAt = (event, bi, coord) => frameTip(event, bi, cellDatum(bi, { coord, role: frameCellRole(coord, win) }));
  // Which cells carry text, and what: values when the cells are wide enough; padding always when ≥ 16 px.
  const hasText = (d) => {
    if (d.role === "zero") return cell >= 16;
    if (d.role === "padding" && !d.copy) return cell >= 16;
    return showValues && d.value !== undefined;
  };
  const textOf = (d) => (d.role === "zero" ? "0" : d.role === "padding" && !d.copy ? reading.text : fmt(d.value, 2));
  const stroke = { input: "#ffffff", padding: "#e2e8f0", zero: "#fde68a" };
  let hatch = null;
  // Rows [r0, r1) of frame plane `f` on its canvas (origin at the plane's corner).
  function paintFrameRows(cv, f, r0, r1) {
    const ctx = cv.ctx;
    hatch ??= hatchPattern(ctx);
    for (let r = r0; r < r1; r++)
      for (let c = 0; c < f.cols; c++) {
        const coord = frameCoord(L, f, r, c);
        const d = cellDatum(f.band, { r, c, coord, role: frameCellRole(coord, win) });
        const fl = fill(d);
        paintCell(ctx, c * cell, r * cell, cell, fl === "url(#pad-hatch)" ? hatch : fl, cell >= 8 ? stroke[d.role] : null);
        if (!hasText(d)) continue;
        const t = textOf(d);
        const cx = (c + 0.5) * cell;
        const cy = (r + 0.6) * cell;
        if (d.role === "zero") cellText(ctx, t, cx, cy, { size: 10, color: "#9ca3af", family: font });
        else if (d.role === "padding" && !d.copy) cellText(ctx, t, cx, cy, { size: 12, color: "#475569", weight: 600, family: font });
        else cellText(ctx, t, cx, cy, { size: fitFont(t, cell, 10), color: textOn(fl), family: font });
      }
  }
  L.frames.forEach((f) => {
    const band = bands[f.band];
    const fg = g.append("g").attr("class", "frame").attr("data-band", f.band).attr("data-channel", band.channel);
    const title = kind === "transposed" ? "stretched input" : win.padding.some((p) => p[0] || p[1]) ? "padded input" : "input";
    const chan = bands.length > 1 || win.channel_map ? ` · ${kind === "pool" ? "ch" : "in ch"} ${band.channel}` : "";
    const isFirstPlane = L.frames.findIndex((o) => o.band === f.band) === L.frames.indexOf(f);
    const head = fg.append("text").attr("x", f.x).attr("y", f.y - 8)
      .attr("class", L.sd === 3 ? "grid-title small" : "grid-title")
      // A narrow frame (phone) keeps only the channel, so the title does not run into the kernel's label.
      .text(L.sd === 3 ? `z=${f.z}${frameDepthNote(win, f.z)}${isFirstPlane ? chan : ""}`
        : f.cols * cell < 150 && chan ? chan.replace(" · ", "") : `${title}${chan}`);
    // A 3-D plane narrower than "z=2 (d=1) · in ch 0" (a phone): the channel goes on a line above,
    // so the title does not run into the next plane's.
    if (L.sd === 3 && isFirstPlane && chan && (head.node().getComputedTextLength?.() ?? 0) > f.cols * cell + 10) {
      head.text(`z=${f.z}${frameDepthNote(win, f.z)}`);
      fg.append("text").attr("x", f.x).attr("y", f.y - 19).attr("class", "grid-title small chan-title").text(chan.replace(" · ", ""));
    }
    if (onCanvas) {
      const cv = canvasIn(fg, { x: f.x, y: f.y, width: f.cols * cell, height: f.rows * cell, cls: "fcanvas" });
      cv.fo.attr("data-band", f.band).attr("data-z", f.z ?? null)
        .on("mousemove", (event) => {
          const p = pointIn(cv, event);
          const hit = frameHit(L, p.x, p.y);
          if (hit) {
            tipAt(event, hit.band, hit.coord);
            light.fromFrame(hit.band, hit.coord);
          } else {
            tooltip.hide();
            light.clear();
          }
        })
        .on("mouseleave", () => {
          tooltip.hide();
          light.clear();
        });
      for (const [r0, r1] of rowChunks(f.rows, f.cols)) paints.push(() => cv.canvas.isConnected && paintFrameRows(cv, f, r0, r1));
    } else {
      const cells = frameCells(win, f).map((d) => cellDatum(f.band, d));
      fg.selectAll("rect.fcell").data(cells).join("rect")
        .attr("class", (d) => `fcell role-${d.role}${d.copy ? " pad-copy" : ""}`)
        .attr("x", (d) => f.x + d.c * cell).attr("y", (d) => f.y + d.r * cell)
        .attr("width", cell).attr("height", cell)
        .attr("data-coord", (d) => d.coord.join(","))
        .attr("fill", fill)
        .on("mouseenter", (event, d) => light.fromFrame(f.band, d.coord))
        .on("mousemove", (event, d) => frameTip(event, f.band, d))
        .on("mouseleave", () => {
          tooltip.hide();
          light.clear();
        });
      fg.selectAll("text.fval").data(cells.filter(hasText)).join("text")
        .attr("class", (d) => (d.role === "padding" && !d.copy ? "pad-mark" : d.role === "zero" ? "zero-mark" : "fval"))
        .attr("x", (d) => f.x + (d.c + 0.5) * cell).attr("y", (d) => f.y + (d.r + 0.6) * cell)
        .attr("text-anchor", "middle").attr("dominant-baseline", "central")
        .text(textOf)
        .attr("font-size", function (d) {
          return fitFont(this.textContent, cell, d.role === "input" || d.copy ? 10 : 12);
        })
        .attr("fill", (d) => (d.role === "input" || d.copy ? textOn(fill(d)) : null));
    }
    // Input indices along the top and left, so stride and dilation can be counted.
    if (cell >= 14 && f.band === L.shown[L.shown.length - 1]) {
      const origin = win.frame.input_origin;
      const stepv = win.frame.input_step;
      const d0 = L.sd - 1;
      fg.selectAll("text.cidx").data(d3.range(win.input_spatial[d0])).join("text").attr("class", "idx")
        .attr("x", (i) => f.x + (origin[d0] + i * stepv[d0] + 0.5) * cell).attr("y", f.y + L.rows * cell + 13)
        .attr("text-anchor", "middle").text((i) => i);
    }
    if (cell >= 14 && L.sd >= 2) {
      const origin = win.frame.input_origin;
      const stepv = win.frame.input_step;
      const d1 = L.sd - 2;
      fg.selectAll("text.ridx").data(d3.range(win.input_spatial[d1])).join("text").attr("class", "idx")
        .attr("x", f.x - 4).attr("y", (i) => f.y + (origin[d1] + i * stepv[d1] + 0.5) * cell)
        .attr("text-anchor", "end").attr("dominant-baseline", "central").text((i) => i);
    }
  });

  // The channel strip (2-D and 3-D with several input channels): every channel small, the one
  // drawn big ringed; click or arrow keys choose. Each thumbnail shows the window's place.
  const thumbWins = [];
  if (L.strip) {
    const sg = g.append("g").attr("class", "chan-strip").attr("role", "radiogroup")
      .attr("aria-label", `Input channels: the output sums all ${bands.length}; arrow keys choose the one drawn`);
    sg.append("text").attr("class", "grid-title small").attr("x", L.strip.x).attr("y", L.strip.y + 12)
      .text(kind === "pool" ? `channels (${bands.length}), one drawn` : `input channels: the output sums all ${bands.length}`);
    const cv = canvasIn(sg, { x: L.strip.x, y: L.strip.y, width: L.width - L.strip.x, height: L.strip.height, cls: "scanvas" });
    cv.fo.attr("pointer-events", "none");
    const choose = (b) => {
      if (b !== L.shown[0]) opts.onBand?.(b);
    };
    L.strip.thumbs.forEach((t) => {
      const tg = sg.append("g").attr("class", "thumb").attr("data-band", t.band).attr("data-channel", bands[t.band].channel)
        .attr("role", "radio").attr("aria-checked", String(t.band === L.shown[0]))
        .attr("tabindex", t.band === L.shown[0] ? 0 : -1)
        // the accessible name starts with the text shown (WCAG 2.5.3, label in name)
        .attr("aria-label", `${kind === "pool" ? "ch" : "in ch"} ${bands[t.band].channel} (${kind === "pool" ? "channel" : "input channel"} ${bands[t.band].channel})`)
        .classed("selected", t.band === L.shown[0])
        .on("click", () => choose(t.band));
      tg.append("text").attr("class", "thumb-label").attr("x", t.x).attr("y", t.y - 4).text(`${kind === "pool" ? "ch" : "in ch"} ${bands[t.band].channel}`);
      tg.append("rect").attr("class", "thumb-hit").attr("x", t.x - 3).attr("y", t.y - 15).attr("width", Math.max(t.w, 44) + 6)
        .attr("height", t.h + 18).attr("rx", 3);
      thumbWins.push({ band: t.band, rect: tg.append("rect").attr("class", "thumb-win").attr("pointer-events", "none") });
      // In pieces of rows, like the frames: a 3 × 128 × 128 strip is 49,000 cells.
      for (const [r0, r1] of rowChunks(t.rows, t.cols * t.planes.length)) paints.push(() => {
        if (!cv.canvas.isConnected) return;
        for (const pl of t.planes)
          for (let r = r0; r < r1; r++)
            for (let c = 0; c < t.cols; c++) {
              const coord = L.sd === 2 ? [r, c] : [pl.z, r, c];
              const d = cellDatum(t.band, { r, c, coord, role: frameCellRole(coord, win) });
              const fl = fill(d);
              paintCell(cv.ctx, pl.x - L.strip.x + c * t.cell, t.y - L.strip.y + r * t.cell, t.cell, fl === "url(#pad-hatch)" ? CELL.padding : fl, null);
            }
      });
    });
    sg.on("keydown", (event) => {
      const n = L.strip.thumbs.length;
      const cur = L.shown[0];
      const next = { ArrowRight: cur + 1, ArrowDown: cur + 1, ArrowLeft: cur - 1, ArrowUp: cur - 1, Home: 0, End: n - 1 }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      choose(Math.max(0, Math.min(n - 1, next)));
    });
  }

  // Each channel's kernel slice, beside its frame: the weights the window multiplies.
  const kernelCells = [];
  for (const kg of L.kernels) {
    const band = bands[kg.band];
    if (!band.kernelValue) continue;
    const grp = g.append("g").attr("class", "kernel-slice").attr("data-band", kg.band);
    grp.append("text").attr("class", "grid-title small").attr("x", kg.x).attr("y", kg.y - 8).text(`w[${opts.outChannel ?? 0}, ${band.weightChannel ?? band.channel}]`);
    win.kernel_index.forEach((kidx, slot) => {
      const p = placeKernelIndex(kidx, L);
      const v = band.kernelValue(kidx);
      const d = { band: kg.band, slot, kidx, v, x: kg.x + p.c * cell, y: kg.y + p.r * cell, term: kg.band * K + slot };
      kernelCells.push(d);
    });
  }
  const kFill = (d) => (d.v === undefined || d.v === null ? "#fde68a" : colorW(d.v));
  g.selectAll("rect.kcell").data(kernelCells).join("rect").attr("class", "kcell")
    .attr("x", (d) => d.x).attr("y", (d) => d.y).attr("width", cell).attr("height", cell)
    .attr("data-term", (d) => d.term).attr("fill", kFill)
    .on("mousemove", (event, d) => {
      onTermHover(d.term);
      tooltip.show(event, `<b>weight</b>[${[opts.outChannel ?? 0, bands[d.band].weightChannel ?? bands[d.band].channel, ...d.kidx].join(", ")}]${d.v === undefined || d.v === null ? "" : ` = <code>${fmtFull(d.v)}</code>`}`);
    })
    .on("mouseleave", () => {
      onTermHover(null);
      tooltip.hide();
    });
  if (showValues)
    g.selectAll("text.kval").data(kernelCells.filter((d) => d.v !== undefined && d.v !== null)).join("text").attr("class", "kval")
      .attr("x", (d) => d.x + cell / 2).attr("y", (d) => d.y + cell / 2).attr("text-anchor", "middle").attr("dominant-baseline", "central")
      .attr("pointer-events", "none")
      .text((d) => fmt(d.v, 2)).attr("font-size", function () {
        return fitFont(this.textContent, cell, 10);
      })
      .attr("fill", (d) => textOn(kFill(d)));

  // Output grid.
  const og = g.append("g").attr("class", "out-grid");
  og.append("text").attr("class", "grid-title").attr("x", L.output.x).attr("y", L.output.y - 8)
    .text(`${L.sd === 3 ? `output d=${depth}` : "output"}${win.channel_map || bands.length > 1 || kind === "pool" ? ` · ch ${opts.outChannel ?? 0}` : ""}`);
  const outCells = [];
  for (let r = 0; r < L.output.rows; r++)
    for (let c = 0; c < L.output.cols; c++) {
      const coord = L.sd === 1 ? [c] : L.sd === 2 ? [r, c] : [depth, r, c];
      outCells.push({ r, c, coord, step: outputToStep(win, coord), value: outputValue(coord) });
    }
  const outTip = (event, d) => tooltip.show(event, `<b>${escapeHtml(names.output)}</b>[${d.coord.join(", ")}]${d.value === undefined ? "" : ` = <code>${fmtFull(d.value)}</code>`}<br>click to explain`);
  let outSel = null;
  let outCanvas = null;
  if (onCanvas) {
    outCanvas = canvasIn(og, { x: L.output.x, y: L.output.y, width: L.output.cols * cell, height: L.output.rows * cell, cls: "ocanvas" });
    const under = (event) => {
      const p = pointIn(outCanvas, event);
      const hit = outputHit(L, p.x, p.y, depth);
      return hit ? outCells[hit.r * L.output.cols + hit.c] : null;
    };
    outCanvas.fo
      .on("click", (event) => {
        const d = under(event);
        if (d) onPick(d.coord);
      })
      .on("mousemove", (event) => {
        const d = under(event);
        if (d) {
          outTip(event, d);
          light.fromOutput(d.coord);
        } else {
          tooltip.hide();
          light.clear();
        }
      })
      .on("mouseleave", () => {
        tooltip.hide();
        light.clear();
      });
  } else {
    outSel = og.selectAll("rect.ocell").data(outCells).join("rect")
      .attr("class", "ocell")
      .attr("x", (d) => L.output.x + d.c * cell).attr("y", (d) => L.output.y + d.r * cell)
      .attr("width", cell).attr("height", cell)
      .attr("data-coord", (d) => d.coord.join(","))
      .attr("fill", CELL.pending)
      .on("click", (event, d) => onPick(d.coord))
      .on("mouseenter", (event, d) => light.fromOutput(d.coord))
      .on("mousemove", outTip)
      .on("mouseleave", () => {
        tooltip.hide();
        light.clear();
      });
  }
  // The output's outline: pending (white) cells must still show where the output lies.
  og.append("rect").attr("class", "out-frame").attr("x", L.output.x - 0.5).attr("y", L.output.y - 0.5)
    .attr("width", L.output.cols * cell + 1).attr("height", L.output.rows * cell + 1).attr("fill", "none")
    .attr("stroke", "#94a3b8").attr("pointer-events", "none");
  // On a canvas the current output cell is ringed by one SVG rectangle (the SVG cells get a class).
  const outCurrent = onCanvas ? og.append("rect").attr("class", "out-current").attr("width", cell).attr("height", cell).attr("visibility", "hidden") : null;
  const outText = cell >= 24 && !onCanvas
    ? og.selectAll("text.oval").data(outCells).join("text").attr("class", "oval")
        .attr("x", (d) => L.output.x + (d.c + 0.5) * cell).attr("y", (d) => L.output.y + (d.r + 0.5) * cell)
        .attr("text-anchor", "middle").attr("dominant-baseline", "central").attr("pointer-events", "none")
    : null;
  // Output cells on the canvas. The first painting goes in pieces with the other canvases (each
  // row as of the step shown then; rows painted at an older step are redone at the end); after it,
  // a step repaints only the cells whose state changed, those with steps between the last painted
  // step and the new one.
  const outFills = new Array(outCells.length);
  let paintedStep = null; // null until the first painting is done
  let shownStep = 0;
  function paintOutCell(d, i, step) {
    const filled = d.step <= step;
    const fl = filled ? (outFills[i] ??= fillOut(d)) : CELL.pending;
    paintCell(outCanvas.ctx, d.c * cell, d.r * cell, cell, fl, cell >= 8 ? "#cbd5e1" : null);
    if (cell >= 24 && filled && d.value !== undefined) {
      const t = fmt(d.value, 2);
      cellText(outCanvas.ctx, t, (d.c + 0.5) * cell, (d.r + 0.5) * cell, { size: fitFont(t, cell, 11), color: textOn(fl), family: font });
    }
  }
  function paintOutRows(r0, r1, step) {
    for (let i = r0 * L.output.cols; i < r1 * L.output.cols; i++) paintOutCell(outCells[i], i, step);
  }
  function paintOut(step) {
    if (paintedStep === null) return; // the first painting is under way and ends at the step shown
    const lo = Math.min(step, paintedStep);
    const hi = Math.max(step, paintedStep);
    outCells.forEach((d, i) => {
      if (d.step > lo && d.step <= hi) paintOutCell(d, i, step);
    });
    paintedStep = step;
  }
  if (onCanvas) {
    const rowStep = new Array(L.output.rows).fill(null);
    const live = () => outCanvas.canvas.isConnected;
    paints.unshift(
      ...rowChunks(L.output.rows, L.output.cols).map(([r0, r1]) => () => {
        if (!live()) return;
        paintOutRows(r0, r1, shownStep);
        rowStep.fill(shownStep, r0, r1);
      }),
      () => {
        if (!live()) return;
        rowStep.forEach((st, r) => st !== shownStep && paintOutRows(r, r + 1, shownStep));
        paintedStep = shownStep;
      },
    );
  }
  if (cell >= 14) {
    og.selectAll("text.oidx").data(d3.range(L.output.cols)).join("text").attr("class", "idx")
      .attr("x", (i) => L.output.x + (i + 0.5) * cell).attr("y", L.output.y + L.output.rows * cell + 13).attr("text-anchor", "middle").text((i) => i);
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

  const overlay = g.append("g").attr("class", "win-overlay");
  const ghost = overlay.append("rect").attr("class", "win-ghost").attr("pointer-events", "none");
  const spans = overlay.append("g").attr("pointer-events", "none");
  const link = overlay.append("path").attr("class", "win-link").attr("pointer-events", "none");
  const cellsG = overlay.append("g");
  const pinG = overlay.append("g").attr("pointer-events", "none");
  // Hover both ways (as in ezyang's convolution visualizer): an output cell lights its window; a
  // frame cell lights every output that reads it, and an input element every output it feeds
  // through any frame cell holding it (padding copies included). From the API's compact windows.
  const litG = overlay.append("g").attr("class", "win-lit").attr("pointer-events", "none");
  const light = (() => {
    let last = null;
    const mark = (r, cls, coord) => litG.append("rect").attr("class", cls).attr("x", r.x + 1.5).attr("y", r.y + 1.5)
      .attr("width", cell - 3).attr("height", cell - 3).attr("data-coord", coord.join(","));
    const clear = () => {
      last = null;
      litG.selectAll("*").remove();
      svg.attr("data-lit", null);
    };
    return {
      clear,
      fromFrame(bi, coord) {
        const key = `f${bi}:${coord}`;
        if (key === last) return;
        clear();
        last = key;
        const d = cellDatum(bi, { coord, role: frameCellRole(coord, win) });
        const ins = d.src ? framesOf(win, d.src) : [coord];
        let outs = d.src ? outputsFedBy(win, d.src) : outputsReading(win, coord);
        if (L.sd === 3) outs = outs.filter((o) => o[0] === depth);
        for (const c of ins) {
          const r = frameRect(c, bi);
          if (r) mark(r, "lit-in", c);
        }
        for (const o of outs) mark(outRect(o), "lit-out", o);
        svg.attr("data-lit", d.src ? `input ${d.src.join(",")}` : `frame ${coord.join(",")}`);
      },
      fromOutput(oc) {
        const key = `o:${oc}`;
        if (key === last) return;
        clear();
        last = key;
        for (const bi of L.shown)
          for (const c of windowAt(win, oc)) {
            const r = frameRect(c, bi);
            if (r) mark(r, "lit-win", c);
          }
        mark(outRect(oc), "lit-out", oc);
        svg.attr("data-lit", `output ${oc.join(",")}`);
      },
    };
  })();
  const total = stepCount(win, L.sd === 3 ? depth : null);
  let current = -1;
  let hoverTerm = null;

  function rectsFor(step) {
    const oc = stepToOutput(win, step, depth);
    const at = windowAt(win, oc);
    const rects = [];
    bands.forEach((b, bi) => {
      at.forEach((c, k) => {
        const r = frameRect(c, bi);
        if (r) rects.push({ ...r, k, band: bi, coord: c, term: bi * K + k });
      });
    });
    return { oc, rects };
  }

  function fillOut(d) {
    return d.value === undefined ? CELL.output : colorOut(d.value);
  }

  // `ms`: how long the window takes to glide to its new place (0: jump, e.g. reduced motion).
  function showStep(step, ms = 0) {
    const { oc, rects } = rectsFor(step);
    shownStep = step;
    if (thumbWins.length) {
      const at = windowAt(win, oc);
      for (const tw of thumbWins) {
        const rs = at.map((c) => placeThumbCoord(c, L, tw.band)).filter(Boolean);
        if (!rs.length) tw.rect.attr("visibility", "hidden");
        else {
          const sp = spanOf(rs.map((r) => ({ x: r.x, y: r.y, w: r.w, h: r.h })));
          tw.rect.attr("visibility", "visible").attr("x", sp.x - 1).attr("y", sp.y - 1).attr("width", sp.w + 2).attr("height", sp.h + 2);
        }
      }
    }
    if (outCanvas) {
      paintOut(step);
      const cur = outRect(oc);
      outCurrent.attr("x", cur.x).attr("y", cur.y).attr("visibility", "visible");
    } else outSel.attr("fill", (d) => (d.step <= step ? fillOut(d) : CELL.pending)).classed("current", (d) => d.step === step);
    if (outText)
      outText.text((d) => (d.step <= step && d.value !== undefined ? fmt(d.value, 2) : ""))
        .attr("font-size", function () {
          return fitFont(this.textContent, cell, 11);
        })
        .attr("fill", (d) => (d.step <= step ? textOn(fillOut(d)) : "#0f172a"));
    const move = (sel) => (ms > 0 ? sel.transition("move").duration(ms).ease(d3.easeCubicInOut) : sel.interrupt("move"));
    const wc = cellsG.selectAll("rect.win-cell").data(rects, (r) => r.term).join(
      (enter) => enter.append("rect").attr("class", "win-cell").attr("x", (r) => r.x + 1).attr("y", (r) => r.y + 1),
    );
    wc.attr("width", cell - 2).attr("height", cell - 2).attr("data-term", (r) => r.term)
      .classed("hl", (r) => r.term === hoverTerm)
      .on("mouseenter", (event, r) => {
        onTermHover(r.term);
        light.fromFrame(r.band, r.coord);
      })
      .on("mousemove", (event, r) => tipAt(event, r.band, r.coord))
      .on("mouseleave", () => {
        onTermHover(null);
        tooltip.hide();
        light.clear();
      });
    move(wc).attr("x", (r) => r.x + 1).attr("y", (r) => r.y + 1);
    const kt = cellsG.selectAll("text.kidx").data(cell >= 26 ? rects : [], (r) => r.term).join(
      (enter) => enter.append("text").attr("class", "kidx").attr("x", (r) => r.x + cell - 3).attr("y", (r) => r.y + 9),
    );
    kt.attr("text-anchor", "end").attr("pointer-events", "none").text((r) => `${kind === "pool" ? "k" : "w"}${win.kernel_index[r.k].join("")}`);
    move(kt).attr("x", (r) => r.x + cell - 3).attr("y", (r) => r.y + 9);
    if (!rects.length) return;
    const byBand = d3.groups(rects, (r) => r.band).map(([, rs]) => spanOf(rs));
    const sp = spans.selectAll("rect.win-span").data(byBand).join((enter) =>
      enter.append("rect").attr("class", "win-span").attr("x", (s) => s.x - 2).attr("y", (s) => s.y - 2));
    move(sp).attr("x", (s) => s.x - 2).attr("y", (s) => s.y - 2).attr("width", (s) => s.w + 4).attr("height", (s) => s.h + 4);
    const s = byBand[0];
    if (step > 0) {
      const prev = spanOf(rectsFor(step - 1).rects.filter((r) => r.band === L.shown[0]));
      ghost.attr("x", prev.x - 2).attr("y", prev.y - 2).attr("width", prev.w + 4).attr("height", prev.h + 4).attr("visibility", "visible");
    } else ghost.attr("visibility", "hidden");
    const o = outRect(oc);
    const x1 = s.x + s.w / 2;
    const y1 = L.stacked ? s.y + s.h : s.y;
    const x2 = o.x + cell / 2;
    const y2 = o.y;
    const lift = L.stacked ? 0 : 22;
    const path = L.stacked
      ? `M${x1},${y1 + 2} C${x1},${(y1 + y2) / 2} ${x2},${(y1 + y2) / 2} ${x2},${y2 - 2}`
      : `M${x1},${y1 - 2} C${x1},${Math.min(y1, y2) - lift} ${x2},${Math.min(y1, y2) - lift} ${x2},${y2 - 2}`;
    move(link).attr("d", path);
    current = step;
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
      const fr = at ? frameRect(at, 0) : null;
      if (fr) {
        pinG.append("rect").attr("class", "winner").attr("x", fr.x + 2).attr("y", fr.y + 2).attr("width", cell - 4).attr("height", cell - 4);
        // In the corner where the kernel index was, on its own backdrop: the cell's value (centre)
        // stays readable (the table below names the kernel element).
        pinG.append("rect").attr("class", "winner-tag").attr("x", fr.x + cell - 23).attr("y", fr.y + 2.5).attr("width", 20.5).attr("height", 9).attr("rx", 2);
        pinG.append("text").attr("class", "winner-label").attr("x", fr.x + cell - 4).attr("y", fr.y + 10).attr("text-anchor", "end").text("max");
      }
    }
  }

  // Explanation term `t` (a row of the terms table) ↔ its window cell and kernel cell.
  function highlightTerm(t) {
    hoverTerm = t;
    cellsG.selectAll("rect.win-cell").classed("hl", (r) => r.term === t);
    g.selectAll("rect.kcell").classed("hl", (d) => d.term === t);
  }

  // Titles can be wider than their grids (a narrow output on a phone): widen the picture to hold them.
  const bb = g.node().getBBox?.();
  if (bb && bb.width && bb.x + bb.width + 6 > L.width) {
    const w = Math.ceil(bb.x + bb.width + 6);
    svg.attr("width", w).attr("viewBox", `0 0 ${w} ${Math.ceil(L.height)}`);
  }

  // The canvases are painted in pieces, yielding to the browser in between; a newer drawing in the
  // same container removes them, which stops the painting.
  if (!onCanvas) for (const p of paints.splice(0)) p(); // the strip's small canvas, at once
  const firstCanvas = container.querySelector("svg.drawing canvas");
  const painted = onCanvas
    ? runChunked(paints, { cancelled: () => !firstCanvas?.isConnected }).then((done) => {
      if (done) svg.attr("data-painted", "true");
      return done;
    })
    : Promise.resolve(true);

  // Which band (index into `bands`) explanation term `t` belongs to.
  const bandOfTerm = (t) => Math.floor(t / Math.max(1, K));
  return { showStep, pin, highlightTerm, bandOfTerm, count: total, layout: L, svg: svg.node(), onCanvas, painted, get step() {
    return current;
  } };
}

function frameDepthNote(win, z) {
  const o = win.frame.input_origin[0];
  const st = win.frame.input_step[0];
  const rel = z - o;
  if (rel < 0 || rel > (win.input_spatial[0] - 1) * st) return " pad";
  if (rel % st) return " zeros";
  return ` (d=${rel / st})`;
}
