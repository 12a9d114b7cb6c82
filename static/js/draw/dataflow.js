// The dataflow graph drawn with d3 from geometry/dataflow.js: a box per module call (type and path),
// ⊕ where the code adds, a pill per other function or method, the tensor's shape on every edge and
// skip paths dashed. Module boxes that can be opened are buttons (onPick); receptive-field counts,
// when given, colour the nodes that an element depends on. A view collapsed by geometry/collapse.js
// also has closed containers (a box with its type, place, shapes and totals) and folds (the same box
// stacked, "× N"); with `onToggle`, a click or Enter on one opens it and the label of an open
// container's frame closes it again.

import { addArrowMarker, svgIn } from "./common.js";
import { runChunked } from "../util/schedule.js";
import { FLOW, boxLines, layoutDataflow } from "../geometry/dataflow.js";

const line = (pts) => `M${pts.map((p) => p.map((v) => v.toFixed(1)).join(",")).join(" L")}`;

// The drawing is built off the page and replaces the old one whole. `chunked` (a big graph): it is
// built in pieces, yielding to the browser between them (a promise of the layout, or null if
// `cancelled()` first); otherwise at once, and the layout returned. `pickLabel`: what a click on a
// pickable node does, in its accessible name (the network view's graph selects the node: its details
// and the drill-down sit beside the graph).
export function drawDataflow(container, graph, { onPick = () => {}, canPick = () => false, onOther = null, onNode = null, onToggle = null, pickLabel = "open in the layer view", layout = null, label = null, chunked = false, cancelled = () => false } = {}) {
  const lay = layout || layoutDataflow(graph);
  const modules = graph.nodes.filter((n) => n.op === "module").length;
  // built off the page and swapped in whole: removing a big old drawing node by node is slow
  const host = document.createElement("div");
  const svg = svgIn(host, lay.width, lay.height, label || `Dataflow graph (${graph.method}): ${graph.nodes.length} nodes, ${modules} module calls`);
  svg.classed("df-drawing", true);
  const defs = svg.insert("defs", ":first-child");
  addArrowMarker(defs, "df-arrow", "#475569");
  addArrowMarker(defs, "df-arrow-rf", "#c2410c");
  const g = svg.append("g");

  const drawFrame = (fr) => {
    const fg = g.append("g").attr("class", `df-group${fr.chain ? " chain" : ""}`).attr("data-path", fr.path);
    fg.append("rect").attr("x", fr.x).attr("y", fr.y).attr("width", fr.w).attr("height", fr.h).attr("rx", 10);
  };

  const drawEdge = (e) => {
    const eg = g.append("g").attr("class", `df-edge${e.skip ? " skip" : ""}`).attr("data-from", e.from).attr("data-to", e.to);
    const path = eg.append("path").attr("d", line(e.points));
    // a leg that ends at an open container's frame goes on inside it: the arrow is at the node it reaches
    if (e.arrow !== false) path.attr("marker-end", "url(#df-arrow)");
    if (e.text) eg.append("text").attr("class", "df-shape").attr("x", e.lx).attr("y", e.ly + 4).attr("text-anchor", "middle").text(e.text);
  };

  const drawNode = (n) => {
    const node = n.node;
    const pick = canPick(node);
    const ng = g
      .append("g")
      .attr("class", `df-node df-${n.kind} op-${node.op}${pick ? " pickable" : ""}`)
      .attr("data-id", node.id)
      .attr("data-path", node.path ?? "")
      .attr("transform", `translate(${n.x},${n.y})`);
    const title = node.op === "fold" ? `${node.range}: ${node.n} × ${node.type}` : `${node.path ? `${node.path}: ` : node.type && node.op !== "module" ? `${node.id}: ` : ""}${node.type || node.label}${node.shape ? ` → ${JSON.stringify(node.shape)}` : ""}`;
    const tip = ng.append("title").text(title);
    // the accessible name starts with the text the node shows (WCAG 2.5.3, label in name)
    let shown = "+";
    if (n.kind === "block" || n.kind === "fold") {
      shown = drawBox(ng, n);
      ng.attr("data-key", node.key).attr("data-members", node.members.length);
      if (node.params !== null) ng.attr("data-params", node.params);
      if (node.macs !== null) ng.attr("data-macs", node.macs);
      if (onToggle) {
        ng.classed("pickable", true).attr("role", "button").attr("tabindex", 0).attr("aria-expanded", "false");
        ng.attr("aria-label", `${shown}: expand`);
        tip.remove();
        ng.attr("data-tip", `${title}: ${node.contents.join(", ")}`);
        toggleOn(ng, (ev) => onToggle(node.key, node, ev));
      } else tip.text(`${title}: ${node.contents.join(", ")}`);
      if (onNode) onNode(ng, n);
      return;
    }
    if (n.kind === "add") {
      ng.append("circle").attr("class", "df-box").attr("cx", n.w / 2).attr("cy", n.h / 2).attr("r", n.w / 2);
      ng.append("text").attr("class", "df-add").attr("x", n.w / 2).attr("y", n.h / 2 + 6).attr("text-anchor", "middle").text("+");
    } else if (n.kind === "module") {
      ng.append("rect").attr("class", "df-box").attr("width", n.w).attr("height", n.h).attr("rx", 6);
      // the trailing space is not drawn (SVG collapses it) but keeps "Conv2d" and the path two words
      // in the node's text, which its accessible name repeats
      ng.append("text").attr("class", "df-type").attr("x", n.w / 2).attr("y", 18).attr("text-anchor", "middle").text(`${node.label} `);
      ng.append("text").attr("class", "df-path").attr("x", n.w / 2).attr("y", 34).attr("text-anchor", "middle").text(node.path || "");
      shown = `${node.label} ${node.path || ""}`.trim();
    } else {
      ng.append("rect").attr("class", "df-box").attr("width", n.w).attr("height", n.h).attr("rx", n.h / 2);
      const text = n.kind === "io" && node.shape ? `${node.label} ${JSON.stringify(node.shape).replaceAll(",", ", ").replace("[", "(").replace("]", ")")}` : node.label;
      ng.append("text").attr("class", "df-label").attr("x", n.w / 2).attr("y", n.h / 2 + 4).attr("text-anchor", "middle").text(text);
      shown = text;
    }
    // a module opens in the layer view; any other node with a shape (⊕, relu, the output) is chosen
    // for the receptive field
    const act = pick ? onPick : onOther && node.shape && node.op !== "input" ? onOther : null;
    if (act) {
      ng.classed("pickable", true).attr("role", "button").attr("tabindex", 0);
      ng.attr("aria-label", `${shown}: ${pick ? pickLabel : "choose for the receptive field"} (${title})`);
      // a button's tooltip would be read as part of its text, ahead of what it shows: the label has it
      tip.remove();
      ng.attr("data-tip", title);
      toggleOn(ng, (ev) => act(node, ev));
    }
    if (onNode) onNode(ng, n);
  };

  const drawFrameLabel = (fr) => {
    if (onToggle && fr.key) {
      // an open container's label, at the frame's top left, is the button that closes it
      // it sits on the frame's top border, in the first gap between the edges that enter the frame
      // there; where the full "path · type" fits no gap, the path alone (its accessible name adds the
      // type; no tooltip, which a button's name check would read as text shown ahead of the label)
      const full = `▾ ${fr.label}`;
      const xs = crossings(lay.edges, fr.y)
        .filter((v) => v > fr.x && v < fr.x + fr.w)
        .sort((a, b) => a - b);
      const bounds = [fr.x + 6 - 8, ...xs, fr.x + fr.w - 6 + 8];
      const gapFor = (w) => {
        for (let i = 1; i < bounds.length; i++) if (bounds[i] - bounds[i - 1] - 16 >= w) return bounds[i - 1] + 8;
        return null;
      };
      let text = full;
      let w = Math.ceil(text.length * FLOW.CH) + 12;
      let x = gapFor(w);
      if (x === null) {
        const short = `▾ ${fr.path}`;
        const ws = Math.ceil(short.length * FLOW.CH) + 12;
        const xShort = gapFor(ws);
        if (xShort !== null) [text, w, x] = [short, ws, xShort];
        else x = Math.max(2, fr.x + 6);
      }
      const lg = g.append("g").attr("class", "df-group-label df-collapse pickable").attr("data-path", fr.path).attr("data-key", fr.key)
        .attr("role", "button").attr("tabindex", 0).attr("aria-expanded", "true").attr("aria-label", `${text}${text === full ? "" : ` · ${fr.type}`}: collapse`);
      lg.append("rect").attr("class", "df-collapse-bg").attr("x", x).attr("y", fr.y - 8).attr("width", w).attr("height", 16).attr("rx", 4);
      lg.append("text").attr("x", x + 6).attr("y", fr.y + 4).text(text);
      toggleOn(lg, () => onToggle(fr.key, fr));
      return;
    }
    // frame labels run up the frame's left border, where edges entering from above do not pass
    const x = fr.x + 12;
    const y = fr.y + fr.h - 8;
    g.append("text").attr("class", "df-group-label").attr("data-path", fr.path).attr("x", x).attr("y", y)
      .attr("transform", `rotate(-90 ${x} ${y})`).text(fr.label);
  };

  // frames under edges under nodes; frame labels on top
  const jobs = [...lay.groups.map((fr) => () => drawFrame(fr)), ...lay.edges.map((e) => () => drawEdge(e)), ...lay.nodes.map((n) => () => drawNode(n)), ...lay.groups.map((fr) => () => drawFrameLabel(fr))];
  const swap = () => {
    const old = container.querySelector(":scope > svg.drawing");
    if (old) old.replaceWith(svg.node());
    else container.append(svg.node());
  };
  if (!chunked) {
    for (const job of jobs) job();
    swap();
    return lay;
  }
  return runChunked(jobs, { cancelled, budgetMs: 12 }).then((done) => {
    if (!done) return null;
    swap();
    return lay;
  });
}

