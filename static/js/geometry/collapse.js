// Collapsing and folding a dataflow graph by module hierarchy. Pure: no DOM.
//
// The API's graph gives every node the modules whose forward() made its call (`scope`, outermost
// first). Those paths form a tree: a container (`layer2`, `layer2.0.block`) holds its children's
// calls. `moduleTree` builds that tree once per graph and finds the runs of consecutive siblings with
// the same structure (ResNet's bottlenecks after the first of a stage, ViT's encoder layers): a run
// is a *fold*, drawn as one box "× N". `visibleGraph` turns the tree and an expansion state into the
// graph a drawing lays out: a collapsed container is one node (its type, input and output shapes,
// parameter and mult-add totals from the trace and `subtotals`), a closed fold one node for the whole
// run, and edges between hidden nodes become edges between the boxes that hold them, with their shapes.
//
// An expansion state is a set of keys: a container's path opens it, `fold:<first member>` unfolds a
// run. `"all"` opens everything. `defaultExpansion` is what a graph opens with.

export const FOLD = "fold:";
// a graph of at most this many nodes opens whole, every container expanded
export const SMALL_GRAPH = 40;
// a collapsed view with fewer boxes than this opens its biggest container (a `features` wrapper)
const FEW_BOXES = 8;

const unitKey = (u) => (u.kind === "node" ? u.id : u.kind === "scope" ? u.path : u.key);

// ---------- the module tree ----------

export function moduleTree(graph) {
  const nodes = graph?.nodes || [];
  const edges = graph?.edges || [];
  const root = { kind: "scope", path: "", type: null, chain: false, parent: null, units: [], ids: [], depth: -1 };
  const scopes = new Map([["", root]]);
  const scopeOf = new Map(); // node id -> its innermost scope
  const index = new Map(); // node id -> position in execution order
  nodes.forEach((n, i) => {
    index.set(n.id, i);
    let parent = root;
    for (const s of n.scope || []) {
      let sc = scopes.get(s.path);
      if (!sc) {
        sc = { kind: "scope", path: s.path, type: s.type, chain: Boolean(s.chain), parent, units: [], ids: [], depth: parent.depth + 1 };
        scopes.set(s.path, sc);
        parent.units.push(sc);
      }
      parent = sc;
    }
    scopeOf.set(n.id, parent);
    parent.units.push({ kind: "node", id: n.id, node: n, parent });
    for (let p = parent; p; p = p.parent) p.ids.push(n.id);
  });
  const ins = new Map(nodes.map((n) => [n.id, []]));
  const outs = new Map(nodes.map((n) => [n.id, []]));
  for (const e of edges) {
    ins.get(e.to)?.push(e);
    outs.get(e.from)?.push(e);
  }
  const tree = { graph, root, scopes, scopeOf, index, ins, outs, folds: new Map(), byNode: new Map(nodes.map((n) => [n.id, n])) };
  // A container of one call is no box of its own (a Sequential around one layer): always open.
  for (const sc of scopes.values()) sc.transparent = sc !== root && sc.ids.length < 2;
  const sigs = new Map();
  for (const sc of scopes.values()) sc.runs = runsOf(tree, sc, sigs);
  return tree;
}

const idsOf = (u) => (u.kind === "node" ? [u.id] : u.ids);

// What makes two siblings "the same block": every call inside, in order, with its place inside the
// block (a module's path below the block, a function's operation), its type, its arguments (the
// config the server read back) and its output shapes, and where each call's inputs come from (a call
// of the block by its position, or the outside by the tensor's shape).
function signature(tree, u, sigs) {
  const k = unitKey(u);
  if (sigs.has(k)) return sigs.get(k);
  const ids = idsOf(u);
  const pos = new Map(ids.map((id, i) => [id, i]));
  const prefix = u.kind === "scope" ? `${u.path}.` : null;
  const parts = ids.map((id) => {
    const n = tree.byNode.get(id);
    const rel = n.path && prefix && n.path.startsWith(prefix) ? n.path.slice(prefix.length) : "";
    const from = tree.ins.get(id).map((e) => (pos.has(e.from) ? pos.get(e.from) : `in${JSON.stringify(e.shape ?? null)}`));
    return [rel, n.op, n.label, n.type, n.config ?? null, n.shapes ?? null, from];
  });
  const sig = JSON.stringify([u.kind === "scope" ? u.type : null, parts]);
  sigs.set(k, sig);
  return sig;
}

