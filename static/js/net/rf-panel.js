// The network view's receptive-field panel. Pick a node of the dataflow graph and click an element of
// its output: POST /api/receptive-field answers, for every node back to the input, which elements that
// one depends on. The graph's nodes light up with their counts, and each node's grid shows the field —
// structural (every element that can change it) or effective (|∂y/∂x| on the real weights and input).

import { ApiError, isAbort, api } from "../api.js";
import { graphApi } from "./graph-api.js";
import { drawGrid, drawImage } from "../draw/receptive.js";
import { RF, gridDims, cellIndex, gridCaption } from "../geometry/receptive.js";
import { shapeStr, fmt } from "../util/format.js";
import { renderMath } from "../ui/formula.js";

// a module call by its path; a Graph config's operation by its node name (its type is the operation); else its label
const nodeName = (n) => n.path || (n.type && n.op !== "module" ? n.id : n.label);

// `store`: the pick ({node, index, mode}) lives in state.ui.rf, so the share link reopens it;
// `setTrain(on)`: switch the network between training and eval mode (the BatchNorm note's button).
// `membersOf(id)`: the API's node ids a drawn box stands for (a collapsed block's calls).
export function createRfPanel(root, { setStatus, setTrain = null, store = null, membersOf = (id) => [id] }) {
  const $ = (s) => root.querySelector(s);
  const els = {
    node: $("#rf-node"),
    lead: $("#rf-lead"),
    target: $("#rf-target"),
    summary: $("#rf-summary"),
    formula: $("#rf-formula"),
    notes: $("#rf-notes"),
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
  let picker = null;
  let outputRun = null; // the /api/run answer: the final output's values, for the picker's tooltips

  const mode = () => root.querySelector('input[name="rf-mode"]:checked')?.value || "structural";
  const setMode = (m) => {
    const r = root.querySelector(`input[name="rf-mode"][value="${m === "effective" ? "effective" : "structural"}"]`);
    if (r) r.checked = true;
  };
  for (const r of root.querySelectorAll('input[name="rf-mode"]'))
    r.addEventListener("change", () => {
      renderResult();
      remember();
    });
  els.node.addEventListener("change", () => {
    targetId = els.node.value;
    lead = [];
    picked = null;
    clearResult();
    remember();
    renderPicker();
  });

  // The pick, in the state (and so in the link): {node, index, mode}; null when nothing is picked.
  function remember() {
    if (!store) return;
    const rf = result && picked ? { node: picked.node, index: result.index, mode: mode() } : null;
    if (JSON.stringify(store.get().ui.rf ?? null) !== JSON.stringify(rf)) store.update({ ui: { rf } }, "ui");
  }

  // Re-pick a remembered element on the current graph (a link opened, or the network edited): the
  // node must still be there and the index inside its shape.
  function restore(rf) {
    const node = rf && nodeOf(rf.node);
    if (!node || !Array.isArray(rf.index)) return false;
    const shape = node.shape;
    const idx = rf.index;
    if (idx.length !== shape.length || idx.some((v, i) => !Number.isInteger(v) || v < 0 || v >= shape[i])) return false;
    targetId = node.id;
    els.node.value = targetId;
    lead = shape.length > 2 ? idx.slice(0, -2) : [];
    leadFor = "";
    const cell = shape.length === 1 ? [0, idx[0]] : idx.slice(-2);
    if (rf.mode) setMode(rf.mode);
    renderPicker();
    pick(node, cell[0], cell[1]);
    return true;
  }

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
    const opts = candidates();
    // a network with several outputs (a tuple) has no one output tensor to click: start at its first output node
    if (!opts.some((n) => n.id === targetId)) targetId = opts[0]?.id ?? "output";
    els.node.replaceChildren(...opts.map((n) => new Option(`${n.op === "output" ? "network output" : nodeName(n)} · ${n.type || n.label} ${shapeStr(n.shape)}`, n.id)));
    if (nextKey !== key) {
      key = nextKey;
      nodeRuns.clear();
      outputRun = null; // the new network's run (setRun) follows its shapes
      // what was picked (in this session, or in the link that opened it) is traced again on the new network
      const rf = store ? store.get().ui.rf : picked && result ? { node: picked.node, index: result.index, mode: mode() } : null;
      clearResult();
      picked = null;
      if (!nodeOf(targetId)) targetId = "output";
      els.node.value = targetId;
      if (restore(rf)) return annotateGraph();
      if (store && store.get().ui.rf) store.update({ ui: { rf: null } }, "ui");
    }
    els.node.value = targetId;
    renderPicker();
    annotateGraph();
  }

  // The final output's values (from /api/run): the picker shows them on hover.
  function setRun(run) {
    outputRun = run;
  }

  // A module node's own output values: /api/run with its path (the layer as it ran inside the network),
  // asked once per node and network, when the node is chosen; hovering reads them when they are in.
  const nodeRuns = new Map();
  let nodeCtl = null;
  function fetchNodeValues(node) {
    if (node.op !== "module" || !node.path) return;
    const k = `${key}|${node.path}`;
    if (nodeRuns.has(k)) return;
    nodeCtl?.abort();
    nodeCtl = new AbortController();
    nodeRuns.set(k, null);
    api
      .run(request, { path: node.path, signal: nodeCtl.signal })
      .then((run) => nodeRuns.set(k, run))
      .catch(() => nodeRuns.delete(k)); // values are a help on hover: without them the picker still works
  }

  function valueOf(node, r, c) {
    const run = node.op === "output" ? outputRun : nodeRuns.get(`${key}|${node.path}`);
    if (!run?.output?.data || (node.op !== "output" && node.op !== "module")) return null;
    const idx = cellIndex(node.shape, lead, r, c);
    let v = run.output.data;
    for (const i of idx) v = Array.isArray(v) ? v[i] : undefined;
    return typeof v === "number" || typeof v === "string" ? v : null;
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
        clearResult();
        remember();
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
    fetchNodeValues(node);
    els.target.replaceChildren();
    const [rows, cols] = gridDims(node.shape);
    const name = node.op === "output" ? "output" : nodeName(node);
    picker = drawGrid(els.target, { rows, cols, values: null }, {
      label: `Elements of ${name} ${shapeStr(node.shape)}`,
      name,
      picked: picked && picked.node === targetId ? picked.cell : null,
      valueAt: (r, c) => valueOf(node, r, c),
      onPick: (r, c) => pick(node, r, c),
    });
  }

  async function pick(node, r, c) {
    const index = cellIndex(node.shape, lead, r, c);
    picked = { node: node.id, cell: [r, c] };
    picker?.setPicked([r, c]);
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
      remember();
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
    els.formula.replaceChildren();
    els.nodes.replaceChildren();
    renderNotes();
    annotateGraph();
  }

  // The API's notes (why a field is wider than the windows), in its words, with the one-click way
  // out where there is one: batch statistics in training mode go away in eval mode.
  function renderNotes() {
    els.notes.replaceChildren();
    const notes = result?.notes || [];
    for (const n of notes) {
      const p = document.createElement("p");
      p.className = "rf-note";
      p.dataset.code = n.code;
      p.textContent = n.message;
      if (n.eval_fixes && setTrain) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "rf-eval";
        b.textContent = "Use eval mode";
        b.addEventListener("click", () => setTrain(false));
        p.append(" ", b);
      }
      els.notes.append(p);
    }
    if (request && request.train === false && setTrain) {
      const p = document.createElement("p");
      p.className = "rf-note rf-mode-note";
      p.textContent = "The network runs in eval mode (train: false): batch normalisation uses its running statistics.";
      const b = document.createElement("button");
      b.type = "button";
      b.className = "rf-train link";
      b.textContent = "Back to training mode";
      b.addEventListener("click", () => setTrain(true));
      p.append(" ", b);
      els.notes.append(p);
    }
  }

  function renderResult() {
    els.nodes.replaceChildren();
    renderNotes();
    if (!result) return;
    const m = mode();
    const input = result.input;
    const t = result.target;
    const value = t.value === undefined || t.value === null ? "" : ` = ${fmt(t.value, 6)}`;
    els.summary.textContent = `${t.path || t.id}[${result.index.join(", ")}]${value} depends on ${input.count.toLocaleString("en")} of the input's ${input.numel.toLocaleString("en")} elements` +
      (input.bbox ? ` (rows ${input.bbox.slice(-2).map(([a, b]) => `${a}–${b}`).join(", columns ")}; ${input.bbox.slice(-2).map(([a, b]) => b - a + 1).join(" × ")})` : "") +
      (m === "effective" ? `; the gradient is non-zero on ${(input.effective?.count ?? 0).toLocaleString("en")} of them.` : ".");
    renderFormula(result.formula);
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
      // the last two dimensions, the leading ones folded (decoded from the answer's run lengths / PNG);
      // a grid of many cells is painted as an image rather than one SVG rect per cell
      const grid = m === "effective" ? n.heatGrid : n.maskGrid;
      if (grid) (grid.rows * grid.cols <= RF.SVG_CELLS ? drawGrid : drawImage)(fig, grid, { mode: m, label: cap.textContent });
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

  // The receptive-field recurrence along the chain, typeset with KaTeX (the API's LaTeX; its Unicode
  // text where KaTeX cannot parse), then each layer's step and the size it reaches.
  function renderFormula(f) {
    els.formula.replaceChildren();
    if (!f) return;
    const head = document.createElement("p");
    head.className = "rf-recurrence";
    const math = document.createElement("span");
    math.className = "math";
    renderMath(math, f.latex || "", f.symbolic);
    head.append(math);
    const ol = document.createElement("ol");
    ol.className = "rf-steps";
    for (const st of f.steps) {
      const li = document.createElement("li");
      const who = document.createElement("span");
      who.className = "rf-step-layer";
      who.textContent = `${st.path} ${st.type}`;
      const m = document.createElement("span");
      m.className = "math";
      renderMath(m, st.latex ? `r = ${st.latex}` : "", st.text);
      li.append(who, " ", m);
      ol.append(li);
    }
    const size = document.createElement("p");
    size.className = "rf-size";
    size.textContent = `size ${f.size.join(" × ")}`;
    els.formula.append(head, ol, size);
  }

  // Light up the graph's nodes: the ones the element depends on, with their counts. The count is drawn
  // beside the node, not inside its button, so the button's name still starts with what it shows
  // (WCAG 2.5.3); its label says the count in words.
  function annotateGraph() {
    const svg = root.querySelector("#net-graph svg");
    if (!svg) return;
    const byId = new Map((result?.nodes || []).map((n) => [n.id, n]));
    for (const t of svg.querySelectorAll("text.rf-count, .rf-bar, .rf-bar-track")) t.remove();
    for (const g of svg.querySelectorAll("g.df-node")) {
      const box = g.querySelector(".df-box");
      const w = Number(box?.getAttribute("width") || (Number(box?.getAttribute("r") || 0) * 2));
      const label = g.getAttribute("aria-label");
      if (label !== null) g.dataset.label ??= label;
      if (g.classList.contains("df-block") || g.classList.contains("df-fold")) {
        // a collapsed block is lit by how much of it the field touches: its calls with an element in it
        const members = membersOf(g.dataset.id);
        const hit = result ? members.filter((id) => byId.get(id)?.count).length : 0;
        const frac = members.length ? hit / members.length : 0;
        g.classList.toggle("rf-hit", hit > 0);
        g.classList.toggle("rf-target", Boolean(result && members.includes(result.target.id)));
        g.dataset.rfFraction = result ? frac.toFixed(3) : "";
        if (label !== null) g.setAttribute("aria-label", hit ? `${g.dataset.label}; in the receptive field: ${hit} of its ${members.length} calls` : g.dataset.label);
        if (!hit) continue;
        const h = Number(box?.getAttribute("height") || 0);
        for (const [cls, bw] of [["rf-bar-track", w - 16], ["rf-bar", (w - 16) * frac]]) {
          const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
          r.setAttribute("class", cls);
          r.setAttribute("aria-hidden", "true");
          r.setAttribute("x", "8");
          r.setAttribute("y", String(h - 6));
          r.setAttribute("width", String(Math.max(0, bw)));
          r.setAttribute("height", "3");
          g.append(r);
        }
        countText(g, w, `${hit}/${members.length} calls`);
        continue;
      }
      const n = byId.get(g.dataset.id);
      g.classList.toggle("rf-hit", Boolean(n && n.count));
      g.classList.toggle("rf-target", Boolean(result && result.target.id === g.dataset.id));
      if (label !== null) {
        g.setAttribute("aria-label", n && n.count ? `${g.dataset.label}; in the receptive field: ${n.count.toLocaleString("en")} of ${n.numel.toLocaleString("en")} elements` : g.dataset.label);
      }
      if (n && n.count) countText(g, w, `${n.count.toLocaleString("en")}/${n.numel.toLocaleString("en")}`);
    }
  }

  // The count beside a node (not inside it, so the node's accessible name stays its text).
  function countText(g, w, text) {
    const t = document.createElementNS("http://www.w3.org/2000/svg", "text");
    t.setAttribute("class", "rf-count");
    t.setAttribute("aria-hidden", "true");
    t.dataset.for = g.dataset.id;
    t.setAttribute("transform", g.getAttribute("transform") || "");
    t.setAttribute("x", String(w + 4));
    t.setAttribute("y", "12");
    t.textContent = text;
    g.parentNode.append(t);
  }

  // Choose a node (a click on ⊕ or the output in the graph) and bring the panel into view.
  function choose(id) {
    if (!nodeOf(id)) return;
    targetId = id;
    els.node.value = id;
    lead = [];
    picked = null;
    clearResult();
    remember();
    renderPicker();
    els.panel.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  return { update, annotateGraph, choose, setRun };
}
