// "Text in, attention out": a short text into an input of indices (the catalog's `kind: "index"`,
// an Embedding's, also as a network's first layer), its vocabulary (token → id, the API's `texts`),
// and every attention call's weights (the API's `attention`) as a token × token heatmap, per head
// or averaged, with the tokens as labels on both axes (positions where the input was not a text).
//
// The text lives in state.ui.text ({text, tokenize}) and travels in the link; `apply` puts it in
// the request the API gets (inputs[0] = {"text", "tokenize"}); the store keeps the (1, L) shape.

import { api, isAbort, ApiError } from "../api.js";
import { h } from "../util/dom.js";
import { tokenize, attentionMatrix, heatmapLayout } from "../geometry/attention.js";
import { drawHeatmap } from "../draw/attention.js";

const DEFAULT_TEXT = { text: "the cat sat on the mat", tokenize: "whitespace" };

// The module a network's input meets first (through Sequential layers).
function firstLeaf(layer) {
  let cfg = layer;
  while (cfg && Array.isArray(cfg.layers) && cfg.layers.length) cfg = cfg.layers[0];
  return cfg;
}

// Does the request's first input take indices (so a text can stand for it)? From the catalog's facts.
export function takesText(request, byType) {
  const leaf = firstLeaf(request?.layer);
  const entry = leaf && byType.get(leaf.type);
  return entry?.inputs?.[0]?.kind === "index";
}

// A request holding {"text"} inputs (a preset's) as the form edits it: the text into ui.text and a
// (1, L) int64 shape in its place.
export function splitText(request) {
  const x0 = request?.inputs?.[0];
  if (!x0 || typeof x0.text !== "string") return { request, text: null };
  const how = x0.tokenize || "char";
  const n = Math.max(1, tokenize(x0.text, how).length);
  return { request: { ...request, inputs: [{ shape: [1, n], dtype: "int64" }, ...request.inputs.slice(1)] }, text: { text: x0.text, tokenize: how } };
}

// Repeated tokens whose rows are equal (to float32 rounding): there is no positional information.
function sameRowsForSameTokens(m, tokens) {
  let repeated = false;
  for (let i = 0; i < tokens.length; i++)
    for (let k = i + 1; k < tokens.length; k++) {
      if (tokens[i] !== tokens[k]) continue;
      repeated = true;
      if (m[i].some((v, j) => Math.abs(v - m[k][j]) > 1e-6)) return false;
    }
  return repeated;
}

// The weights as a table (a screen reader's and a copier's view of the heatmap).
function numbersTable(m, rows, cols, what) {
  const table = h(
    "table",
    { class: "attn-table" },
    h("caption", {}, `weights (${what}), query token per row`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "query \\ key"), ...cols.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, ...m.map((r, i) => h("tr", {}, h("th", { scope: "row" }, rows[i]), ...r.map((v) => h("td", {}, v.toFixed(4)))))),
  );
  return h("details", { class: "numbers" }, h("summary", {}, "Numbers"), table);
}