// Where the edges cross the horizontal line at y (a frame's top border).
function crossings(edges, y) {
  const xs = [];
  for (const e of edges)
    for (let i = 1; i < e.points.length; i++) {
      const [x0, y0] = e.points[i - 1];
      const [x1, y1] = e.points[i];
      if ((y0 - y) * (y1 - y) <= 0 && y0 !== y1) xs.push(x0 + ((x1 - x0) * (y - y0)) / (y1 - y0));
    }
  return xs;
}

// A button's activation: a click, or Enter / Space on the focused element.
function toggleOn(sel, act) {
  sel.on("click", (ev) => act(ev));
  sel.on("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      act(ev);
    }
  });
}

// A closed container (or a fold of N equal ones, drawn as a stack of cards): its type (× N), where
// it sits, its shapes in and out, parameters and mult-adds; a small ⊞ says it opens. Returns the text
// it shows, which the button's accessible name starts with.
function drawBox(ng, n) {
  const node = n.node;
  // a fold, or a container that is one run of equal blocks, is drawn as a stack of cards
  const fold = n.kind === "fold" || Boolean(node.n);
  const w = fold ? n.w - 6 : n.w;
  const h = fold ? n.h - 6 : n.h;
  if (fold) {
    ng.append("rect").attr("class", "df-stack").attr("x", 6).attr("y", 6).attr("width", w).attr("height", h).attr("rx", 8);
    ng.append("rect").attr("class", "df-stack").attr("x", 3).attr("y", 3).attr("width", w).attr("height", h).attr("rx", 8);
  }
  ng.append("rect").attr("class", "df-box").attr("width", w).attr("height", h).attr("rx", 8);
  const lines = boxLines(node);
  const cls = ["df-type", "df-path", "df-io-shapes", "df-cost", "df-contents"];
  lines.forEach((t, i) => {
    ng.append("text").attr("class", cls[i]).attr("x", w / 2).attr("y", 18 + i * FLOW.LINE).attr("text-anchor", "middle").text(i < lines.length - 1 ? `${t} ` : t);
  });
  if (fold) ng.select("text.df-type").attr("data-n", node.n);
  // the "opens" mark: a plus in a square, drawn (not text) so it stays out of the accessible name
  const m = ng.append("g").attr("class", "df-open-mark").attr("aria-hidden", "true").attr("transform", `translate(${w - 16},5)`);
  m.append("rect").attr("width", 11).attr("height", 11).attr("rx", 2);
  m.append("path").attr("d", "M2.5,5.5 H8.5 M5.5,2.5 V8.5");
  return lines.join(" ");
}
