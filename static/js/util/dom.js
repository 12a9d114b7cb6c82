// A tiny element builder shared by the form and the network list: h("div", {class: "x"}, child, ...).
// Attributes that are properties of the element (e.g. checked, value) are set as properties.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

// torch's docstrings mark code with backticks (`weights`, ``True``): text and <code> nodes for h(),
// so a description reads as prose with its names in code type, never with raw markdown.
export function inlineCode(text) {
  const out = [];
  const re = /(`+)([^`]+?)\1/g;
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(h("code", {}, m[2]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

// The same text for a title attribute (plain text): the backticks dropped.
export function plainCode(text) {
  return String(text || "").replace(/(`+)([^`]+?)\1/g, "$2");
}
