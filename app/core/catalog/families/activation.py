"""Element-wise activations (ReLU, GELU, Softmax, ...) and GLU: Input: (*) -> Output: (*)."""

from __future__ import annotations

from typing import Any

from app.core.catalog.entries import inp, shape, torch_entry
from app.core.catalog.spec import Registry
from app.core.shapes.context import (
    ShapeContext,
    fmt_shape,
)
from app.core.shapes.expr import Dim, floor_div
from app.core.shapes.rules import (
    same,
)

# Element-wise activations: constructor arguments (if any) for the example.
_ACTIVATIONS: dict[str, dict[str, Any]] = {
    "ReLU": {},
    "ReLU6": {},
    "LeakyReLU": {},
    "ELU": {},
    "CELU": {},
    "SELU": {},
    "GELU": {},
    "SiLU": {},
    "Mish": {},
    "Sigmoid": {},
    "Tanh": {},
    "Hardtanh": {},
    "Hardsigmoid": {},
    "Hardswish": {},
    "Hardshrink": {},
    "Softshrink": {},
    "Tanhshrink": {},
    "Softsign": {},
    "Softplus": {},
    "LogSigmoid": {},
    "Threshold": {"threshold": 0.1, "value": 20.0},
    "RReLU": {},
    "PReLU": {},
    "Softmax": {"dim": -1},
    "Softmin": {"dim": -1},
    "LogSoftmax": {"dim": -1},
    "Softmax2d": {},
}


#: activations whose output is a distribution over a dimension (probabilities or their logs), not
#: the input's values mapped one by one: their outputs are not in the input's units
_DISTRIBUTIONS = {"Softmax", "Softmin", "LogSoftmax", "Softmax2d"}


def register(reg: Registry) -> None:
    for name, args in _ACTIVATIONS.items():
        convention = "(N, C, H, W)" if name == "Softmax2d" else "(*)"
        example = [shape(1, 3, 4, 4)] if name == "Softmax2d" else [shape(2, 5)]
        overrides: dict[str, dict[str, Any]] = {}
        if name == "GELU":
            overrides["approximate"] = {"choices": ["none", "tanh"]}
        spec = torch_entry(reg, name, "activation", args, [inp(convention)], example, same, params=overrides)
        if name in _DISTRIBUTIONS:
            spec.units_as_input = False
    torch_entry(
        reg,
        "GLU",
        "activation",
        {"dim": -1},
        [inp("(*, N, *)")],
        [shape(2, 6)],
        _glu,
    )


def _glu(ctx: ShapeContext) -> list[list[Any]]:
    """Output: (*, N/2, *) — the chosen dimension is halved."""
    dim = ctx.arg("dim", -1)
    dims = ctx.dims(0)
    axis = dim % len(dims) if dims else 0
    if not dims or dims[axis].v % 2:
        raise ctx.fail(f"halves dimension {dim}, so it must have an even size; input shape {fmt_shape(ctx.shape(0))}")
    out = [Dim(d.name, d) for d in dims]
    out[axis] = Dim(dims[axis].name, floor_div(dims[axis], 2))
    return [out]
