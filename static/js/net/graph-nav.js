// Zoom and pan of the dataflow graph (d3-zoom, from the vendored d3): the wheel zooms at the pointer,
// a drag pans, two fingers pinch; with the graph focused, + and − zoom, the arrow keys pan and 0 fits
// it to the screen. The drawing sits in a viewport of its own height (#net-graph), so a graph of 400
// nodes no longer makes the page as long as itself. The transforms are geometry/graph-view.js's.
//
// `centreOn(host, point)` centres a drawing point (a node's layout position, {x, y} or {cx, cy}):
// find uses it. A redraw of the same graph (an edit elsewhere in the network, a block opened or
// closed: the caller's `key`) keeps the view.

import { d3 } from "../vendor.js";
import {
  ZOOM,
  boxVisible,
  centreTransform,
  clampK,
  fitTransform,
  initialTransform,
  layoutBounds,
  unionBox,
  viewportHeight,
} from "../geometry/graph-view.js";

const navs = new WeakMap(); // host -> {zoom, svg, g, lay, box, t, key}

// A graph's identity for "the same graph": its node ids and its size.
function keyOf(lay) {
  return `${lay.width}x${lay.height}:${lay.nodes.map((n) => n.id).join(",")}`;
}

function viewOf(host) {
  return { width: host.clientWidth || 640, height: host.clientHeight || 400 };
}

function apply(nav, t) {
  nav.svg.call(nav.zoom.transform, d3.zoomIdentity.translate(t.x, t.y).scale(t.k));
}

// What the drawing covers now: the layout, and anything drawn beside it (receptive-field counts).
export function drawnBox(host) {
  const nav = navs.get(host);
  if (!nav) return null;
  let bb = null;
  try {
    const b = nav.g.node().getBBox();
    bb = { x: b.x, y: b.y, w: b.width, h: b.height };
  } catch {
    bb = null; // not rendered (a hidden view): the layout's own box
  }
  return unionBox(nav.box, bb);
}

// `key`: what makes two drawings "the same graph" (default: the layout's node ids and size); `reset`:
// open this drawing as a new one all the same.
export function attachNav(host, lay, { key = keyOf(lay), reset = false } = {}) {
  const svg = d3.select(host).select("svg.df-drawing");
  if (svg.empty()) return null;
  const prev = navs.get(host);
  const box = layoutBounds(lay);
  // the viewport: the drawing's own height where it is short, at most most of the screen
  const most = Math.max(320, Math.round((window.innerHeight || 800) * 0.72));
  host.style.height = `${viewportHeight(box, most)}px`;
  svg.attr("width", null).attr("height", null).attr("viewBox", null).classed("df-zoomable", true);
  const g = svg.select(":scope > g");
  const nav = { svg, g, lay, box, key, t: null, zoom: null };
  nav.zoom = d3
    .zoom()
    .scaleExtent([ZOOM.MIN, ZOOM.MAX])
    .on("zoom", (ev) => {
      nav.t = { k: ev.transform.k, x: ev.transform.x, y: ev.transform.y };
      g.attr("transform", ev.transform.toString());
      host.dataset.zoom = ev.transform.k.toFixed(4);
    });
  // a double click opens a node (graph-panel.js), it does not zoom
  svg.call(nav.zoom).on("dblclick.zoom", null);
  navs.set(host, nav);
  const view = viewOf(host);
  // fresh: a graph not shown before (a redraw of the same one keeps its view)
  nav.fresh = reset || !(prev && prev.key === key && prev.t);
  apply(nav, nav.fresh ? initialTransform(box, view) : prev.t);
  wireKeys(host);
  return nav;
}

export function navState(host) {
  const nav = navs.get(host);
  return nav ? { ...nav.t } : null;
}

export function fit(host) {
  const nav = navs.get(host);
  if (!nav) return;
  apply(nav, fitTransform(drawnBox(host), viewOf(host)));
}

export function zoomBy(host, factor) {
  const nav = navs.get(host);
  if (!nav?.t) return;
  // about the viewport's centre, as the + and − buttons of a map do
  const view = viewOf(host);
  const k = clampK(nav.t.k * factor);
  const cx = (view.width / 2 - nav.t.x) / nav.t.k;
  const cy = (view.height / 2 - nav.t.y) / nav.t.k;
  apply(nav, centreTransform({ x: cx, y: cy }, k, view));
}

export function panBy(host, dx, dy) {
  const nav = navs.get(host);
  if (!nav?.t) return;
  apply(nav, { k: nav.t.k, x: nav.t.x + dx, y: nav.t.y + dy });
}

// Centre a drawing point (a node's layout position); `k`: the zoom to use (default: the current one,
// at least readable).
export function centreOn(host, point, k = null) {
  const nav = navs.get(host);
  if (!nav?.t || !point) return;
  const x = point.cx ?? point.x;
  const y = point.cy ?? point.y;
  apply(nav, centreTransform({ x, y }, clampK(k ?? Math.max(nav.t.k, ZOOM.READABLE)), viewOf(host)));
}

// Centre a node by its id (its box's middle); false where it is not drawn.
export function centreOnNode(host, id, k = null) {
  const n = navs.get(host)?.lay.nodes.find((x) => x.id === id);
  if (!n) return false;
  centreOn(host, { x: n.x + n.w / 2, y: n.y + n.h / 2 }, k);
  return true;
}

// A node (or an open block's collapse label) reached with Tab is brought into view.
function reveal(host, id, el = null) {
  const nav = navs.get(host);
  let n = id !== null ? nav?.lay.nodes.find((x) => x.id === id) : null;
  if (!n && el && nav) {
    try {
      const b = el.getBBox(); // in the drawing's units: the element sits inside the zoomed group
      n = { x: b.x, y: b.y, w: b.width, h: b.height };
    } catch {
      n = null;
    }
  }
  if (!n || !nav.t) return;
  if (!boxVisible(n, nav.t, viewOf(host))) centreOn(host, { x: n.x + n.w / 2, y: n.y + n.h / 2 });
}

function wireKeys(host) {
  if (host.dataset.navKeys) return;
  host.dataset.navKeys = "true";
  host.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const pan = ZOOM.PAN;
    const act = {
      "+": () => zoomBy(host, ZOOM.STEP),
      "=": () => zoomBy(host, ZOOM.STEP),
      "-": () => zoomBy(host, 1 / ZOOM.STEP),
      _: () => zoomBy(host, 1 / ZOOM.STEP),
      "−": () => zoomBy(host, 1 / ZOOM.STEP),
      0: () => fit(host),
      ArrowLeft: () => panBy(host, pan, 0),
      ArrowRight: () => panBy(host, -pan, 0),
      ArrowUp: () => panBy(host, 0, pan),
      ArrowDown: () => panBy(host, 0, -pan),
    }[ev.key];
    if (!act) return;
    ev.preventDefault();
    act();
  });
  host.addEventListener("focusin", (ev) => {
    const g = ev.target.closest?.("g.df-node");
    if (g) reveal(host, g.dataset.id);
    else if (ev.target.closest?.(".df-collapse")) reveal(host, null, ev.target);
  });
}
