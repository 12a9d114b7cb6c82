// The network view's dataflow-graph panel: draws the API's `graph` (from /api/shape) and opens a
// module node in the layer view when the builder knows that layer (its path is an item of the
// network's config); modules inside a single module's own forward() are shown, not opened.

import { drawDataflow } from "../draw/dataflow.js";

const METHODS = {
  fx: "captured with torch.fx symbolic tracing",
  hooks: "recorded while the module ran on meta tensors (torch.fx could not trace its forward)",
  module: "a single layer",
  none: "not captured",
};

export function renderGraphPanel(root, { result, pickable, onDrill }) {
  const host = root.querySelector("#net-graph");
  const meta = root.querySelector("#net-graph-meta");
  const graph = result?.graph;
  if (!graph || !graph.nodes?.length) {
    host.replaceChildren();
    meta.textContent = graph?.omitted ? `The graph is omitted: ${graph.omitted}.` : "The graph is drawn once the shapes fit.";
    return null;
  }
  const calls = graph.nodes.filter((n) => n.op === "module").length;
  const ops = graph.nodes.filter((n) => n.op === "function" || n.op === "method").length;
  meta.textContent = `${calls} module call${calls === 1 ? "" : "s"}, ${ops} function${ops === 1 ? "" : "s"} and method${ops === 1 ? "" : "s"}; ${METHODS[graph.method] || graph.method}.`;
  host.dataset.method = graph.method;
  return drawDataflow(host, graph, {
    canPick: (node) => node.op === "module" && Boolean(pickable(node.path)),
    onPick: (node) => {
      const it = pickable(node.path);
      if (it) onDrill(it);
    },
  });
}
