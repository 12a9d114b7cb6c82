// The network builder's model: pure functions over a request whose layer is a network config
// (a container of the catalog: a chain of `layers`, or a residual `body` with a `shortcut`).
// No DOM, no d3. Children are addressed two ways, as the API does:
//   field — where the child's config sits in the request: "layer.layers[1].body[0]"
//   path  — the torch module path the trace uses:        "1.body.0"  (a child's "name" replaces its index)

import { deepCopy, minus } from "../util/format.js";

// What the builder needs to know about containers comes from the catalog (GET /api/layers): whether a
// type holds other layers (`container`), in which parameters and under which module path (`slots`),
// and whether it chains them (`chain`: Sequential) or adds a main path to a skip path (Residual).
const facts = new Map();

export function setCatalog(catalog) {
  facts.clear();
  for (const entry of catalog?.layers || []) facts.set(entry.type, entry);
}

function fact(type) {
  return facts.get(type) || null;
}

export function isContainer(config) {
  return Boolean(config) && Boolean(fact(config.type)?.container);
}

// A container that chains its layers (its outputs are its last layer's).
export function isChain(config) {
  const f = fact(config?.type);
  return Boolean(f?.container && f.chain);
}

// A container that adds a main path (a list of layers) and a skip path (one layer, or the identity).
export function isSum(config) {
  const f = fact(config?.type);
  return Boolean(f?.container && !f.chain && !f.dataflow);
}

// A dataflow graph (Graph): named nodes, each a layer, an operation of a fixed table or a learnable tensor.
export function isDataflow(config) {
  return Boolean(fact(config?.type)?.dataflow);
}

// A layer the server does not run (the catalog's `opaque`: a model's own layer sent from Python):
// drawn and counted from its recorded shapes, its numbers not computed, never drilled into.
export function isOpaque(config) {
  return Boolean(fact(config?.type)?.opaque);
}

export const OPAQUE_NOTE = "opaque: not computed";

// "MyBlock · opaque: not computed": what an opaque layer stands for, and that it is not computed.
export function opaqueText(config) {
  return `${config.type_name || config.type} · ${OPAQUE_NOTE}`;
}

// A graph node in a few words, read from its config: "fc Linear", "act relu", "cls parameter (1, 4)".
function graphNodeText(node) {
  if (node.module && isOpaque(node.module)) return `${node.name} ${node.module.type_name} (${OPAQUE_NOTE})`;
  if (node.module) return `${node.name} ${node.module.type}`;
  if (node.op) return `${node.name} ${node.op}`;
  if (node.parameter) return `${node.name} parameter ${fmtArg(node.parameter.shape ?? [])}`;
  return String(node.name);
}

// "x → fc Linear, act relu, head Linear → (head, act)": a graph's inputs, its nodes in the order they
// run and what it returns.
export function graphSummary(config) {
  const outs = config.outputs ?? config.nodes?.at(-1)?.name;
  const outText = Array.isArray(outs) ? (outs.length === 1 ? outs[0] : `(${outs.join(", ")})`) : String(outs ?? "");
  return `${(config.inputs ?? ["x"]).join(", ")} → ${(config.nodes || []).map(graphNodeText).join(", ")} → ${outText}`;
}

// The parameter of a container that holds a list of layers, and the one that holds a single layer.
function listSlot(type) {
  return (fact(type)?.params || []).find((p) => p.type === "layers")?.name ?? null;
}

function layerSlot(type) {
  return (fact(type)?.params || []).find((p) => p.type === "layer")?.name ?? null;
}

// The module path under which a container's slot puts its children ("" = directly under it).
function slotPrefix(type, param) {
  const slots = fact(type)?.slots || {};
  return param in slots ? slots[param] : param;
}

// The parameter that holds a sum container's skip path (Residual's shortcut), and every parameter
// that holds nested configs (the form does not edit those).
export function skipSlotOf(config) {
  return isSum(config) ? layerSlot(config.type) : null;
}

export function slotsOf(config) {
  return isContainer(config) ? Object.keys(fact(config.type)?.slots || {}) : [];
}

// (a dataflow Graph is neither: its nodes are not a list the builder can wrap or add to)
function containerType(chain) {
  for (const [type, f] of facts) if (f.container && !f.dataflow && Boolean(f.chain) === chain) return type;
  return null;
}

