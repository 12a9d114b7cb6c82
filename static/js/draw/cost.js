// Cost colouring drawn onto the dataflow graph: each node's box filled by its figure (geometry/cost.js),
// its text dark or white for contrast, and a node torch has no figure for marked "not counted". The
// fill is a CSS custom property the stylesheet reads, so the receptive field's highlight still wins
// where both apply and an export (which copies computed styles) keeps the colours.

import { costScale, nodeCosts, textOn } from "../geometry/cost.js";

const PROPS = ["--cost-fill", "--cost-text"];

function clear(g) {
  g.classList.remove("cost-on", "cost-none", "cost-zero");
  for (const p of PROPS) g.style.removeProperty(p);
  delete g.dataset.cost;
}

// Paints the drawn graph's nodes; returns the scale (null for "none").
export function paintCosts(svg, graph, trace, metricId) {
  const nodes = svg ? [...svg.querySelectorAll("g.df-node")] : [];
  svg?.classList.toggle("df-cost", metricId !== "none");
  if (!svg || metricId === "none") {
    nodes.forEach(clear);
    return null;
  }
  const costs = nodeCosts(graph, trace, metricId);
  const scale = costScale(costs.values());
  for (const g of nodes) {
    clear(g);
    const v = costs.has(g.dataset.id) ? costs.get(g.dataset.id) : null;
    const fill = scale.colour(v);
    g.classList.add("cost-on");
    if (v === null) g.classList.add("cost-none");
    else if (v === 0) g.classList.add("cost-zero");
    g.dataset.cost = v === null ? "none" : String(v);
    g.style.setProperty("--cost-fill", fill);
    g.style.setProperty("--cost-text", textOn(fill));
  }
  return scale;
}
