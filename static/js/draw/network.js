// The network's flow diagram, drawn with d3 from geometry/network.js: layer boxes (type, path,
// arguments, parameter count), edges labelled with the tensor shape, residual frames with their
// skip lane and ⊕, the failing edge in red with the server's message. Layer boxes are buttons.

import { addArrowMarker, svgIn } from "./common.js";
import { layoutNetwork } from "../geometry/network.js";
import { shapeStr } from "../util/format.js";
import { graphSummary, isDataflow } from "../net/model.js";

const MARKERS = { ok: "#475569", bad: "#dc2626", unknown: "#94a3b8" };

function markers(svg) {
  const defs = svg.insert("defs", ":first-child");
  for (const [k, color] of Object.entries(MARKERS)) addArrowMarker(defs, `net-arrow-${k}`, color);
}

const line = (pts) => `M${pts.map((p) => p.join(",")).join(" L")}`;

function paramText(item) {
  if (item.params === null || item.params === undefined) return "";
  return `${item.params.toLocaleString("en")} param${item.params === 1 ? "" : "s"}`;
}

export function nodeLabel(item) {
  const io = item.inShape ? ` — input ${shapeStr(item.inShape)}${item.outShape ? ` → output ${shapeStr(item.outShape)}` : ""}` : "";
  const p = item.params !== null && item.params !== undefined ? `, ${item.params.toLocaleString("en")} parameters` : "";
  // a Graph's card is too narrow for its nodes: the tooltip lists them all
  const nodes = isDataflow(item.config) ? `; ${graphSummary(item.config)}` : "";
  return `${item.path || "network"}: ${item.type}${io}${p}${nodes}`;
}

