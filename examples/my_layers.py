"""An example plugin: two layers of one's own, explorable like any torch.nn layer.

Start the server with it:  layer-explorer --plugin examples/my_layers.py
(or, installed as a package, ``--plugin my_pkg.my_layers``; in Docker set
``LAYER_EXPLORER_PLUGINS=my_pkg.my_layers``).
"""

from __future__ import annotations

import torch
from torch import nn

from app.plugins import Dim, Input, Param, Sym, register_layer


@register_layer(
    family="custom",
    params=[
        Param("features", "int", required=True, minimum=1, doc="size of the last dimension"),
        Param("init_scale", "float", default=1.0, minimum=0, doc="initial value of the learnable scale"),
    ],
    inputs=[Input("x", "(N, *, H_in)")],
    example={"layer": {"features": 6}, "inputs": [{"shape": [3, 6]}], "seed": 0},
)
class ScaledTanh(nn.Module):
    """y = scale · tanh(x) + shift, with a learnable scale and shift per feature.

    Input: (N, *, H_in) -> Output: (N, *, H_in), H_in = features.
    """

    def __init__(self, features: int, init_scale: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((features,), float(init_scale)))
        self.shift = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.tanh(x) + self.shift


def _gated_rule(ctx):
    """Output: (N, *, out_features) — declared, so the UI shows the formula."""
    dims = ctx.dims(0)
    if dims[-1].v != ctx.arg("in_features"):
        raise ctx.fail(
            f"expects the last dimension of input 0 to be in_features={ctx.arg('in_features')}, got {dims[-1].v}"
        )
    return [[Dim(d.name, d) for d in dims[:-1]] + [Dim("H_out", Sym("out_features", ctx.arg("out_features")))]]


@register_layer(
    family="custom",
    inputs=[Input("x", "(N, *, H_in)")],
    example={"layer": {"in_features": 8, "out_features": 4}, "inputs": [{"shape": [2, 8]}]},
    rule=_gated_rule,
)
class GatedLinear(nn.Module):
    """y = (x·Wᵀ + b) ⊙ σ(x·Vᵀ + c): a linear map gated by a second one (GLU-style)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.value = nn.Linear(in_features, out_features, bias=bias)
        self.gate = nn.Linear(in_features, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value(x) * torch.sigmoid(self.gate(x))
