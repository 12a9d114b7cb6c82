// The arithmetic behind one pinned output element, from POST /api/explain: the terms with real
// numbers, the sum (or the winning element, or the divisor), and torch's own value beside it.

import { fmt, fmtFactor, fmtFull, toNumber } from "../util/format.js";

const MAX_ROWS = 600;
const EXPANDED_TERMS = 6;

function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined) el.textContent = text;
  return el;
}

function idx(a) {
  return a ? `[${a.join(", ")}]` : "pad";
}

// Where a term reads: an input element, padding, a zero the stride inserted, or past the input.
function termIdx(t) {
  if (t.input_index) return idx(t.input_index);
  if (t.outside) return "outside";
  if (t.inserted) return "inserted 0";
  return "pad";
}

// "0.52·(−0.1) + 0.33·0.2 + … (27 terms) + 0.01 = 0.1234"
function expansion(ex) {
  // the terms torch leaves out (count_include_pad=False, past the input with ceil_mode) are not listed
  const terms = (ex.terms || []).filter((t) => !t.excluded);
  const shown = terms.slice(0, EXPANDED_TERMS);
  const more = terms.length - shown.length;
  const val = fmt(ex.manual ?? ex.value, 6);
  switch (ex.operation) {
    case "max": {
      const xs = shown.map((t) => fmt(t.input));
      return `max(${xs.join(", ")}${more > 0 ? `, … ${more} more` : ""}) = ${val}`;
    }
    case "avg": {
      // "(−1.1 + 0.5 + (−0.75)) / 4": a negative addend is bracketed, except the first
      const xs = shown.map((t, i) => (i === 0 ? fmt(t.input) : fmtFactor(t.input)));
      return `(${xs.join(" + ")}${more > 0 ? ` + … ${more} more` : ""}) / ${ex.divisor} = ${val}`;
    }
    case "lp": {
      const xs = shown.map((t) => `${fmtFactor(t.input)}ᵖ`);
      return `(${xs.join(" + ")}${more > 0 ? ` + … ${more} more` : ""})^(1/p) = ${val}`;
    }
    case "bilinear": {
      const xs = shown.map((t) => `${fmtFactor(t.input)}·${fmtFactor(t.weight)}·${fmtFactor(t.input2)}`);
      return `${xs.join(" + ")}${more > 0 ? ` + … ${more} more` : ""}${ex.bias ? ` + ${fmtFactor(ex.bias.value)}` : ""} = ${val}`;
    }
    default: {
      const xs = shown.map((t) => `${fmtFactor(t.weight)}·${fmtFactor(t.input)}`);
      return `${xs.join(" + ")}${more > 0 ? ` + … ${more} more` : ""}${ex.bias ? ` + ${fmtFactor(ex.bias.value)}` : ""} = ${val}`;
    }
  }
}

// What a padding term contributes, in the operation's own terms (the API's pad_value).
function padTitle(ex, t) {
  if (t.outside) return "outside the input (ceil_mode): torch leaves it out";
  if (t.inserted) return "a zero the stride inserts between the inputs: contributes 0";
  if (t.excluded) return "a padding position: left out of the sum and the divisor";
  if (ex.operation === "max") return "a padding position: max pooling reads −∞ here";
  if (ex.operation === "avg") return "a padding position: adds 0, counted in the divisor";
  return "a padding position: contributes 0";
}

function padCell(ex, t) {
  if (!t.padding) return null;
  if (t.outside) return "outside, excluded";
  if (t.excluded) return "excluded";
  return ex.operation === "max" ? "−∞" : "0";
}

function termsTable(ex) {
  const terms = ex.terms || [];
  const op = ex.operation;
  const table = h("table", "terms");
  const head = h("tr");
  const cols = ["#"];
  if (op === "bilinear") cols.push("x₁ index", "x₁", "A index", "A", "x₂ index", "x₂", "product");
  else if (op === "max" || op === "avg" || op === "lp") cols.push("input index", "x");
  else cols.push("input index", "x", "weight index", "w", "w·x");
  for (const c of cols) head.append(h("th", null, c));
  const thead = h("thead");
  thead.append(head);
  table.append(thead);
  const body = h("tbody");
  terms.slice(0, MAX_ROWS).forEach((t, i) => {
    const tr = h("tr", t.outside ? "padding outside" : t.inserted ? "padding inserted" : t.padding ? "padding" : i === ex.winner ? "winner" : "");
    tr.dataset.term = String(i);
    const cells = [String(i)];
    if (op === "bilinear") cells.push(termIdx(t), fmt(t.input), idx(t.weight_index), fmt(t.weight), idx(t.input2_index), fmt(t.input2), fmt(t.product));
    else if (op === "max" || op === "avg" || op === "lp") cells.push(termIdx(t), padCell(ex, t) ?? fmt(t.input));
    else cells.push(termIdx(t), padCell(ex, t) ?? fmt(t.input), idx(t.weight_index), fmt(t.weight), fmt(t.product));
    for (const c of cells) tr.append(h("td", null, c));
    if (i === ex.winner) tr.title = "the element max pooling chose";
    if (t.padding) tr.title = padTitle(ex, t);
    else if (t.pad_copy) tr.title = "a padding position holding a copy of this input element";
    body.append(tr);
  });
  table.append(body);
  const wrap = h("div", "terms-wrap");
  wrap.tabIndex = 0;
  wrap.setAttribute("role", "region");
  wrap.setAttribute("aria-label", "All terms");
  wrap.append(table);
  if (terms.length > MAX_ROWS) wrap.append(h("p", "aside", `${terms.length - MAX_ROWS} more terms not listed.`));
  return wrap;
}

