// Conv / pool / transposed-conv tensors as oblique boxes: input ∗ weight (+ bias) → output, every
// edge labelled and coloured by its dimension.

import { svgIn, dimLabel, polygon, arrow, appendLabel } from "./common.js";
import { blocksLayout, boxFaces } from "../geometry/blocks.js";
import { blocksModel } from "../geometry/dims.js";

const FILL = { input: "#dbeafe", weight: "#fde68a", window: "#fde68a", output: "#bbf7d0" };
const TITLE = { input: "input", weight: "weight", window: "kernel window", output: "output" };

// A label's box in drawing units (estimated while the drawing is not laid out, e.g. hidden).
function bboxOf(t) {
  const n = t.node();
  try {
    const r = n.getBBox();
    if (r.width) return r;
  } catch {
    // not rendered: estimate below
  }
  const w = n.textContent.length * 7;
  const x = Number(t.attr("x"));
  const anchor = t.attr("text-anchor");
  return { x: anchor === "end" ? x - w : anchor === "middle" ? x - w / 2 : x, y: Number(t.attr("y")) - 12, width: w, height: 16 };
}

function drawBox(g, b, colorOf, cardStep) {
  const s = b.spec;
  const box = g.append("g").attr("class", `block block-${b.role}`);
  // Discrete copies (batch samples, output-channel kernels) fan out behind the front box.
  for (let i = b.cards; i >= 1; i--) {
    const f = boxFaces(b.x + i * cardStep, b.y - i * cardStep, b.w, b.h, b.d);
    const cg = box.append("g").attr("class", "card");
    polygon(cg, f.top).attr("fill", FILL[b.role]);
    polygon(cg, f.side).attr("fill", FILL[b.role]);
    polygon(cg, f.front).attr("fill", FILL[b.role]);
  }
  const f = boxFaces(b.x, b.y, b.w, b.h, b.d);
  if (b.d > 0) {
    polygon(box, f.top).attr("class", "face top").attr("fill", FILL[b.role]);
    polygon(box, f.side).attr("class", "face side").attr("fill", FILL[b.role]);
  }
  polygon(box, f.front).attr("class", "face front").attr("fill", FILL[b.role]);
  const edge = (x1, y1, x2, y2, d) =>
    d && box.append("line").attr("class", "dim-edge").attr("x1", x1).attr("y1", y1).attr("x2", x2).attr("y2", y2).attr("stroke", colorOf(d.key));
  edge(b.x, b.y + b.h, b.x + b.w, b.y + b.h, s.cols);
  edge(b.x, b.y, b.x, b.y + b.h, s.rows);
  edge(b.x, b.y, b.x + f.dx, b.y + f.dy, s.depth);
  // Labels of a small box (a 3×3 kernel beside a 64×64 input) are longer than its edges: each is
  // lifted just clear of those below it — rows (rotated) < depth < "× cards" < title — instead of
  // being drawn on top of them.
  if (s.cols) dimLabel(box, s.cols, colorOf(s.cols.key), { x: b.x + b.w / 2, y: b.y + b.h + 16 });
  const placed = []; // boxes of the labels placed so far, in drawing units
  if (s.rows) {
    const px = b.x - 7;
    const t = dimLabel(box, s.rows, colorOf(s.rows.key), { x: px, y: b.y + b.h / 2, rotate: -90 });
    const r = bboxOf(t);
    // longer than the edge: end it at the bottom corner, so it rises above the box rather than
    // running into the label under the box
    const cy = r.width + 4 > b.h ? b.y + b.h - r.width / 2 : b.y + b.h / 2;
    t.attr("y", cy).attr("transform", `rotate(-90 ${px} ${cy})`);
    // rotated by −90° about (px, cy): along the text is up the page, across it is right
    const q = bboxOf(t);
    placed.push({ x0: px + (q.y - cy), x1: px + (q.y + q.height - cy), y0: cy - (q.x + q.width - px), y1: cy - (q.x - px) });
  }
  const topY = b.y + Math.min(f.dy, 0) - b.cards * cardStep;
  const lift = (t) => {
    for (let pass = 0; pass < 6; pass++) {
      const r = bboxOf(t);
      const hit = placed.find((o) => r.x < o.x1 && r.x + r.width > o.x0 && r.y < o.y1 && r.y + r.height > o.y0);
      if (!hit) break;
      t.attr("y", Number(t.attr("y")) - (r.y + r.height - hit.y0) - 1);
    }
    const r = bboxOf(t);
    placed.push({ x0: r.x, x1: r.x + r.width, y0: r.y, y1: r.y + r.height });
  };
  if (s.depth) lift(dimLabel(box, s.depth, colorOf(s.depth.key), { x: b.x + f.dx / 2 - 6, y: b.y + f.dy / 2 - 4, anchor: "end" }));
  if (s.cards) {
    const cx = b.x + b.w + f.dx + b.cards * cardStep;
    const t = dimLabel(box, s.cards, colorOf(s.cards.key), { x: cx, y: topY - 4, anchor: "end" });
    t.insert("tspan", ":first-child").text("× ");
    lift(t);
  }
  const title = box.append("text").attr("class", "block-title").attr("x", b.x).attr("y", topY - (s.cards ? 20 : 6));
  title.append("tspan").attr("class", "name").text(TITLE[b.role]);
  if (s.note) {
    const t = title.append("tspan").attr("class", "aside").attr("fill", colorOf(s.note.key));
    t.append("tspan").text("  ×");
    appendLabel(t, s.note.label);
    t.append("tspan").text(`=${s.note.size}`);
  }
  lift(title);
  return { box, topY };
}