// ---------- fields ----------

// A module built inside another module's own constructor (the tutorial block's fc1, an encoder layer's
// linear1) has no config in the request. Its field is "<enclosing field>::<module path>" and its config
// is the one the server read back from the module (graph nodes' `config`), remembered here when the
// graph is drawn. Edits of such a module cannot go back into its parent's constructor: setField and
// withChild leave the network as it is, and the drill-down runs it inside the network as built.
const innerConfigs = new Map();

export function innerField(enclosingField, path) {
  return `${enclosingField}::${path}`;
}

export function isInnerField(field) {
  return String(field || "").includes("::");
}

export function rememberInner(field, config) {
  innerConfigs.set(field, deepCopy(config));
}

// "layer.layers[1].body[0]" → ["layer", "layers", 1, "body", 0]
export function parseField(field) {
  const out = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]/g;
  let m;
  while ((m = re.exec(String(field || "")))) out.push(m[1] !== undefined ? m[1] : Number(m[2]));
  return out;
}

export function formatField(tokens) {
  let s = "";
  for (const t of tokens) s += typeof t === "number" ? `[${t}]` : s ? `.${t}` : t;
  return s;
}

// Value at a field of the request (fields start with "layer").
export function getField(request, field) {
  if (isInnerField(field)) return innerConfigs.has(field) ? deepCopy(innerConfigs.get(field)) : undefined;
  let v = request;
  for (const t of parseField(field)) {
    if (v === null || v === undefined) return undefined;
    v = v[t];
  }
  return v;
}

// A copy of the request with the value at `field` replaced (undefined deletes an object key).
export function setField(request, field, value) {
  if (isInnerField(field)) return deepCopy(request);
  const tokens = parseField(field);
  const copy = deepCopy(request);
  let v = copy;
  for (let i = 0; i < tokens.length - 1; i++) v = v[tokens[i]];
  const last = tokens[tokens.length - 1];
  if (value === undefined && !Array.isArray(v)) delete v[last];
  else v[last] = deepCopy(value);
  return copy;
}

// "layer.layers[2]" → {list: "layer.layers", index: 2}; null for a field that is not a list item.
export function splitItem(field) {
  const tokens = parseField(field);
  const last = tokens[tokens.length - 1];
  if (typeof last !== "number") return null;
  return { list: formatField(tokens.slice(0, -1)), index: last };
}

// Insert a layer config into the list at `list` (a field such as "layer.layers").
export function insert(request, list, index, config) {
  const arr = getField(request, list);
  if (!Array.isArray(arr)) throw new Error(`${list} is not a list of layers`);
  const next = arr.slice();
  next.splice(Math.max(0, Math.min(index, next.length)), 0, config);
  return setField(request, list, next);
}

export function remove(request, field) {
  const at = splitItem(field);
  if (!at) {
    // A shortcut goes back to the identity.
    if (/\.shortcut$/.test(field)) return setField(request, field, null);
    return request;
  }
  const next = getField(request, at.list).slice();
  next.splice(at.index, 1);
  return setField(request, at.list, next);
}

// Move a child within its list by `delta` places; returns {request, field} (its new field).
export function move(request, field, delta) {
  const at = splitItem(field);
  if (!at) return { request, field };
  const arr = getField(request, at.list);
  const to = at.index + delta;
  if (to < 0 || to >= arr.length) return { request, field };
  const next = arr.slice();
  const [it] = next.splice(at.index, 1);
  next.splice(to, 0, it);
  return { request: setField(request, at.list, next), field: `${at.list}[${to}]` };
}

// Wrap a child (or the root layer) in a residual block with an identity shortcut. The child's
// name moves to the block, so the module path of what surrounds it stays the same.
export function wrapResidual(request, field) {
  const child = deepCopy(getField(request, field));
  const { name, ...inner } = child;
  const type = containerType(false);
  const block = { type, ...(name !== undefined ? { name } : {}), [listSlot(type)]: [inner], [layerSlot(type)]: null };
  return { request: setField(request, field, block), field };
}

