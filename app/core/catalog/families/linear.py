"""Identity, Linear and Bilinear: Input: (N, *, H_in) -> Output: (N, *, H_out)."""

from __future__ import annotations

from app.core.catalog import memory
from app.core.catalog.entries import inp, shape, torch_entry
from app.core.catalog.spec import Registry
from app.core.shapes.context import (
    ShapeContext,
    fmt_shape,
)
from app.core.shapes.expr import Dim, Sym
from app.core.shapes.rules import (
    same,
)


def linear(ctx: ShapeContext, *, in_name: str = "in_features", out_name: str = "out_features") -> list[list[Dim]]:
    """Input: (*, H_in) -> Output: (*, H_out), H_in = in_features."""
    shape = ctx.shape(0)
    want = ctx.arg(in_name)
    if len(shape) < 1:
        raise ctx.fail("expects input 0 to have at least 1 dimension (*, H_in), got a scalar")
    if shape[-1] != want:
        raise ctx.fail(
            f"expects the last dimension of input 0 to be {in_name}={want}, got {shape[-1]} "
            f"(input shape {fmt_shape(shape)})"
        )
    dims = ctx.dims(0)
    return [[Dim(d.name, d) for d in dims[:-1]] + [Dim("H_out", Sym(out_name, ctx.arg(out_name)))]]


def bilinear(ctx: ShapeContext) -> list[list[Dim]]:
    """Input1: (*, H_in1), Input2: (*, H_in2) -> Output: (*, H_out)."""
    s1, s2 = ctx.shape(0), ctx.shape(1)
    for i, (s, name) in enumerate(((s1, "in1_features"), (s2, "in2_features"))):
        want = ctx.arg(name)
        if not s or s[-1] != want:
            got = s[-1] if s else "a scalar"
            raise ctx.fail(f"expects the last dimension of input {i} to be {name}={want}, got {got}", i)
    if s1[:-1] != s2[:-1]:
        raise ctx.fail(
            f"expects both inputs to share their leading dimensions, got {fmt_shape(s1)} and {fmt_shape(s2)}", 1
        )
    dims = ctx.dims(0)
    return [[Dim(d.name, d) for d in dims[:-1]] + [Dim("H_out", Sym("out_features", ctx.arg("out_features")))]]


def register(reg: Registry) -> None:
    # the output is the input itself
    torch_entry(reg, "Identity", "linear", {}, [inp("(*)")], [shape(2, 3)], same).units_as_input = True
    torch_entry(
        reg,
        "Linear",
        "linear",
        {"in_features": 10, "out_features": 5},
        [inp("(N, *, H_in)")],
        [shape(5, 10)],
        linear,
        explain="linear",
    )
    torch_entry(
        reg,
        "Bilinear",
        "linear",
        {"in1_features": 10, "in2_features": 20, "out_features": 7},
        [inp("(N, *, H_in1)", name="input1"), inp("(N, *, H_in2)", name="input2")],
        [shape(5, 10), shape(5, 20)],
        bilinear,
        explain="bilinear",
        memory=memory.bilinear,
    )
