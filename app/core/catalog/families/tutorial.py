"""The tutorial's own layers, with its exact parameter names and initialisation order, so that its
seeded numbers reproduce: ``BasicLinear`` and ``SimpleResidualBlock``.
"""

from __future__ import annotations

import inspect

import torch

from app.core.catalog.families.linear import linear
from app.core.catalog.spec import InputSpec, LayerSpec, ParamSpec, Registry
from app.core.shapes.context import ShapeContext
from app.core.shapes.expr import Dim


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


def class_source(cls: type, *imports: str) -> str:
    """The class's own source: the reproduction script runs exactly the code the server ran."""
    return "\n".join([*imports, "", "", inspect.getsource(cls)]) if imports else inspect.getsource(cls)


def _basic_linear_rule(ctx: ShapeContext) -> list[list[Dim]]:
    return linear(ctx, in_name="input_features", out_name="output_features")


def _residual_block_rule(ctx: ShapeContext) -> list[list[Dim]]:
    return linear(ctx)


def register(registry: Registry) -> None:
    registry.add(
        LayerSpec(
            type="BasicLinear",
            family="custom",
            factory=BasicLinear,
            params=[
                ParamSpec("input_features", "int", required=True, minimum=1, doc="size of each input sample"),
                ParamSpec("output_features", "int", required=True, minimum=1, doc="size of each output sample"),
            ],
            inputs=[InputSpec("x", "(N, *, H_in)")],
            example={
                "layer": {"type": "BasicLinear", "input_features": 10, "output_features": 5},
                "inputs": [{"shape": [5, 10]}],
                "seed": 42,
            },
            doc="The tutorial's custom layer: y = x·Aᵀ + b with Parameters `weights` (out, in) and `bias` (out) drawn with torch.randn.",
            rule=_basic_linear_rule,
            explain="linear",
            source="custom",
            code_prelude=class_source(BasicLinear),
            code_name="BasicLinear",
        )
    )
    registry.add(
        LayerSpec(
            type="SimpleResidualBlock",
            family="custom",
            factory=SimpleResidualBlock,
            params=[
                ParamSpec("in_features", "int", required=True, minimum=1),
                ParamSpec("out_features", "int", required=True, minimum=1),
            ],
            inputs=[InputSpec("x", "(N, *, H_in)")],
            example={
                "layer": {"type": "SimpleResidualBlock", "in_features": 10, "out_features": 20},
                "inputs": [{"shape": [5, 10]}],
                "seed": 42,
            },
            doc="The tutorial's residual block: fc2(relu(fc1(x))) + downsample(x), with a Linear downsample only when the sizes differ.",
            rule=_residual_block_rule,
            source="custom",
            code_prelude=class_source(SimpleResidualBlock),
            code_name="SimpleResidualBlock",
        )
    )
