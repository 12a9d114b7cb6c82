// The network view's dataflow-graph panel: draws the API's `graph` (from /api/shape) and opens a
// module node in the layer view on the input it received: a layer of the builder as the flow diagram
// does, and a module built inside another one (the tutorial block's fc1) by the config the server read
// back from it (see innerField in model.js).
//
// A big graph opens collapsed by module (geometry/collapse.js): a closed container or a fold of equal
// blocks is one box that a click or Enter opens; an open container's frame label closes it; "Expand
// all" / "Collapse all"; the open keys live in `state.ui.expand` (null: the graph's default, "all",
// or the list of keys), so the link reopens the same view. "Find" suggests nodes by name, path or
// type, opens the containers around the chosen one and centres it (`centreOn`, which a zooming view
// may replace). Layouts are cached per graph and expansion, so closing what was open is instant, and
// while the page is idle the views one click away are laid out ahead.
//
// With `tools` (graph-tools.js): a click on a node selects it, its details (and the drill-down) sit
// beside the graph, a double click opens it in the layer view; every drawing, an expand or collapse
// too, is handed to the tools, which zoom and pan it, colour it by cost (a collapsed block by its
// totals) and mark the selection; its exports are the drawing as it is, every visible box.

import { drawDataflow } from "../draw/dataflow.js";
import { allKeys, expansionValue, findNodes, moduleTree, openSet, revealKeys, visibleGraph, SMALL_GRAPH } from "../geometry/collapse.js";
import { layoutDataflow, layoutNested } from "../geometry/dataflow.js";
import { budgetYield, nextTask } from "../util/schedule.js";
import { innerField, rememberInner, walk } from "./model.js";

// The browser's next idle moment, for work nobody waits for.
const idle = () => (globalThis.requestIdleCallback ? new Promise((r) => requestIdleCallback(() => r())) : nextTask());

const METHODS = {
  fx: "captured with torch.fx symbolic tracing",
  hooks: "recorded while the module ran on meta tensors (torch.fx could not trace its forward)",
  module: "a single layer",
  none: "not captured",
};

// The deepest item of the builder whose module contains `path` (the root, "layer", contains all).
function enclosing(builder, path) {
  let best = null;
  for (const it of builder ? walk(builder.root) : []) {
    if (it.path !== "" && !path.startsWith(`${it.path}.`)) continue;
    if (!best || it.path.length > best.path.length) best = it;
  }
  return best?.field ?? "layer";
}

