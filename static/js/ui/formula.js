// The formula panel: each output dimension's formula from the API (symbolic = substituted =
// value), typeset with KaTeX, and whether the prediction matched the real output shape.

import { katex } from "../vendor.js";
import { texLabel, shapeStr } from "../util/format.js";
import { outputLabels } from "../geometry/dims.js";

// The stages of a formula, each typeset on its own: "L_out = ⌊…⌋ + 1", "= ⌊(8 + …) / 1⌋ + 1", "= 5".
// Lines break between stages (and, inside a stage, where KaTeX allows), and a stage too wide for
// the panel is fitted on its own (see fitAll) so the others keep their size.
function stages(f) {
  const parts = [];
  const add = (s) => {
    if (s === undefined || s === null || s === "") return;
    const str = String(s);
    if (parts[parts.length - 1] !== str) parts.push(str);
  };
  // A formula that is only a name ("N", "out_channels") adds little next to its value.
  if (f.symbolic !== f.dim) add(f.latex);
  add(f.latex_substituted);
  add(String(f.value));
  return parts.map((p, i) => (i === 0 ? `${texLabel(f.dim)} = ${p}` : `= ${p}`));
}

function plain(f) {
  const parts = [f.dim];
  for (const s of [f.symbolic, f.substituted, String(f.value)]) if (s && parts[parts.length - 1] !== String(s)) parts.push(String(s));
  return parts.join(" = ");
}

export function renderMath(el, source, fallback) {
  try {
    // Display style: fractions (⌊(L + 2p − d(k − 1) − 1) / s⌋) keep full-size numerals instead of
    // the 8–9 px script size KaTeX gives fractions in inline style.
    katex.render(`\\displaystyle ${source}`, el, { throwOnError: true, displayMode: false, strict: "ignore", output: "htmlAndMathml" });
  } catch {
    // LaTeX the vendored KaTeX cannot parse: the Unicode form from the API still reads well.
    el.textContent = fallback;
  }
}

// Smallest font a fitted formula may get: its fractions' numerals stay readable.
export const MIN_MATH_PX = 12;

// Read one TeX argument at `i`: a {braced group} or a single token. Returns [text, next index].
function texArg(src, i) {
  while (src[i] === " ") i++;
  if (src[i] === "{") {
    let depth = 0;
    for (let j = i; j < src.length; j++) {
      if (src[j] === "\\") j++;
      else if (src[j] === "{") depth++;
      else if (src[j] === "}" && --depth === 0) return [src.slice(i + 1, j), j + 1];
    }
    return [src.slice(i + 1), src.length];
  }
  const cmd = /^\\[a-zA-Z]+/.exec(src.slice(i));
  return cmd ? [cmd[0], i + cmd[0].length] : [src[i] ?? "", i + 1];
}

const compound = (t) => /[+\-=]|\\cdot|\\times|\s/.test(t.trim());

// The same formula written on one line so that it can wrap: KaTeX breaks lines only between
// top-level atoms, and a fraction or a \left…\right group is one atom. ⌊\frac{a}{b}⌋ becomes
// ⌊(a) / b⌋ with plain delimiters, which breaks after any + or − inside.
export function linearTex(src) {
  let out = "";
  for (let i = 0; i < src.length; ) {
    if (src.startsWith("\\frac", i) && !/[a-zA-Z]/.test(src[i + 5] ?? "")) {
      const [a, j] = texArg(src, i + 5);
      const [b, k] = texArg(src, j);
      const num = linearTex(a);
      const den = linearTex(b);
      out += `${compound(num) ? `(${num})` : `{${num}}`} / ${compound(den) ? `(${den})` : `{${den}}`}`;
      i = k;
    } else {
      out += src[i];
      i++;
    }
  }
  return out.replace(/\\(?:left|right)\s*\./g, "").replace(/\\(?:left|right)(?![a-zA-Z])\s*/g, "");
}

