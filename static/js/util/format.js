// Pure helpers for numbers, shapes and nested arrays. No DOM, no d3: usable from geometry and tests.

// JSON cannot carry non-finite floats, so the API writes them as strings.
export function toNumber(v) {
  if (typeof v === "number") return v;
  if (v === "inf" || v === "Infinity") return Infinity;
  if (v === "-inf" || v === "-Infinity") return -Infinity;
  if (v === "nan" || v === "NaN") return NaN;
  if (typeof v === "boolean") return v ? 1 : 0;
  return Number(v);
}

const MINUS = "\u2212";

// Short, readable number with `digits` significant digits (trailing zeros dropped): tables and
// cells have little room, tooltips use fmtFull. Every minus sign is U+2212, the exponent's too.
export function fmt(v, digits = 4) {
  const x = toNumber(v);
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : `${MINUS}∞`;
  if (x === 0) return "0";
  if (Number.isInteger(x) && Math.abs(x) < 1e6) return minus(String(x));
  const a = Math.abs(x);
  let s;
  if (a >= 1e5 || a < 1e-3) s = x.toExponential(Math.max(0, digits - 1)).replace(/\.?0+e/, "e");
  else if (a >= 10 ** digits) s = x.toFixed(0); // 12346, not 1.235e4: whole digits are never fewer
  else s = x.toPrecision(digits);
  if (s.includes(".") && !s.includes("e")) s = s.replace(/0+$/, "").replace(/\.$/, "");
  return minus(s.replace("e+", "e"));
}

// What a grid cell shows: at least four significant digits (100.5, −12.25, 17.5), the exact value
// one hover away (fmtFull); drawings shrink the font to fit rather than round harder.
export function fmtCell(v) {
  return fmt(v, 4);
}

// Every hyphen-minus in a number's text as the minus sign (U+2212).
export function minus(s) {
  return String(s).replaceAll("-", MINUS);
}

export function fmtFull(v) {
  const x = toNumber(v);
  if (!Number.isFinite(x)) return fmt(x);
  return minus(String(x));
}

// A signed factor for an expansion like "0.5·(−0.2)": negative factors need brackets.
export function fmtFactor(v, digits = 4) {
  const x = toNumber(v);
  const s = fmt(x, digits);
  return x < 0 ? `(${s})` : s;
}

export function shapeStr(shape) {
  if (!Array.isArray(shape)) return String(shape);
  // a tuple of shapes (a network with several outputs): each shape in its own parentheses
  if (shape.some(Array.isArray)) return `(${shape.map(shapeStr).join(", ")})`;
  return `(${shape.join(", ")}${shape.length === 1 ? "," : ""})`;
}

export function prod(arr) {
  return arr.reduce((a, b) => a * b, 1);
}

// Row-major index ↔ flat position, the order torch and the API's nested lists use.
export function unravel(flat, shape) {
  const out = new Array(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = flat % shape[i];
    flat = Math.floor(flat / shape[i]);
  }
  return out;
}

export function ravel(index, shape) {
  let flat = 0;
  for (let i = 0; i < shape.length; i++) flat = flat * shape[i] + index[i];
  return flat;
}

export function getAt(nested, index) {
  let v = nested;
  for (const i of index) {
    if (v == null) return undefined;
    v = v[i];
  }
  return v;
}

export function flatten(nested, out = []) {
  if (Array.isArray(nested)) for (const v of nested) flatten(v, out);
  else out.push(nested);
  return out;
}

export function shapeOf(nested) {
  const shape = [];
  let v = nested;
  while (Array.isArray(v)) {
    shape.push(v.length);
    v = v[0];
  }
  return shape;
}

export function sameShape(a, b) {
  return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => v === b[i]);
}

export function clamp(x, lo, hi) {
  return Math.min(hi, Math.max(lo, x));
}

export function deepCopy(obj) {
  return obj === undefined ? undefined : JSON.parse(JSON.stringify(obj));
}

export function debounce(fn, ms) {
  let t = null;
  const wrapped = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(t);
  wrapped.flush = (...args) => {
    clearTimeout(t);
    fn(...args);
  };
  return wrapped;
}

// "C_in" → {base: "C", sub: "in"}: SVG labels draw the part after "_" as a subscript.
export function splitSub(label) {
  const s = String(label);
  const i = s.indexOf("_");
  if (i <= 0) return { base: s, sub: "" };
  return { base: s.slice(0, i), sub: s.slice(i + 1) };
}

// Plain-text subscript for places (titles, aria labels) where markup is not possible.
export function texLabel(label) {
  const { base, sub } = splitSub(label);
  // "D·num_layers", "4·hidden_size": names with an underscore, not "num" with a subscript (as
  // appendLabel draws them); each factor of a product is its own symbol or name.
  if (sub && base.split("·").pop().length > 2)
    return String(label)
      .split("·")
      .map((f) => (f.length === 1 || /^\d+$/.test(f) ? escapeTex(f) : `\\text{${f.replace(/[{}\\]/g, "").replace(/_/g, "\\_")}}`))
      .join(" \\cdot ");
  if (!sub) return escapeTex(base);
  return `${escapeTex(base)}_{\\text{${sub.replace(/[{}\\]/g, "")}}}`;
}

function escapeTex(s) {
  return s.replace(/([#$%&{}])/g, "\\$1").replace(/\*/g, "\\ast ");
}

// 416520 → "416.52 K"; small numbers as they are, with thousands separators.
export function fmtCount(n) {
  if (n === null || n === undefined) return "—";
  if (Math.abs(n) < 1e4) return n.toLocaleString("en");
  const units = [
    [1e12, "T"],
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "K"],
  ];
  for (const [v, u] of units) if (Math.abs(n) >= v) return `${(n / v).toFixed(2).replace(/\.?0+$/, "")} ${u}`;
  return String(n);
}
