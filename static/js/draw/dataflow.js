// The dataflow graph drawn with d3 from geometry/dataflow.js: a box per module call (type and path),
// ⊕ where the code adds, a pill per other function or method, the tensor's shape on every edge and
// skip paths dashed. Module boxes that can be opened are buttons (onPick); receptive-field counts,
// when given, colour the nodes that an element depends on.

import { addArrowMarker, svgIn } from "./common.js";
import { layoutDataflow } from "../geometry/dataflow.js";

const line = (pts) => `M${pts.map((p) => p.map((v) => v.toFixed(1)).join(",")).join(" L")}`;

// `pickLabel`: what a click on a pickable node does, in its accessible name (the network view's graph
// selects the node: its details and the drill-down sit beside the graph).
export function drawDataflow(container, graph, { onPick = () => {}, canPick = () => false, onOther = null, onNode = null, pickLabel = "open in the layer view" } = {}) {
  const lay = layoutDataflow(graph);
  const modules = graph.nodes.filter((n) => n.op === "module").length;
  const svg = svgIn(container, lay.width, lay.height, `Dataflow graph (${graph.method}): ${graph.nodes.length} nodes, ${modules} module calls`);
  svg.classed("df-drawing", true);
  const defs = svg.insert("defs", ":first-child");
  addArrowMarker(defs, "df-arrow", "#475569");
  addArrowMarker(defs, "df-arrow-rf", "#c2410c");
  const g = svg.append("g");

  for (const fr of lay.groups) {
    const fg = g.append("g").attr("class", "df-group").attr("data-path", fr.path);
    fg.append("rect").attr("x", fr.x).attr("y", fr.y).attr("width", fr.w).attr("height", fr.h).attr("rx", 10);
  }

  for (const e of lay.edges) {
    const eg = g.append("g").attr("class", `df-edge${e.skip ? " skip" : ""}`).attr("data-from", e.from).attr("data-to", e.to);
    eg.append("path").attr("d", line(e.points)).attr("marker-end", "url(#df-arrow)");
    if (e.text) eg.append("text").attr("class", "df-shape").attr("x", e.lx).attr("y", e.ly + 4).attr("text-anchor", "middle").text(e.text);
  }

  for (const n of lay.nodes) {
    const node = n.node;
    const pick = canPick(node);
    const ng = g
      .append("g")
      .attr("class", `df-node df-${n.kind} op-${node.op}${pick ? " pickable" : ""}`)
      .attr("data-id", node.id)
      .attr("data-path", node.path ?? "")
      .attr("transform", `translate(${n.x},${n.y})`);
    const title = `${node.path ? `${node.path}: ` : node.type && node.op !== "module" ? `${node.id}: ` : ""}${node.type || node.label}${node.shape ? ` → ${JSON.stringify(node.shape)}` : ""}`;
    const tip = ng.append("title").text(title);
    // the accessible name starts with the text the node shows (WCAG 2.5.3, label in name)
    let shown = "+";
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
      ng.on("click", (ev) => act(node, ev));
      ng.on("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          act(node, ev);
        }
      });
    }
    if (onNode) onNode(ng, n);
  }

  // frame labels run up the frame's left border, where edges entering from above do not pass
  for (const fr of lay.groups) {
    const x = fr.x + 12;
    const y = fr.y + fr.h - 8;
    g.append("text").attr("class", "df-group-label").attr("data-path", fr.path).attr("x", x).attr("y", y)
      .attr("transform", `rotate(-90 ${x} ${y})`).text(fr.label);
  }
  return lay;
}
