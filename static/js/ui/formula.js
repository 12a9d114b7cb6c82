// The formula panel: each output dimension's formula from the API (symbolic = substituted =
// value), typeset with KaTeX, and whether the prediction matched the real output shape.

import { katex } from "../vendor.js";
import { texLabel, shapeStr } from "../util/format.js";
import { outputLabels } from "../geometry/dims.js";

function tex(f) {
  const parts = [texLabel(f.dim)];
  const add = (s) => {
    if (s === undefined || s === null || s === "") return;
    const str = String(s);
    if (parts[parts.length - 1] !== str) parts.push(str);
  };
  // A formula that is only a name ("N", "out_channels") adds little next to its value.
  if (f.symbolic !== f.dim) add(f.latex);
  add(f.latex_substituted);
  add(String(f.value));
  return parts.join(" = ");
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
    const math = document.createElement("span");
    math.className = "math";
    const dims = (labels[i] || []).map((l, j) => `${texLabel(l)}{=}${t.shape[j]}`);
    const plainText = `${t.name}: (${(labels[i] || []).map((l, j) => `${l}=${t.shape[j]}`).join(", ")})`;
    renderMath(math, `(${dims.join(",\\ ")})`, plainText);
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
    const math = document.createElement("span");
    math.className = "math";
    renderMath(math, tex(f), plain(f));
    const text = document.createElement("span");
    text.className = "sr-only plain";
    text.textContent = plain(f);
    li.append(math, text);
    li.title = plain(f);
    list.append(li);
  }
  otherOutputs(list, run, entry, args);
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