function manualDtype(ex) {
  return ex.manual_dtype ?? "float64";
}

export function renderExplain(root, ex, { outputName, onUnpin }) {
  const body = root.querySelector("#explain-body");
  body.replaceChildren();
  root.hidden = false;
  const head = h("div", "explain-head");
  const title = h("h3", null, `${outputName}[${ex.index.join(", ")}]`);
  const unpin = h("button", "link", "Unpin");
  unpin.type = "button";
  unpin.addEventListener("click", onUnpin);
  head.append(title, unpin);
  body.append(head);
  if (ex.text) body.append(h("p", "explain-text", ex.text));
  // torch's value (the headline) and the hand computation differ in dtype, and so in the last digits
  const line = h("p", "expansion");
  line.append(h("span", "k", `by hand (${manualDtype(ex)}): `), expansion(ex));
  // It scrolls sideways when long: keyboard users need to reach it.
  line.tabIndex = 0;
  body.append(line);
  const notes = [];
  if (ex.operation === "max" && ex.winner !== undefined && ex.winner !== null) {
    const t = ex.terms[ex.winner];
    notes.push(`Max pooling chose term ${ex.winner}: input${idx(t?.input_index)} = ${fmt(t?.input, 6)}.`);
  }
  if ((ex.operation === "avg" || ex.operation === "lp") && ex.divisor !== undefined)
    notes.push(`Divisor ${ex.divisor}.`);
  // The server says what padding reads for this operation (−∞, 0 counted, excluded, copies).
  if (ex.padding_note) notes.push(ex.padding_note);
  for (const n of notes) body.append(h("p", "aside", n));
  const match = h("p", `match ${ex.match ? "ok" : "bad"}`);
  match.dataset.manual = String(toNumber(ex.manual));
  match.dataset.torch = String(toNumber(ex.value));
  match.dataset.match = String(Boolean(ex.match));
  match.append(
    h("span", "k", `by hand (${manualDtype(ex)}) `), h("code", "manual", fmtFull(ex.manual)),
    h("span", "k", `  torch (${ex.dtype ?? "float32"}) `), h("code", "torch", fmtFull(ex.value)),
    h("span", "k", `  |Δ| ${fmt(ex.abs_error, 2)}  `),
    h("strong", null, ex.match ? "✓ match" : "✗ differ"),
  );
  body.append(match);
  if (ex.terms?.length) {
    const d = h("details", "terms-details");
    d.open = ex.terms.length <= 32;
    d.append(h("summary", null, `All ${ex.terms.length} terms${ex.bias ? ` + bias${idx(ex.bias.index)} = ${fmt(ex.bias.value, 6)}` : ""}`));
    d.append(termsTable(ex));
    body.append(d);
  }
}

export function renderExplainError(root, message) {
  const body = root.querySelector("#explain-body");
  root.hidden = false;
  body.replaceChildren(h("p", "error", message));
}

// `explainable`: whether this layer type has an element-wise explanation at all (the catalog says).
export function clearExplain(root, { explainable = true } = {}) {
  root.hidden = !explainable;
  root.querySelector("#explain-body").replaceChildren(
    explainable ? h("p", "aside", "Click an output cell (in the diagram or the sliding-window grid) to see its arithmetic.") : "",
  );
}

// Hovering a term row highlights its cell in the sliding window (and back: see highlightRow).
export function wireTermHover(root, onTerm) {
  root.addEventListener("mouseover", (e) => {
    const tr = e.target.closest?.("tr[data-term]");
    onTerm(tr ? Number(tr.dataset.term) : null);
  });
  root.addEventListener("mouseleave", () => onTerm(null));
}

export function highlightRow(root, t) {
  for (const tr of root.querySelectorAll("tr.hl")) tr.classList.remove("hl");
  if (t === null || t === undefined) return;
  const tr = root.querySelector(`tr[data-term="${t}"]`);
  if (tr) {
    tr.classList.add("hl");
    const wrap = tr.closest(".terms-wrap");
    if (wrap && !tr.closest("details:not([open])")) {
      const top = tr.offsetTop - wrap.scrollTop;
      if (top < 0 || top > wrap.clientHeight - tr.offsetHeight) wrap.scrollTop = tr.offsetTop - wrap.clientHeight / 2;
    }
  }
}
