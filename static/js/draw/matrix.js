// Linear and Bilinear drawn as their equations, x · Aᵀ + b = y and y_k = x1ᵀ A_k x2 + b_k, with
// every matrix to proportion and clickable output cells.

import { d3, svgIn, dimLabel, appendLabel, valueColor, tooltip, valueTip, gridKeys } from "./common.js";
import { equationLayout, MAX_DRAWN_CELLS, cellAt } from "../geometry/matrix.js";
import { linearModel, bilinearModel } from "../geometry/dims.js";
import { valueDomain } from "../geometry/heatmap.js";
import { toNumber, getAt } from "../util/format.js";

// Values of a 2-D view of a tensor, or null when the API sent only a summary.
function view2d(t, get) {
  return t && t.data !== null && t.data !== undefined ? get : null;
}

function drawMatrix(g, item, cell, { name, values, color, rowDim, colDim, colorOf, title, onCell, tipName, indexOf, id, stackDims = [], preview = null }) {
  const m = g.append("g").attr("class", `matrix m-${id}`).attr("data-id", id);
  // Stacked copies (extra leading dimensions) sit behind, up and to the right.
  for (let s = item.stackShown; s >= 1; s--) {
    m.append("rect")
      .attr("class", "stack-copy")
      .attr("x", item.x + s * item.stackStep)
      .attr("y", item.y - s * item.stackStep)
      .attr("width", item.w)
      .attr("height", item.h);
  }
  const body = m.append("g").attr("class", "cells");
  const drawCells = (values || !preview) && item.rows * item.cols <= MAX_DRAWN_CELLS && cell >= 1.5;
  if (drawCells) {
    const data = [];
    for (let r = 0; r < item.rows; r++) for (let c = 0; c < item.cols; c++) data.push({ r, c });
    body
      .selectAll("rect")
      .data(data)
      .join("rect")
      .attr("class", "cell")
      .attr("x", (d) => item.x + d.c * cell)
      .attr("y", (d) => item.y + d.r * cell)
      .attr("width", cell)
      .attr("height", cell)
      .attr("fill", (d) => (values ? color(values(d.r, d.c)) : "#e5e7eb"))
      .attr("data-r", (d) => d.r)
      .attr("data-c", (d) => d.c);
  } else if (preview) {
    // Too large to send in full: the API's strided preview, each sample covering its stride.
    const data = [];
    for (let r = 0; r < preview.rows; r++) for (let c = 0; c < preview.cols; c++) data.push({ r, c });
    const [sr, sc] = preview.step;
    body.selectAll("rect").data(data).join("rect").attr("class", "cell preview")
      .attr("x", (d) => item.x + d.c * sc * cell).attr("y", (d) => item.y + d.r * sr * cell)
      .attr("width", (d) => Math.min(sc, item.cols - d.c * sc) * cell).attr("height", (d) => Math.min(sr, item.rows - d.r * sr) * cell)
      .attr("fill", (d) => color(preview.get(d.r, d.c)));
  } else {
    body.append("rect").attr("class", "cell-block").attr("x", item.x).attr("y", item.y).attr("width", item.w).attr("height", item.h);
  }
  const frame = m.append("rect").attr("class", "matrix-frame").attr("x", item.x).attr("y", item.y).attr("width", item.w).attr("height", item.h);
  // Coloured edges: the top edge carries the column dimension, the left edge the row dimension,
  // so a shared dimension (x's columns, Aᵀ's rows) shows up as the same colour.
  if (colDim) m.append("line").attr("class", "dim-edge").attr("x1", item.x).attr("x2", item.x + item.w).attr("y1", item.y - 2).attr("y2", item.y - 2).attr("stroke", colorOf(colDim.key));
  if (rowDim) m.append("line").attr("class", "dim-edge").attr("x1", item.x - 2).attr("x2", item.x - 2).attr("y1", item.y).attr("y2", item.y + item.h).attr("stroke", colorOf(rowDim.key));
  // Labels sit above the stacked copies, not across them.
  const lift = item.stackShown * item.stackStep;
  if (stackDims.length && item.stackShown) {
    const st = m.append("text").attr("class", "dim-label").attr("x", item.x + item.w + lift + 3).attr("y", item.y - lift + 4);
    st.append("tspan").text("× ");
    stackDims.forEach((d, i) => {
      const span = st.append("tspan").style("fill", colorOf(d.key));
      appendLabel(span, d.label);
      span.append("tspan").text(`=${d.size}${i < stackDims.length - 1 ? ", " : ""}`);
    });
  }
  if (colDim) dimLabel(m, colDim, colorOf(colDim.key), { x: item.x + item.w / 2, y: item.y - 8 - lift });
  if (rowDim) dimLabel(m, rowDim, colorOf(rowDim.key), { x: item.x - 8, y: item.y + item.h / 2, rotate: -90 });
  const t = m.append("text").attr("class", "matrix-title").attr("x", item.x + item.w / 2).attr("y", item.y - 24 - lift).attr("text-anchor", "middle");
  title(t);

  const hit = (event) => {
    const [px, py] = d3.pointer(event, g.node());
    return cellAt(item, px, py, cell);
  };
  m.on("mousemove", (event) => {
    const rc = hit(event);
    if (!rc) return tooltip.hide();
    const v = values ? values(rc.r, rc.c) : null;
    tooltip.show(event, v === null ? `${tipName}[${indexOf(rc).join(", ")}]` : valueTip(tipName, indexOf(rc), v));
  }).on("mouseleave", () => tooltip.hide());
  if (onCell) {
    m.classed("pickable", true).on("click", (event) => {
      const rc = hit(event);
      if (rc) onCell(rc);
    });
  }
  return { g: m, item, frame };
}

