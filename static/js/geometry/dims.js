// Names every dimension of every tensor a layer touches, and gives dimensions that meet (the
// input's C_in and the weight's C_in/groups, the input's H and the kernel's kH) a shared colour key.
// Pure: takes API responses and catalog entries, returns plain objects.

import { prod } from "../util/format.js";

// `entry.diagram` (linear | bilinear | blocks | generic) from the catalog wins; the name matching
// below is the fallback until every catalog entry carries it.
// The picture a layer gets is a fact of its catalog entry (GET /api/layers: `diagram`).
export function diagramKind(entry) {
  return entry?.diagram || "generic";
}

export function spatialLetters(n) {
  return n === 1 ? ["L"] : n === 2 ? ["H", "W"] : n === 3 ? ["D", "H", "W"] : Array.from({ length: n }, (_, i) => `S${i}`);
}

const SPATIAL = new Set(["L", "H", "W", "D", "T", "S"]);

// Same axis before and after the layer (L_in, L_out) → one colour; C_in and C_out are different
// axes (the layer mixes channels), so they keep separate colours.
export function keyOf(label) {
  const s = String(label);
  if (s === "N" || s === "B") return "batch";
  if (s.startsWith("*")) return "extra";
  const m = /^([A-Za-z]+?)(?:_(?:in|out|\d+))?$/.exec(s);
  if (m && SPATIAL.has(m[1])) return m[1];
  if (/^C_?in$|^in(_features)?$|^H_in$/.test(s)) return "in";
  if (/^C_?out$|^out(_features)?$|^H_out$/.test(s)) return "out";
  return s;
}

function dim(label, size, key = keyOf(label)) {
  return { label, size, key };
}

export function findParam(run, ...names) {
  return (run?.params || []).find((p) => names.includes(p.name)) || null;
}

// "(N, C_in, H_in, W_in) or (C_in, H_in, W_in)" → [["N","C_in","H_in","W_in"], ["C_in","H_in","W_in"]]
export function parseConvention(conv) {
  if (!conv || typeof conv !== "string") return [];
  const groups = conv.match(/\(([^()]*)\)/g) || [];
  return groups.map((g) =>
    g
      .slice(1, -1)
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean),
  );
}

// Fit a convention to a concrete shape: pick the alternative of matching rank, or expand "*".
export function labelsFromConvention(conv, rank) {
  const alts = parseConvention(conv);
  const exact = alts.find((a) => a.length === rank && !a.includes("*"));
  if (exact) return exact;
  for (const a of alts) {
    const star = a.indexOf("*");
    if (star < 0 || a.length - 1 > rank) continue;
    const extra = rank - (a.length - 1);
    const stars = extra === 1 ? ["*"] : Array.from({ length: extra }, (_, i) => `*${subDigit(i + 1)}`);
    return [...a.slice(0, star), ...stars, ...a.slice(star + 1)];
  }
  const same = alts.find((a) => a.length === rank);
  if (same) return same;
  return Array.from({ length: rank }, (_, i) => `d${i}`);
}

function subDigit(i) {
  return String(i).replace(/\d/g, (d) => "₀₁₂₃₄₅₆₇₈₉"[d]);
}

function leadLabels(n) {
  if (n === 0) return [];
  if (n === 1) return ["N"];
  return ["N", ...(n === 2 ? ["*"] : Array.from({ length: n - 1 }, (_, i) => `*${subDigit(i + 1)}`))];
}

// Linear / BasicLinear: y = x·Aᵀ + b over the last dimension.
export function linearModel(run) {
  const x = run.inputs[0].shape;
  const y = run.output.shape;
  const inF = x.length ? x[x.length - 1] : 1;
  const outF = y.length ? y[y.length - 1] : 1;
  const w = findParam(run, "weight", "weights");
  const b = findParam(run, "bias");
  // torch.nn.Linear (and the tutorial's BasicLinear) store A as (out, in) and compute x·Aᵀ. A
  // custom layer that keeps (in, out) and computes x·W is recognised by its shape; a square
  // weight is taken to follow torch's convention.
  let transposed = true;
  if (w && w.shape.length === 2 && inF !== outF && w.shape[0] === inF && w.shape[1] === outF) transposed = false;
  const lead = x.slice(0, -1);
  const leadL = leadLabels(lead.length);
  const rows = lead.length ? lead[lead.length - 1] : 1;
  const stack = lead.slice(0, -1);
  return {
    kind: "linear",
    inF,
    outF,
    rows,
    rowLabel: leadL.length ? leadL[leadL.length - 1] : null,
    stack: stack.map((s, i) => dim(leadL[i], s)),
    weight: w,
    bias: b,
    transposed,
    x: { name: run.inputs[0].name || "x", dims: [...lead.map((s, i) => dim(leadL[i], s)), dim("in", inF)] },
    A: w
      ? {
          name: w.name,
          // dims as drawn: (in, out), whatever the storage order
          dims: [dim("in", inF), dim("out", outF)],
          stored: transposed ? [dim("out", outF), dim("in", inF)] : [dim("in", inF), dim("out", outF)],
        }
      : null,
    b: b ? { name: b.name, dims: [dim("out", outF)] } : null,
    y: { name: "y", dims: [...lead.map((s, i) => dim(leadL[i], s)), dim("out", outF)] },
    batch: prod(lead),
  };
}

