// Layout of a dataflow graph (the API's `graph`: module calls, functions, methods and the tensors
// between them) with dagre's layered layout, top to bottom. Pure: no DOM; sizes are estimated from
// the label lengths. Returns positioned nodes (a box per module call, ⊕ for an addition, a pill for
// other functions and for the input/output) and edges with their route, shape label and whether they
// skip ranks (a skip path, drawn dashed).

import dagre from "../../vendor/dagre-3.1.3.js";
import { fmtCount, shapeStr } from "../util/format.js";

export const FLOW = { CH: 6.6, MONO: 7.0, BOX_H: 44, PILL_H: 26, ADD_R: 13, RANKSEP: 34, NODESEP: 28, MARGIN: 14, LINE: 15, FRAME_TOP: 26 };

const ADD_LABELS = new Set(["+"]);

export function nodeKind(node) {
  if (node.op === "block" || node.op === "fold") return node.op;
  if (node.op === "input" || node.op === "output") return "io";
  if (node.op === "module") return "module";
  if (ADD_LABELS.has(node.label)) return "add";
  return "op";
}

const shapesText = (shapes) => (Array.isArray(shapes) && shapes.length ? shapes.map(shapeStr).join(", ") : "?");

// The lines a collapsed block (or a fold of N equal blocks) shows: its type (× N), where it sits, the
// shapes in and out, its parameters and mult-adds (≥ where some of its layers have no count).
export function boxLines(node) {
  const head = node.op === "fold" ? `${node.type} × ${node.n}` : node.n ? `${node.foldType} × ${node.n}` : node.type;
  const where = node.op === "fold" ? node.range : node.path;
  const macs = node.macs === null || node.macs === undefined ? "—" : `${node.macsComplete ? "" : "≥ "}${fmtCount(node.macs)}`;
  return [
    head,
    where,
    `${shapesText(node.inputShapes)} → ${shapesText(node.outputShapes)}`,
    `${fmtCount(node.params)} params · ${macs} mult-adds`,
    contentsLine(node.contents || []),
  ];
}

// What is inside, most frequent first, cut to a line: "10 Conv2d · 10 BatchNorm2d · 9 ReLU · 3 +".
function contentsLine(parts, max = 44) {
  let out = "";
  for (const p of parts) {
    const next = out ? `${out} · ${p}` : p;
    if (next.length > max) return `${out} …`;
    out = next;
  }
  return out;
}