// `b` follows `a` in a chain: everything `b` reads from outside comes from `a`, and everything `a`
// gives goes to `b` (so hiding the run's inner edges hides no other reader).
function chained(tree, a, b) {
  const inA = new Set(idsOf(a));
  const inB = new Set(idsOf(b));
  let fed = false;
  for (const id of inB)
    for (const e of tree.ins.get(id)) {
      if (inB.has(e.from)) continue;
      if (!inA.has(e.from)) return false;
      fed = true;
    }
  for (const id of inA) for (const e of tree.outs.get(id)) if (!inA.has(e.to) && !inB.has(e.to)) return false;
  return fed;
}

function runsOf(tree, sc, sigs) {
  const runs = [];
  let run = [];
  const close = () => {
    if (run.length >= 2) {
      const key = `${FOLD}${unitKey(run[0])}`;
      const fold = { kind: "fold", key, members: run, parent: sc, ids: run.flatMap(idsOf) };
      tree.folds.set(key, fold);
      runs.push(fold);
    } else runs.push(...run);
    run = [];
  };
  for (const u of sc.units) {
    // an input or output pill never folds; a one-call container is drawn as its call
    const foldable = !(u.kind === "node" && (u.node.op === "input" || u.node.op === "output"));
    if (run.length && foldable && signature(tree, u, sigs) === signature(tree, run[0], sigs) && chained(tree, run[run.length - 1], u)) {
      run.push(u);
      continue;
    }
    close();
    if (foldable) run = [u];
    else runs.push(u);
  }
  close();
  return runs;
}

// Every key that can be opened: the containers (not the root, not a one-call container) and the folds.
export function allKeys(tree) {
  const keys = [];
  for (const sc of tree.scopes.values()) if (sc !== tree.root && !sc.transparent) keys.push(sc.path);
  for (const k of tree.folds.keys()) keys.push(k);
  return keys;
}

// ---------- the expansion state ----------

export function openSet(tree, expand) {
  if (expand === "all") return new Set(allKeys(tree));
  if (Array.isArray(expand)) return new Set(expand.filter((k) => typeof k === "string"));
  return defaultExpansion(tree);
}

// A graph small enough to read whole opens whole. A bigger one opens collapsed to its top-level
// blocks; while that shows only a few boxes (a model that is one `features` container and a head),
// its biggest block opens as long as the view stays under the small graph's size.
export function defaultExpansion(tree) {
  if (tree.byNode.size <= SMALL_GRAPH) return new Set(allKeys(tree));
  const open = new Set();
  for (;;) {
    const view = visibleUnits(tree, open);
    if (view.length >= FEW_BOXES) return open;
    const closed = view.filter((v) => v.kind !== "node").sort((a, b) => b.ids.length - a.ids.length)[0];
    if (!closed) return open;
    const next = new Set(open).add(unitKey(closed));
    if (visibleUnits(tree, next).length > SMALL_GRAPH) return open;
    open.clear();
    for (const k of next) open.add(k);
  }
}

// The URL's form of an expansion: null where it is the graph's default, "all" for everything open.
export function expansionValue(tree, open) {
  const keys = allKeys(tree);
  const same = (s) => s.size === open.size && [...s].every((k) => open.has(k));
  if (same(defaultExpansion(tree))) return null;
  if (keys.length && keys.every((k) => open.has(k)) && open.size === keys.length) return "all";
  return [...open].filter((k) => keys.includes(k)).sort();
}

// The units drawn for an expansion, in execution order: closed containers, closed folds and calls.
function visibleUnits(tree, open, out = [], sc = tree.root) {
  for (const u of sc.runs) {
    if (u.kind === "fold") {
      if (!open.has(u.key)) out.push(u);
      else for (const m of u.members) pushUnit(tree, open, out, m);
    } else pushUnit(tree, open, out, u);
  }
  return out;
}

