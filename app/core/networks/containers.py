"""Containers: layers made of other layers' configs (``Sequential``, ``Residual``).

Their shape rule chains the children's rules, so that a shape mismatch inside a network is found,
and named by the child's path, before anything runs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from app.core.catalog.families.tutorial import class_source
from app.core.catalog.spec import ContainerSpec, InputSpec, LayerSpec, ParamSpec, Registry
from app.core.errors import InvalidRequest, ShapeMismatch
from app.core.networks import graphnet
from app.core.networks.lower import lower, lower_residual, lower_sequential, lowered_children
from app.core.networks.ops import Shape
from app.core.networks.trace import Counted
from app.core.networks.tree import LayerNode, join
from app.core.shapes.context import fmt_shape
from app.core.shapes.expr import Dim


class Residual(torch.nn.Module):
    """``output = body(x) + shortcut(x)``; the shortcut is the identity when it is None.

    Input: whatever the body's first layer takes -> Output: the body's output shape.
    """

    def __init__(self, body: list[tuple[str, torch.nn.Module]], shortcut: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(OrderedDict(body))
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + (x if self.shortcut is None else self.shortcut(x))


def _sequential(layers: list[tuple[str, nn.Module]]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(layers))


class Chain(graphnet.Dialect):
    """How ``Sequential`` and ``Residual`` word what the graph engine finds in their lowered graphs:
    a layer's input is named by the layer it comes from ("layer 0 (Linear) outputs (4, 5)"), a
    container's trace entry follows its layers', and the output keeps the last layer's own dims."""

    entry_first = False

    def __init__(self, returns: str) -> None:
        #: the module node whose output the container returns (a residual: the body's last layer)
        self.returns = returns

    def module_input(self, ctx: graphnet.Run, nd: graphnet.NodeDef, child: LayerNode, path: str) -> None:
        one_input(child, path)

    def tuple_input(
        self, ctx: graphnet.Run, nd: graphnet.NodeDef, child: LayerNode, path: str, bad: tuple[str, Any]
    ) -> Exception:
        return one_output(ctx.children[bad[0]], join(ctx.prefix, bad[0]), f"the next layer, {path}, would receive")

    def module_error(
        self,
        ctx: graphnet.Run,
        nd: graphnet.NodeDef,
        child: LayerNode,
        path: str,
        exc: ShapeMismatch,
        values: list[tuple[str, Any]],
    ) -> ShapeMismatch:
        producer = nd.args[0].name
        previous = None
        if producer in ctx.children:
            previous = (join(ctx.prefix, producer), ctx.children[producer].spec.type)
        return _named(exc, child, path, previous, [v.dims for _, v in values], ctx.trace)

    def result(self, ctx: graphnet.Run, leaves: list[Any]) -> list[list[Dim]]:
        return ctx.dims[self.returns]


class ResidualSum(Chain):
    """The residual's sum: both sides single tensors of exactly one shape (no broadcasting)."""

    def __init__(self, node: LayerNode, returns: str) -> None:
        super().__init__(returns)
        self.node = node

    def check_op(self, ctx: graphnet.Run, nd: graphnet.NodeDef, bound: dict[str, Any]) -> None:
        prefix = ctx.prefix
        shortcut = self.node.slots.get("shortcut")
        body, short = bound["input"], bound["other"]
        if shortcut is not None and not isinstance(short, Shape):
            raise one_output(shortcut, join(prefix, "shortcut"), "the residual sum would receive")
        if not isinstance(body, Shape):
            last = self.node.slots["body"][-1]
            raise one_output(
                last, join(prefix, "body", last.name), "the residual sum body(x) + shortcut(x) would receive"
            )
        if shortcut is not None:
            what = f"the shortcut ({shortcut.spec.type}) gives {fmt_shape(short.dims)}"
        else:
            what = f"the shortcut is the identity, so it gives the input's shape {fmt_shape(short.dims)}"
        if body.dims != short.dims:
            where = f"layer {prefix} (Residual)" if prefix else "Residual"
            raise ShapeMismatch(
                f"{where}: the body outputs {fmt_shape(body.dims)} but {what}; both must match to be added. "
                f"Add a shortcut layer that maps one to the other.",
                field=self.node.field,
                path=prefix,
                trace=ctx.trace,
            )


def _predict_sequential(
    node: LayerNode,
    module: nn.Module,
    shapes: list[tuple[int, ...]],
    prefix: str,
    trace: list[dict[str, Any]],
    counted: Counted | None = None,
) -> list[list[Dim]] | None:
    """The chain's graph (:func:`lower_sequential`) through the graph engine."""
    gdef = lower(node, len(shapes))
    dialect = Chain(gdef.outputs[0])
    return graphnet.run(
        gdef, lowered_children(node), module, shapes, prefix, trace, dialect, field=node.field, counted=counted
    )


def _predict_residual(
    node: LayerNode,
    module: nn.Module,
    shapes: list[tuple[int, ...]],
    prefix: str,
    trace: list[dict[str, Any]],
    counted: Counted | None = None,
) -> list[list[Dim]] | None:
    """The residual's graph (:func:`lower_residual`) through the graph engine."""
    gdef = lower(node, len(shapes))
    dialect = ResidualSum(node, gdef.nodes[-1].bound["input"].name)
    return graphnet.run(
        gdef, lowered_children(node), module, shapes, prefix, trace, dialect, field=node.field, counted=counted
    )