function highlightRect(g, item, cell, { r0, c0, rows, cols, cls }) {
  g.append("rect")
    .attr("class", cls)
    .attr("x", item.x + c0 * cell)
    .attr("y", item.y + r0 * cell)
    .attr("width", cols * cell)
    .attr("height", rows * cell);
}

function opText(g, op) {
  // A text "·" is a speck at this size; the product dot is drawn as a circle.
  if (op.text === "·") return g.append("circle").attr("class", "op-dot").attr("cx", op.x).attr("cy", op.y).attr("r", 3.2);
  return g.append("text").attr("class", "op").attr("x", op.x).attr("y", op.y).attr("text-anchor", "middle").attr("dominant-baseline", "central").text(op.text);
}

function leadIndex(model) {
  return model.stack.map(() => 0);
}

function caption(g, x, y, parts) {
  const t = g.append("text").attr("class", "diagram-caption").attr("x", x).attr("y", y);
  for (const [text, cls] of parts) t.append("tspan").attr("class", cls || null).text(text);
  return t;
}

// A 2-D preview (matrix or the first slice of a stack) of a tensor sent without its data.
function preview2d(t, { transpose = false, lead = [] } = {}) {
  if (!t || t.data || !t.preview || !t.preview_step) return null;
  let p = t.preview;
  for (let i = 0; i < lead.length; i++) p = p?.[0];
  if (!Array.isArray(p)) return null;
  const step = t.preview_step.slice(-2);
  if (!Array.isArray(p[0])) {
    return { rows: 1, cols: p.length, step: [1, step[step.length - 1]], get: (r, c) => toNumber(p[c]) };
  }
  if (transpose) return { rows: p[0].length, cols: p.length, step: [step[1], step[0]], get: (r, c) => toNumber(p[c][r]) };
  return { rows: p.length, cols: p[0].length, step, get: (r, c) => toNumber(p[r][c]) };
}

