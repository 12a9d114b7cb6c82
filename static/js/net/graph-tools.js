// The dataflow graph's tools around the drawing: zoom buttons and "fit to screen" (graph-nav.js), the
// cost colouring with its legend (draw/cost.js), the selected node's details beside the graph, and
// the exports: the whole graph as SVG or PNG, as it is coloured now, whatever the zoom; the trace
// table as CSV or as a LaTeX tabular (util/table-export.js).
//
// The colouring is `ui.graphCost` and the selected node `ui.graphNode`, so both travel in the link.

import { download, pngBlob, svgString } from "../export.js";
import { COST_IDS, COST_METRICS, costMetric, legendTicks, nodeCost, rampStops, traceByNode } from "../geometry/cost.js";
import { paintCosts } from "../draw/cost.js";
import { shapeStr } from "../util/format.js";
import { traceCsv, traceLatex } from "../util/table-export.js";
import { attachNav, centreOnNode, drawnBox, fit, zoomBy } from "./graph-nav.js";
import { fmtBytes, fmtCount } from "./model.js";

const PNG_MAX_SIDE = 16384; // Chromium refuses canvases much past this: big graphs get a smaller scale

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export function fmtCost(metricId, v) {
  if (v === null || v === undefined) return "—";
  return costMetric(metricId).unit === "bytes" ? fmtBytes(v) : fmtCount(v);
}

