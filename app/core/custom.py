"""The tutorial's own layers and the containers that compose layers into networks.

``BasicLinear`` and ``SimpleResidualBlock`` are the tutorial's classes with its exact parameter
names and initialisation order, so that its seeded numbers reproduce. ``Sequential`` and
``Residual`` take nested layer configs; their shape rule chains the children's rules, so a shape
mismatch inside a network is found (and named by the child's path) before anything runs.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from app.core import rules
from app.core.catalog import InputSpec, LayerSpec, ParamSpec, Registry
from app.core.errors import ShapeMismatch
from app.core.expr import Dim

class BasicLinear(torch.nn.Module):
    """The tutorial's custom linear layer: ``y = x · weightsᵀ + bias``, both drawn with ``torch.randn``.

    Input: (N, *, input_features) -> Output: (N, *, output_features).
    """

    def __init__(self, input_features: int, output_features: int) -> None:
        super().__init__()
        self.weights = torch.nn.Parameter(torch.randn(size=(output_features, input_features)), requires_grad=True)
        self.bias = torch.nn.Parameter(torch.randn(size=(output_features,), dtype=torch.float32), requires_grad=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.weights.t()) + self.bias


class SimpleResidualBlock(torch.nn.Module):
    """The tutorial's residual block: ``fc2(relu(fc1(x))) + downsample(x)`` (identity when sizes match).

    Input: (N, *, in_features) -> Output: (N, *, out_features).
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.fc1 = torch.nn.Linear(in_features=in_features, out_features=out_features)
        self.fc2 = torch.nn.Linear(in_features=out_features, out_features=out_features)
        self.relu = torch.nn.ReLU()
        self.downsample = None
        if in_features != out_features:
            self.downsample = torch.nn.Linear(in_features=in_features, out_features=out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.fc1(x)
        out = self.relu(out)
        out = self.fc2(out)
        if self.downsample is not None:
            identity = self.downsample(identity)
        out += identity
        return out


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


def _source(cls: type, *imports: str) -> str:
    """The class's own source: the reproduction script runs exactly the code the server ran."""
    return "\n".join([*imports, "", "", inspect.getsource(cls)]) if imports else inspect.getsource(cls)


def _sequential(layers: list[tuple[str, nn.Module]]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(layers))


# ---------------------------------------------------------------------------------------------
# shape rules
# ---------------------------------------------------------------------------------------------


def _features_rule(in_name: str, out_name: str):
    def rule(ctx: rules.ShapeContext) -> list[list[Dim]]:
        return rules.linear(ctx, in_name=in_name, out_name=out_name)

    return rule


def _fmt(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join(rules.fmt_shape(s) for s in shapes)


def chain(children: list[tuple[str, LayerSpec, dict[str, Any]]], container: nn.Module,
          shapes: list[tuple[int, ...]], prefix: str, trace: list[dict[str, Any]],
          field: str = "layer.layers") -> list[list[Dim]]:
    """Apply each child's rule in turn; a child that rejects its input is named by its path."""
    current = [tuple(s) for s in shapes]
    outputs: list[list[Dim]] = []
    prev: tuple[str, str] | None = None
    for i, (name, spec, kwargs) in enumerate(children):
        path = f"{prefix}{name}"
        module = container._modules[name]
        try:
            outputs = predict(spec, module, kwargs, current, prefix=f"{path}.", trace=trace, field=f"{field}[{i}]")
        except ShapeMismatch as exc:
            if exc.extra.get("path"):
                raise
            source = f"layer {prev[0]} ({prev[1]}) outputs" if prev else "the network's input is"
            detail = exc.detail
            if detail.startswith(spec.type + " "):
                detail = detail[len(spec.type) + 1 :]
            raise ShapeMismatch(
                f"layer {path} ({spec.type}) {detail.replace('input 0', 'its input')}; {source} {_fmt(current)}",
                field=f"{field}[{i}]",
                path=path,
                trace=trace,
            ) from None
        out_shapes = [tuple(d.expr.int_value() for d in dims) for dims in outputs]
        trace.append({"path": path, "type": spec.type, "depth": path.count("."),
                      "leaf": not any(True for _ in module.children()),
                      "input_shapes": [list(s) for s in current],
                      "output_shape": list(out_shapes[0]) if out_shapes else None,
                      "output_shapes": [list(s) for s in out_shapes],
                      "param_count": sum(p.numel() for p in module.parameters()),
                      # predicted, not run: no multiply-add count or activation size
                      "macs": None, "activation_bytes": None})
        # Sequential passes only the first output on (an LSTM's output, not its state)
        current = out_shapes[:1]
        prev = (path, spec.type)
    return outputs


def predict(spec: LayerSpec, module: nn.Module, kwargs: dict[str, Any], shapes: list[tuple[int, ...]], *,
            prefix: str = "", trace: list[dict[str, Any]] | None = None, field: str = "layer") -> list[list[Dim]]:
    ctx = rules.ShapeContext(spec=spec, module=module, args=kwargs, shapes=list(shapes))
    trace = trace if trace is not None else []
    if spec.type == "Sequential":
        return chain(kwargs["layers"], module, shapes, prefix, trace, f"{field}.layers")
    if spec.type == "Residual":
        return _residual(ctx, prefix, trace, field)
    if spec.rule is None:
        raise ShapeMismatch(f"{spec.type} has no shape rule")
    return spec.rule(ctx)


def _sequential_rule(ctx: rules.ShapeContext) -> list[list[Dim]]:
    trace: list[dict[str, Any]] = []
    return chain(ctx.args["layers"], ctx.module, ctx.shapes, "", trace, "layer.layers")


def _residual(ctx: rules.ShapeContext, prefix: str, trace: list[dict[str, Any]], field: str = "layer") -> list[list[Dim]]:
    body = chain(ctx.args["body"], ctx.module.body, ctx.shapes, f"{prefix}body.", trace, f"{field}.body")
    body_shape = tuple(d.expr.int_value() for d in body[0])
    shortcut = ctx.args.get("shortcut")
    if shortcut is not None:
        spec, kwargs = shortcut
        short = predict(spec, ctx.module.shortcut, kwargs, ctx.shapes, prefix=f"{prefix}shortcut.", trace=trace,
                        field=f"{field}.shortcut")
        short_shape = tuple(d.expr.int_value() for d in short[0])
        what = f"the shortcut ({spec.type}) gives {rules.fmt_shape(short_shape)}"
    else:
        short_shape = tuple(ctx.shapes[0])
        what = f"the shortcut is the identity, so it gives the input's shape {rules.fmt_shape(short_shape)}"
    if body_shape != short_shape:
        raise ShapeMismatch(
            f"{'layer ' + prefix.rstrip('.') + ' (Residual)' if prefix else 'Residual'}: the body outputs {rules.fmt_shape(body_shape)} but {what}; "
            f"both must match to be added. Add a shortcut layer that maps one to the other.",
            field=field,
            path=prefix.rstrip(".") or "",
            trace=trace,
        )
    return body


def _residual_rule(ctx: rules.ShapeContext) -> list[list[Dim]]:
    return _residual(ctx, "", [])


def _residual_block_rule(ctx: rules.ShapeContext) -> list[list[Dim]]:
    return rules.linear(ctx)


# ---------------------------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------------------------


def _first_leaf_inputs(children: list[tuple[str, LayerSpec, dict[str, Any]]]) -> list[InputSpec] | None:
    for _, spec, kwargs in children:
        if spec.type == "Sequential":
            found = _first_leaf_inputs(kwargs["layers"])
        elif spec.type == "Residual":
            found = _first_leaf_inputs(kwargs["body"])
        else:
            found = spec.inputs
        if found:
            return found
    return None


def specialise(spec: LayerSpec, kwargs: dict[str, Any]) -> LayerSpec:
    """A container's inputs are its first layer's inputs (kind and convention included)."""
    if spec.type == "Sequential":
        children = kwargs.get("layers", [])
    elif spec.type == "Residual":
        children = kwargs.get("body", [])
    else:
        return spec
    inputs = _first_leaf_inputs(children)
    outputs = spec.outputs
    if spec.type == "Sequential" and children:
        last = children[-1][1]
        outputs = specialise(last, children[-1][2]).outputs
    return dataclasses.replace(spec, inputs=inputs or spec.inputs, outputs=outputs)


def register_all(registry: Registry) -> None:
    registry.add(LayerSpec(
        type="BasicLinear", family="custom", factory=BasicLinear,
        params=[
            ParamSpec("input_features", "int", required=True, minimum=1, doc="size of each input sample"),
            ParamSpec("output_features", "int", required=True, minimum=1, doc="size of each output sample"),
        ],
        inputs=[InputSpec("x", "(N, *, H_in)")],
        example={"layer": {"type": "BasicLinear", "input_features": 10, "output_features": 5},
                 "inputs": [{"shape": [5, 10]}], "seed": 42},
        doc="The tutorial's custom layer: y = x·Aᵀ + b with Parameters `weights` (out, in) and `bias` (out) drawn with torch.randn.",
        rule=_features_rule("input_features", "output_features"), explain="linear", source="custom",
        code_prelude=_source(BasicLinear), code_name="BasicLinear",
    ))
    registry.add(LayerSpec(
        type="SimpleResidualBlock", family="custom", factory=SimpleResidualBlock,
        params=[
            ParamSpec("in_features", "int", required=True, minimum=1),
            ParamSpec("out_features", "int", required=True, minimum=1),
        ],
        inputs=[InputSpec("x", "(N, *, H_in)")],
        example={"layer": {"type": "SimpleResidualBlock", "in_features": 10, "out_features": 20},
                 "inputs": [{"shape": [5, 10]}], "seed": 42},
        doc="The tutorial's residual block: fc2(relu(fc1(x))) + downsample(x), with a Linear downsample only when the sizes differ.",
        rule=_residual_block_rule, source="custom",
        code_prelude=_source(SimpleResidualBlock), code_name="SimpleResidualBlock",
    ))
    registry.add(LayerSpec(
        type="Sequential", family="container", factory=_sequential,
        params=[ParamSpec("layers", "layers", required=True, doc="the layers, applied in order; a child may carry \"name\"")],
        inputs=[InputSpec("input", "(*)")],
        example={"layer": {"type": "Sequential", "layers": [
            {"type": "Linear", "in_features": 10, "out_features": 15},
            {"type": "ReLU"},
            {"type": "Linear", "in_features": 15, "out_features": 5},
        ]}, "inputs": [{"shape": [4, 10]}], "seed": 0},
        doc="A network: its layers applied one after another, each child named by its index unless it has a name.",
        rule=_sequential_rule, source="container",
        code_prelude="from collections import OrderedDict", code_name="torch.nn.Sequential",
    ))
    registry.add(LayerSpec(
        type="Residual", family="container", factory=Residual,
        params=[
            ParamSpec("body", "layers", required=True, doc="the layers of the main path"),
            ParamSpec("shortcut", "layer", nullable=True, doc="a layer on the skip path; null for the identity"),
        ],
        inputs=[InputSpec("input", "(*)")],
        example={"layer": {"type": "Residual", "body": [
            {"type": "Linear", "in_features": 8, "out_features": 8},
            {"type": "ReLU"},
            {"type": "Linear", "in_features": 8, "out_features": 8},
        ], "shortcut": None}, "inputs": [{"shape": [4, 8]}], "seed": 0},
        doc="A residual wrapper: output = body(x) + shortcut(x), the shortcut being the identity when null.",
        rule=_residual_rule, source="container",
        code_prelude=_source(Residual, "from collections import OrderedDict"), code_name="Residual",
    ))