// Replace a residual block (or a nested Sequential) by its layers, in place.
export function unwrap(request, field) {
  const block = getField(request, field);
  const layers = isContainer(block) ? block[listSlot(block.type)] : null;
  if (!Array.isArray(layers)) return { request, field };
  const at = splitItem(field);
  if (!at) {
    // The root: a one-layer body becomes the root itself, more become a Sequential.
    const chain = containerType(true);
    const layer = layers.length === 1 ? layers[0] : { type: chain, [listSlot(chain)]: layers };
    return { request: { ...deepCopy(request), layer: deepCopy(layer) }, field: "layer" };
  }
  const arr = getField(request, at.list).slice();
  arr.splice(at.index, 1, ...deepCopy(layers));
  return { request: setField(request, at.list, arr), field: `${at.list}[${at.index}]` };
}

// Where "Add" puts a new layer: after the selected child in its list, else at the end of the
// root list. A root that is a single layer (or a residual block) becomes a Sequential first.
export function insertionPoint(request, selected) {
  const sel = selected ? splitItem(selected) : null;
  if (sel && Array.isArray(getField(request, sel.list))) return { request, list: sel.list, index: sel.index + 1 };
  const root = request.layer;
  const chain = containerType(true);
  const slot = listSlot(chain);
  if (isChain(root) && Array.isArray(root[listSlot(root.type)])) {
    return { request, list: `layer.${listSlot(root.type)}`, index: root[listSlot(root.type)].length };
  }
  const wrapped = { ...deepCopy(request), layer: { type: chain, [slot]: [deepCopy(root)] } };
  return { request: wrapped, list: `layer.${slot}`, index: 1, wrappedRoot: true };
}

// The torch module path of the child at `field` (the root's path is "").
export function pathOf(request, field) {
  const tokens = parseField(field);
  const parts = [];
  let v = request;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const next = v?.[t];
    if (i === 0) {
      v = next;
      continue;
    }
    if (typeof t === "string" && isContainer(v)) {
      // a container's parameter: its children sit under the slot's module path ("" for a chain's list)
      const prefix = slotPrefix(v.type, t);
      if (prefix) parts.push(prefix);
    } else if (typeof t === "number") {
      parts.push(next?.name !== undefined && next?.name !== null ? String(next.name) : String(t));
    }
    v = next;
  }
  return parts.join(".");
}

// ---------- the request a drill-down opens ----------

// The single-layer request for the child at `field`, on the input shapes it receives.
export function childRequest(request, field, inputShapes) {
  const { name: _name, ...layer } = deepCopy(getField(request, field));
  const out = { layer, inputs: inputShapes.map((shape) => ({ shape: [...shape] })) };
  for (const k of ["seed", "device", "dtype", "train"]) if (request[k] !== undefined) out[k] = request[k];
  return out;
}

// The network with the child at `field` replaced by `layer`, keeping the child's name.
export function withChild(request, field, layer) {
  if (isInnerField(field)) return deepCopy(request);
  const old = getField(request, field) || {};
  const { name: _drop, ...rest } = layer;
  const next = old.name !== undefined ? { ...rest, name: old.name } : rest;
  return setField(request, field, next);
}

// ---------- smart defaults for a new layer ----------

// The arguments that must agree with the incoming shape (in_features from its last dimension,
// in_channels / num_features from its channel dimension) are catalog facts: `fit_to_input`, each a
// parameter and the dimension it follows (negative: counted from the end).
function dimOf(shape, dim) {
  const i = dim < 0 ? shape.length + dim : dim;
  return i >= 0 && i < shape.length ? shape[i] : undefined;
}

export function fitToInput(config, entry, shape) {
  if (!Array.isArray(shape) || !shape.length || !entry) return config;
  const out = { ...config };
  for (const { param, dim, as } of entry.fit_to_input || []) {
    const size = dimOf(shape, dim);
    if (size === undefined) continue;
    out[param] = as === "list" ? [size] : size;
    if (param === "num_channels" && typeof out.num_groups === "number" && size % out.num_groups) out.num_groups = 1;
  }
  return out;
}

// The other end (`fit_to_output`): out_features / out_channels from the shape a layer must produce
// (a residual block's projection shortcut must give the body's output shape).
export function fitToOutput(config, entry, shape) {
  if (!Array.isArray(shape) || !shape.length || !entry) return config;
  const out = { ...config };
  for (const { param, dim } of entry.fit_to_output || []) {
    const size = dimOf(shape, dim);
    if (size !== undefined) out[param] = size;
  }
  return out;
}