export function createGraphTools(root, { store, onStatus = () => {} }) {
  const $ = (sel) => root.querySelector(sel);
  const els = {
    host: $("#net-graph"),
    details: $("#net-graph-details"),
    legend: $("#net-graph-legend"),
    cost: $("#net-graph-cost"),
    zoomIn: $("#net-graph-zoom-in"),
    zoomOut: $("#net-graph-zoom-out"),
    fit: $("#net-graph-fit"),
    svg: $("#net-graph-svg"),
    png: $("#net-graph-png"),
    csv: $("#net-table-csv"),
    latex: $("#net-table-latex"),
  };
  let cur = { graph: null, lay: null, result: null, drill: null, canDrill: () => false, onOther: null };

  for (const m of COST_METRICS) els.cost.append(new Option(m.label, m.id));
  const ui = () => store.get().ui;
  const metric = () => (COST_IDS.includes(ui().graphCost) ? ui().graphCost : "none");

  els.cost.addEventListener("change", () => {
    store.update({ ui: { graphCost: els.cost.value } }, "ui");
    paint();
  });
  els.zoomIn.addEventListener("click", () => zoomBy(els.host, 1.25));
  els.zoomOut.addEventListener("click", () => zoomBy(els.host, 1 / 1.25));
  els.fit.addEventListener("click", () => fit(els.host));
  els.svg.addEventListener("click", () => {
    const text = wholeGraph((svg) => svgString(svg));
    if (text) download(new Blob([text], { type: "image/svg+xml" }), `${baseName()}-graph.svg`);
  });
  els.png.addEventListener("click", async () => {
    const blob = wholeGraph((svg, box) => pngBlob(svg, Math.min(2, PNG_MAX_SIDE / Math.max(box.w, box.h))));
    if (!blob) return;
    try {
      download(await blob, `${baseName()}-graph.png`);
    } catch (e) {
      onStatus(`The PNG could not be made: ${e.message}`, "error");
    }
  });
  els.csv.addEventListener("click", () => {
    const r = cur.result;
    if (!r?.trace) return;
    download(new Blob([traceCsv(r.trace, r.totals)], { type: "text/csv" }), `${baseName()}-summary.csv`);
  });
  els.latex.addEventListener("click", () => {
    const r = cur.result;
    if (!r?.trace) return;
    const inputs = (store.get().request?.inputs || []).map((i) => (Array.isArray(i.shape) ? shapeStr(i.shape) : "")).filter(Boolean);
    const text = traceLatex(r.trace, r.totals, { caption: `${rootType()}${inputs.length ? ` on input ${inputs.join(", ")}` : ""}` });
    download(new Blob([text], { type: "application/x-tex" }), `${baseName()}-summary.tex`);
  });

  function rootType() {
    return store.get().request?.layer?.type || "network";
  }

  function baseName() {
    return rootType().toLowerCase().replace(/[^a-z0-9]+/g, "-") || "network";
  }

  // Runs fn(svg, box) on the drawing framed whole, at 1:1, with no zoom or pan, then puts the view back;
  // synchronous, so nothing is painted in between (a PNG's SVG text is taken before its first await).
  function wholeGraph(fn) {
    const svg = els.host.querySelector("svg.df-drawing");
    const g = svg?.querySelector(":scope > g");
    if (!svg || !g) return null;
    const pad = 8;
    const b = drawnBox(els.host) || { x: 0, y: 0, w: 0, h: 0 };
    const box = { x: Math.floor(b.x - pad), y: Math.floor(b.y - pad), w: Math.ceil(b.w + 2 * pad), h: Math.ceil(b.h + 2 * pad) };
    const legend = legendGroup(svg, box);
    const full = legend ? { ...box, h: box.h + legend.h } : box;
    const transform = g.getAttribute("transform");
    g.removeAttribute("transform");
    svg.setAttribute("viewBox", `${full.x} ${full.y} ${full.w} ${full.h}`);
    try {
      return fn(svg, full);
    } finally {
      legend?.node.remove();
      svg.removeAttribute("viewBox");
      if (transform) g.setAttribute("transform", transform);
    }
  }

  // The legend inside an export, under the graph: the colours mean nothing in a file without it.
  function legendGroup(svg, box) {
    const m = metric();
    const scale = cur.scale;
    if (m === "none" || !scale || scale.min === null) return null;
    const NS = "http://www.w3.org/2000/svg";
    const mk = (tag, attrs, text) => {
      const e = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
      if (text !== undefined) e.textContent = text;
      return e;
    };
    const h = 58;
    const x0 = box.x + 12;
    const y0 = box.y + box.h + 6;
    const w = Math.max(160, Math.min(360, box.w - 24));
    const g = mk("g", { class: "df-legend-export" });
    const grad = mk("linearGradient", { id: "df-cost-ramp" });
    const stops = rampStops().split(", ");
    for (const s of stops) {
      const [c, at] = s.split(" ");
      grad.append(mk("stop", { offset: at, "stop-color": c }));
    }
    const defs = mk("defs", {});
    defs.append(grad);
    g.append(defs);
    g.append(mk("text", { x: x0, y: y0 + 10, "font-size": 11, "font-weight": 600, fill: "#334155", "font-family": "sans-serif" }, `Colour: ${costMetric(m).label} (log scale)`));
    const ticks = legendTicks(scale);
    // one figure for every counted node: a swatch of its colour, not the ramp
    const single = ticks.length === 1;
    g.append(mk("rect", { x: x0, y: y0 + 16, width: single ? 24 : w, height: 12, fill: single ? ticks[0].colour : "url(#df-cost-ramp)", stroke: "#94a3b8" }));
    for (const t of ticks) {
      const x = x0 + t.at * w;
      g.append(mk("line", { x1: x, x2: x, y1: y0 + 28, y2: y0 + 33, stroke: "#475569" }));
      const anchor = t.at === 0 ? "start" : t.at === 1 ? "end" : "middle";
      g.append(mk("text", { x, y: y0 + 44, "font-size": 10.5, fill: "#334155", "text-anchor": anchor, "font-family": "sans-serif" }, fmtCost(m, t.value)));
    }
    svg.append(g);
    return { node: g, h };
  }

  function paint() {
    const m = metric();
    els.cost.value = m;
    const svg = els.host.querySelector("svg.df-drawing");
    cur.scale = cur.graph ? paintCosts(svg, cur.graph, cur.result?.trace, m) : null;
    renderLegend(m, cur.scale);
    renderDetails();
  }

  function renderLegend(m, scale) {
    const ticks = scale ? legendTicks(scale) : [];
    els.legend.hidden = m === "none" || !scale;
    if (els.legend.hidden) {
      els.legend.replaceChildren();
      return;
    }
    const title = el("span", "df-legend-title", `${costMetric(m).label}:`);
    const parts = [title];
    if (ticks.length === 1) {
      // one figure for every counted node: one swatch, no ramp
      const k = el("span", "df-legend-key");
      const sw = el("span", "df-swatch");
      sw.style.background = ticks[0].colour;
      const v = el("span", "df-legend-tick single", fmtCost(m, ticks[0].value));
      v.dataset.value = String(ticks[0].value);
      k.append(sw, v);
      parts.push(k);
    } else if (ticks.length) {
      const bar = el("span", "df-legend-bar");
      bar.setAttribute("role", "img");
      bar.setAttribute("aria-label", `colour scale, logarithmic, from ${fmtCost(m, scale.min)} (light) to ${fmtCost(m, scale.max)} (dark)`);
      bar.style.background = `linear-gradient(to right, ${rampStops()})`;
      const marks = el("span", "df-legend-ticks");
      for (const t of ticks) {
        const s = el("span", "df-legend-tick", fmtCost(m, t.value));
        s.dataset.value = String(t.value);
        s.style.left = `${(t.at * 100).toFixed(2)}%`;
        if (t.at === 0) s.classList.add("start");
        if (t.at === 1) s.classList.add("end");
        marks.append(s);
      }
      const wrap = el("span", "df-legend-scale");
      wrap.append(bar, marks);
      parts.push(wrap);
    } else parts.push(el("span", "aside", "no layer has a figure for this"));
    if (scale.zero) {
      const z = el("span", "df-legend-key");
      z.append(el("span", "df-swatch zero"), "0");
      parts.push(z);
    }
    if (scale.none) {
      const z = el("span", "df-legend-key");
      z.append(el("span", "df-swatch none"), "not counted");
      parts.push(z);
    }
    els.legend.replaceChildren(...parts);
    els.legend.dataset.metric = m;
    els.legend.dataset.min = String(scale.min ?? "");
    els.legend.dataset.max = String(scale.max ?? "");
  }

  function select(node) {
    store.update({ ui: { graphNode: node?.id ?? null } }, "ui");
    markSelected();
    renderDetails();
  }

  // The drawn box that stands for node `id`: itself, or the collapsed block or fold holding it.
  function shownId(id) {
    return id === null || id === undefined ? null : (cur.graph?.owner?.get(id) ?? id);
  }

  function markSelected() {
    const id = shownId(ui().graphNode);
    for (const g of els.host.querySelectorAll("g.df-node")) {
      const on = g.dataset.id === id;
      g.classList.toggle("df-selected", on);
      // a collapsed block's button opens it (aria-expanded): it is not a pressed/unpressed choice
      if (g.hasAttribute("role") && !g.hasAttribute("aria-expanded")) g.setAttribute("aria-pressed", String(on));
    }
  }

  function selectedNode() {
    const id = shownId(ui().graphNode);
    return id ? cur.graph?.nodes.find((n) => n.id === id) || null : null;
  }

  function renderDetails() {
    const node = selectedNode();
    const box = els.details;
    box.replaceChildren();
    const h = el("h3", "df-details-h", "Selected node");
    h.id = "net-graph-details-h";
    box.append(h);
    if (!node) {
      box.dataset.node = "";
      box.append(el("p", "aside", cur.graph ? "Click a node of the graph (or Tab to it and press Enter): its shapes, parameters and cost show here." : "The graph is drawn once the shapes fit."));
      return;
    }
    box.dataset.node = node.id;
    h.textContent = node.op === "module" ? `${node.label} ${node.path ?? ""}`.trim() : `${node.label}`;
    const entry = traceByNode(cur.graph, cur.result?.trace).get(node.id) || null;
    const block = node.op === "block" || node.op === "fold"; // a collapsed block: its totals
    const ins = entry?.input_shapes?.length ? entry.input_shapes : cur.graph.edges.filter((e) => e.to === node.id && Array.isArray(e.shape)).map((e) => e.shape);
    const outs = node.shapes?.length ? node.shapes : entry?.output_shapes || [];
    const rows = [
      ["kind", { module: "module call", function: "function", method: "tensor method", input: "input", output: "output" }[node.op] || node.op],
    ];
    if (node.path) rows.push(["path", node.path]);
    if (node.op !== "module" && node.type) rows.push(["operation", node.type]);
    // each enclosing module by its own name (the path's last part): the full path is above
    const within = (node.scope || []).map((s) => `${s.path.split(".").pop()} ${s.type}`);
    if (within.length) rows.push(["inside", within.join(" › ")]);
    if (ins.length) rows.push([ins.length > 1 ? "inputs" : "input", ins.map(shapeStr).join(", ")]);
    if (outs.length) rows.push([outs.length > 1 ? "outputs" : "output", outs.map(shapeStr).join(", ")]);
    if (block && node.n) rows.push(["blocks", `${node.n} × ${node.foldType || node.type}`]);
    if (entry || block) {
      // a block drawn as one box: its layers' sums, as the totals count them
      const trace = cur.result?.trace;
      const macs = nodeCost(node, entry, "macs", trace);
      rows.push(["parameters", (nodeCost(node, entry, "params", trace) ?? 0).toLocaleString("en")]);
      rows.push(["mult-adds", macs === null ? "— (torch has no count for it)" : macs.toLocaleString("en")]);
      rows.push(["activations", fmtBytes(nodeCost(node, entry, "memory", trace))]);
    } else if (node.op !== "input" && node.op !== "output") rows.push(["cost", "not counted: the totals count module calls"]);
    const dl = el("dl", "df-details-list");
    for (const [k, v] of rows) {
      const d = el("div");
      d.append(el("dt", "", k), el("dd", "", v));
      dl.append(d);
    }
    box.append(dl);
    const actions = el("div", "df-details-actions");
    if (cur.canDrill(node)) {
      const b = el("button", "primary df-open", "Open in the layer view ▸");
      b.type = "button";
      b.title = `Open ${node.path} (${node.label}) in the layer view, on the input it receives here`;
      b.addEventListener("click", () => cur.drill(node));
      actions.append(b);
    }
    const centre = el("button", "df-centre", "Centre in the view");
    centre.type = "button";
    centre.title = "Zoom to 1:1 with this node in the middle of the graph's view";
    centre.addEventListener("click", () => centreOnNode(els.host, node.id, 1));
    actions.append(centre);
    if (cur.onOther && node.shape && node.op !== "input") {
      const b = el("button", "df-rf", "Receptive field of this node");
      b.type = "button";
      b.addEventListener("click", () => cur.onOther(node));
      actions.append(b);
    }
    box.append(actions);
  }

  // After each drawing (graph-panel.js): the view, the colours, the selection.
  // `viewKey` / `reset`: graph-nav's "same graph" (a block opened or closed keeps the view), and a
  // drawing to open afresh (expand all, collapse all).
  function update({ graph = null, lay = null, result = null, drill = null, canDrill = () => false, onOther = null, viewKey = undefined, reset = false } = {}) {
    cur = { ...cur, graph, lay, result, drill, canDrill, onOther };
    const empty = !graph || !lay;
    // no graph (omitted, or the shapes do not fit yet): no empty frame where it would be
    els.host.classList.toggle("df-empty", empty);
    if (empty) els.host.style.removeProperty("height");
    for (const b of [els.zoomIn, els.zoomOut, els.fit, els.svg, els.png]) b.disabled = empty;
    els.csv.disabled = els.latex.disabled = !result?.trace?.length;
    // a graph opened with a node selected (a link) opens on that node
    if (!empty && attachNav(els.host, lay, { key: viewKey, reset })?.fresh && selectedNode()) centreOnNode(els.host, shownId(ui().graphNode), 1);
    paint();
    markSelected();
  }

  return { update, select, paint, wholeGraph };
}