export function drawBlocks(container, run, { colorOf, width, layerType, entry }) {
  const model = blocksModel(run, entry);
  const lay = blocksLayout(model, { width, hasBias: Boolean(model.bias && model.weight) });
  const w = run.windows && !run.windows.omitted ? run.windows : null;
  const captions = captionLines(model, w, run, lay.vertical, width - 28);
  const captionW = Math.max(0, ...captions.map((c) => c.length * 6.6 + 28));
  const svg = svgIn(container, Math.max(lay.width, Math.min(captionW, width)), lay.height + captions.length * 16, `${layerType}: input ${run.inputs[0].shape.join("×")} → output ${run.output.shape.join("×")}`);
  const g = svg.append("g");
  for (const b of lay.boxes) drawBox(g, b, colorOf, lay.cardStep);
  lay.ops.forEach((op, i) => {
    const first = i === 0 && lay.boxes[0].role === "input" && lay.boxes.length === 3;
    if (first) {
      const sym = model.isPool ? (/Max/.test(layerType) ? "max" : /LP/.test(layerType) ? "‖·‖ₚ" : "avg") : model.isTransposed ? "∗ᵀ" : "∗";
      g.append("text").attr("class", /^[a-z]/.test(sym) ? "op word" : "op").attr("x", op.x).attr("y", op.y).attr("text-anchor", "middle").attr("dominant-baseline", "central").text(sym);
    } else if (op.vertical) arrow(g, op.x, op.y - 12, op.x, op.y + 12);
    else arrow(g, op.x - 20, op.y, op.x + 20, op.y);
  });
  if (lay.biasAt && model.bias) {
    const bt = g.append("text").attr("class", "bias-label").attr("x", lay.biasAt.x).attr("y", lay.biasAt.y).attr("text-anchor", "middle");
    bt.append("tspan").text("+ bias ");
    const d = model.bias.dims[0];
    const span = bt.append("tspan").style("fill", colorOf(d.key)).attr("font-weight", 600);
    appendLabel(span, d.label);
    span.append("tspan").text(`=${d.size}`);
    bt.append("tspan").text(", one per output channel");
  }
  captions.forEach((line, i) => g.append("text").attr("class", "diagram-caption").attr("x", 14).attr("y", lay.footY + i * 16).text(line));
  // Lifted labels may rise past the top, and a title may reach past the right edge: make room.
  const bb = g.node().getBBox?.();
  if (bb && bb.width) {
    const dy = bb.y < 2 ? Math.ceil(2 - bb.y) : 0;
    if (dy) g.attr("transform", `translate(0, ${dy})`);
    const [, , vw, vh] = svg.attr("viewBox").split(" ").map(Number);
    const w = Math.max(vw, Math.ceil(bb.x + bb.width + 4));
    if (dy || w > vw) svg.attr("viewBox", `0 0 ${w} ${vh + dy}`).attr("width", w).attr("height", vh + dy);
  }
  return { highlight() {}, svg: svg.node() };
}

// The hyper-parameters that decide the sliding, as torch reports them in `windows`.
function captionLines(model, w, run, narrow, maxWidth = Infinity) {
  if (!w) return run.windows?.omitted ? [`sliding windows omitted: ${run.windows.omitted}`] : [];
  const parts = [];
  // ceil_mode's overhang past the input (frame_map −2) is not padding: torch reads nothing there
  const over = w.padding.map((_, d) => w.frame_map?.[d]?.filter((v) => v === -2).length ?? 0);
  const pad = w.padding.map((p, d) => {
    if (!Array.isArray(p)) return p;
    const after = p[1] - over[d];
    return p[0] === after ? p[0] : `${p[0]}/${after}`;
  });
  parts.push(`kernel ${w.kernel.join("×")}`);
  if (model.isTransposed) {
    // The windows describe the equivalent direct convolution: stride becomes inserted zeros.
    parts.push(`stride ${w.stride.join("×")} → ${w.stride.map((s) => s - 1).join("×")} zero(s) between inputs`);
    parts.push(`frame padding ${pad.join("×")}`);
  } else {
    parts.push(`stride ${w.stride.join("×")}`, `padding ${pad.join("×")}`);
    if (over.some((n) => n > 0)) parts.push(`ceil_mode: last window ${over.join("×")} past the input, excluded`);
  }
  if (w.dilation) parts.push(`dilation ${w.dilation.join("×")}`);
  if (w.groups && w.groups > 1) parts.push(`groups ${w.groups}: each output channel reads ${model.cIn / w.groups} of ${model.cIn} input channels`);
  if (narrow) {
    const lines = [];
    for (let i = 0; i < parts.length; i += 2) lines.push(parts.slice(i, i + 2).join(" · "));
    return lines;
  }
  // One line while it fits the drawing (12 px text, under 7 px a character), else as many parts
  // per line as fit: a caption cut at the edge ("each output channe…") says less than two lines.
  const fits = (text) => 14 + text.length * 7 <= maxWidth;
  const lines = [];
  for (const part of parts) {
    const last = lines.length ? `${lines[lines.length - 1]} · ${part}` : null;
    if (last && fits(last)) lines[lines.length - 1] = last;
    else lines.push(part);
  }
  return lines;
}