// The layer types that fit in a chain: one required tensor input, not a loss.
export function addableTypes(catalog) {
  return catalog.layers.filter((l) => l.family !== "loss" && (l.inputs || []).filter((i) => !i.optional).length === 1);
}

// ---------- graph: config + trace → items with shapes and status ----------

function join(...parts) {
  return parts.filter((p) => p !== "" && p !== null && p !== undefined).join(".");
}

function childName(config, index) {
  return config?.name !== undefined && config?.name !== null ? String(config.name) : String(index);
}

function buildItem(config, field, path) {
  if (isChain(config) && Array.isArray(config[listSlot(config.type)])) {
    const slot = listSlot(config.type);
    const prefix = join(path, slotPrefix(config.type, slot));
    return {
      kind: "seq",
      type: config.type,
      config,
      field,
      path,
      items: config[slot].map((c, i) => buildItem(c, `${field}.${slot}[${i}]`, join(prefix, childName(c, i)))),
    };
  }
  if (isSum(config) && Array.isArray(config[listSlot(config.type)])) {
    const slot = listSlot(config.type);
    const skip = layerSlot(config.type);
    const bodyPath = join(path, slotPrefix(config.type, slot));
    return {
      kind: "res",
      type: config.type,
      config,
      field,
      path,
      body: {
        kind: "seq",
        type: containerType(true),
        field: `${field}.${slot}`,
        path: bodyPath,
        items: config[slot].map((c, j) => buildItem(c, `${field}.${slot}[${j}]`, join(bodyPath, childName(c, j)))),
      },
      shortcut: skip && config[skip] ? buildItem(config[skip], `${field}.${skip}`, join(path, slotPrefix(config.type, skip))) : null,
    };
  }
  return { kind: "layer", type: config?.type ?? "?", config, field, path };
}

// Every item of the graph, depth first in execution order (a container before its children).
export function walk(item, out = []) {
  if (!item) return out;
  out.push(item);
  if (item.kind === "seq") for (const it of item.items) walk(it, out);
  if (item.kind === "res") {
    walk(item.body, out);
    if (item.shortcut) walk(item.shortcut, out);
  }
  return out;
}

export function inputShapesOf(request) {
  return (request.inputs || []).map((inp) => (Array.isArray(inp.shape) ? inp.shape : shapeOfData(inp.data)));
}

function shapeOfData(v) {
  const s = [];
  while (Array.isArray(v)) {
    s.push(v.length);
    v = v[0];
  }
  return s;
}

// The item an error belongs to: by module path for a shape mismatch, else by the longest field
// prefix ("layer.layers[1].in_features" → the child at "layer.layers[1]").
export function errorItem(graph, error) {
  if (!error) return null;
  const items = walk(graph);
  if (error.path !== undefined && error.path !== null) {
    const hit = items.find((it) => it.path === error.path && it.kind !== "seq") || items.find((it) => it.path === error.path);
    if (hit) return hit;
  }
  const f = String(error.field || "");
  let best = null;
  for (const it of items) {
    if (it.kind === "seq" && it !== graph) continue; // a residual body list stands for its block
    if (f === it.field || f.startsWith(`${it.field}.`) || f.startsWith(`${it.field}[`)) if (!best || it.field.length > best.field.length) best = it;
  }
  return best;
}