export function drawLinear(container, run, { colorOf, width, pinned, onPick, layerType }) {
  const model = linearModel(run);
  const { rows, inF, outF } = model;
  const items = [
    { kind: "matrix", id: "x", rows, cols: inF, stack: model.batch / Math.max(rows, 1), stackLabel: true },
    { kind: "op", text: "·" },
  ];
  if (model.A) items.push({ kind: "matrix", id: "A", rows: inF, cols: outF }, { kind: "op", text: model.b ? "+" : "=" });
  if (model.b) items.push({ kind: "matrix", id: "b", rows: 1, cols: outF }, { kind: "op", text: "=" });
  items.push({ kind: "matrix", id: "y", rows, cols: outF, stack: model.batch / Math.max(rows, 1), stackLabel: true });
  const lay = equationLayout(items, { width, maxHeight: 380 });
  const svg = svgIn(container, lay.width, lay.height + (model.stack.length ? 40 : 22), `${layerType}: y = x·Aᵀ + b, x ${run.inputs[0].shape.join("×")} → y ${run.output.shape.join("×")}`);
  const g = svg.append("g");
  const cell = lay.cell;
  const byId = Object.fromEntries(lay.items.filter((i) => i.kind === "matrix").map((i) => [i.id, i]));
  const lead = leadIndex(model);
  const x0 = run.inputs[0];
  const xSlice = x0.data ? (model.stack.length ? getAt(x0.data, lead) : x0.data) : null;
  const ySlice = run.output.data ? (model.stack.length ? getAt(run.output.data, lead) : run.output.data) : null;
  const oneD = run.inputs[0].shape.length === 1;
  const xv = xSlice ? (oneD ? (r, c) => toNumber(xSlice[c]) : (r, c) => toNumber(xSlice[r][c])) : null;
  const yv = ySlice ? (oneD ? (r, c) => toNumber(ySlice[c]) : (r, c) => toNumber(ySlice[r][c])) : null;
  const w = model.weight;
  const av = w?.data ? (model.transposed ? (r, c) => toNumber(w.data[c][r]) : (r, c) => toNumber(w.data[r][c])) : null;
  const bv = model.bias?.data ? (r, c) => toNumber(model.bias.data[c]) : null;
  const rowDim = model.rowLabel ? { label: model.rowLabel, size: rows, key: model.rowLabel === "N" ? "batch" : "extra" } : null;
  const inDim = model.x.dims[model.x.dims.length - 1];
  const outDim = model.y.dims[model.y.dims.length - 1];
  const xIndex = (rc) => (oneD ? [rc.c] : [...lead, rc.r, rc.c]);
  const yIndex = xIndex;

  const parts = {};
  parts.x = drawMatrix(g, byId.x, cell, {
    id: "x", values: xv, color: valueColor(valueDomain(x0)), rowDim, colDim: inDim, colorOf, stackDims: model.stack, preview: preview2d(x0, { lead }),
    title: (t) => t.append("tspan").attr("class", "name").text("x"), tipName: x0.name || "input", indexOf: xIndex,
  });
  if (byId.A) {
    parts.A = drawMatrix(g, byId.A, cell, {
      id: "A", values: av, color: valueColor(valueDomain(w)), rowDim: inDim, colDim: outDim, colorOf, preview: preview2d(w, { transpose: model.transposed }),
      title: (t) => {
        if (model.transposed) {
          t.append("tspan").attr("class", "name").text("Aᵀ");
          t.append("tspan").attr("class", "aside").text(` = ${w.name}ᵀ`);
        } else {
          t.append("tspan").attr("class", "name").text(w.name);
        }
      },
      tipName: w.name,
      indexOf: (rc) => (model.transposed ? [rc.c, rc.r] : [rc.r, rc.c]),
    });
  }
  if (byId.b) {
    parts.b = drawMatrix(g, byId.b, cell, {
      id: "b", values: bv, color: valueColor(valueDomain(model.bias)), rowDim: null, colDim: outDim, colorOf,
      title: (t) => {
        t.append("tspan").attr("class", "name").text("b");
        if (model.bias.name !== "b") t.append("tspan").attr("class", "aside").text(` = ${model.bias.name}`);
      },
      tipName: model.bias.name, indexOf: (rc) => [rc.c],
    });
  }
  parts.y = drawMatrix(g, byId.y, cell, {
    id: "y", values: yv, color: valueColor(valueDomain(run.output)), rowDim, colDim: outDim, colorOf, stackDims: model.stack, preview: preview2d(run.output, { lead }),
    title: (t) => t.append("tspan").attr("class", "name").text("y"), tipName: "output", indexOf: yIndex,
    onCell: (rc) => onPick(yIndex(rc)),
  });
  for (const op of lay.items.filter((i) => i.kind === "op")) opText(g, op);

  // Extra leading dimensions of (N, *, in): the drawn matrices are slice [0, …] of a stack.
  const foot = lay.height + 6;
  caption(g, 10, foot, [
    [`x ${shapeText(model.x.dims)} · ${model.transposed ? "Aᵀ" : w ? w.name : "A"} (in, out) ${model.b ? "+ b (out) " : ""}= y ${shapeText(model.y.dims)}`, "formula-text"],
  ]);
  // Extra leading dimensions of (N, *, in): the drawn matrices are one slice of a stack.
  if (model.stack.length)
    caption(g, 10, foot + 17, [[`the same A and b apply to every slice; drawn: x[${lead.join(", ")}], y[${lead.join(", ")}] of ${model.stack.map((d) => `${d.label}=${d.size}`).join(", ")}`, "aside"]]);

  const keys = gridKeys(parts.y.g, {
    rows, cols: outF, label: "Output y: arrow keys move, Enter explains the element",
    onMove: ([r, c]) => showCursor(r, c), onActivate: ([r, c]) => onPick(yIndex({ r, c })),
  });
  const overlay = g.append("g").attr("class", "overlay");
  function showCursor(r, c) {
    overlay.selectAll(".cursor").remove();
    highlightRect(overlay, byId.y, cell, { r0: r, c0: c, rows: 1, cols: 1, cls: "cursor" });
  }
  function highlight(index) {
    overlay.selectAll(".pin").remove();
    if (!index) return;
    const r = oneD ? 0 : index[index.length - 2];
    const c = index[index.length - 1];
    keys.set([r, c]);
    const pin = (id, spec) => byId[id] && highlightRect(overlay, byId[id], cell, { ...spec, cls: `pin pin-${id}` });
    pin("x", { r0: r, c0: 0, rows: 1, cols: inF });
    pin("A", { r0: 0, c0: c, rows: inF, cols: 1 });
    pin("b", { r0: 0, c0: c, rows: 1, cols: 1 });
    pin("y", { r0: r, c0: c, rows: 1, cols: 1 });
  }
  highlight(pinned);
  return { highlight, svg: svg.node() };
}

