"""Lowering: ``Sequential`` and ``Residual`` are sugar over the dataflow graph.

A chain ``Sequential(a, b, c)`` is the graph ``a(x) -> b -> c``; ``Residual(body, shortcut)`` is the
graph ``body.0(x) -> ... -> body.k``, ``shortcut(x)`` and ``add(body.k, shortcut)``. These pure
functions turn a validated config tree into that graph (:class:`~app.core.networks.graphnet.GraphDef`),
each module node named by its module path inside the container ("0", "layer1", "body.0",
"shortcut"), so that one engine (:func:`app.core.networks.graphnet.run`) predicts the shapes, records
the trace and finds the shape errors of every network. Node names here are module paths, not Python
identifiers: the lowered graph is the engine's input, never a request.
"""

from __future__ import annotations

from app.core.networks.graphnet import GraphDef, NodeDef, Ref
from app.core.networks.tree import LayerNode, join

#: the name of a residual's sum node: not an attribute name, so it cannot meet a module path
SUM = "+"


def input_names(count: int) -> list[str]:
    """A lowered container's inputs: the first is "x"; optional extra inputs (an LSTM's state) follow."""
    return ["x"] + [f"x{i}" for i in range(1, count)]


def chain(children: list[tuple[str, LayerNode]], inputs: list[str], prefix: str = "") -> tuple[list[NodeDef], str]:
    """Each child called with the previous one's output (the first with all the inputs)."""
    nodes: list[NodeDef] = []
    args: list[Ref] = [Ref(i) for i in inputs]
    for path, child in children:
        name = join(prefix, path)
        nodes.append(NodeDef(name, "module", child.field, args=list(args)))
        args = [Ref(name)]
    return nodes, nodes[-1].name


def lower_sequential(node: LayerNode, count: int) -> GraphDef:
    inputs = input_names(count)
    nodes, last = chain(list(node.children()), inputs)
    return GraphDef(inputs, nodes, [last])


def lower_residual(node: LayerNode, count: int) -> GraphDef:
    inputs = input_names(count)
    body, last = chain([(c.name, c) for c in node.slots["body"]], inputs, prefix="body")
    nodes = list(body)
    other = inputs[0]
    shortcut = node.slots.get("shortcut")
    if shortcut is not None:
        nodes.append(NodeDef("shortcut", "module", shortcut.field, args=[Ref(i) for i in inputs]))
        other = "shortcut"
    nodes.append(
        NodeDef(
            SUM, "op", node.field, op="add", bound={"input": Ref(last), "other": Ref(other)}, given=["input", "other"]
        )
    )
    return GraphDef(inputs, nodes, [SUM])


def lower(node: LayerNode, count: int = 1) -> GraphDef:
    """The graph a container config stands for, called with ``count`` inputs (its spec says how)."""
    container = node.spec.container
    if container is None or container.lower is None:
        raise ValueError(f"{node.spec.type} is not sugar over a graph")
    return container.lower(node, count)


def lowered_children(node: LayerNode) -> dict[str, LayerNode]:
    """The lowered graph's module nodes by node name (their module paths inside the container)."""
    return dict(node.children())
