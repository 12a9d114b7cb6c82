// The page's one state object: `request` is exactly the body of POST /api/run (for a network, a
// layer of type Sequential/Residual), `ui` holds the user's selections (view, pinned cell, chosen
// channel/slice, the network a drilled-into layer came from). Both round-trip through the URL so
// a copied address reopens the same view; nothing else in the page is a source of truth.

import { deepCopy } from "./util/format.js";
import { COST_IDS } from "./geometry/cost.js";

export const DEFAULT_REQUEST = Object.freeze({
  layer: { type: "Linear", in_features: 10, out_features: 5 },
  inputs: [{ shape: [5, 10] }],
  seed: 42,
});

export const DEFAULT_UI = Object.freeze({
  view: "layer", // "layer" or "network"
  // A layer opened from a network: {network: <the network's request>, field, path, inputs: [shape…]}.
  // The single-layer view then shows that child on the input shapes it receives there.
  drill: null,
  pinned: null, // {output: name|null, index: [...]}: the output element being explained
  channel: 0, // output channel shown by the sliding-window animation
  batch: 0, // sample of the batch shown by the animation
  depth: 0, // output depth slice for 3-D windows
  inChannel: null, // input channel a 2-D/3-D window draws (null: the first that feeds the output channel)
  speed: 1, // sliding-window playback speed (a factor of anim/timeline.js SPEEDS)
  fast: null, // a row per step: true/false as chosen, null: automatic (past 400 steps)
  // the network view's receptive field: {node: graph node id, index: [...], mode: "structural"|"effective"}
  rf: null,
  // The sliding window's colour scale: "shared" (one for input and output), "own" (one each), or
  // null: shared where the catalog says input and output share units (`same_units`).
  scale: null,
  lesson: null, // id of the lesson step being walked (GET /api/lesson), or null outside the lesson
  // "Your data" (ui/data-panel.js): {sample: an image id or null, kernel: {preset, grid} or null, cmap}
  data: null,
  // "Text in, attention out" (ui/text-panel.js): {text, tokenize: "whitespace"|"char"} or null (a default sentence)
  text: null,
  // the dataflow graph: nodes coloured by "params", "macs" or "memory" (geometry/cost.js), or "none";
  // the node whose details sit beside the graph (a graph node id) or null
  graphCost: "none",
  graphNode: null,
  // the dataflow graph's open containers and folds (geometry/collapse.js): null, the graph's default
  // (a small graph whole, a big one collapsed to its top-level blocks); "all"; or the list of keys
  expand: null,
});

export function initialState() {
  return { request: deepCopy(DEFAULT_REQUEST), ui: { ...DEFAULT_UI } };
}

// Minimal store: components read `get()`, write with `update()`, and learn of changes from
// `subscribe()`. The `reason` lets listeners tell user edits from programmatic loads.
export function createStore(initial) {
  let state = initial;
  const listeners = new Set();
  return {
    get: () => state,
    update(patch, reason = "edit") {
      const prev = state;
      state = {
        request: patch.request !== undefined ? patch.request : state.request,
        ui: patch.ui !== undefined ? { ...state.ui, ...patch.ui } : state.ui,
      };
      for (const fn of listeners) fn(state, prev, reason);
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

// Keys in a stable order so the same view always has the same address.
export function canonicalRequest(req) {
  const out = {};
  const { type, ...args } = req.layer || {};
  out.layer = { type, ...args };
  if (Array.isArray(req.inputs)) out.inputs = req.inputs;
  if (req.seed !== undefined && req.seed !== null) out.seed = req.seed;
  if (req.device) out.device = req.device;
  if (req.dtype && req.dtype !== "float32") out.dtype = req.dtype;
  if (req.train === false) out.train = false;
  return out;
}

function uiDelta(ui) {
  const delta = {};
  for (const [k, v] of Object.entries(ui || {})) {
    if (!(k in DEFAULT_UI)) continue;
    if (JSON.stringify(v) !== JSON.stringify(DEFAULT_UI[k])) delta[k] = v;
  }
  return delta;
}

export function encodeQuery(state) {
  const params = new URLSearchParams();
  params.set("config", JSON.stringify(canonicalRequest(state.request)));
  const delta = uiDelta(state.ui);
  if (Object.keys(delta).length) params.set("ui", JSON.stringify(delta));
  return `?${params.toString()}`;
}

// Returns {request, ui} from a query string, or {error} when `config` is present but unusable.
// Only the structure is checked here; the server judges the values and the form shows its verdict.
export function decodeQuery(search) {
  const params = new URLSearchParams(search);
  const raw = params.get("config");
  const result = { request: null, ui: { ...DEFAULT_UI }, error: null };
  if (raw !== null) {
    try {
      const req = JSON.parse(raw);
      if (!req || typeof req !== "object" || Array.isArray(req)) throw new Error("config must be a JSON object");
      if (!req.layer || typeof req.layer !== "object" || typeof req.layer.type !== "string")
        throw new Error('config needs "layer": {"type": ...}');
      if (req.inputs !== undefined && !Array.isArray(req.inputs)) throw new Error('"inputs" must be a list');
      result.request = canonicalRequest(req);
    } catch (e) {
      result.error = `The link's config could not be read: ${e.message}`;
    }
  }
  const rawUi = params.get("ui");
  if (rawUi !== null) {
    try {
      const ui = JSON.parse(rawUi);
      for (const k of Object.keys(DEFAULT_UI)) if (ui && k in ui) result.ui[k] = ui[k];
      if (!validDrill(result.ui.drill)) result.ui.drill = null;
      if (result.ui.lesson !== null && typeof result.ui.lesson !== "string") result.ui.lesson = null;
      if (!COST_IDS.includes(result.ui.graphCost)) result.ui.graphCost = "none";
      if (result.ui.graphNode !== null && typeof result.ui.graphNode !== "string") result.ui.graphNode = null;
      if (!validExpand(result.ui.expand)) result.ui.expand = null;
    } catch {
      // A damaged ui part only loses the selection, never the view itself.
    }
  }
  return result;
}

function validExpand(e) {
  return e === null || e === "all" || (Array.isArray(e) && e.every((k) => typeof k === "string"));
}

function validDrill(d) {
  if (d === null) return true;
  return (
    typeof d === "object" &&
    typeof d.field === "string" &&
    typeof d.network?.layer?.type === "string" &&
    (d.path === undefined || typeof d.path === "string") &&
    (d.inputs === undefined || Array.isArray(d.inputs))
  );
}

export function shareUrl(state, base = window.location) {
  return `${base.origin}${base.pathname}${encodeQuery(state)}`;
}