function shapeText(dims) {
  return `(${dims.map((d) => d.label).join(", ")})`;
}

// Bilinear, per sample: y[n, k] = x₁[n] · A_k · x₂[n]ᵀ + b_k. One row of x₁ and one row of x₂
// meet one matrix A_k; the result is a single element of y (not an N×N product whose diagonal is y).
// The pinned element (or [0, 0]) picks n and k; y is drawn whole beside it, to click another element.
export function drawBilinear(container, run, { colorOf, width, pinned, onPick }) {
  const model = bilinearModel(run);
  const { rows, in1, in2, out } = model;
  const oneD = run.inputs[0].shape.length === 1;
  const lead = model.stack.map(() => 0);
  const sl = (t) => (t?.data ? (lead.length ? getAt(t.data, lead) : t.data) : null);
  const x1s = sl(run.inputs[0]);
  const x2s = sl(run.inputs[1]);
  const ys = sl(run.output);
  const rowOf = (s, n) => (s ? (oneD ? s : s[n]) : null);
  const w = model.weight;
  const bias = model.bias;
  const rowDim = model.rowLabel ? { label: model.rowLabel, size: rows, key: "batch" } : null;
  const [outDim, in1Dim, in2Dim] = model.A.dims;
  const idx = (rc) => (oneD ? [rc.c] : [...lead, rc.r, rc.c]);
  const wColor = valueColor(valueDomain(w));
  const c1 = valueColor(valueDomain(run.inputs[0]));
  const c2 = valueColor(valueDomain(run.inputs[1] || run.inputs[0]));
  const cy = valueColor(valueDomain(run.output));
  const cb = bias ? valueColor(valueDomain(bias)) : null;
  let api = null;

  function render(n, k) {
    const items = [
      { kind: "matrix", id: "x1", rows: 1, cols: in1 },
      { kind: "op", text: "·" },
      { kind: "matrix", id: "A", rows: in1, cols: in2, stack: out },
      { kind: "op", text: "·" },
      { kind: "matrix", id: "x2", rows: in2, cols: 1 },
    ];
    if (bias) items.push({ kind: "op", text: "+" }, { kind: "matrix", id: "b", rows: 1, cols: 1 });
    items.push({ kind: "op", text: "=" }, { kind: "matrix", id: "yk", rows: 1, cols: 1 });
    items.push({ kind: "op", text: "∈" }, { kind: "matrix", id: "y", rows, cols: out });
    const lay = equationLayout(items, { width, maxHeight: 340 });
    const hadFocus = container.querySelector(".m-y")?.contains(document.activeElement);
    const svg = svgIn(container, Math.max(lay.width, Math.min(width, 330)), lay.height + 40,
      `Bilinear, per sample: y[n, k] = x1[n] · A_k · x2[n]ᵀ + b_k, here n = ${n}, k = ${k}; A is ${out}×${in1}×${in2}`);
    svg.attr("data-n", n).attr("data-k", k);
    const g = svg.append("g");
    const cell = lay.cell;
    const byId = Object.fromEntries(lay.items.filter((i) => i.kind === "matrix").map((i) => [i.id, i]));
    const x1r = rowOf(x1s, n);
    const x2r = rowOf(x2s, n);
    const name = (t, base, sub, rest) => {
      appendLabel(t.append("tspan").attr("class", "name"), sub ? `${base}_${sub}` : base);
      if (rest) t.append("tspan").attr("class", "name").text(rest);
    };
    const sample = oneD ? "" : `[${n}]`;
    drawMatrix(g, byId.x1, cell, {
      id: "x1", values: x1r ? (r, c) => toNumber(x1r[c]) : null, color: c1, rowDim: null, colDim: in1Dim, colorOf,
      title: (t) => name(t, "x", "1", sample), tipName: run.inputs[0].name || "input1", indexOf: (rc) => (oneD ? [rc.c] : [...lead, n, rc.c]),
    });
    drawMatrix(g, byId.A, cell, {
      id: "A", values: w?.data ? (r, c) => toNumber(w.data[k][r][c]) : null, color: wColor, rowDim: in1Dim, colDim: in2Dim, colorOf,
      title: (t) => name(t, "A", "k", ` (k = ${k})`), tipName: w.name, indexOf: (rc) => [k, rc.r, rc.c],
    });
    drawMatrix(g, byId.x2, cell, {
      id: "x2", values: x2r ? (r) => toNumber(x2r[r]) : null, color: c2, rowDim: in2Dim, colDim: null, colorOf,
      title: (t) => name(t, "x", "2", `${sample}ᵀ`), tipName: run.inputs[1]?.name || "input2", indexOf: (rc) => (oneD ? [rc.r] : [...lead, n, rc.r]),
    });
    if (byId.b)
      drawMatrix(g, byId.b, cell, {
        id: "b", values: bias.data ? () => toNumber(bias.data[k]) : null, color: cb, rowDim: null, colDim: null, colorOf,
        title: (t) => name(t, "b", "k"), tipName: bias.name, indexOf: () => [k],
      });
    const yr = rowOf(ys, n);
    drawMatrix(g, byId.yk, cell, {
      id: "yk", values: yr ? () => toNumber(yr[k]) : null, color: cy, rowDim: null, colDim: null, colorOf,
      title: (t) => t.append("tspan").attr("class", "name").text(oneD ? `y[${k}]` : `y[${n}, ${k}]`), tipName: "output", indexOf: () => idx({ r: n, c: k }),
    });
    const parts = drawMatrix(g, byId.y, cell, {
      id: "y", values: ys ? (r, c) => toNumber(oneD ? ys[c] : ys[r][c]) : null, color: cy, rowDim, colDim: outDim, colorOf,
      title: (t) => t.append("tspan").attr("class", "name").text("y"), tipName: "output", indexOf: idx,
      onCell: (rc) => onPick(idx(rc)),
    });
    for (const op of lay.items.filter((i) => i.kind === "op")) opText(g, op);
    const Ai = byId.A;
    dimLabel(g, outDim, colorOf(outDim.key), { x: Ai.x + Ai.w / 2, y: Ai.y + Ai.h + 16 }).append("tspan").attr("class", "aside").text(" matrices");
    caption(g, 10, lay.height + 6, [
      [oneD ? "y[k] = x₁ · A" : "y[n, k] = x₁[n] · A", "formula-text"], ["k", "formula-sub"], [oneD ? " · x₂ᵀ + b" : " · x₂[n]ᵀ + b", "formula-text"], ["k", "formula-sub"],
    ]);
    const which = `one sample${oneD ? "" : ` (n = ${n})`}, one output feature (k = ${k}):`;
    const what = `a row vector · a ${in1}×${in2} matrix · a column vector = one number`;
    const line = caption(g, 10, lay.height + 23, [[`${which} ${what}`, "aside"]]);
    // Too long for the drawing (it was cut at the edge): two lines, and room for the second.
    const [, , vw, vh] = svg.attr("viewBox").split(" ").map(Number);
    if (10 + (line.node().getComputedTextLength?.() ?? 0) > vw - 4) {
      line.remove();
      caption(g, 10, lay.height + 23, [[which, "aside"]]);
      caption(g, 10, lay.height + 39, [[what, "aside"]]);
      svg.attr("viewBox", `0 0 ${vw} ${vh + 16}`).attr("height", vh + 16);
    }
    const overlay = g.append("g").attr("class", "overlay");
    highlightRect(overlay, byId.y, cell, { r0: oneD ? 0 : n, c0: k, rows: 1, cols: 1, cls: "pin pin-y" });
    const keys = gridKeys(parts.g, {
      rows, cols: out, label: "Output y: arrow keys move, Enter explains the element",
      onMove: ([r, c]) => {
        overlay.selectAll(".cursor").remove();
        highlightRect(overlay, byId.y, cell, { r0: r, c0: c, rows: 1, cols: 1, cls: "cursor" });
      },
      onActivate: ([r, c]) => onPick(idx({ r, c })),
    });
    keys.set([oneD ? 0 : n, k]);
    if (hadFocus) parts.g.node().focus();
    return svg;
  }

  const at = (index) => (index ? [oneD ? 0 : index[index.length - 2], index[index.length - 1]] : [0, 0]);
  let svg = render(...at(pinned));
  api = {
    highlight(index) {
      svg = render(...at(index));
      api.svg = svg.node();
    },
    svg: svg.node(),
  };
  return api;
}
