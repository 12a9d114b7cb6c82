// Text in a form field ↔ the JSON value of a constructor argument, by the catalog's parameter
// spec (type, length, minimum, maximum, choices, nullable). Pure, so the same rules serve the form
// and the tests. The server stays the judge; this only catches what is plainly wrong.

// Arguments written as JSON in their field: nested configs, tensors, an opaque layer's recorded shapes,
// a graph's ties.
const JSON_TYPES = new Set(["tensor", "layer", "layers", "shapes", "named_shapes", "tied"]);

export function formatValue(spec, v) {
  if (v === undefined) return "";
  if (v === null) return "None";
  if (spec.type === "bool") return v ? "true" : "false";
  if (JSON_TYPES.has(spec.type)) return JSON.stringify(v);
  if (Array.isArray(v)) return v.join(", ");
  return String(v);
}

export function describeDefault(spec) {
  if (spec.required) return "required";
  if (!("default" in spec)) return "";
  // None stands for something (the stride: the kernel size): say what, as the catalog read it from torch's doc
  if (spec.default === null) return spec.default_means ? `default: ${spec.default_means}` : "optional (not set by default)";
  return `default ${formatValue(spec, spec.default)}`;
}

export function describeBounds(spec) {
  const parts = [];
  if (spec.minimum !== undefined && spec.minimum !== null) parts.push(`≥ ${spec.minimum}`);
  if (spec.maximum !== undefined && spec.maximum !== null) parts.push(`≤ ${spec.maximum}`);
  return parts.join(", ");
}

export function describeType(spec) {
  switch (spec.type) {
    case "ints":
      return spec.length ? `int or ${spec.length} ints` : "ints";
    case "floats":
      return spec.length ? `float or ${spec.length} floats` : "floats";
    case "int_list":
      return "list of ints";
    case "float_list":
      return "list of floats";
    case "tensor":
      return "nested list";
    case "shapes":
      return "list of shapes";
    case "named_shapes":
      return "shapes by name";
    default:
      return spec.type;
  }
}

const INT_RE = /^[-+]?\d+$/;

function parseNumber(text, integer) {
  const t = text.trim();
  if (integer) {
    if (!INT_RE.test(t)) return { error: `“${t}” is not an integer` };
    return { value: Number(t) };
  }
  if (/^[-+]?inf(inity)?$/i.test(t)) return { value: t.startsWith("-") ? "-inf" : "inf" };
  const x = Number(t);
  if (t === "" || !Number.isFinite(x)) return { error: `“${t}” is not a number` };
  return { value: x };
}

function checkBounds(spec, x) {
  if (typeof x !== "number") return null;
  if (spec.minimum !== undefined && spec.minimum !== null && x < spec.minimum) return `must be ≥ ${spec.minimum}`;
  if (spec.maximum !== undefined && spec.maximum !== null && x > spec.maximum) return `must be ≤ ${spec.maximum}`;
  return null;
}

function splitList(text) {
  return text
    .trim()
    .replace(/^[[(]|[\])]$/g, "")
    .split(/[\s,]+/)
    .filter(Boolean);
}

// Returns {value} (send it), {omit: true} (leave torch's default) or {error}.
export function parseValue(spec, raw) {
  if (spec.type === "bool") return { value: Boolean(raw) };
  const text = String(raw ?? "").trim();
  if (text === "") return spec.required ? { error: "required" } : { omit: true };
  if (/^none$|^null$/i.test(text)) {
    if (spec.nullable || spec.default === null) return { value: null };
    return { error: "None is not allowed here" };
  }
  if (spec.choices?.includes(text)) return { value: text };
  switch (spec.type) {
    case "int":
    case "float": {
      const r = parseNumber(text, spec.type === "int");
      if (r.error) return r;
      const b = checkBounds(spec, r.value);
      return b ? { error: b } : r;
    }
    case "str":
      if (spec.choices?.length) return { error: `choose one of ${spec.choices.join(", ")}` };
      return { value: text };
    case "ints":
    case "floats":
    case "int_list":
    case "float_list": {
      const integer = spec.type === "ints" || spec.type === "int_list";
      const parts = splitList(text);
      const values = [];
      for (const p of parts) {
        const r = parseNumber(p, integer);
        if (r.error) return spec.choices?.length ? { error: `${r.error}; or one of ${spec.choices.join(", ")}` } : r;
        const b = checkBounds(spec, r.value);
        if (b) return { error: `each value ${b}` };
        values.push(r.value);
      }
      const isList = spec.type === "int_list" || spec.type === "float_list";
      if (isList) return { value: values };
      if (values.length === 1 && !/^[[(]/.test(text)) return { value: values[0] };
      if (spec.length && values.length !== spec.length) return { error: `give 1 or ${spec.length} values, got ${values.length}` };
      return { value: values };
    }
    case "tensor":
    case "layer":
    case "layers":
    default:
      try {
        return { value: JSON.parse(text) };
      } catch {
        return JSON_TYPES.has(spec.type) ? { error: "not valid JSON" } : { value: text };
      }
  }
}

// An input's shape: "5, 10" or "(5, 10)" → [5, 10].
export function parseShape(text) {
  const parts = splitList(String(text ?? ""));
  if (!parts.length) return { error: "give the shape, e.g. 5, 10" };
  const out = [];
  for (const p of parts) {
    if (!INT_RE.test(p) || Number(p) < 0) return { error: `“${p}” is not a non-negative integer` };
    out.push(Number(p));
  }
  return { value: out };
}

export function parseData(text) {
  const t = String(text ?? "").trim();
  if (!t) return { omit: true };
  try {
    const v = JSON.parse(t.replace(/\bnan\b/gi, '"nan"').replace(/-inf\b/gi, '"-inf"').replace(/(?<!["-])\binf\b/gi, '"inf"'));
    if (typeof v !== "number" && !Array.isArray(v)) return { error: "data must be a number or a nested list" };
    return { value: v };
  } catch (e) {
    return { error: `not valid JSON: ${e.message}` };
  }
}