// Width of the widest piece that will not break, in px: a whole stage (kept on one line, so
// "⌊…⌋ + 1" never splits before its "1"), or once written to wrap, KaTeX's widest .base.
function widest(el) {
  if (el.classList.contains("stage") && el.dataset.fit !== "linear") return el.getBoundingClientRect().width;
  let w = 0;
  for (const b of el.querySelectorAll(".katex-html > .base")) w = Math.max(w, b.getBoundingClientRect().width);
  return w;
}

// The font-size (a percentage of the inherited size) that makes a piece `w` px wide at `px` px fit
// `avail` px, but no font below MIN_MATH_PX.
function shrunk(w, px, avail) {
  const scale = Math.max(MIN_MATH_PX / px, (avail / w) * 0.98);
  return `${Math.floor(scale * 1000) / 10}%`;
}

const katexPx = (el) => parseFloat(getComputedStyle(el.querySelector(".katex") || el).fontSize);

// Typeset every formula of `els` so none needs a sideways scroll: as it is if it fits `avail` px,
// else a little smaller, else written on one line to wrap (no fraction left to shrink), and only
// then smaller again (never below MIN_MATH_PX). All formulas are written, then all measured, in
// rounds: measuring one formula right after writing it would lay out the whole page (with its big
// sliding-window drawing) once per formula, one long task of many layouts.
export function fitAll(els, avail) {
  typeset(els);
  fitTypeset(els, avail);
}

function typeset(els) {
  for (const el of els) {
    el.style.fontSize = "";
    delete el.dataset.fit;
    renderMath(el, el.dataset.tex, el.dataset.plain);
  }
}

// Rounds 1-3 of fitAll over formulas already typeset as they are: run after the browser's next frame,
// the first measuring finds the layout clean (on a fresh page that layout alone takes tens of ms).
function fitTypeset(els, avail) {
  if (!(avail > 0)) return;
  // round 1: who does not fit as typeset (one layout for all)
  const over = els.map((el) => ({ el, w: widest(el), px: katexPx(el) })).filter((o) => o.w > avail);
  if (!over.length) return;
  for (const o of over) {
    if (o.w * (MIN_MATH_PX / o.px) <= avail * 0.98) {
      o.el.style.fontSize = shrunk(o.w, o.px, avail);
      o.try = "scaled";
    } else {
      renderMath(o.el, linearTex(o.el.dataset.tex), o.el.dataset.plain);
      o.el.dataset.fit = "linear";
      o.try = "linear";
    }
  }
  // round 2: did shrinking do it; does the wrapping form still need shrinking
  const again = [];
  for (const o of over) o.w2 = widest(o.el);
  for (const o of over) {
    if (o.try === "scaled" && o.w2 <= avail) o.el.dataset.fit = "scaled";
    else if (o.try === "scaled") {
      o.el.style.fontSize = "";
      renderMath(o.el, linearTex(o.el.dataset.tex), o.el.dataset.plain);
      o.el.dataset.fit = "linear";
      again.push(o);
    } else if (o.w2 > avail) o.el.style.fontSize = shrunk(o.w2, o.px, avail);
  }
  // round 3: a formula that shrinking could not fit, now written to wrap
  for (const o of again) o.w3 = widest(o.el);
  for (const o of again) if (o.w3 > avail) o.el.style.fontSize = shrunk(o.w3, o.px, avail);
}

// Refit every formula of the list to its current width (after a resize, or once KaTeX's fonts load).
function refit(list) {
  if (list.dataset.fitPending) return; // fitFormulas is on its way, after the frame
  const avail = list.clientWidth;
  if (!avail || Number(list.dataset.fitWidth) === avail) return;
  list.dataset.fitWidth = String(avail);
  // only the formulas shrunk or rewritten for the old width are typeset again
  const els = [...list.querySelectorAll(".math[data-tex]")];
  typeset(els.filter((el) => el.dataset.fit || el.style.fontSize));
  fitTypeset(els, avail);
}

