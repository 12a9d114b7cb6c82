// The generic diagram for every layer without a family drawing: input tensors → the layer box
// listing its parameters → output tensors, dimensions as coloured chips.

import { svgIn, appendLabel, arrow, elbowArrow } from "./common.js";
import { flowLayout } from "../geometry/flow.js";
import { genericModel } from "../geometry/dims.js";

function drawTensor(g, t, colorOf) {
  const tg = g.append("g").attr("class", `tensor tensor-${t.kind}`).attr("transform", `translate(${t.x},${t.y})`);
  tg.append("rect").attr("class", "tensor-box").attr("width", t.w).attr("height", t.h).attr("rx", 6);
  tg.append("text").attr("class", "tensor-name").attr("x", 10).attr("y", 17).text(t.name);
  for (const c of t.chips) {
    const color = c.key === "scalar" ? "#94a3b8" : colorOf(c.key);
    tg.append("rect").attr("class", "chip").attr("x", c.x).attr("y", 25).attr("width", c.w).attr("height", 22).attr("rx", 4).attr("stroke", color).attr("fill", "#fff");
    const tx = tg.append("text").attr("class", "chip-text").attr("x", c.x + c.w / 2).attr("y", 40).attr("text-anchor", "middle").attr("fill", color);
    appendLabel(tx, c.label);
    if (c.size !== "") tx.append("tspan").attr("baseline-shift", "0").text(`=${c.size}`);
  }
}

export function drawFlow(container, run, { colorOf, width, layerType, entry, args }) {
  const model = genericModel(run, entry, args);
  const lay = flowLayout(model, layerType, { width });
  const svg = svgIn(container, lay.width, lay.height, `${layerType}: ${model.inputs.map((t) => t.shape.join("×")).join(", ")} → ${model.outputs.map((t) => t.shape.join("×")).join(", ")}`);
  const g = svg.append("g");
  const L = lay.layer;
  const lg = g.append("g").attr("class", "layer-box");
  lg.append("rect").attr("x", L.x).attr("y", L.y).attr("width", L.w).attr("height", L.h).attr("rx", 10);
  lg.append("text").attr("class", "layer-name").attr("x", L.x + 12).attr("y", L.y + 22).text(layerType);
  if (!L.params.length) lg.append("text").attr("class", "aside").attr("x", L.x + 12).attr("y", L.y + 36).text("no parameters");
  for (const p of L.params) drawTensor(g, p, colorOf);
  for (const t of lay.inputs) {
    drawTensor(g, t, colorOf);
    if (lay.horizontal) arrow(g, t.x + t.w + 4, t.y + t.h / 2, L.x - 6, L.y + L.h / 2);
    else arrow(g, t.x + t.w / 2, t.y + t.h + 4, L.x + L.w / 2, L.y - 6);
  }
  // Outputs stacked one under another (a tuple too wide for one row): elbow arrows along the left, so
  // no arrow runs through the box above it.
  const stacked = !lay.horizontal && new Set(lay.outputs.map((t) => t.y)).size > 1;
  const railX = Math.max(4, Math.min(...lay.outputs.map((t) => t.x)) - 16);
  for (const t of lay.outputs) {
    drawTensor(g, t, colorOf);
    if (lay.horizontal) arrow(g, L.x + L.w + 4, L.y + L.h / 2, t.x - 6, t.y + t.h / 2);
    else if (stacked) {
      const x0 = L.x + 20;
      const y0 = L.y + L.h + 4;
      const drop = [[x0, y0], [x0, y0 + 16], [railX, y0 + 16]];
      elbowArrow(g, [...(x0 <= railX ? [[x0, y0]] : drop), [x0 <= railX ? x0 : railX, t.y + t.h / 2], [t.x - 4, t.y + t.h / 2]]);
    }
    else arrow(g, L.x + L.w / 2, L.y + L.h + 4, t.x + t.w / 2, t.y - 6);
  }
  return { highlight() {}, svg: svg.node() };
}
