// Cost colouring of the dataflow graph: which figure of the API's trace a node shows (parameters,
// mult-adds or activation memory), and the colour scale that maps it to a fill. Pure: no DOM.
//
// The figures are the trace's own (`param_count`, `macs`, `activation_bytes`, as torch counted them
// for each module call); a node of the graph is joined to its trace entry by module path, the n-th
// call of a path to the n-th entry with that path (a module called twice has two of each). Function
// and method nodes (⊕, relu via F, view) have no entry: they are "not counted", as in the totals.
//
// The scale is logarithmic: one network's layers span five or six orders of magnitude (a ResNet-50
// BatchNorm has 128 parameters, its last Linear 2,049,000), so a linear scale would paint all but the
// few biggest layers the same pale colour. Zero (a ReLU's parameters) gets a colour of its own.

export const COST_METRICS = [
  { id: "none", label: "none" },
  { id: "params", label: "parameters", field: "param_count", unit: "count" },
  { id: "macs", label: "mult-adds", field: "macs", unit: "count" },
  { id: "memory", label: "activation memory", field: "activation_bytes", unit: "bytes" },
];

export const COST_IDS = COST_METRICS.map((m) => m.id);

export function costMetric(id) {
  return COST_METRICS.find((m) => m.id === id) || COST_METRICS[0];
}

// A sequential ramp, light to dark (ColorBrewer YlOrRd's 5 classes): ordered in lightness, so it
// reads in greyscale and for the common colour-vision deficiencies.
export const RAMP = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"];
export const ZERO_FILL = "#f1f5f9"; // counted, and nothing: a ReLU's parameters
export const NONE_FILL = "#ffffff"; // not counted: no trace entry, or torch has no count (macs: null)

// node id -> its trace entry: every node with a module path (a module call; a collapsed block drawn
// as one box, whose entry is the container's).
export function traceByNode(graph, trace) {
  const calls = new Map();
  for (const t of trace || []) {
    if (!calls.has(t.path)) calls.set(t.path, []);
    calls.get(t.path).push(t);
  }
  const seen = new Map();
  const out = new Map();
  for (const n of graph?.nodes || []) {
    if (typeof n.path !== "string" || n.path === "") continue;
    const k = seen.get(n.path) || 0;
    seen.set(n.path, k + 1);
    const list = calls.get(n.path);
    const entry = list?.[Math.min(k, list.length - 1)];
    if (entry) out.set(n.id, entry);
  }
  return out;
}

const number = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

// A figure of one trace entry. A container's (a block drawn collapsed) is its own where torch counts
// it (parameters), else the sum over the layers inside it, as the totals sum them (each leaf call
// once); null where none of them has one.
export function entryCost(entry, field, trace) {
  if (!entry) return null;
  if (entry.leaf !== false || field === "param_count") return number(entry[field]);
  const prefix = `${entry.path}.`;
  const inside = (trace || []).filter((t) => t.leaf !== false && t.path.startsWith(prefix)).map((t) => number(t[field]));
  const known = inside.filter((v) => v !== null);
  return known.length ? known.reduce((a, b) => a + b, 0) : number(entry[field]);
}

// The figure a collapsed block or fold of the view (geometry/collapse.js) carries: the server's
// subtotals summed over what it holds ({op: "block" | "fold", params, macs, memory}).
const BLOCK_FACT = { params: "params", macs: "macs", memory: "memory" };

// One drawn node's figure: a collapsed block's or fold's own totals (a fold of N blocks counts all N,
// not its first), any other node its trace entry's.
export function nodeCost(node, entry, metricId, trace) {
  const metric = costMetric(metricId);
  if (!metric.field) return null;
  if (node && (node.op === "block" || node.op === "fold")) return number(node[BLOCK_FACT[metric.id]]);
  return entryCost(entry, metric.field, trace);
}

// node id -> the metric's value (a number, or null: not counted).
export function nodeCosts(graph, trace, metricId) {
  const metric = costMetric(metricId);
  const out = new Map();
  if (!metric.field) return out;
  const entries = traceByNode(graph, trace);
  for (const n of graph?.nodes || []) out.set(n.id, nodeCost(n, entries.get(n.id), metricId, trace));
  return out;
}

function hex(c) {
  return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
}

function toHex(rgb) {
  return `#${rgb.map((v) => Math.round(v).toString(16).padStart(2, "0")).join("")}`;
}

// The ramp's colour at t in [0, 1], linear in sRGB between neighbouring stops.
export function rampColour(t) {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const a = hex(RAMP[i]);
  const b = hex(RAMP[i + 1]);
  const f = x - i;
  return toHex(a.map((v, j) => v + (b[j] - v) * f));
}

// Relative luminance (WCAG 2.x) of "#rrggbb".
export function luminance(c) {
  const [r, g, b] = hex(c).map((v) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

// Black text on light fills, white on dark ones: whichever contrasts more. Pure black and white: one
// of them always reaches 4.58:1 (WCAG AA for small text), which no softer pair does on the ramp's
// middle (#f03b20 has 3.9:1 against both slate and white).
export function textOn(fill) {
  const l = luminance(fill);
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#000000" : "#ffffff";
}

// The scale over the positive values: {min, max, zero, none, t(v), colour(v)}. One positive value
// (or all equal) sits in the ramp's middle: nothing is more or less costly than the rest.
export function costScale(values) {
  const vals = [...values];
  const pos = vals.filter((v) => typeof v === "number" && v > 0);
  const min = pos.length ? Math.min(...pos) : null;
  const max = pos.length ? Math.max(...pos) : null;
  const span = min !== null && max > min ? Math.log(max / min) : 0;
  const t = (v) => (span > 0 ? Math.log(v / min) / span : 0.5);
  const colour = (v) => {
    if (typeof v !== "number") return NONE_FILL;
    if (v <= 0) return ZERO_FILL;
    return rampColour(t(v));
  };
  return {
    min,
    max,
    zero: vals.some((v) => v === 0),
    none: vals.some((v) => v === null || v === undefined),
    t,
    colour,
  };
}

// Legend ticks: the smallest and largest value exactly (the trace's own numbers) and powers of ten
// between them, each with its place along the bar (0…1) and colour.
export function legendTicks(scale, most = 5) {
  if (scale.min === null) return [];
  const ticks = [{ value: scale.min, at: 0, colour: scale.colour(scale.min) }];
  if (scale.max > scale.min) {
    const inner = [];
    for (let e = Math.ceil(Math.log10(scale.min)); 10 ** e < scale.max; e++) {
      const v = 10 ** e;
      if (v > scale.min) inner.push(v);
    }
    // keep at most `most - 2` of them, evenly spread, clear of the ends (a fifth of the bar: the end
    // labels are drawn from there inwards and would overlap one close by)
    const keep = Math.max(0, most - 2);
    const step = Math.max(1, Math.ceil(inner.length / Math.max(1, keep)));
    for (let i = 0; i < inner.length && keep > 0; i += step) {
      const at = scale.t(inner[i]);
      if (at > 0.2 && at < 0.8) ticks.push({ value: inner[i], at, colour: scale.colour(inner[i]) });
    }
    ticks.push({ value: scale.max, at: 1, colour: scale.colour(scale.max) });
  }
  return ticks;
}

// The ramp as CSS gradient stops ("#ffffb2 0%, …").
export function rampStops() {
  return RAMP.map((c, i) => `${c} ${((i / (RAMP.length - 1)) * 100).toFixed(0)}%`).join(", ");
}
