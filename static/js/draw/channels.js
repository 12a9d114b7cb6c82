// Which input channels feed which output channel (the API's `channel_map`): a bipartite graph,
// groups told apart by colour, the selected output channel's links in front.

import { d3, svgIn } from "./common.js";
import { channelLayout, groupOf } from "../geometry/windows.js";

const GROUP_COLORS = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626"];

export function drawChannelMap(container, win, { selected, shownInput, onSelect, isPool }) {
  const map = win.channel_map;
  if (!Array.isArray(map)) {
    d3.select(container).selectAll("*").remove();
    return null;
  }
  const lay = channelLayout(map, win.in_channels ?? Math.max(0, ...map.flat()) + 1);
  const host = d3.select(container);
  if (!lay) {
    host.selectAll("*").remove();
    host.append("p").attr("class", "aside").text(`${win.in_channels} → ${win.out_channels} channels, ${win.groups} group(s): too many to draw.`);
    return null;
  }
  const svg = svgIn(container, lay.width, lay.height, "Channel map: input channels feeding each output channel");
  const g = svg.append("g");
  g.append("text").attr("class", "grid-title").attr("x", 8).attr("y", 14).text(isPool ? "channels (each pooled alone)" : "input ch.");
  if (!isPool) g.append("text").attr("class", "grid-title").attr("x", lay.width - 8).attr("y", 14).attr("text-anchor", "end").text("output ch.");
  const gcol = (o) => GROUP_COLORS[groupOf(map, o, win.groups) % GROUP_COLORS.length];
  const links = g.append("g").selectAll("line").data(lay.links).join("line")
    .attr("class", (d) => `ch-link${d.o === selected ? " sel" : ""}`)
    .attr("x1", (d) => lay.ins[d.i].x).attr("y1", (d) => lay.ins[d.i].y)
    .attr("x2", (d) => lay.outs[d.o].x).attr("y2", (d) => lay.outs[d.o].y)
    .attr("stroke", (d) => gcol(d.o));
  links.filter((d) => d.o === selected).raise();
  const r = Math.max(2.5, Math.min(6, lay.row / 2 - 1));
  g.append("g").selectAll("circle").data(lay.ins).join("circle")
    .attr("class", (d) => `ch-node in${d.i === shownInput ? " shown" : ""}`)
    .attr("cx", (d) => d.x).attr("cy", (d) => d.y).attr("r", r);
  if (lay.row >= 12)
    g.append("g").selectAll("text").data(lay.ins).join("text").attr("class", "idx").attr("x", (d) => d.x - r - 4).attr("y", (d) => d.y)
      .attr("text-anchor", "end").attr("dominant-baseline", "central").text((d) => d.i);
  const outs = g.append("g").selectAll("circle").data(lay.outs).join("circle")
    .attr("class", (d) => `ch-node out${d.o === selected ? " sel" : ""}`)
    .attr("cx", (d) => d.x).attr("cy", (d) => d.y).attr("r", r + 1)
    .attr("fill", (d) => gcol(d.o))
    .on("click", (e, d) => onSelect(d.o));
  outs.append("title").text((d) => `output channel ${d.o} reads input channels ${map[d.o].join(", ")}`);
  if (lay.row >= 12)
    g.append("g").selectAll("text").data(lay.outs).join("text").attr("class", "idx").attr("x", (d) => d.x + r + 5).attr("y", (d) => d.y)
      .attr("dominant-baseline", "central").text((d) => d.o);
  return svg.node();
}
