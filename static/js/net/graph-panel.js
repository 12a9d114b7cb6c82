// The network view's dataflow-graph panel: draws the API's `graph` (from /api/shape) and opens a
// module node in the layer view on the input it received: a layer of the builder as the flow diagram
// does, and a module built inside another one (the tutorial block's fc1) by the config the server read
// back from it (see innerField in model.js).

import { drawDataflow } from "../draw/dataflow.js";
import { innerField, rememberInner, walk } from "./model.js";

const METHODS = {
  fx: "captured with torch.fx symbolic tracing",
  hooks: "recorded while the module ran on meta tensors (torch.fx could not trace its forward)",
  module: "a single layer",
  none: "not captured",
};

// The deepest item of the builder whose module contains `path` (the root, "layer", contains all).
function enclosing(builder, path) {
  let best = null;
  for (const it of builder ? walk(builder.root) : []) {
    if (it.path !== "" && !path.startsWith(`${it.path}.`)) continue;
    if (!best || it.path.length > best.path.length) best = it;
  }
  return best?.field ?? "layer";
}

// `tools` (graph-tools.js): a click selects a node, whose details (and the drill-down) sit beside the
// graph, a double click opens it; the view zooms and pans, and the nodes take the cost colouring.
export function renderGraphPanel(root, { result, builder, pickable, onDrill, onDrillInner, onOther = null, tools = null }) {
  const host = root.querySelector("#net-graph");
  const meta = root.querySelector("#net-graph-meta");
  const graph = result?.graph;
  if (!graph || !graph.nodes?.length) {
    host.replaceChildren();
    tools?.update({});
    meta.textContent = graph?.omitted ? `The graph is omitted: ${graph.omitted}.` : "The graph is drawn once the shapes fit.";
    return null;
  }
  const calls = graph.nodes.filter((n) => n.op === "module").length;
  const ops = graph.nodes.filter((n) => n.op === "function" || n.op === "method").length;
  meta.textContent = `${calls} module call${calls === 1 ? "" : "s"} and ${ops} function or method call${ops === 1 ? "" : "s"}; ${METHODS[graph.method] || graph.method}.`;
  host.dataset.method = graph.method;
  const traceOf = new Map((result.trace || []).map((t) => [t.path, t]));
  const inner = (node) => {
    const entry = traceOf.get(node.path);
    return node.config && entry?.input_shapes?.length ? entry : null;
  };
  const canPick = (node) => node.op === "module" && Boolean(pickable(node.path) || inner(node));
  const drill = (node) => {
    const it = pickable(node.path);
    if (it) return onDrill(it);
    const entry = inner(node);
    if (!entry) return;
    const field = innerField(enclosing(builder, node.path), node.path);
    rememberInner(field, node.config);
    onDrillInner({ field, path: node.path, inputs: entry.input_shapes.map((s) => [...s]), type: node.type });
  };
  if (!tools) return drawDataflow(host, graph, { onOther, canPick, onPick: drill });
  const lay = drawDataflow(host, graph, {
    canPick,
    onPick: (node) => tools.select(node),
    pickLabel: "show its details beside the graph",
    // a node for the receptive field is chosen, and selected, with one click
    onOther: onOther
      ? (node) => {
          tools.select(node);
          onOther(node);
        }
      : null,
    onNode: (ng, n) => ng.on("dblclick", () => canPick(n.node) && drill(n.node)),
  });
  tools.update({ graph, lay, result, drill, canDrill: canPick, onOther });
  return lay;
}