def check_structure(root: LayerNode, subtrees: dict[int, int] | None = None) -> None:
    """Before anything is built: every layer a container holds can be called with one tensor.

    ``subtrees``: the configs' ids (:func:`app.core.networks.tree.subtree_ids`): a subtree identical to
    one checked already passes as that one did (a refusal would have come from the first, which the
    walk meets first)."""
    # whether a catalog entry takes one tensor, read once per entry (not once per layer of a deep network)
    single: dict[int, bool] = {}
    subtrees = subtrees or {}
    checked: set[int] = set()
    # the walk of walk(): pre-order, a container's layers in order
    stack = [("", root)]
    while stack:
        path, node = stack.pop()
        sid = subtrees.get(id(node))
        if sid is not None:
            if sid in checked:
                continue
            checked.add(sid)
        children = [(join(path, sub), child) for sub, child in node.children()]
        stack.extend(reversed(children))
        if node.spec.container is not None and node.spec.container.dataflow:
            continue  # a graph's nodes say what each layer is called with
        for child_path, child in children:
            ok = single.get(id(child.spec))
            if ok is None:
                ok = single[id(child.spec)] = sum(1 for i in child.spec.inputs if not i.optional) == 1
            if not ok:
                one_input(child, child_path)


def one_input(child: LayerNode, path: str) -> None:
    """A layer inside a network is called with one tensor: the previous layer's output."""
    required = [i for i in child.spec.inputs if not i.optional]
    if len(required) == 1:
        return
    names = ", ".join(i.name for i in required)
    if child.spec.family == "loss":
        hint = "A loss compares an output with a target: run it on its own, on the network's output."
    elif len(required) == 3:
        hint = "For self-attention inside a network, use TransformerEncoderLayer, which takes one input."
    else:
        hint = "Run it on its own, with all its inputs."
    raise InvalidRequest(
        f"layer {path} ({child.spec.type}) takes {len(required)} inputs ({names}), but inside a network each layer "
        f"is called with one tensor, the previous layer's output. {hint}",
        field=child.field,
    )


def one_output(child: LayerNode, path: str, who: str) -> ShapeMismatch:
    """A layer that returns a tuple (an LSTM's output and state) cannot feed another layer or a sum."""
    names = ", ".join(child.spec.outputs)
    return ShapeMismatch(
        f"layer {path} ({child.spec.type}) returns a tuple ({names}); {who} the whole tuple, not a tensor. "
        f"Put it last in a Sequential, or use it on its own.",
        field=child.field,
        path=path,
    )


def _named(
    exc: ShapeMismatch,
    child: LayerNode,
    path: str,
    previous: tuple[str, str] | None,
    current: list[tuple[int, ...]],
    trace: list[dict[str, Any]],
) -> ShapeMismatch:
    if exc.extra.get("path"):
        return exc
    source = f"layer {previous[0]} ({previous[1]}) outputs" if previous else "the network's input is"
    detail = exc.detail.removeprefix(child.spec.type + " ")
    shapes = ", ".join(fmt_shape(s) for s in current)
    # the arguments the message names, as fields of this child ("layer.layers[0].kernel_size")
    related = [f"{child.field}{r.removeprefix('layer')}" for r in exc.extra.get("related", [])]
    return ShapeMismatch(
        f"layer {path} ({child.spec.type}) {detail.replace('input 0', 'its input')}; {source} {shapes}",
        field=child.field,
        path=path,
        trace=trace,
        related=related,
    )


def register(registry: Registry) -> None:
    graphnet.register(registry)
    registry.add(
        LayerSpec(
            type="Sequential",
            family="container",
            factory=_sequential,
            params=[
                ParamSpec(
                    "layers", "layers", required=True, doc='the layers, applied in order; a child may carry "name"'
                )
            ],
            inputs=[InputSpec("input", "(*)")],
            example={
                "layer": {
                    "type": "Sequential",
                    "layers": [
                        {"type": "Linear", "in_features": 10, "out_features": 15},
                        {"type": "ReLU"},
                        {"type": "Linear", "in_features": 15, "out_features": 5},
                    ],
                },
                "inputs": [{"shape": [4, 10]}],
                "seed": 0,
            },
            doc="A network: its layers applied one after another, each child named by its index unless it has a name.",
            source="container",
            container=ContainerSpec(
                slots={"layers": ""}, chain=True, predict=_predict_sequential, lower=lower_sequential
            ),
            code_prelude="from collections import OrderedDict",
            code_name="torch.nn.Sequential",
        )
    )
    registry.add(
        LayerSpec(
            type="Residual",
            family="container",
            factory=Residual,
            params=[
                ParamSpec("body", "layers", required=True, doc="the layers of the main path"),
                ParamSpec("shortcut", "layer", nullable=True, doc="a layer on the skip path; null for the identity"),
            ],
            inputs=[InputSpec("input", "(*)")],
            example={
                "layer": {
                    "type": "Residual",
                    "body": [
                        {"type": "Linear", "in_features": 8, "out_features": 8},
                        {"type": "ReLU"},
                        {"type": "Linear", "in_features": 8, "out_features": 8},
                    ],
                    "shortcut": None,
                },
                "inputs": [{"shape": [4, 8]}],
                "seed": 0,
            },
            doc="A residual wrapper: output = body(x) + shortcut(x), the shortcut being the identity when null.",
            source="container",
            container=ContainerSpec(
                slots={"body": "body", "shortcut": "shortcut"}, predict=_predict_residual, lower=lower_residual
            ),
            code_prelude=class_source(Residual, "from collections import OrderedDict"),
            code_name="Residual",
        )
    )
