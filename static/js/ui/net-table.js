// A torchinfo-style summary of the network: one row per module in execution order (indented by
// depth), its output shape, parameter count and mult-adds, then the totals. From the API's
// `trace` and `totals`; on a shape mismatch, the rows up to the failing layer and a red last row.

import { shapeStr } from "../util/format.js";
import { fmtBytes, fmtCount } from "../net/model.js";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// `pickable(path)` → the graph item a row can open, or null.
export function renderNetTable(root, { result, error, failed = null, pickable, onPick }) {
  const table = root.querySelector("table");
  const body = table.querySelector("tbody");
  const foot = table.querySelector("tfoot");
  const notes = root.querySelector(".net-totals-list");
  body.replaceChildren();
  foot.replaceChildren();
  const trace = result?.trace || error?.trace || [];
  for (const t of trace) {
    const tr = el("tr", t.leaf === false ? "container" : "");
    tr.dataset.path = t.path;
    const name = el("td", "layer");
    const depth = t.depth ?? t.path.split(".").length - 1;
    name.style.setProperty("--depth", depth);
    const item = pickable(t.path);
    if (item) {
      const b = el("button", "link net-drill", t.path);
      b.type = "button";
      b.title = `Open ${t.path} (${t.type}) in the layer view, on the input it receives here`;
      b.addEventListener("click", () => onPick(item));
      name.append(b);
    } else name.append(el("span", "path", t.path));
    name.append(" ", el("span", "type", t.type));
    const params = t.leaf === false ? `(${(t.param_count ?? 0).toLocaleString("en")})` : (t.param_count ?? 0).toLocaleString("en");
    const macs = t.macs === null || t.macs === undefined ? "—" : t.leaf === false ? `(${fmtCount(t.macs)})` : fmtCount(t.macs);
    tr.append(name, el("td", "shape", t.output_shape ? shapeStr(t.output_shape) : "—"), el("td", "num", params), el("td", "num", macs));
    body.append(tr);
  }
  if (error) {
    const tr = el("tr", "failed");
    const name = el("td", "layer");
    const path = error.path ?? failed?.path ?? "";
    name.style.setProperty("--depth", path ? path.split(".").length - 1 : 0);
    name.append(el("span", "path", path || "network"), " ", el("span", "type", failed?.type || ""));
    const what = { shape_mismatch: "shapes do not fit", invalid_argument: "invalid argument" }[error.error] || "error";
    const msg = el("td", "shape", `✕ ${what}`);
    msg.colSpan = 3;
    tr.append(name, msg);
    body.append(tr);
  }
  if (!trace.length && !error) {
    const tr = el("tr");
    const td = el("td", "aside", "no submodules");
    td.colSpan = 4;
    tr.append(td);
    body.append(tr);
  }
  const totals = result?.totals;
  if (totals) {
    const tr = el("tr");
    const macs = totals.macs === null || totals.macs === undefined ? "—" : `${totals.macs_complete ? "" : "≥ "}${fmtCount(totals.macs)}`;
    const total = el("td", "num", totals.param_count.toLocaleString("en"));
    total.id = "net-table-total";
    total.dataset.value = String(totals.param_count);
    tr.append(el("td", "layer", "Total"), el("td", "shape", result.output_shape ? shapeStr(result.output_shape) : ""), total, el("td", "num", macs));
    foot.append(tr);
    const items = [
      ["Total params", totals.param_count.toLocaleString("en")],
      ["Params size", fmtBytes(totals.param_bytes)],
      ["Activations", fmtBytes(totals.activation_bytes)],
      ["Mult-adds", `${totals.macs_complete ? "" : "≥ "}${totals.macs === null ? "—" : totals.macs.toLocaleString("en")}`],
      ["Leaf layers", String(totals.layers)],
    ];
    notes.replaceChildren(
      ...items.map(([k, v]) => {
        const d = el("div");
        d.append(el("dt", null, k), el("dd", null, v));
        return d;
      }),
    );
    notes.title = totals.macs_complete ? "" : "Some layers (normalisation, recurrent, attention) have no mult-add count; the total is a lower bound.";
  } else notes.replaceChildren();
}
