// The formula panel: each output dimension's formula from the API (symbolic = substituted =
// value), typeset with KaTeX, and whether the prediction matched the real output shape.

import { katex } from "../vendor.js";
import { texLabel, shapeStr } from "../util/format.js";
import { outputLabels } from "../geometry/dims.js";

// The stages of a formula, each typeset on its own: "L_out = ⌊…⌋ + 1", "= ⌊(8 + …) / 1⌋ + 1", "= 5".
// Lines break between stages (and, inside a stage, where KaTeX allows), and a stage too wide for
// the panel is fitted on its own (see fitMath) so the others keep their size.
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

// Shrink `el` so its widest piece fits `avail` px, but no font below MIN_MATH_PX. True if it fits.
function shrink(el, avail) {
  const k = el.querySelector(".katex");
  const w = widest(el);
  if (!k || w <= avail) return true;
  const px = parseFloat(getComputedStyle(k).fontSize);
  const scale = Math.max(MIN_MATH_PX / px, (avail / w) * 0.98);
  el.style.fontSize = `${Math.floor(scale * 1000) / 10}%`;
  return widest(el) <= avail;
}

// Typeset `source` into `el` so it never needs a sideways scroll: as it is if it fits `avail` px,
// else a little smaller, else written on one line to wrap (no fraction left to shrink), and only
// then smaller again (never below MIN_MATH_PX).
export function fitMath(el, source, fallback, avail) {
  el.style.fontSize = "";
  delete el.dataset.fit;
  renderMath(el, source, fallback);
  if (!(avail > 0) || widest(el) <= avail) return;
  const px = parseFloat(getComputedStyle(el.querySelector(".katex")).fontSize);
  if (widest(el) * (MIN_MATH_PX / px) <= avail * 0.98 && shrink(el, avail)) {
    el.dataset.fit = "scaled";
    return;
  }
  el.style.fontSize = "";
  renderMath(el, linearTex(source), fallback);
  el.dataset.fit = "linear";
  if (widest(el) > avail) shrink(el, avail);
}

// Refit every formula of the list to its current width (after a resize, or once KaTeX's fonts load).
function refit(list) {
  const avail = list.clientWidth;
  if (!avail || Number(list.dataset.fitWidth) === avail) return;
  list.dataset.fitWidth = String(avail);
  for (const el of list.querySelectorAll(".math[data-tex]")) fitMath(el, el.dataset.tex, el.dataset.plain, avail);
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

export function renderFormulas(root, run, { entry = null, args = {} } = {}) {
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
  const avail = list.clientWidth;
  list.dataset.fitWidth = String(avail);
  for (const el of list.querySelectorAll(".math[data-tex]")) fitMath(el, el.dataset.tex, el.dataset.plain, avail);
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
    ? `✓ matches torch: output shape ${shapeStr(real)}`
    : `✗ predicted ${shapeStr(predicted)} but torch produced ${shapeStr(real)}`;
}
