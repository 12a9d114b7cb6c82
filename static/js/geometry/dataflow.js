// Layout of a dataflow graph (the API's `graph`: module calls, functions, methods and the tensors
// between them) with dagre's layered layout, top to bottom. Pure: no DOM; sizes are estimated from
// the label lengths. Returns positioned nodes (a box per module call, ⊕ for an addition, a pill for
// other functions and for the input/output) and edges with their route, shape label and whether they
// skip ranks (a skip path, drawn dashed).

import dagre from "../../vendor/dagre-3.1.3.js";
import { shapeStr } from "../util/format.js";

export const FLOW = { CH: 6.6, MONO: 7.0, BOX_H: 44, PILL_H: 26, ADD_R: 13, RANKSEP: 34, NODESEP: 28, MARGIN: 14 };

const ADD_LABELS = new Set(["+"]);

export function nodeKind(node) {
  if (node.op === "input" || node.op === "output") return "io";
  if (node.op === "module") return "module";
  if (ADD_LABELS.has(node.label)) return "add";
  return "op";
}

function nodeSize(node) {
  const kind = nodeKind(node);
  if (kind === "add") return { w: FLOW.ADD_R * 2, h: FLOW.ADD_R * 2 };
  if (kind === "module") {
    const chars = Math.max(node.label.length, (node.path || "").length * 0.9);
    return { w: Math.max(96, Math.ceil(chars * FLOW.CH) + 26), h: FLOW.BOX_H };
  }
  const text = kind === "io" ? `${node.label} ${node.shape ? shapeStr(node.shape) : ""}` : node.label;
  return { w: Math.max(40, Math.ceil(text.length * FLOW.CH) + 20), h: FLOW.PILL_H };
}

// A module whose forward() calls child modules (the tutorial's residual block, an encoder layer):
// the API's graph has module nodes with a path below it. Such a module is one picture wherever it
// is opened, its dataflow, as in the network view; a layer that does its own arithmetic has none.
export function callsChildren(graph) {
  return Boolean(graph?.nodes?.some((n) => n.op === "module" && n.path));
}

export function edgeText(edge) {
  return Array.isArray(edge.shape) ? shapeStr(edge.shape) : "";
}

// The modules whose forward() made a call frame it (a residual block, an encoder layer); a chain
// (the server marks nn.Sequential scopes `chain`) only passes outputs on and gets no frame.
function frames(node) {
  return (node.scope || []).filter((s) => !s.chain);
}

export function layoutDataflow(graph) {
  const g = new dagre.graphlib.Graph({ multigraph: true, compound: true });
  g.setGraph({ rankdir: "TB", ranksep: FLOW.RANKSEP, nodesep: FLOW.NODESEP, edgesep: 14, marginx: FLOW.MARGIN, marginy: FLOW.MARGIN });
  g.setDefaultEdgeLabel(() => ({}));
  const clusters = new Map();
  for (const n of graph.nodes) {
    const { w, h } = nodeSize(n);
    g.setNode(n.id, { width: w, height: h });
    let parent = null;
    for (const s of frames(n)) {
      const id = `scope:${s.path}`;
      if (!clusters.has(id)) {
        clusters.set(id, { id, path: s.path, type: s.type });
        g.setNode(id, { paddingTop: 26 });
        if (parent) g.setParent(id, parent);
      }
      parent = id;
    }
    if (parent) g.setParent(n.id, parent);
  }
  graph.edges.forEach((e, i) => {
    const text = edgeText(e);
    // the label takes room in the layout, so shapes never sit on top of a node
    g.setEdge(e.from, e.to, { width: Math.ceil(text.length * FLOW.MONO) + 6, height: 14, labelpos: "r", labeloffset: 6 }, `e${i}`);
  });
  dagre.layout(g);
  const nodes = graph.nodes.map((n) => {
    const p = g.node(n.id);
    return { node: n, id: n.id, kind: nodeKind(n), x: p.x - p.width / 2, y: p.y - p.height / 2, w: p.width, h: p.height, cx: p.x, cy: p.y };
  });
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const rankStep = FLOW.RANKSEP + FLOW.PILL_H;
  const edges = graph.edges.map((e, i) => {
    const p = g.edge(e.from, e.to, `e${i}`);
    const a = byId.get(e.from);
    const b = byId.get(e.to);
    const skip = Boolean(a && b && b.cy - a.cy > rankStep * 2.2 && b.kind === "add");
    return { edge: e, from: e.from, to: e.to, points: p.points.map((q) => [q.x, q.y]), text: edgeText(e), lx: p.x, ly: p.y, skip };
  });
  const groups = [...clusters.values()].map((c) => {
    const p = g.node(c.id);
    return { ...c, x: p.x - p.width / 2, y: p.y - p.height / 2, w: p.width, h: p.height, label: `${c.path} · ${c.type}` };
  });
  const size = g.graph();
  return { width: Math.ceil(size.width || 0), height: Math.ceil(size.height || 0), nodes, edges, groups };
}