// Builds the item tree and annotates every item with
//   inShape / outShape  — what flows in and out (null where unknown),
//   params, macs        — from its trace entry,
//   status              — "ok", "bad" (shapes do not fit here), "invalid" (a bad argument),
//                          "unreached" (after the failure), "partial" (contains the failure).
// `result` is the /api/run or /api/shape response; `error` the ApiError body of a 422.
export function buildGraph(request, { result = null, error = null } = {}) {
  const root = buildItem(request.layer, "layer", "");
  const trace = result?.trace || error?.trace || [];
  const byPath = new Map(trace.map((t) => [t.path, t]));
  const bad = errorItem(root, error);
  const built = Boolean(result) || Boolean(error?.trace);
  const badAncestors = new Set();
  if (bad) for (const it of walk(root)) if (bad !== it && walk(it).includes(bad)) badAncestors.add(it);

  let failed = false; // execution order: everything after the failure is unreached
  function status(it) {
    if (it === bad) return error?.path !== undefined && error?.path !== null ? "bad" : "invalid";
    if (badAncestors.has(it)) return "partial";
    if (!built) return "unbuilt";
    if (failed) return "unreached";
    return "ok";
  }

  function annotate(it, inShape) {
    const entry = it.path === "" ? null : byPath.get(it.path);
    it.trace = entry || null;
    it.inShape = entry?.input_shapes?.[0] ?? inShape ?? null;
    it.inShapes = entry?.input_shapes ?? (it.inShape ? [it.inShape] : null);
    it.status = status(it);
    if (it.kind === "seq") {
      let cur = it.inShape;
      for (const c of it.items) cur = annotate(c, cur);
      it.outShape = entry?.output_shape ?? (it.status === "ok" || it.status === "partial" ? cur : null);
    } else if (it.kind === "res") {
      it.bodyOut = annotate(it.body, it.inShape);
      it.skipOut = it.shortcut ? annotate(it.shortcut, it.inShape) : it.inShape;
      it.outShape = entry?.output_shape ?? null;
      if (it === bad) failed = true;
    } else {
      it.outShape = entry?.output_shape ?? null;
      if (it === bad) failed = true;
    }
    if (it.status === "unreached" || it.status === "unbuilt") it.outShape = entry?.output_shape ?? null;
    it.params = entry?.param_count ?? null;
    it.macs = entry?.macs ?? null;
    return it.outShape;
  }

  const inputs = inputShapesOf(request);
  annotate(root, inputs[0] ?? null);
  // The root is not in the trace: its numbers are the response's own.
  if (result) {
    root.outShape = result.output_shape ?? result.output?.shape ?? root.outShape;
    root.params = result.totals?.param_count ?? result.param_count ?? null;
    root.macs = result.totals?.macs ?? null;
    if (root.kind === "layer") root.status = "ok";
  }
  return { root, bad, inputShape: inputs[0] ?? null, outputShape: result ? root.outShape : null, error };
}

// ---------- labels ----------

const SHORT = {
  in_features: "in",
  out_features: "out",
  input_features: "in",
  output_features: "out",
  in_channels: "in",
  out_channels: "out",
  kernel_size: "k",
  stride: "s",
  padding: "p",
  dilation: "d",
  num_features: "C",
  normalized_shape: "shape",
  output_size: "size",
  negative_slope: "slope",
  start_dim: "start",
  end_dim: "end",
};

function fmtArg(v) {
  if (v === null) return "None";
  if (Array.isArray(v)) return `(${v.map(fmtArg).join(", ")})`;
  if (typeof v === "object") return "{…}";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return minus(String(v)); // "end=−1": one minus sign wherever numbers show
  return String(v);
}

// "in=6, out=16, k=5" — a node's one-line summary of its arguments.
export function argSummary(config, maxChars = 40) {
  if (!config) return "";
  let s = isDataflow(config) ? graphSummary(config) : isOpaque(config) ? opaqueText(config) : "";
  if (s) return s.length > maxChars ? `${s.slice(0, Math.max(1, maxChars - 1))}…` : s;
  const parts = [];
  const slots = slotsOf(config);
  for (const [k, v] of Object.entries(config)) {
    if (k === "type" || k === "name" || k === "layers" || k === "body" || k === "shortcut" || slots.includes(k)) continue;
    parts.push(`${SHORT[k] || k}=${fmtArg(v)}`);
  }
  s = parts.join(", ");
  if (s.length > maxChars) s = `${s.slice(0, Math.max(1, maxChars - 1))}…`;
  return s;
}

// Bytes as "240.6 KB" (powers of 1000, as torchinfo prints MB).
export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  if (n < 1000) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let x = n;
  let u = -1;
  while (x >= 1000 && u < units.length - 1) {
    x /= 1000;
    u++;
  }
  return `${x.toFixed(x < 10 ? 2 : 1)} ${units[u]}`;
}

// (moved to util/format.js, where geometry can use it too)
export { fmtCount } from "../util/format.js";