export function createGraphPanel(root, { store = null, tools: graphTools = null, onDrawn = () => {} } = {}) {
  const host = root.querySelector("#net-graph");
  const meta = root.querySelector("#net-graph-meta");
  const tools = root.querySelector("#net-graph-tools");
  const find = root.querySelector("#net-graph-find");
  const suggest = root.querySelector("#net-graph-suggest");
  const count = root.querySelector("#net-graph-count");
  const trees = new WeakMap(); // the API's graph -> its module tree
  // the API's graph -> {views: expansion -> {visible, layout}, pieces: layoutNested's per-container cache}
  const layouts = new WeakMap();
  let args = null;
  let tree = null;
  let open = new Set();
  let shown = null; // the visible graph drawn last
  let centre = defaultCentre;

  function treeOf(graph) {
    let t = trees.get(graph);
    if (!t) trees.set(graph, (t = moduleTree(graph)));
    return t;
  }

  // The visible graph and its layout for the current expansion, laid out once per graph and
  // expansion: a small graph by dagre in one piece (frames as dagre's clusters), a big one container
  // by container (layoutNested), yielding between pieces so the page stays responsive; returns the
  // cached answer, or a promise of it.
  function viewFor(keys = open, pause = budgetYield(25)) {
    const graph = args.result.graph;
    let cache = layouts.get(graph);
    if (!cache) layouts.set(graph, (cache = { views: new Map(), pieces: new Map() }));
    const key = [...keys].sort().join("\n");
    const hit = cache.views.get(key);
    if (hit) {
      cache.views.delete(key);
      cache.views.set(key, hit);
      return hit;
    }
    const big = tree.byNode.size > SMALL_GRAPH;
    const visible = visibleGraph(tree, keys, { trace: args.result.trace, subtotals: args.result.subtotals, frameChains: big });
    const keep = (layout) => {
      const view = { visible, layout };
      cache.views.set(key, view);
      if (cache.views.size > 48) cache.views.delete(cache.views.keys().next().value);
      if (cache.pieces.size > 4000) cache.pieces.clear();
      return view;
    };
    if (!big) return keep(layoutDataflow(visible));
    return layoutNested(visible, { cache: cache.pieces, pause }).then(keep);
  }

  // While the page is idle, lay out what one click on each closed box would show, so the click finds
  // its layout ready (a big graph only; a small one lays out in a few ms). A newer drawing stops it.
  async function prefetch(my) {
    if (!tree || tree.byNode.size <= SMALL_GRAPH || !shown) return;
    const closed = shown.nodes.filter((n) => n.key && !open.has(n.key)).slice(0, 16);
    for (const n of closed) {
      await idle();
      if (my !== seq) return;
      const next = new Set(open).add(n.key);
      if (n.foldKey) next.add(n.foldKey);
      const pause = async () => {
        await idle();
        return true;
      };
      const view = viewFor(next, pause);
      if (view instanceof Promise) await view;
    }
  }

  function render(next) {
    args = next;
    const graph = args.result?.graph;
    if (!graph || !graph.nodes?.length) {
      host.replaceChildren();
      tools.hidden = true;
      tree = null;
      shown = null;
      graphTools?.update({});
      meta.textContent = graph?.omitted ? `The graph is omitted: ${graph.omitted}.` : "The graph is drawn once the shapes fit.";
      return null;
    }
    const calls = graph.nodes.filter((n) => n.op === "module").length;
    const ops = graph.nodes.filter((n) => n.op === "function" || n.op === "method").length;
    meta.textContent = `${calls} module call${calls === 1 ? "" : "s"} and ${ops} function or method call${ops === 1 ? "" : "s"}; ${METHODS[graph.method] || graph.method}.`;
    host.dataset.method = graph.method;
    tree = treeOf(graph);
    open = openSet(tree, store ? store.get().ui.expand : null);
    firstAfterAnswer = performance.getEntriesByName("net:answer", "mark").length > 0;
    tools.hidden = allKeys(tree).length === 0;
    return draw();
  }

  let seq = 0;
  let firstAfterAnswer = false;
  function draw() {
    const my = ++seq;
    performance.mark("graph:draw-start");
    host.setAttribute("aria-busy", "true");
    const view = viewFor();
    if (view instanceof Promise) return view.then((v) => (my === seq ? paint(v) : null));
    return paint(view);
  }

  function paint({ visible, layout }) {
    const my = seq;
    const { result, builder, pickable, onDrill, onDrillInner, onOther = null } = args;
    const traceOf = new Map((result.trace || []).map((t) => [t.path, t]));
    const inner = (node) => {
      const entry = traceOf.get(node.path);
      return node.config && entry?.input_shapes?.length ? entry : null;
    };
    const total = tree.byNode.size;
    const boxes = visible.nodes.length;
    const label = boxes < total ? `Dataflow graph (${visible.method}): ${boxes} boxes showing all ${total} nodes, some inside collapsed blocks` : null;
    const canPick = (node) => node.op === "module" && Boolean(pickable(node.path) || inner(node));
    const drill = (node) => {
      const it = pickable(node.path);
      if (it) return onDrill(it);
      const entry = inner(node);
      if (!entry) return;
      const field = innerField(enclosing(builder, node.path), node.path);
      rememberInner(field, node.config);
      onDrillInner({ field, path: node.path, inputs: entry.input_shapes.map((s) => [...s]), type: node.type });
    };
    const common = {
      layout,
      label,
      // many boxes are drawn off the page in pieces (no long task), then shown at once
      chunked: boxes > 60,
      cancelled: () => my !== seq,
      onToggle: allKeys(tree).length ? toggle : null,
      canPick,
    };
    const drawn = graphTools
      ? drawDataflow(host, visible, {
          ...common,
          onPick: (node) => graphTools.select(node),
          pickLabel: "show its details beside the graph",
          // a node for the receptive field is chosen, and selected, with one click
          onOther: onOther
            ? (node) => {
                graphTools.select(node);
                onOther(node);
              }
            : null,
          onNode: (ng, n) => ng.on("dblclick", () => canPick(n.node) && drill(n.node)),
        })
      : drawDataflow(host, visible, { ...common, onOther, onPick: drill });
    const tell = (lay) => graphTools?.update({ graph: visible, lay, result, drill, canDrill: canPick, onOther, viewKey: viewKeyOf(args.result.graph), reset: resetView });
    if (drawn instanceof Promise) return drawn.then((lay) => (lay ? finish(visible, lay, tell) : null));
    return finish(visible, drawn, tell);
  }

  // The zoom's "same graph": the API's graph (its node ids), whatever is open in it, so opening or
  // closing a block keeps the view where it was (the toggled box is brought into sight by its focus).
  const viewKeys = new WeakMap();
  function viewKeyOf(graph) {
    let k = viewKeys.get(graph);
    if (!k) viewKeys.set(graph, (k = `${graph.method}:${graph.nodes.map((n) => n.id).join(",")}`));
    return k;
  }
  let resetView = false; // "expand all" / "collapse all": the new drawing opens as a fresh one

  function finish(visible, lay, tell = () => {}) {
    shown = visible;
    const total = tree.byNode.size;
    const boxes = visible.nodes.length;
    const hidden = visible.nodes.filter((n) => n.members).length;
    count.textContent = hidden ? `${boxes} boxes for ${total} nodes` : `all ${total} nodes`;
    host.dataset.boxes = String(boxes);
    host.dataset.nodes = String(total);
    host.dataset.expand = JSON.stringify(expansionValue(tree, open));
    tell(lay);
    resetView = false;
    host.setAttribute("aria-busy", "false");
    performance.mark("graph:drawn");
    performance.measure("graph:draw", "graph:draw-start", "graph:drawn");
    prefetch(seq);
    if (firstAfterAnswer) {
      // from the /api/shape answer to this network's graph on the page
      performance.measure("graph:first", "net:answer", "graph:drawn");
      firstAfterAnswer = false;
    }
    onDrawn();
    return lay;
  }

  function setOpen(next, focusKey = null) {
    open = next;
    if (store) {
      const value = expansionValue(tree, open);
      if (JSON.stringify(store.get().ui.expand ?? null) !== JSON.stringify(value)) store.update({ ui: { expand: value } }, "ui");
    }
    // keep the keyboard where it was: on the box or frame label that stands for what was toggled
    return Promise.resolve(draw()).then(() => {
      if (focusKey !== null) focusFor(focusKey)?.focus({ preventScroll: true });
    });
  }

  // The frame label or box that now stands for `key`: an opened container's frame label, a closed
  // one's box, and for an unfolded run its first block.
  function focusFor(key) {
    const ids = [key, `block:${key}`];
    if (key.startsWith("fold:")) ids.push(`block:${key.slice(5)}`, key.slice(5));
    const q = [`.df-collapse[data-key="${CSS.escape(key)}"]`, ...ids.map((id) => `g.df-node[data-id="${CSS.escape(id)}"]`)];
    for (const sel of q) {
      const el = host.querySelector(sel);
      if (el) return el;
    }
    return null;
  }

  function toggle(key, node = null, ev = null) {
    if (!tree) return;
    const next = new Set(open);
    if (open.has(key)) {
      next.delete(key);
      // closing a container closes what was open inside it, so it opens again one level at a time
      for (const k of [...next]) if (k.startsWith(`${key}.`) || k.startsWith(`fold:${key}.`)) next.delete(k);
    } else {
      next.add(key);
      // a container that is one run of equal blocks opens to its N blocks at once
      if (node?.foldKey) next.add(node.foldKey);
      // Shift opens everything inside as well
      if (ev?.shiftKey) for (const k of inside(key)) next.add(k);
    }
    setOpen(next, key);
  }

  // Every key below `key` (a container's path, or a fold's members), itself included.
  function inside(key) {
    const fold = tree.folds.get(key);
    const bases = fold ? fold.members.filter((m) => m.kind === "scope").map((m) => m.path) : [key];
    return allKeys(tree).filter((k) => k === key || bases.some((b) => k === b || k.startsWith(`${b}.`) || k.startsWith(`fold:${b}.`)));
  }

  // Opens every container and fold around node `id`, draws, and centres it.
  async function reveal(id) {
    if (!tree || !tree.byNode.has(id)) return false;
    const next = new Set(open);
    for (const k of revealKeys(tree, id)) next.add(k);
    await setOpen(next);
    const el = host.querySelector(`g.df-node[data-id="${CSS.escape(id)}"]`);
    for (const other of host.querySelectorAll("g.df-node.df-found")) other.classList.remove("df-found");
    if (!el) return false;
    el.classList.add("df-found");
    centre(id, el);
    return true;
  }

  function defaultCentre(id, el = host.querySelector(`g.df-node[data-id="${CSS.escape(id)}"]`)) {
    el?.scrollIntoView({ block: "center", inline: "center" });
    if (el?.getAttribute("tabindex") !== null) el?.focus({ preventScroll: true });
  }

  const whole = (keys) => {
    if (!tree) return;
    resetView = true;
    setOpen(keys);
  };
  tools.querySelector("#net-graph-expand-all").addEventListener("click", () => tree && whole(new Set(allKeys(tree))));
  tools.querySelector("#net-graph-collapse-all").addEventListener("click", () => tree && whole(new Set()));

  // ---------- find: a combobox with a list of suggestions ----------
  let hits = [];
  let active = -1;
  const closeList = () => {
    suggest.hidden = true;
    find.setAttribute("aria-expanded", "false");
    find.removeAttribute("aria-activedescendant");
    active = -1;
  };
  function showList() {
    hits = tree ? findNodes(tree, find.value) : [];
    suggest.replaceChildren(
      ...hits.map((n, i) => {
        const li = document.createElement("li");
        li.id = `net-graph-s${i}`;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.dataset.id = n.id;
        const p = document.createElement("span");
        p.className = "df-s-path";
        p.textContent = n.path || n.id;
        const t = document.createElement("span");
        t.className = "df-s-type";
        t.textContent = n.type || n.label;
        li.append(p, t);
        li.addEventListener("mousedown", (ev) => ev.preventDefault()); // keep the focus in the box
        li.addEventListener("click", () => choose(i));
        return li;
      }),
    );
    if (!hits.length && find.value.trim()) {
      const li = document.createElement("li");
      li.setAttribute("role", "option");
      li.setAttribute("aria-disabled", "true");
      li.textContent = "no node matches";
      suggest.append(li);
    }
    suggest.hidden = !find.value.trim();
    find.setAttribute("aria-expanded", String(!suggest.hidden));
    setActive(hits.length ? 0 : -1);
  }
  function setActive(i) {
    active = i;
    for (const [k, li] of [...suggest.children].entries()) li.setAttribute("aria-selected", String(k === i));
    if (i >= 0) {
      find.setAttribute("aria-activedescendant", `net-graph-s${i}`);
      suggest.children[i].scrollIntoView({ block: "nearest" });
    } else find.removeAttribute("aria-activedescendant");
  }
  function choose(i) {
    const n = hits[i];
    if (!n) return;
    find.value = n.path || n.id;
    closeList();
    return reveal(n.id);
  }
  find.addEventListener("input", showList);
  find.addEventListener("focus", () => find.value.trim() && showList());
  find.addEventListener("blur", closeList);
  find.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      if (suggest.hidden) showList();
      if (!hits.length) return;
      setActive(ev.key === "ArrowDown" ? (active + 1) % hits.length : (active - 1 + hits.length) % hits.length);
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      if (suggest.hidden) showList();
      choose(active >= 0 ? active : 0);
    } else if (ev.key === "Escape" && !suggest.hidden) {
      ev.preventDefault();
      closeList();
    }
  });

  return {
    render,
    reveal,
    toggle,
    // the API's node ids a drawn box stands for (itself for a node drawn as it is)
    membersOf: (id) => shown?.nodes.find((n) => n.id === id)?.members ?? [id],
    get visible() {
      return shown;
    },
    // a zooming view replaces how a found node is brought into sight: fn(id, element)
    set centreOn(fn) {
      centre = fn || defaultCentre;
    },
    get centreOn() {
      return (id) => centre(id, host.querySelector(`g.df-node[data-id="${CSS.escape(id)}"]`));
    },
  };
}