export function drawNetwork(container, graph, { width, message = "", selected = null, onPick = () => {}, canPick = () => true }) {
  const lay = layoutNetwork(graph, { width, message });
  const ins = graph.inputShape ? shapeStr(graph.inputShape) : "?";
  const outs = graph.outputShape ? shapeStr(graph.outputShape) : "?";
  const svg = svgIn(container, lay.width, lay.height, `Network flow: input ${ins} → ${lay.nodes.length} layers → output ${outs}`);
  svg.classed("net-drawing", true);
  markers(svg);
  const g = svg.append("g");

  // Frames first, so everything else sits on top.
  for (const fr of lay.groups) {
    const fg = g
      .append("g")
      .attr("class", `net-group net-group-${fr.kind} status-${fr.item.status}`)
      .attr("data-path", fr.item.path)
      .attr("data-field", fr.item.field)
      .classed("selected", selected === fr.item.field);
    fg.append("rect").attr("x", fr.x).attr("y", fr.y).attr("width", fr.w).attr("height", fr.h).attr("rx", 10);
    fg.append("text").attr("class", "net-group-label").attr("x", fr.x + 9).attr("y", fr.y + 16).text(fr.label);
  }

  for (const ln of lay.lanes) {
    g.append("path")
      .attr("class", `net-skip status-${ln.status}`)
      .attr("d", line(ln.points))
      .attr("marker-end", ln.arrow ? `url(#net-arrow-${ln.status})` : null);
    if (ln.text) {
      const t = g
        .append("text")
        .attr("class", `net-shape net-skip-label status-${ln.status}`)
        .attr("x", ln.lx)
        .attr("y", ln.ly)
        .text(ln.text);
      if (ln.rotate) t.attr("text-anchor", "middle").attr("transform", `rotate(-90 ${ln.lx} ${ln.ly})`);
    }
  }

  for (const e of lay.edges) {
    g.append("path")
      .attr("class", `net-edge net-edge-${e.kind} ${e.status}`)
      .attr("data-to", e.to)
      .attr("d", line(e.points))
      .attr("marker-end", `url(#net-arrow-${e.status})`);
    if (e.text)
      g.append("text")
        .attr("class", `net-shape ${e.status}`)
        .attr("data-to", e.to)
        .attr("x", e.lx)
        .attr("y", e.ly)
        .text(e.text);
  }

  for (const d of lay.dots) g.append("circle").attr("class", "net-dot").attr("cx", d.x).attr("cy", d.y).attr("r", 3.5);

  for (const a of lay.adds) {
    const ag = g.append("g").attr("class", `net-add ${a.status}`).attr("data-path", a.item.path);
    ag.append("title").text(a.status === "bad" ? "the body and the skip path give different shapes: they cannot be added" : "body + skip connection");
    ag.append("circle").attr("cx", a.cx).attr("cy", a.cy).attr("r", a.r);
    ag.append("path").attr("d", `M${a.cx - 5},${a.cy} h10 M${a.cx},${a.cy - 5} v10`);
  }

  for (const n of lay.nodes) {
    const it = n.item;
    const pickable = canPick(it);
    const ng = g
      .append("g")
      .attr("class", `net-node status-${it.status}${n.opaque ? " net-opaque" : ""}`)
      .attr("data-path", it.path)
      .attr("data-field", it.field)
      .attr("data-type", it.type)
      .attr("transform", `translate(${n.x},${n.y})`)
      .classed("selected", selected === it.field)
      .classed("pickable", pickable);
    const label = nodeLabel(it);
    ng.append("title").text(pickable ? `${label}. Click to open its layer view.` : label);
    if (pickable) {
      ng.attr("tabindex", 0)
        .attr("role", "button")
        .attr("aria-label", `${label}. Open its layer view.`)
        .on("click", () => onPick(it))
        .on("keydown", (ev) => {
          if (ev.key === "Enter" || ev.key === " ") {
            ev.preventDefault();
            onPick(it);
          }
        });
    }
    ng.append("rect").attr("class", "net-box").attr("width", n.w).attr("height", n.h).attr("rx", 8);
    const ptext = paramText(it);
    const tag = n.tag || "";
    // Compact (argument-less) boxes carry their path on the title line: "ReLU  relu". The title
    // (bold 13px, ~7.9px a character) gives way to the parameter count (11.5px, ~6.4px).
    const roomPx = n.w - 22 - (ptext ? ptext.length * 6.4 + 10 : 0) - (n.compact && tag ? tag.length * 6.8 + 8 : 0);
    const room = Math.floor(roomPx / 7.9);
    const title = n.title.length > room ? `${n.title.slice(0, Math.max(3, room - 1))}…` : n.title;
    const tt = ng.append("text").attr("class", "net-type").attr("x", 10).attr("y", 19);
    tt.append("tspan").text(title);
    if (n.compact && tag) tt.append("tspan").attr("class", "net-sub net-tag").attr("dx", 8).text(tag);
    if (ptext)
      ng.append("text")
        .attr("class", `net-params${it.params === 0 ? " zero" : ""}`)
        .attr("x", n.w - 10)
        .attr("y", 19)
        .attr("text-anchor", "end")
        .text(ptext);
    if (n.compact) continue;
    const sub = ng.append("text").attr("class", "net-sub").attr("x", 10).attr("y", 37);
    if (tag) sub.append("tspan").attr("class", "net-tag").text(tag);
    const rest = n.sub ? (tag ? `  ${n.sub}` : n.sub) : "";
    const budget = n.chars - tag.length;
    if (rest) sub.append("tspan").text(rest.length > budget ? `${rest.slice(0, Math.max(1, budget - 1))}…` : rest);
  }

  for (const p of lay.pills) {
    const pg = g.append("g").attr("class", `net-pill net-pill-${p.kind}`);
    pg.append("rect").attr("x", p.x).attr("y", p.y).attr("width", p.w).attr("height", p.h).attr("rx", p.h / 2);
    pg.append("text").attr("x", p.x + p.w / 2).attr("y", p.y + p.h / 2 + 4).attr("text-anchor", "middle").text(p.text);
  }

  if (lay.message) {
    const m = lay.message;
    const mg = g.append("g").attr("class", "net-msg").attr("role", "note");
    mg.append("rect").attr("x", m.x).attr("y", m.y).attr("width", m.w).attr("height", m.h).attr("rx", 6);
    const t = mg.append("text").attr("x", m.x + 8).attr("y", m.y + 16);
    m.lines.forEach((l, i) => t.append("tspan").attr("x", m.x + 8).attr("dy", i ? 15 : 0).text(l));
  }

  // The accessible name starts with the box's visible text (WCAG 2.5.3, axe label-content-name-mismatch).
  g.selectAll("g.net-node.pickable").each(function () {
    const seen = [...this.querySelectorAll("text")].map((t) => t.textContent).join("");
    this.setAttribute("aria-label", `${seen} — ${this.getAttribute("aria-label")}`);
  });
  return { svg: svg.node(), layout: lay };
}

