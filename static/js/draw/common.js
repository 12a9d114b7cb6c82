// Shared SVG pieces: subscripted labels, coloured dimension labels, the hover tooltip, and
// keyboard navigation for clickable grids.

import { d3 } from "../vendor.js";
import { splitSub, fmtFull } from "../util/format.js";

export { d3 };

export function svgIn(container, width, height, label) {
  const svg = d3
    .select(container)
    .selectAll("svg.drawing")
    .data([null])
    .join("svg")
    .attr("class", "drawing")
    .attr("xmlns", "http://www.w3.org/2000/svg")
    .attr("viewBox", `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`)
    .attr("width", Math.ceil(width))
    .attr("height", Math.ceil(height))
    // A figure, not an img: drawings hold focusable parts (output grids, network nodes), and an img's
    // children are presentational, which would hide them from assistive technology.
    .attr("role", "figure")
    .attr("aria-label", label);
  svg.selectAll("*").remove();
  svg.append("title").text(label);
  return svg;
}

// "C_in" → C with a subscript "in"; "k_H" → k with subscript H.
export function appendLabel(text, label) {
  let { base, sub } = splitSub(label);
  // "4·hidden_size" is a name with an underscore, not "hidden" with a subscript.
  if (sub && base.split("·").pop().length > 2) [base, sub] = [String(label), ""];
  text.append("tspan").text(base);
  if (sub) text.append("tspan").attr("class", "sub").attr("baseline-shift", "sub").attr("font-size", "0.75em").text(sub);
  return text;
}

// A dimension label like "C_in = 3" in the dimension's colour.
export function dimLabel(g, d, color, { x, y, anchor = "middle", rotate = 0, withSize = true, cls = "dim-label" }) {
  const t = g
    .append("text")
    .attr("class", cls)
    .attr("x", x)
    .attr("y", y)
    .attr("text-anchor", anchor)
    .style("fill", color)
    .attr("data-key", d.key);
  if (rotate) t.attr("transform", `rotate(${rotate} ${x} ${y})`);
  appendLabel(t, d.label);
  if (withSize && d.size !== "" && d.size !== undefined) t.append("tspan").text(` = ${d.size}`);
  return t;
}

// "(N=6, C_in=3, L_in=8)" with every dimension in its colour.
export function shapeLabel(g, dims, colorOf, { x, y, anchor = "start", prefix = "", cls = "shape-label" }) {
  const t = g.append("text").attr("class", cls).attr("x", x).attr("y", y).attr("text-anchor", anchor);
  if (prefix) t.append("tspan").attr("class", "name").text(prefix + " ");
  t.append("tspan").text("(");
  dims.forEach((d, i) => {
    const span = t.append("tspan").attr("fill", colorOf(d.key)).attr("font-weight", 600);
    const { base, sub } = splitSub(d.label);
    span.append("tspan").text(base);
    if (sub) span.append("tspan").attr("baseline-shift", "sub").attr("font-size", "0.75em").text(sub);
    span.append("tspan").attr("baseline-shift", "0").text(`=${d.size}`);
    if (i < dims.length - 1) t.append("tspan").text(", ");
  });
  t.append("tspan").text(dims.length === 1 ? ",)" : ")");
  return t;
}

export function arrow(g, x1, y1, x2, y2, cls = "flow-arrow") {
  ensureArrowHead(g);
  return g.append("line").attr("class", cls).attr("x1", x1).attr("y1", y1).attr("x2", x2).attr("y2", y2).attr("marker-end", "url(#arrowhead)");
}

// An arrow along a polyline [[x, y], …]: reaches a box beside a column without crossing it.
export function elbowArrow(g, points, cls = "flow-arrow") {
  ensureArrowHead(g);
  return g.append("path").attr("class", cls).attr("fill", "none").attr("d", `M${points.map((p) => p.join(",")).join(" L")}`).attr("marker-end", "url(#arrowhead)");
}

function ensureArrowHead(g) {
  const svg = d3.select(g.node().ownerSVGElement || g.node());
  if (!svg.select("defs marker#arrowhead").empty()) return;
  const defs = svg.select("defs").empty() ? svg.insert("defs", ":first-child") : svg.select("defs");
  addArrowMarker(defs, "arrowhead", "#475569");
}

// One arrowhead <marker> in `defs`, referenced by lines as url(#id).
export function addArrowMarker(defs, id, color) {
  defs
    .append("marker")
    .attr("id", id)
    .attr("viewBox", "0 0 10 10")
    .attr("refX", 9)
    .attr("refY", 5)
    .attr("markerWidth", 7)
    .attr("markerHeight", 7)
    .attr("orient", "auto-start-reverse")
    .append("path")
    .attr("d", "M0,0 L10,5 L0,10 z")
    .attr("fill", color);
}

export function polygon(g, pts) {
  return g.append("polygon").attr("points", pts.map((p) => p.join(",")).join(" "));
}

// Diverging colours centred on zero, so the sign of a value reads at a glance.
export function valueColor(domain) {
  const m = Math.max(Math.abs(domain[0]), Math.abs(domain[1])) || 1;
  const scale = d3.scaleDiverging(d3.interpolateRdBu).domain([m, 0, -m]);
  return (v) => {
    if (Number.isNaN(v)) return "#a855f7";
    if (!Number.isFinite(v)) return v > 0 ? "#7f1d1d" : "#1e3a8a";
    return scale(v);
  };
}

// One tooltip element for the page; SVG <title> tooltips appear too slowly to read values.
let tip = null;
export const tooltip = {
  show(event, html) {
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "tooltip";
      tip.setAttribute("role", "tooltip");
      document.body.appendChild(tip);
    }
    tip.innerHTML = html;
    tip.hidden = false;
    const pad = 12;
    const r = tip.getBoundingClientRect();
    let x = event.clientX + pad;
    let y = event.clientY + pad;
    if (x + r.width > window.innerWidth - 4) x = event.clientX - r.width - pad;
    if (y + r.height > window.innerHeight - 4) y = event.clientY - r.height - pad;
    tip.style.left = `${Math.max(4, x)}px`;
    tip.style.top = `${Math.max(4, y)}px`;
  },
  hide() {
    if (tip) tip.hidden = true;
  },
};

export function valueTip(name, index, v) {
  return `<b>${escapeHtml(name)}</b>[${index.join(", ")}] = <code>${fmtFull(v)}</code>`;
}

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// Arrow-key navigation over a grid drawn as one focusable group (a roving cursor), so a
// 30×30 output needs one Tab stop, not 900. The label names the cell under the cursor.
export function gridKeys(group, { rows, cols, start = [0, 0], onMove, onActivate, label }) {
  let cur = [...start];
  const say = () => group.attr("aria-label", `${label}. Cursor at row ${cur[0]}, column ${cur[1]}.`);
  say();
  group
    .attr("tabindex", 0)
    .attr("role", "group")
    .attr("aria-roledescription", "grid")
    .on("keydown", (event) => {
      const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
      if (moves[event.key]) {
        const [dr, dc] = moves[event.key];
        cur = [Math.max(0, Math.min(rows - 1, cur[0] + dr)), Math.max(0, Math.min(cols - 1, cur[1] + dc))];
        say();
        onMove(cur);
        event.preventDefault();
      } else if (event.key === "Enter" || event.key === " ") {
        onActivate(cur);
        event.preventDefault();
      }
    })
    .on("focus", () => onMove(cur));
  return {
    set(rc) {
      cur = [...rc];
      say();
    },
  };
}