const watched = new WeakSet();
function watch(list) {
  if (watched.has(list)) return;
  watched.add(list);
  new ResizeObserver(() => refit(list)).observe(list);
  document.fonts?.addEventListener?.("loadingdone", () => {
    delete list.dataset.fitWidth;
    refit(list);
  });
}

function mathSpan(source, fallback, { stage = false } = {}) {
  const math = document.createElement("span");
  math.className = stage ? "math stage" : "math";
  math.dataset.tex = source;
  math.dataset.plain = fallback;
  return math;
}

// Every output of a tuple (output, h_n, c_n; attention output and weights) with torch's dimension names.
function otherOutputs(list, run, entry, args) {
  const outs = run.outputs || [];
  if (outs.length < 2) return;
  const labels = outputLabels(run, entry, args);
  outs.forEach((t, i) => {
    const li = document.createElement("li");
    li.className = "formula output-shape";
    li.dataset.output = t.name;
    const name = document.createElement("code");
    name.textContent = t.name;
    const dims = (labels[i] || []).map((l, j) => `${texLabel(l)}{=}${t.shape[j]}`);
    const plainText = `${t.name}: (${(labels[i] || []).map((l, j) => `${l}=${t.shape[j]}`).join(", ")})`;
    // a long tuple may wrap after any comma
    const math = mathSpan(`(${dims.join(",\\allowbreak\\ ")})`, plainText);
    li.title = plainText;
    li.append(name, " ", math);
    list.append(li);
  });
}

// Fit the formulas renderFormulas(…, { defer: true }) typeset but left unfitted.
export function fitFormulas(root) {
  const list = root.querySelector("#formula-list");
  delete list.dataset.fitPending;
  const avail = list.clientWidth;
  list.dataset.fitWidth = String(avail);
  fitTypeset([...list.querySelectorAll(".math[data-tex]")], avail);
}

// `defer`: typeset now, fit later with fitFormulas (the caller does it after the next frame).
export function renderFormulas(root, run, { entry = null, args = {}, defer = false } = {}) {
  const list = root.querySelector("#formula-list");
  const check = root.querySelector("#shape-check");
  list.replaceChildren();
  for (const f of run.formula || []) {
    const li = document.createElement("li");
    li.className = "formula";
    li.dataset.dim = f.dim;
    li.dataset.value = String(f.value);
    const maths = stages(f).map((t) => mathSpan(t, plain(f), { stage: true }));
    const text = document.createElement("span");
    text.className = "sr-only plain";
    text.textContent = plain(f);
    maths.forEach((m, i) => li.append(...(i ? [" ", m] : [m])));
    li.append(text);
    li.title = plain(f);
    list.append(li);
  }
  otherOutputs(list, run, entry, args);
  // Typeset once the items are in the list, so each fits the width it really has.
  if (defer) {
    list.dataset.fitPending = "1";
    typeset([...list.querySelectorAll(".math[data-tex]")]);
  } else {
    delete list.dataset.fitPending;
    const avail = list.clientWidth;
    list.dataset.fitWidth = String(avail);
    fitAll([...list.querySelectorAll(".math[data-tex]")], avail);
  }
  watch(list);
  if (!(run.formula || []).length && (run.outputs || []).length < 2) {
    const li = document.createElement("li");
    li.className = "aside";
    li.textContent = "No per-dimension formula for this layer.";
    list.append(li);
  }
  const real = run.output?.shape;
  const predicted = Array.isArray(run.predicted_shape?.[0]) ? run.predicted_shape[0] : run.predicted_shape;
  check.className = `shape-check ${run.shape_check ? "ok" : "bad"}`;
  check.dataset.ok = String(Boolean(run.shape_check));
  check.textContent = run.shape_check
    ? `✓ matches torch: ${shapeStr(real)}` // one line in the narrow column, so every formula has room
    : `✗ predicted ${shapeStr(predicted)} but torch produced ${shapeStr(real)}`;
}