export function createTextPanel(root, { byType, getUi, setUi, onChange, runsItself = false }) {
  let head = "mean";
  let last = null; // {run, request}
  let ctl = null;
  const text = () => getUi().text || DEFAULT_TEXT;
  const id = root.id;
  const area = h("textarea", { id: `${id}-text`, rows: 2, spellcheck: false, maxLength: 4096 });
  const how = h("select", { id: `${id}-tok` }, h("option", { value: "whitespace" }, "words (whitespace)"), h("option", { value: "char" }, "characters"));
  const error = h("p", { id: `${id}-error`, class: "field-error", role: "alert", hidden: true });
  area.setAttribute("aria-describedby", `${id}-error`);
  const textRow = h(
    "div",
    { class: "data-row text-row" },
    h("label", { class: "data-label", for: area.id }, "text"),
    area,
    h("label", { class: "tok-choice" }, "tokens: ", how), // one piece: a phone wraps them together
    error,
  );
  const vocab = h("div", { class: "vocab", role: "group", "aria-label": "Vocabulary: token → id" });
  const tokensRow = h("p", { class: "tokens aside" });
  const headSel = h("select", { id: `${id}-head` });
  const maps = h("div", { class: "attn-maps" });
  const attnRow = h("div", { class: "attn" }, h("label", { for: headSel.id }, "heads: "), headSel, maps);
  root.append(textRow, tokensRow, vocab, attnRow);

  let typing = null;
  const commit = () => {
    setUi({ text: { text: area.value, tokenize: how.value } });
    onChange();
  };
  area.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(commit, 250);
  });
  how.addEventListener("change", commit);
  headSel.addEventListener("change", () => {
    head = headSel.value === "mean" ? "mean" : Number(headSel.value);
    if (last) drawAttention(last.run);
  });

  function showError(msg) {
    error.hidden = !msg;
    error.textContent = msg || "";
    area.setAttribute("aria-invalid", msg ? "true" : "false");
  }

  function drawAttention(run) {
    const entries = (run.attention || []).filter((a) => a.weights);
    attnRow.hidden = !entries.length;
    maps.replaceChildren();
    if (!entries.length) return;
    const heads = entries[0].heads;
    if (headSel.options.length !== heads + 1) {
      headSel.replaceChildren(h("option", { value: "mean" }, `mean of ${heads}`), ...Array.from({ length: heads }, (_, k) => h("option", { value: String(k) }, `head ${k}`)));
    }
    if (head !== "mean" && head >= heads) head = "mean";
    headSel.value = String(head);
    const tokens = run.texts?.find((t) => t.input === 0)?.tokens;
    for (const a of entries) {
      const m = attentionMatrix(a, head);
      const label = (n) => (tokens && tokens.length === n ? tokens : Array.from({ length: n }, (_, k) => String(k)));
      const rows = label(m.length);
      const cols = label(m[0].length);
      const lay = heatmapLayout(m, rows, cols, { maxWidth: Math.min(560, Math.max(260, root.clientWidth - 24)) });
      const what = head === "mean" ? `mean over ${a.heads} heads` : `head ${head}`;
      const fig = h("figure", { class: "attn-fig", dataset: { path: a.path } });
      const host = h("div", { class: "attn-svg" });
      fig.append(h("figcaption", {}, `${a.path || "attention"} weights (${what}): row = query token, column = key token; each row sums to 1; white 0 … blue ${lay.max.toFixed(3)}`), host);
      maps.append(fig);
      drawHeatmap(host, lay, { title: `Attention weights of ${a.path || "the layer"}, ${what}: ${rows.length} query × ${cols.length} key tokens` });
      if (tokens && sameRowsForSameTokens(m, rows)) {
        fig.append(h("p", { class: "aside" }, "A repeated token has the same row: nothing before this attention encodes position, so the same token attends the same way wherever it stands."));
      }
      fig.append(numbersTable(m, rows, cols, what));
    }
    const more = (run.attention || []).filter((a) => !a.weights);
    for (const a of more) maps.append(h("p", { class: "aside" }, `${a.path}: ${a.omitted}`));
  }

  function show(run, request) {
    last = { run, request };
    const t = run.texts?.find((x) => x.input === 0);
    tokensRow.hidden = vocab.hidden = !t;
    if (t) {
      const ids = new Map(t.vocabulary.map((tok, k) => [tok, k]));
      tokensRow.textContent = `${t.tokens.length} tokens → ids [${t.tokens.map((x) => ids.get(x)).join(", ")}], input (1, ${t.tokens.length}) int64`;
      vocab.replaceChildren(
        h("span", { class: "data-label" }, `vocabulary (${t.vocabulary.length})`),
        ...t.vocabulary.map((tok, k) => h("span", { class: "vocab-item" }, h("code", {}, JSON.stringify(tok)), ` → ${k}`)),
      );
    }
    drawAttention(run);
  }

  return {
    // the request the API gets: the text in place of inputs[0] where the input takes indices
    apply(request) {
      if (!takesText(request, byType)) return request;
      const t = text();
      if (!t.text) return request;
      return { ...request, inputs: [{ text: t.text, tokenize: t.tokenize }, ...(request.inputs || []).slice(1)] };
    },
    // after a run (the layer view), or after the shapes fit (the network view, which runs here itself)
    async update(run, request) {
      const textIn = Boolean(request) && takesText(request, byType);
      textRow.hidden = !textIn;
      const t = text();
      if (document.activeElement !== area) area.value = t.text;
      how.value = t.tokenize;
      showError(null);
      if (!runsItself) {
        root.hidden = !textIn && !(run?.attention || []).length;
        if (!root.hidden) show(run, request);
        return;
      }
      root.hidden = !textIn;
      if (!textIn) return;
      ctl?.abort();
      ctl = new AbortController();
      root.setAttribute("aria-busy", "true");
      try {
        show(await api.run(this.apply(request), { signal: ctl.signal }), request);
      } catch (e) {
        if (isAbort(e)) return;
        if (e instanceof ApiError) {
          showError(e.detail);
          maps.replaceChildren();
          tokensRow.hidden = vocab.hidden = attnRow.hidden = true; // nothing here belongs to this text
        } else throw e;
      } finally {
        root.removeAttribute("aria-busy");
      }
    },
    showError,
  };
}
