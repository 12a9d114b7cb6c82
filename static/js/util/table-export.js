// The network's trace (one row per module call, as the Summary panel lists it) as a CSV file and as a
// LaTeX `tabular` for a paper. Pure: strings in, a string out, no DOM. Numbers are the API's own,
// written in full (no "2.36M"): a table in a paper quotes them exactly.

import { shapeStr } from "./format.js";

export const CSV_COLUMNS = [
  "path",
  "type",
  "depth",
  "leaf",
  "input_shapes",
  "output_shape",
  "param_count",
  "macs",
  "activation_bytes",
];

const shapes = (list) => (Array.isArray(list) ? list.map(shapeStr).join("; ") : "");

// One CSV field (RFC 4180): quoted where it holds a comma, quote or line break, quotes doubled. A text
// starting with = + - @ or a tab would be read as a formula by a spreadsheet: it gets a leading '.
export function csvField(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  let s = String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function traceCsv(trace, totals = null) {
  const lines = [CSV_COLUMNS.join(",")];
  for (const t of trace || []) {
    const row = [
      t.path,
      t.type,
      t.depth ?? t.path.split(".").length - 1,
      t.leaf !== false,
      shapes(t.input_shapes),
      t.output_shape ? shapeStr(t.output_shape) : "",
      t.param_count ?? null,
      t.macs ?? null,
      t.activation_bytes ?? null,
    ];
    lines.push(row.map(csvField).join(","));
  }
  if (totals) {
    // the network's totals count each leaf call once (the container rows repeat their children's)
    const row = ["Total", "", "", "", "", "", totals.param_count, totals.macs ?? null, totals.activation_bytes ?? null];
    lines.push(row.map(csvField).join(","));
  }
  return `${lines.join("\r\n")}\r\n`;
}

const LATEX = {
  "\\": "\\textbackslash{}",
  "{": "\\{",
  "}": "\\}",
  $: "\\$",
  "&": "\\&",
  "#": "\\#",
  "%": "\\%",
  _: "\\_",
  "^": "\\textasciicircum{}",
  "~": "\\textasciitilde{}",
  "<": "\\textless{}",
  ">": "\\textgreater{}",
  "|": "\\textbar{}",
};

// Text safe inside a LaTeX tabular cell: every special character becomes its escaped form.
export function latexEscape(v) {
  return String(v ?? "").replace(/[\\{}$&#%_^~<>|]/g, (c) => LATEX[c]);
}

const thousands = (n) => (n === null || n === undefined ? "--" : Number(n).toLocaleString("en"));

export function traceLatex(trace, totals = null, { caption = "" } = {}) {
  const out = [];
  if (caption) out.push(`% ${caption.replace(/\r?\n/g, " ")}`);
  out.push("% container rows (in parentheses) sum their children; the total counts each layer call once");
  out.push("\\begin{tabular}{llrrr}");
  out.push("\\hline");
  out.push("Layer & Type & Output shape & Param \\# & Mult-adds \\\\");
  out.push("\\hline");
  for (const t of trace || []) {
    const depth = t.depth ?? t.path.split(".").length - 1;
    const indent = depth > 0 ? `\\hspace{${depth}em}` : "";
    const inner = t.leaf === false;
    const wrap = (s) => (inner && s !== "--" ? `(${s})` : s);
    const cells = [
      `${indent}${latexEscape(t.path)}`,
      latexEscape(t.type),
      t.output_shape ? latexEscape(shapeStr(t.output_shape)) : "--",
      wrap(thousands(t.param_count)),
      wrap(thousands(t.macs)),
    ];
    out.push(`${cells.join(" & ")} \\\\`);
  }
  if (totals) {
    out.push("\\hline");
    const macs = totals.macs === null || totals.macs === undefined ? "--" : `${totals.macs_complete === false ? "$\\geq$ " : ""}${thousands(totals.macs)}`;
    out.push(`Total &  &  & ${thousands(totals.param_count)} & ${macs} \\\\`);
  }
  out.push("\\hline");
  out.push("\\end{tabular}");
  return `${out.join("\n")}\n`;
}