function pushUnit(tree, open, out, u) {
  if (u.kind === "scope" && (u.transparent || open.has(u.path))) visibleUnits(tree, open, out, u);
  else out.push(u);
}

// The keys to open so that node `id` is drawn: every container around it and every fold holding one.
export function revealKeys(tree, id) {
  const keys = [];
  for (let sc = tree.scopeOf.get(id); sc && sc !== tree.root; sc = sc.parent) keys.push(sc.path);
  for (const [k, f] of tree.folds) if (f.ids.includes(id)) keys.push(k);
  return keys;
}

// ---------- the visible graph ----------

const sumOrNull = (xs) => (xs.some((x) => x === null || x === undefined) ? null : xs.reduce((a, b) => a + b, 0));

// "layer2.1–3" for layer2.1, layer2.2, layer2.3; the first and last path otherwise.
export function rangeLabel(first, last) {
  const a = /^(.*?)(\d+)$/.exec(first || "");
  const b = /^(.*?)(\d+)$/.exec(last || "");
  if (a && b && a[1] === b[1]) return `${a[1]}${a[2]}–${b[2]}`;
  return `${first} … ${last}`;
}

// "3 Conv2d · 3 BatchNorm2d · 3 ReLU · +": the calls a collapsed block holds, most frequent first.
function contents(tree, ids) {
  const counts = new Map();
  for (const id of ids) {
    const n = tree.byNode.get(id);
    const name = n.op === "module" ? n.type || n.label : n.label;
    counts.set(name, (counts.get(name) || 0) + 1);
  }
  return [...counts].sort((x, y) => y[1] - x[1]).map(([name, c]) => (c > 1 ? `${c} ${name}` : name));
}

// What a closed container or fold shows: from the trace's entry (shapes, the container's own
// parameter count) and the server's subtotals (mult-adds summed over its leaves).
function boxFacts(tree, u, traceOf, subtotals) {
  const members = u.kind === "fold" ? u.members : [u];
  const facts = members.map((m) => {
    if (m.kind === "node") {
      const t = m.node.path ? traceOf.get(m.node.path) : null;
      return { params: t?.param_count ?? (m.node.op === "module" ? null : 0), macs: t?.macs ?? null, macsComplete: t ? t.macs !== null : true, memory: t ? (t.activation_bytes ?? null) : m.node.op === "module" ? null : 0, input: t?.input_shapes ?? null, output: t?.output_shapes ?? m.node.shapes ?? null, layers: m.node.op === "module" ? 1 : 0 };
    }
    const t = traceOf.get(m.path);
    const s = subtotals?.[m.path];
    return { params: s?.param_count ?? t?.param_count ?? null, macs: s?.macs ?? null, macsComplete: s ? s.macs_complete : false, memory: s?.activation_bytes ?? null, input: t?.input_shapes ?? null, output: t?.output_shapes ?? null, layers: s?.layers ?? null };
  });
  return {
    params: sumOrNull(facts.map((f) => f.params)),
    macs: sumOrNull(facts.map((f) => f.macs)),
    macsComplete: facts.every((f) => f.macsComplete),
    // activation memory: the bytes of every output its layers produce (the trace's activation_bytes)
    memory: sumOrNull(facts.map((f) => f.memory)),
    layers: sumOrNull(facts.map((f) => f.layers)),
    inputShapes: facts[0].input,
    outputShapes: facts[facts.length - 1].output,
  };
}