// Bilinear: y_k = x1ᵀ A_k x2 + b_k, A is (out, in1, in2).
export function bilinearModel(run) {
  const x1 = run.inputs[0].shape;
  const x2 = run.inputs[1]?.shape || x1;
  const y = run.output.shape;
  const in1 = x1[x1.length - 1];
  const in2 = x2[x2.length - 1];
  const out = y[y.length - 1];
  const lead = x1.slice(0, -1);
  const leadL = leadLabels(lead.length);
  return {
    kind: "bilinear",
    in1,
    in2,
    out,
    rows: lead.length ? lead[lead.length - 1] : 1,
    rowLabel: leadL.length ? leadL[leadL.length - 1] : null,
    stack: lead.slice(0, -1).map((s, i) => dim(leadL[i], s)),
    weight: findParam(run, "weight"),
    bias: findParam(run, "bias"),
    x1: { dims: [...lead.map((s, i) => dim(leadL[i], s)), dim("in1", in1, "in")] },
    x2: { dims: [...lead.map((s, i) => dim(leadL[i], s)), dim("in2", in2, "in2")] },
    A: { dims: [dim("out", out), dim("in1", in1, "in"), dim("in2", in2, "in2")] },
    b: { dims: [dim("out", out)] },
    y: { dims: [...lead.map((s, i) => dim(leadL[i], s)), dim("out", out)] },
  };
}

// Conv / pool / transposed conv: (N, C, *spatial) blocks and the weight (C_out, C_in/groups, k…).
export function blocksModel(run, entry) {
  const win = run.windows && !run.windows.omitted ? run.windows : null;
  const xShape = run.inputs[0].shape;
  const yShape = run.output.shape;
  // spatial rank and the kind of window are catalog facts (`spatial_rank`, `explain`)
  const sd = win?.spatial_dims ?? entry?.spatial_rank ?? Math.max(1, xShape.length - 2);
  const letters = spatialLetters(sd);
  const hasBatch = xShape.length === sd + 2;
  const isPool = (win?.kind ?? entry?.explain) === "pool";
  const isTransposed = (win?.kind ?? entry?.explain) === "transposed";
  const cIn = xShape[hasBatch ? 1 : 0];
  const cOut = yShape[hasBatch ? 1 : 0];
  const chanIn = isPool ? "C" : "C_in";
  const chanOut = isPool ? "C" : "C_out";
  const inDims = [
    ...(hasBatch ? [dim("N", xShape[0])] : []),
    dim(chanIn, cIn, isPool ? "in" : "in"),
    ...letters.map((l, i) => dim(`${l}_in`, xShape[xShape.length - sd + i], l)),
  ];
  const outDims = [
    ...(hasBatch ? [dim("N", yShape[0])] : []),
    dim(chanOut, cOut, isPool ? "in" : "out"),
    ...letters.map((l, i) => dim(`${l}_out`, yShape[yShape.length - sd + i], l)),
  ];
  const w = findParam(run, "weight");
  const b = findParam(run, "bias");
  const groups = win?.groups ?? 1;
  let weight = null;
  if (w && !isPool && w.shape.length === sd + 2) {
    const ks = w.shape.slice(2);
    // Transposed convolutions store (C_in, C_out/groups, k…): the first axis meets the input.
    const first = isTransposed ? dim("C_in", w.shape[0], "in") : dim("C_out", w.shape[0], "out");
    const second = isTransposed
      ? dim(groups > 1 ? "C_out/g" : "C_out", w.shape[1], "out")
      : dim(groups > 1 ? "C_in/g" : "C_in", w.shape[1], "in");
    weight = {
      name: w.name,
      shape: w.shape,
      dims: [first, second, ...ks.map((k, i) => dim(`k_${letters[i]}`, k, letters[i]))],
    };
  }
  const kernel = win?.kernel ?? (weight ? weight.shape.slice(2) : null);
  return {
    kind: "blocks",
    sd,
    letters,
    hasBatch,
    isPool,
    isTransposed,
    groups,
    cIn,
    cOut,
    kernel,
    input: { name: run.inputs[0].name || "input", shape: xShape, dims: inDims },
    output: { name: run.output.name || "output", shape: yShape, dims: outDims },
    weight,
    bias: b ? { name: b.name, shape: b.shape, dims: [dim(chanOut === "C" ? "C" : "C_out", b.shape[0], "out")] } : null,
  };
}

