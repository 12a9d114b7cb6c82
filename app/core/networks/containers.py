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
from app.core.networks.trace import trace_entry
from app.core.networks.tree import LayerNode, join, predict, walk
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


def _ints(dims: list[Dim]) -> tuple[int, ...]:
    return tuple(d.expr.int_value() for d in dims)


def _chain(
    node: LayerNode, module: nn.Module, shapes: list[tuple[int, ...]], prefix: str, trace: list[dict[str, Any]]
) -> list[list[Dim]] | None:
    """Apply each child's rule in turn; a child that rejects its input is named by its path."""
    current = [tuple(s) for s in shapes]
    outputs: list[list[Dim]] | None = []
    previous: tuple[str, str] | None = None
    children = list(node.children())
    for k, (path, child) in enumerate(children):
        full = join(prefix, path)
        child_module = module.get_submodule(path)
        one_input(child, full)
        try:
            outputs = predict(child, child_module, current, prefix=full, trace=trace)
        except ShapeMismatch as exc:
            raise _named(exc, child, full, previous, current, trace) from None
        if outputs is None:  # no formula for this child: the meta pass and the real run decide
            return None
        out_shapes = [_ints(dims) for dims in outputs]
        trace.append(trace_entry(full, child_module, child.spec.type, current, out_shapes))
        if len(out_shapes) > 1 and k < len(children) - 1:
            raise one_output(child, full, f"the next layer, {join(prefix, children[k + 1][0])}, would receive")
        current = out_shapes
        previous = (full, child.spec.type)
    return outputs


def check_structure(root: LayerNode) -> None:
    """Before anything is built: every layer a container holds can be called with one tensor."""
    for path, node in walk(root):
        if node.spec.container is not None and node.spec.container.dataflow:
            continue  # a graph's nodes say what each layer is called with
        for child_path, child in node.children():
            one_input(child, join(path, child_path))


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


def _residual(
    node: LayerNode, module: nn.Module, shapes: list[tuple[int, ...]], prefix: str, trace: list[dict[str, Any]]
) -> list[list[Dim]] | None:
    body_node = LayerNode(
        spec=_BODY, args={}, slots={"layers": node.slots["body"]}, name="body", field=f"{node.field}.body"
    )
    body = _chain(body_node, module.body, shapes, join(prefix, "body"), trace)
    shortcut = node.slots.get("shortcut")
    short = None
    if shortcut is not None:
        one_input(shortcut, join(prefix, "shortcut"))
        try:
            short = predict(shortcut, module.shortcut, shapes, prefix=join(prefix, "shortcut"), trace=trace)
        except ShapeMismatch as exc:
            raise _named(exc, shortcut, join(prefix, "shortcut"), None, list(shapes), trace) from None
        if short is not None and len(short) > 1:
            raise one_output(shortcut, join(prefix, "shortcut"), "the residual sum would receive")
    if body is not None and len(body) > 1:
        last_path, last = list(body_node.children())[-1]
        raise one_output(last, join(prefix, "body", last_path), "the residual sum body(x) + shortcut(x) would receive")
    if body is None or (shortcut is not None and short is None):
        return None
    body_shape = _ints(body[0])
    if short is not None:
        short_shape = _ints(short[0])
        what = f"the shortcut ({shortcut.spec.type}) gives {fmt_shape(short_shape)}"
    else:
        short_shape = tuple(shapes[0])
        what = f"the shortcut is the identity, so it gives the input's shape {fmt_shape(short_shape)}"
    if body_shape != short_shape:
        where = f"layer {prefix} (Residual)" if prefix else "Residual"
        raise ShapeMismatch(
            f"{where}: the body outputs {fmt_shape(body_shape)} but {what}; both must match to be added. "
            f"Add a shortcut layer that maps one to the other.",
            field=node.field,
            path=prefix,
            trace=trace,
        )
    return body


# A Residual's body is a chain of its own, under the module path "body".
_BODY = LayerSpec(
    type="Sequential",
    family="container",
    factory=_sequential,
    params=[],
    inputs=[],
    example={},
    container=ContainerSpec(slots={"layers": ""}, chain=True, predict=_chain),
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
            container=ContainerSpec(slots={"layers": ""}, chain=True, predict=_chain),
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
            container=ContainerSpec(slots={"body": "body", "shortcut": "shortcut"}, predict=_residual),
            code_prelude=class_source(Residual, "from collections import OrderedDict"),
            code_name="Residual",
        )
    )