// `result`: the /api/shape or /api/run answer (graph, trace, subtotals); `open`: a Set of keys.
// Returns a graph in the API's form (nodes, edges, method) whose nodes may also be
//   {op: "block", path, type, key, members, …facts}  a closed container,
//   {op: "fold", path, last, n, key, members, …facts}  a closed run of N equal siblings,
// each node with `frames`: the open containers around it, outermost first (what the drawing frames).
export function visibleGraph(tree, open, { trace = [], subtotals = null, frameChains = true } = {}) {
  const traceOf = new Map();
  for (const t of trace || []) if (!traceOf.has(t.path)) traceOf.set(t.path, t);
  const owner = new Map(); // a node of the API's graph -> the visible node that holds it
  const nodes = [];
  const frameOf = (sc) => {
    const fr = [];
    for (let p = sc; p && p !== tree.root; p = p.parent) if (!p.transparent && (frameChains || !p.chain)) fr.unshift({ path: p.path, type: p.type, chain: p.chain, key: p.path });
    return fr;
  };
  for (const u of visibleUnits(tree, open)) {
    if (u.kind === "node") {
      nodes.push({ ...u.node, frames: frameOf(u.parent) });
      owner.set(u.id, u.id);
      continue;
    }
    const facts = boxFacts(tree, u, traceOf, subtotals);
    const first = u.kind === "fold" ? u.members[0] : u;
    const last = u.kind === "fold" ? u.members[u.members.length - 1] : u;
    const path = first.kind === "node" ? first.node.path || first.id : first.path;
    const type = first.kind === "node" ? first.node.type || first.node.label : first.type;
    const shapes = facts.outputShapes;
    const node = {
      id: u.kind === "fold" ? u.key : `block:${u.path}`,
      op: u.kind === "fold" ? "fold" : "block",
      label: type,
      type,
      path,
      key: u.kind === "fold" ? u.key : u.path,
      shape: shapes && shapes.length === 1 ? shapes[0] : null,
      shapes,
      members: u.ids,
      contents: contents(tree, u.ids),
      scope: [],
      frames: frameOf(u.parent),
      ...facts,
    };
    // a container that is nothing but a run of equal blocks (ViT's encoder) says so: "TransformerEncoderLayer × 12"
    const only = u.kind === "scope" && u.runs.length === 1 && u.runs[0].kind === "fold" ? u.runs[0] : null;
    if (only) {
      const m = only.members[0];
      node.n = only.members.length;
      node.foldType = m.kind === "node" ? m.node.type || m.node.label : m.type;
      node.foldKey = only.key;
    }
    if (u.kind === "fold") {
      node.n = u.members.length;
      node.last = last.kind === "node" ? last.node.path || last.id : last.path;
      node.range = rangeLabel(path, node.last);
    }
    nodes.push(node);
    for (const id of u.ids) owner.set(id, node.id);
  }
  const seen = new Set();
  const edges = [];
  for (const e of tree.graph.edges || []) {
    const from = owner.get(e.from);
    const to = owner.get(e.to);
    if (!from || !to || from === to) continue;
    // one edge per tensor between two boxes (a block's input read by its body and its skip)
    const k = `${from}|${to}|${JSON.stringify(e.shape ?? null)}`;
    if (seen.has(k)) continue;
    seen.add(k);
    edges.push({ ...e, from, to });
  }
  return { method: tree.graph.method, nodes, edges, owner };
}

// The receptive field on a collapsed view: how much of each block it touches (the fraction of the
// block's calls with an element in the field). `counts`: the API's nodes ({id, count}).
export function fieldCoverage(node, countOf) {
  const ids = node.members || [node.id];
  const hit = ids.filter((id) => (countOf.get(id) || 0) > 0).length;
  return { hit, total: ids.length, fraction: ids.length ? hit / ids.length : 0 };
}

// Find: nodes whose path, id, type or label holds every word of the query, best first: the words
// found in the node's place (its path or id) before those found only in its type ("conv2" is
// layer1.0's conv2 before every Conv2d), a path that starts with the query first, then execution order.
export function findNodes(tree, query, limit = 12) {
  const words = String(query || "").trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return [];
  const q = words.join(" ");
  const hits = [];
  for (const n of tree.byNode.values()) {
    const place = `${n.path || ""} ${n.id}`.toLowerCase();
    const kind = `${n.type || ""} ${n.label || ""}`.toLowerCase();
    let byKind = 0;
    let ok = true;
    for (const w of words) {
      if (place.includes(w)) continue;
      if (kind.includes(w)) byKind++;
      else ok = false;
    }
    if (!ok) continue;
    const lead = (n.path || n.id).toLowerCase().startsWith(q) || (n.path || "").toLowerCase().endsWith(q) ? 0 : 1;
    hits.push({ node: n, rank: byKind * 2 + lead, order: tree.index.get(n.id) });
  }
  hits.sort((a, b) => a.rank - b.rank || a.order - b.order);
  return hits.slice(0, limit).map((h) => h.node);
}