// torch's own names for the outputs and parameters of layers whose catalog entry has no
// `output_conventions` yet (the catalog gains that field; this table is the fallback until then).
// Each is a function of the layer's arguments, so batch_first and average_attn_weights are honoured.
const RNN_GATES = { LSTM: 4, GRU: 3, RNN: 1, LSTMCell: 4, GRUCell: 3, RNNCell: 1 };
// Parameter axes by name: [pattern, labels(args)].
const PARAM_CONVENTIONS = {
  rnn: [
    [/^weight_ih_l0(_reverse)?$/, (g) => [`${g}·hidden_size`, "H_in"]],
    [/^weight_ih_l\d+(_reverse)?$/, (g) => [`${g}·hidden_size`, "D·H_out"]],
    [/^weight_hh_l\d+(_reverse)?$/, (g) => [`${g}·hidden_size`, "H_out"]],
    [/^bias_(ih|hh)_l\d+(_reverse)?$/, (g) => [`${g}·hidden_size`]],
    [/^weight_hr_l\d+(_reverse)?$/, () => ["proj_size", "hidden_size"]],
    [/^weight_ih$/, (g) => [`${g}·hidden_size`, "H_in"]],
    [/^weight_hh$/, (g) => [`${g}·hidden_size`, "H_out"]],
    [/^bias_(ih|hh)$/, (g) => [`${g}·hidden_size`]],
  ],
  MultiheadAttention: [
    [/^in_proj_weight$/, () => ["3·E", "E"]],
    [/^in_proj_bias$/, () => ["3·E"]],
    [/^q_proj_weight$/, () => ["E", "E_q"]],
    [/^k_proj_weight$/, () => ["E", "E_k"]],
    [/^v_proj_weight$/, () => ["E", "E_v"]],
    [/^out_proj\.weight$/, () => ["E", "E"]],
    [/^out_proj\.bias$/, () => ["E"]],
    [/^bias_[kv]$/, () => ["1", "1", "E"]],
  ],
};

function paramConvention(type, name, args) {
  const gates = RNN_GATES[type];
  const table = gates ? PARAM_CONVENTIONS.rnn : PARAM_CONVENTIONS[type];
  if (!table) return null;
  for (const [re, fn] of table) if (re.test(name)) return fn(gates === 1 ? "1" : String(gates), args);
  return null;
}

// Labels of every output tensor: torch's conventions, else the formula (first output), else the input's labels.
export function outputLabels(run, entry, args = {}, inputs = null) {
  // every output's dimensions are named by the layer's own shape rule, in torch's vocabulary
  // (L, N, D·H_out; D·num_layers; N, L, S), as /api/run and /api/shape return them in `formulas`
  const formulas = run.formulas?.length ? run.formulas : run.formula ? [run.formula] : [];
  return (run.outputs?.length ? run.outputs : [run.output]).filter(Boolean).map((t, i) => {
    const shape = t.shape || [];
    const dims = (formulas[i] || []).map((f) => f.dim);
    if (dims.length === shape.length && shape.length) return dims;
    return matchLabels(shape, inputs?.[0]);
  });
}

// Everything else: input shapes from the catalog's conventions, output dims from torch's
// conventions or the formula, parameter axes by torch's names.
export function genericModel(run, entry, args = {}) {
  const type = run.type ?? entry?.type;
  const inputs = (run.inputs || []).map((t, i) => {
    const conv = entry?.inputs?.[i]?.convention;
    const labels = labelsFromConvention(conv, t.shape.length);
    return { name: t.name || entry?.inputs?.[i]?.name || `input${i}`, shape: t.shape, dims: t.shape.map((s, j) => dim(labels[j], s)) };
  });
  const labelSets = outputLabels(run, entry, args, inputs);
  const outputs = (run.outputs?.length ? run.outputs : [run.output]).filter(Boolean).map((t, i) => {
    const shape = t.shape || [];
    const labels = labelSets[i];
    return { name: t.name || `output${i}`, shape, dims: shape.map((s, j) => dim(labels[j], s)) };
  });
  const params = (run.params || []).map((p) => {
    const named = paramConvention(type, p.name, args);
    const labels = named && named.length === p.shape.length ? named : null;
    return {
      name: p.name,
      shape: p.shape,
      dims: p.shape.map((s, j) => dim(labels ? labels[j] : paramDimLabel(p.shape, j, s, inputs, outputs), s)),
    };
  });
  return { kind: "generic", inputs, outputs, params };
}

// An extra output (h_n, c_n…) has no formula; borrow input labels where rank and size agree.
function matchLabels(shape, input) {
  if (input && input.shape.length === shape.length)
    return shape.map((s, j) => (input.shape[j] === s ? input.dims[j].label : `d${j}`));
  return shape.map((_, j) => `d${j}`);
}

// A parameter axis is labelled like the input/output axis of the same size when exactly one
// matches (LayerNorm's weight (C) ↔ the input's last axis); otherwise by position.
function paramDimLabel(shape, j, size, inputs, outputs) {
  const candidates = new Map();
  for (const t of [...inputs, ...outputs])
    for (const d of t.dims) if (d.size === size && d.label !== "N" && !d.label.startsWith("d")) candidates.set(d.label, d);
  if (candidates.size === 1) return [...candidates.keys()][0];
  return shape.length === 1 ? "n" : `p${j}`;
}
