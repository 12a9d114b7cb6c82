// The network view's receptive-field panel. Pick a node of the dataflow graph and click an element of
// its output: POST /api/receptive-field answers, for every node back to the input, which elements that
// one depends on. The graph's nodes light up with their counts, and each node's grid shows the field —
// structural (every element that can change it) or effective (|∂y/∂x| on the real weights and input).

import { ApiError, isAbort } from "../api.js";
import { graphApi } from "./graph-api.js";
import { drawGrid } from "../draw/receptive.js";
import { foldToGrid, gridDims, cellIndex, gridCaption } from "../geometry/receptive.js";
import { shapeStr } from "../util/format.js";

// a module call by its path; a Graph config's operation by its node name (its type is the operation); else its label
const nodeName = (n) => n.path || (n.type && n.op !== "module" ? n.id : n.label);

export function createRfPanel(root, { setStatus }) {
  const $ = (s) => root.querySelector(s);
  const els = {
    node: $("#rf-node"),
    lead: $("#rf-lead"),
    target: $("#rf-target"),
    summary: $("#rf-summary"),
    formula: $("#rf-formula"),
    nodes: $("#rf-nodes"),
    panel: $("#net-rf-panel"),
  };
  let request = null;
  let graph = null;
  let key = "";
  let targetId = "output";
  let lead = [];
  let picked = null;
  let result = null;
  let ctl = null;

  const mode = () => root.querySelector('input[name="rf-mode"]:checked')?.value || "structural";
  for (const r of root.querySelectorAll('input[name="rf-mode"]')) r.addEventListener("change", () => renderResult());
  els.node.addEventListener("change", () => {
    targetId = els.node.value;
    lead = [];
    picked = null;
    clearResult();
    renderPicker();
  });

  function nodeOf(id) {
    return graph?.nodes.find((n) => n.id === id) || null;
  }

  function candidates() {
    if (!graph) return [];
    const out = graph.nodes.filter((n) => n.op === "output" && Array.isArray(n.shape));
    return out.concat(graph.nodes.filter((n) => (n.op === "module" || n.op === "function" || n.op === "method") && Array.isArray(n.shape)));
  }

  // Called on every render of the network view, with the request and its /api/shape response.
  function update(req, shapeResult) {
    const nextKey = JSON.stringify(req);
    request = req;
    graph = shapeResult?.graph?.nodes?.length ? shapeResult.graph : null;
    els.panel.hidden = !graph;
    if (!graph) return;
    if (nextKey !== key) {
      key = nextKey;
      clearResult();
      if (!nodeOf(targetId)) targetId = "output";
    }
    const opts = candidates();
    // a network with several outputs (a tuple) has no one output tensor to click: start at its first output node
    if (!opts.some((n) => n.id === targetId)) targetId = opts[0]?.id ?? "output";
    els.node.replaceChildren(...opts.map((n) => new Option(`${n.op === "output" ? "network output" : nodeName(n)} · ${n.type || n.label} ${shapeStr(n.shape)}`, n.id)));
    els.node.value = targetId;
    renderPicker();
    annotateGraph();
  }

  // The leading dimensions (sample, channel) of the chosen node are fixed with number inputs; the grid
  // below them is the node's last two dimensions. The inputs are rebuilt only when the node changes.
  let leadFor = "";
  function renderLeads(node) {
    const shape = node.shape;
    const leadDims = Math.max(0, shape.length - 2);
    lead = Array.from({ length: leadDims }, (_, i) => Math.min(lead[i] ?? 0, shape[i] - 1));
    const k = `${node.id}|${shape.join(",")}`;
    if (k === leadFor) return;
    leadFor = k;
    els.lead.replaceChildren();
    const names = shape.length >= 4 ? ["sample", "channel", "depth"] : ["sample"];
    for (let i = 0; i < leadDims; i++) {
      const label = document.createElement("label");
      label.textContent = `${names[i] || `dim ${i}`} `;
      const input = document.createElement("input");
      Object.assign(input, { type: "number", min: 0, max: shape[i] - 1, value: lead[i] });
      input.className = "rf-lead-input";
      input.dataset.dim = String(i);
      // "input", not "change": a change fired on blur would redraw the grid under the click that caused it
      input.addEventListener("input", () => {
        lead[i] = Math.max(0, Math.min(shape[i] - 1, Number(input.value) || 0));
        picked = null;
        renderPicker();
      });
      label.append(input);
      els.lead.append(label);
    }
  }

  function renderPicker() {
    const node = nodeOf(targetId);
    if (!node || !Array.isArray(node.shape)) {
      els.target.replaceChildren();
      els.lead.replaceChildren();
      leadFor = "";
      return;
    }
    renderLeads(node);
    els.target.replaceChildren();
    const [rows, cols] = gridDims(node.shape);
    drawGrid(els.target, { rows, cols, values: null }, {
      label: `elements of ${nodeName(node)} ${shapeStr(node.shape)}: click one`,
      picked: picked && picked.node === targetId ? picked.cell : null,
      onPick: (r, c) => pick(node, r, c),
    });
  }

  async function pick(node, r, c) {
    const index = cellIndex(node.shape, lead, r, c);
    picked = { node: node.id, cell: [r, c] };
    renderPicker();
    ctl?.abort();
    ctl = new AbortController();
    const opts = { signal: ctl.signal };
    if (node.op === "module") opts.path = node.path;
    else if (node.op !== "output") opts.node = node.id;
    els.panel.setAttribute("aria-busy", "true");
    setStatus("tracing the receptive field…", "busy");
    try {
      result = await graphApi.receptiveField(request, index, opts);
      renderResult();
      setStatus(`receptive field of ${nodeName(node)}[${index.join(", ")}]`, "ok");
    } catch (e) {
      if (isAbort(e)) return;
      result = null;
      els.summary.textContent = e instanceof ApiError ? e.detail : `The receptive field failed: ${e.message}`;
      setStatus("receptive field failed", "error");
    } finally {
      els.panel.setAttribute("aria-busy", "false");
    }
  }

  function clearResult() {
    result = null;
    els.summary.textContent = "Click an element: every layer back to the input lights up what it depends on.";
    els.formula.textContent = "";
    els.nodes.replaceChildren();
    annotateGraph();
  }

  function renderResult() {
    els.nodes.replaceChildren();
    if (!result) return;
    const m = mode();
    const input = result.input;
    const t = result.target;
    els.summary.textContent = `${t.path || t.id}[${result.index.join(", ")}] depends on ${input.count.toLocaleString("en")} of the input's ${input.numel.toLocaleString("en")} elements` +
      (input.bbox ? ` (rows ${input.bbox.slice(-2).map(([a, b]) => `${a}–${b}`).join(", columns ")}; ${input.bbox.slice(-2).map(([a, b]) => b - a + 1).join(" × ")})` : "") +
      (m === "effective" ? `; the gradient is non-zero on ${input.effective?.count ?? 0} of them.` : ".");
    const f = result.formula;
    els.formula.textContent = f ? `${f.symbolic}: ${f.steps.map((s) => `${s.path} ${s.type}: ${s.text}`).join(" → ")}; size ${f.size.join(" × ")}` : "";
    for (const n of result.nodes) {
      if (!n.count || n.op === "output") continue;
      const fig = document.createElement("figure");
      fig.className = "rf-node";
      fig.dataset.id = n.id;
      fig.dataset.count = String(n.count);
      const cap = document.createElement("figcaption");
      const fold = gridCaption(n.shape);
      cap.textContent = `${n.op === "input" ? "input" : nodeName(n)} ${shapeStr(n.shape)}: ${n.count.toLocaleString("en")} / ${n.numel.toLocaleString("en")}${fold ? ` (${fold})` : ""}`;
      fig.append(cap);
      const data = m === "effective" ? n.effective?.heat : n.mask;
      const folded = m === "effective" ? n.effective?.grid : n.grid;
      if (data) drawGrid(fig, foldToGrid(data, n.shape), { mode: m, label: cap.textContent });
      else if (folded) drawGrid(fig, foldToGrid(folded, n.shape.slice(-2)), { mode: m, label: cap.textContent });
      else {
        const p = document.createElement("p");
        p.className = "aside";
        p.textContent = `too large to draw (${n.numel.toLocaleString("en")} elements); box ${n.bbox.map(([a, b]) => `${a}–${b}`).join(" × ")}`;
        fig.append(p);
      }
      els.nodes.append(fig);
    }
    annotateGraph();
  }

  // Light up the graph's nodes: the ones the element depends on, with their counts.
  function annotateGraph() {
    const svg = root.querySelector("#net-graph svg");
    if (!svg) return;
    const byId = new Map((result?.nodes || []).map((n) => [n.id, n]));
    for (const g of svg.querySelectorAll("g.df-node")) {
      const n = byId.get(g.dataset.id);
      g.classList.toggle("rf-hit", Boolean(n && n.count));
      g.classList.toggle("rf-target", Boolean(result && result.target.id === g.dataset.id));
      g.querySelector("text.rf-count")?.remove();
      if (n && n.count) {
        const t = document.createElementNS("http://www.w3.org/2000/svg", "text");
        t.setAttribute("class", "rf-count");
        const box = g.querySelector(".df-box");
        const w = Number(box?.getAttribute("width") || (Number(box?.getAttribute("r") || 0) * 2));
        t.setAttribute("x", String(w + 4));
        t.setAttribute("y", "12");
        t.textContent = `${n.count.toLocaleString("en")}/${n.numel.toLocaleString("en")}`;
        g.append(t);
      }
    }
  }

  // Choose a node (a click on ⊕ or the output in the graph) and bring the panel into view.
  function choose(id) {
    if (!nodeOf(id)) return;
    targetId = id;
    els.node.value = id;
    lead = [];
    picked = null;
    clearResult();
    renderPicker();
    els.panel.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  return { update, annotateGraph, choose };
}
