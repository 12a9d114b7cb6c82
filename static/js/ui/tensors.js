// Tensor cards for inputs, parameters and outputs: shape, statistics, heatmap, and the full
// numbers when the tensor is small enough for the API to have sent them.

import { drawHeatmap } from "../draw/heatmap.js";
import { valueDomain } from "../geometry/heatmap.js";
import { budgetYield } from "../util/schedule.js";
import { fmt, shapeStr, toNumber } from "../util/format.js";

const NUMBERS_LIMIT = 1024;

function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined) el.textContent = text;
  return el;
}

// Nested list with the last axis on one line, aligned.
export function formatNested(v, depth = 0) {
  if (!Array.isArray(v)) return fmt(v, 5);
  if (!Array.isArray(v[0])) return `[${v.map((x) => fmt(x, 5).padStart(9)).join(",")}]`;
  const pad = " ".repeat(depth + 1);
  return `[${v.map((x, i) => (i ? pad : "") + formatNested(x, depth + 1)).join(",\n")}]`;
}

function stats(t) {
  const s = t.summary;
  if (!s) return null;
  const parts = ["min", "max", "mean", "std"].filter((k) => s[k] !== undefined && s[k] !== null).map((k) => `${k} ${fmt(s[k], 3)}`);
  if (toNumber(s.nonfinite) > 0) parts.push(`${s.nonfinite} non-finite`);
  return parts.join(" · ");
}

function card(t, role, request = null) {
  const art = h("article", `tensor-card role-${role}`);
  art.dataset.name = t.name;
  const head = h("header");
  head.append(h("strong", null, t.name), h("span", "shape", `${shapeStr(t.shape)} ${t.dtype || ""}`), h("span", "count", `${(t.numel ?? 0).toLocaleString("en")} el.`));
  art.append(head);
  const st = stats(t);
  if (st) art.append(h("p", "stats", st));
  const host = h("div", "heat");
  art.append(host);
  const hasData = t.data !== null && t.data !== undefined;
  if (!hasData && (t.preview === null || t.preview === undefined)) {
    // `values` (the API's response budget): "summary" sent statistics only, "none" not even those
    const why = t.values === "none" ? "Values not sent: this answer's budget went to the tensors listed before it." : t.values === "summary" ? "Values not sent (this answer's budget went to the tensors listed before it); statistics only." : "Values not sent (too large); statistics only.";
    art.append(h("p", "aside", why));
  }
  if (t.full && request) art.append(npyLink(t, request));
  return { art, host, hasData };
}

// The whole tensor, one request away: the same body with ?format=npy&tensor=<name> (and the layer's
// path inside a network), saved as <name>.npy.
function npyLink(t, request) {
  const b = h("button", "npy-download", "Download all values (.npy)");
  b.type = "button";
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      const body = t.full.path ? { ...request, path: t.full.path } : request;
      const res = await fetch(`/api/run?format=npy&tensor=${encodeURIComponent(t.full.tensor)}`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const url = URL.createObjectURL(await res.blob());
      const a = Object.assign(document.createElement("a"), { href: url, download: `${t.name}.npy` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      b.textContent = `Download failed (${e.message})`;
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

// The cards are built at once; their heatmaps are drawn card by card, in a new task whenever the
// current one has run a while (`pause`, util/schedule.js budgetYield; big heatmaps go on a canvas,
// in pieces), so no edit blocks the page. Resolves when all are drawn, or stops (false) once
// `cancelled()` is true or a newer call has replaced the cards.
export async function renderTensors(root, run, opts = {}) {
  const groups = [
    ["Inputs", "input", run.inputs || []],
    ["Parameters", "param", (run.params || []).map((p) => ({ ...p, name: p.name }))],
    ["Outputs", "output", run.outputs?.length ? run.outputs : run.output ? [run.output] : []],
  ];
  // a text input: its tokens label the input's columns, (1, L), and the rows of an output (…, L, D)
  const tokens = run.texts?.find((x) => x.input === 0)?.tokens ?? null;
  return renderTensorGroups(root.querySelector("#tensors-body"), groups, { ...opts, root, tokens });
}

// The same cards for any list of [title, role, tensors] groups (the network view shows its output).
// `sharedScale`: one colour scale for inputs and outputs; `root`: the panel whose toggle and data-scale follow it.
// `request`: the /api/run body the tensors came from (a card sent without all its numbers offers them as .npy).
export async function renderTensorGroups(body, groups, { cancelled = () => false, pause = budgetYield(), sharedScale = false, root = null, tokens = null, request = null } = {}) {
  body.replaceChildren();
  // one scale for inputs and outputs (where they share units): the same value, the same colour
  const shared = sharedScale ? groups.filter(([, role]) => role !== "param").flatMap(([, , list]) => list).map(valueDomain) : [];
  const domain = shared.length ? [Math.min(...shared.map((d) => d[0])), Math.max(...shared.map((d) => d[1]))] : null;
  if (root) {
    root.dataset.scale = domain ? "shared" : "own";
    const toggle = root.querySelector("#tensors-shared-scale");
    if (toggle) toggle.checked = Boolean(domain);
  }
  const pending = [];
  for (const [title, role, list] of groups) {
    if (!list.length) continue;
    const sec = h("section", "tensor-group");
    sec.append(h("h3", null, title));
    const grid = h("div", "tensor-grid");
    for (const t of list) {
      const c = card(t, role, request);
      grid.append(c.art);
      pending.push([c, t]);
    }
    sec.append(grid);
    body.append(sec);
  }
  // Draw once the cards are in the document and have a width.
  for (const [c, t] of pending) {
    await pause();
    if (cancelled() || !c.art.isConnected) return false;
    const width = Math.max(160, c.host.clientWidth || 300);
    const role = c.art.classList.contains("role-input") ? "input" : c.art.classList.contains("role-output") ? "output" : "param";
    const labels = !tokens ? null : role === "input" && t === groups[0][2][0] ? { cols: tokens } : role === "output" ? { rows: tokens } : null;
    const res = drawHeatmap(c.host, t, { width, domain: domain && role !== "param" ? domain : null, labels });
    if (res.total > res.shown) c.art.append(h("p", "aside", `showing ${res.shown} of ${res.total} slices`));
    if (!res.full && res.step) c.art.append(h("p", "aside", `preview: every ${res.step.join("×")}-th element`));
    const download = c.art.querySelector("button.npy-download");
    if (download) c.art.append(download); // after the notes on what is drawn
    if (c.hasData && t.numel <= NUMBERS_LIMIT && t.numel > 0) {
      const d = h("details", "numbers");
      d.append(h("summary", null, "Numbers"));
      const pre = h("pre");
      d.addEventListener("toggle", () => {
        if (d.open && !pre.textContent) pre.textContent = formatNested(t.data);
      });
      d.append(pre);
      c.art.append(d);
    }
    if (!(await res.painted)) return false;
  }
  return true;
}