function nodeSize(node) {
  const kind = nodeKind(node);
  if (kind === "block" || kind === "fold") {
    const lines = boxLines(node);
    const chars = Math.max(lines[0].length * 1.1, lines[1].length * 0.95, lines[2].length * 1.02, lines[3].length, lines[4].length * 0.95);
    // a fold's stacked cards stick out 6 px to the right and below
    const extra = kind === "fold" || node.n ? 6 : 0;
    return { w: Math.ceil(chars * FLOW.CH) + 28 + extra, h: 12 + lines.length * FLOW.LINE + 6 + extra };
  }
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
// (the server marks nn.Sequential scopes `chain`) only passes outputs on and gets no frame. A view
// collapsed by geometry/collapse.js says which open containers frame each node (`frames`).
function frames(node) {
  return node.frames || (node.scope || []).filter((s) => !s.chain);
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
        clusters.set(id, { id, path: s.path, type: s.type, chain: Boolean(s.chain), key: s.key ?? null });
        g.setNode(id, { paddingTop: FLOW.FRAME_TOP });
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

// ---------- nested layout: big graphs, one container at a time ----------
//
// dagre's compound layout takes seconds on a fully open ResNet-50 (177 nodes in 100 nested frames).
// Here every open container (a node's `frames`) is laid out on its own, innermost first, and becomes
// one fixed-size box in its parent's layout; a tensor that crosses a container's border enters at a
// port on its top row (or leaves from one on its bottom row), and the drawn edge runs from the
// parent's border point to the node inside. Each piece is a small dagre graph (a few ms), `pause`
// lets the caller yield between pieces (no long task), and `cache` keeps each container's layout
// for the same contents, so opening one block lays out only it and the containers around it.

const NEST = { PAD_X: 8, PAD_TOP: 16, PAD_BOTTOM: 4, PORT: 2 };

export async function layoutNested(graph, { cache = new Map(), pause = async () => false } = {}) {
  const containers = new Map([["", { path: "", children: [], nodes: [], parent: null }]]);
  const chainOf = new Map();
  for (const n of graph.nodes) {
    const fr = n.frames || [];
    let parent = "";
    for (const f of fr) {
      if (!containers.has(f.path)) {
        containers.set(f.path, { ...f, parent, children: [], nodes: [] });
        containers.get(parent).children.push(f.path);
      }
      parent = f.path;
    }
    containers.get(parent).nodes.push(n);
    chainOf.set(n.id, fr.map((f) => f.path));
  }
  // the child of container `p` that holds node `id` ("n:<id>" or "c:<path>"), or null outside `p`
  const rep = (id, p) => {
    const chain = chainOf.get(id) || [];
    const i = p === "" ? -1 : chain.indexOf(p);
    if (p !== "" && i < 0) return null;
    return i + 1 < chain.length ? `c:${chain[i + 1]}` : `n:${id}`;
  };
  const order = [];
  const visit = (p) => {
    for (const c of containers.get(p).children) visit(c);
    order.push(p);
  };
  visit("");
  const local = new Map();
  for (const p of order) {
    const C = containers.get(p);
    const items = [];
    for (const n of C.nodes) items.push([`n:${n.id}`, nodeSize(n)]);
    for (const c of C.children) {
      const L = local.get(c);
      items.push([`c:${c}`, { w: L.width + 2 * NEST.PAD_X, h: L.height + NEST.PAD_TOP + NEST.PAD_BOTTOM }]);
    }
    const segs = new Map();
    for (const e of graph.edges) {
      let a = rep(e.from, p);
      let b = rep(e.to, p);
      if ((!a && !b) || a === b) continue;
      if (!a) a = `in:${e.from}`;
      if (!b) b = `out:${e.to}`;
      const port = a.startsWith("in:") || b.startsWith("out:");
      // a tensor's shape is written once, where it is drawn between two boxes, not again on a port's leg
      const text = port ? "" : edgeText(e);
      const k = `${a}|${b}|${port ? "" : text}`;
      const s = segs.get(k) || { a, b, text, edge: e, sources: new Set(), targets: new Set() };
      s.sources.add(e.from);
      s.targets.add(e.to);
      segs.set(k, s);
    }
    const list = [...segs.values()];
    const key = JSON.stringify([p, items.map(([id, s]) => [id, Math.round(s.w), Math.round(s.h)]), list.map((s) => [s.a, s.b, s.text])]);
    let L = cache.get(key);
    if (!L) {
      L = layoutPiece(items, list, p === "");
      cache.set(key, L);
      await pause();
    }
    local.set(p, { ...L, segs: list });
  }
  // place every piece at its box in the parent, outermost first
  const nodes = [];
  const edges = [];
  const groups = [];
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  function place(p, ox, oy, entries, exits) {
    const L = local.get(p);
    const at = (id) => {
      const q = L.pos.get(id);
      return { x: q.x + ox, y: q.y + oy, w: q.w, h: q.h };
    };
    const childEntries = new Map();
    const childExits = new Map();
    L.segs.forEach((s, i) => {
      const pts = L.routes[i].map(([x, y]) => [x + ox, y + oy]);
      // a leg from a port starts where the parent's edge met this frame, and one to a port ends there
      if (s.a.startsWith("in:")) {
        const q = entries.get(s.a.slice(3));
        if (q) pts[0] = q;
      }
      if (s.b.startsWith("out:")) {
        const q = exits.get(s.b.slice(4));
        if (q) pts[pts.length - 1] = q;
      }
      if (s.b.startsWith("c:")) for (const src of s.sources) childEntries.set(`${s.b.slice(2)}|${src}`, pts[pts.length - 1]);
      if (s.a.startsWith("c:")) for (const dst of s.targets) childExits.set(`${s.a.slice(2)}|${dst}`, pts[0]);
      const label = L.labels[i];
      const toNode = s.b.startsWith("n:");
      const kindB = toNode ? nodeKind(byId.get(s.b.slice(2))) : null;
      const dy = pts[pts.length - 1][1] - pts[0][1];
      edges.push({
        edge: s.edge,
        from: s.edge.from,
        to: s.edge.to,
        points: pts,
        text: s.text,
        lx: label ? label[0] + ox : 0,
        ly: label ? label[1] + oy : 0,
        skip: kindB === "add" && dy > (FLOW.RANKSEP + FLOW.PILL_H) * 2.2,
        arrow: toNode,
      });
    });
    for (const n of containers.get(p).nodes) {
      const q = at(`n:${n.id}`);
      nodes.push({ node: n, id: n.id, kind: nodeKind(n), x: q.x - q.w / 2, y: q.y - q.h / 2, w: q.w, h: q.h, cx: q.x, cy: q.y });
    }
    for (const c of containers.get(p).children) {
      const q = at(`c:${c}`);
      const C = containers.get(c);
      const x = q.x - q.w / 2;
      const y = q.y - q.h / 2;
      groups.push({ id: `scope:${c}`, path: c, type: C.type, chain: Boolean(C.chain), key: C.key ?? null, x, y, w: q.w, h: q.h, label: `${c} · ${C.type}` });
      const pick = (m) => new Map([...m].filter(([k]) => k.startsWith(`${c}|`)).map(([k, v]) => [k.slice(c.length + 1), v]));
      place(c, x + NEST.PAD_X, y + NEST.PAD_TOP, pick(childEntries), pick(childExits));
    }
  }
  place("", 0, 0, new Map(), new Map());
  const R = local.get("");
  // outer frames first, so inner ones draw over them
  groups.sort((a, b) => a.path.split(".").length - b.path.split(".").length);
  return { width: Math.ceil(R.width), height: Math.ceil(R.height), nodes, edges, groups };
}

// One container's contents laid out by dagre: its nodes, its open children as boxes, ports for the
// tensors that cross its border. Positions are centres, relative to the piece's top left.
function layoutPiece(items, segs, isRoot) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  const m = isRoot ? FLOW.MARGIN : 4;
  g.setGraph({ rankdir: "TB", ranksep: FLOW.RANKSEP, nodesep: FLOW.NODESEP, edgesep: 14, marginx: m, marginy: m });
  g.setDefaultEdgeLabel(() => ({}));
  for (const [id, s] of items) g.setNode(id, { width: s.w, height: s.h });
  segs.forEach((s, i) => {
    for (const end of [s.a, s.b]) if (!g.hasNode(end)) g.setNode(end, { width: NEST.PORT, height: NEST.PORT });
    const label = s.text ? { width: Math.ceil(s.text.length * FLOW.MONO) + 6, height: 14, labelpos: "r", labeloffset: 6 } : { width: 0, height: 0 };
    g.setEdge(s.a, s.b, label, `e${i}`);
  });
  dagre.layout(g);
  const pos = new Map(g.nodes().map((id) => {
    const q = g.node(id);
    return [id, { x: q.x, y: q.y, w: q.width, h: q.height }];
  }));
  const routes = [];
  const labels = [];
  segs.forEach((s, i) => {
    const e = g.edge(s.a, s.b, `e${i}`);
    routes.push(e.points.map((q) => [q.x, q.y]));
    labels.push(s.text ? [e.x, e.y] : null);
  });
  const size = g.graph();
  return { width: size.width || 0, height: size.height || 0, pos, routes, labels };
}
