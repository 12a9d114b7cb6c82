"""Pooling: max, average, LP, adaptive, fractional max pooling and max-unpooling."""

from __future__ import annotations

from typing import Any

import torch

from app.core.catalog import guards
from app.core.catalog.entries import EXAMPLE_SPATIAL, data, hooked, inp, shape, torch_entry
from app.core.catalog.spec import Registry
from app.core.errors import ShapeMismatch
from app.core.shapes.context import (
    SPATIAL_LETTERS,
    ShapeContext,
    fmt_shape,
    keep,
    ntuple,
    sym_list,
    syms,
)
from app.core.shapes.expr import Dim, Expr, ScaledFloor, Sym, ceil_div, floor_div, lift
from app.core.shapes.rules import (
    Rule,
    check_positive,
    check_spatial_rank,
    lead,
    spatial_in,
)

_SPATIAL = {1: "(N, C, L_in)", 2: "(N, C, H_in, W_in)", 3: "(N, C, D_in, H_in, W_in)"}
_POOL_CONVENTION = {
    1: "(N, C, L_in) or (C, L_in)",
    2: "(N, C, H_in, W_in) or (C, H_in, W_in)",
    3: "(N, C, D_in, H_in, W_in) or (C, D_in, H_in, W_in)",
}


def pool(n: int, *, has_padding: bool = True, has_dilation: bool = True) -> Rule:
    """Max/avg/LP pooling: out = ⌊(in + 2p − d(k − 1) − 1)/s⌋ + 1 (⌈…⌉ with ceil_mode)."""

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        batched = check_spatial_rank(ctx, n, channels=None)
        spatial = spatial_in(ctx, n, batched)
        names = SPATIAL_LETTERS[n]
        k = sym_list("kernel_size", ctx.arg("kernel_size"), n)
        stride = ctx.arg("stride")
        s = sym_list("stride", ctx.arg("stride"), n) if stride not in (None, (), []) else k
        p = sym_list("padding", ctx.arg("padding"), n) if has_padding else [lift(0)] * n
        d = sym_list("dilation", ctx.arg("dilation"), n) if has_dilation else [lift(1)] * n
        ceil = bool(ctx.arg("ceil_mode", False))
        for j in range(n):
            if has_padding and p[j].int_value() * 2 > k[j].int_value():
                raise ShapeMismatch(
                    f"{ctx.type}: padding ({p[j].int_value()}) should be at most half of kernel_size "
                    f"({k[j].int_value()})",
                    field="layer.padding",
                )
        out: list[Dim] = []
        for j in range(n):
            span = spatial[j] + 2 * p[j] - d[j] * (k[j] - 1) - 1
            if ceil:
                expr = ceil_div(span, s[j]) + 1
                # torch drops a last window that would start inside the right padding
                if (expr.int_value() - 1) * s[j].int_value() >= spatial[j].int_value() + p[j].int_value():
                    expr = expr - 1
            else:
                expr = floor_div(span, s[j]) + 1
            out.append(Dim(f"{names[j]}_out", expr))
        channel = Dim("C", Sym("C", ctx.shape(0)[1 if batched else 0]))
        return [lead(ctx, batched, channel) + check_positive(ctx, out)]

    return rule


def adaptive_pool(n: int) -> Rule:
    """Output spatial size is output_size (None keeps the input's size)."""

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        batched = check_spatial_rank(ctx, n, channels=None)
        spatial = spatial_in(ctx, n, batched)
        names = SPATIAL_LETTERS[n]
        sizes = ntuple(ctx.arg("output_size"), n)
        out = []
        for j in range(n):
            name = "output_size" if n == 1 else f"output_size[{j}]"
            out.append(Dim(f"{names[j]}_out", spatial[j] if sizes[j] is None else Sym(name, int(sizes[j]))))
        channel = Dim("C", Sym("C", ctx.shape(0)[1 if batched else 0]))
        outputs = [lead(ctx, batched, channel) + out]
        if ctx.arg("return_indices", False):
            outputs.append(list(outputs[0]))
        return outputs

    return rule


def with_indices(rule: Rule) -> Rule:
    """Max pools with return_indices=True also return indices shaped like the output."""

    def wrapped(ctx: ShapeContext) -> list[list[Dim]]:
        outputs = rule(ctx)
        if ctx.arg("return_indices", False):
            outputs.append(list(outputs[0]))
        return outputs

    return wrapped


def _fractional_rule(n: int) -> Rule:
    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        """out = output_size, or ⌊in·output_ratio⌋; windows of kernel_size start at pseudo-random steps."""
        m = ctx.module
        rank = ctx.expect_rank((n + 1, n + 2))
        x = ctx.shape(0)
        batched = rank == n + 2
        dims = syms((["N"] if batched else []) + ["C"] + [f"{s}_in" for s in SPATIAL_LETTERS[n]], x)
        spatial = dims[-n:]
        k = ntuple(m.kernel_size, n)
        out: list[Dim] = []
        for j in range(n):
            if m.output_size is not None:
                sizes = ntuple(m.output_size, n)
                expr: Expr = Sym(f"output_size[{j}]", int(sizes[j]))
            else:
                ratios = ntuple(m.output_ratio, n)
                expr = ScaledFloor(spatial[j], f"output_ratio[{j}]", float(ratios[j]))
            value = expr.int_value()
            # an output size of 0 is torch's empty result, not an error
            if value < 0 or value + k[j] - 1 > spatial[j].v:
                raise ctx.fail(
                    f"needs output size + kernel_size − 1 <= input size along {SPATIAL_LETTERS[n][j]}: "
                    f"{value} + {k[j]} − 1 > {spatial[j].v} (input shape {fmt_shape(x)})"
                    if value >= 0
                    else f"would have {SPATIAL_LETTERS[n][j]}_out = {value}; use a larger output_ratio"
                )
            out.append(Dim(f"{SPATIAL_LETTERS[n][j]}_out", expr))
        result = keep(dims[:-n]) + out
        return [result, list(result)] if m.return_indices else [result]

    return rule


def _unpool_rule(n: int) -> Rule:
    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        """out = (in − 1)·stride − 2·padding + kernel_size (the size MaxPool was applied to)."""
        rank = ctx.expect_rank((n + 1, n + 2))
        x = ctx.shape(0)
        if len(ctx.shapes) > 1 and tuple(ctx.shape(1)) != tuple(x):
            raise ctx.fail(
                f"expects indices (input 1) to have the input's shape {fmt_shape(x)} (as MaxPool{n}d returned "
                f"them), got {fmt_shape(ctx.shape(1))}",
                1,
            )
        dims = syms((["N"] if rank == n + 2 else []) + ["C"] + [f"{s}_in" for s in SPATIAL_LETTERS[n]], x)
        k = sym_list("kernel_size", ctx.arg("kernel_size"), n)
        s = sym_list("stride", ctx.arg("stride"), n)
        p = sym_list("padding", ctx.arg("padding"), n)
        out = [Dim(f"{SPATIAL_LETTERS[n][j]}_out", (dims[-n + j] - 1) * s[j] - 2 * p[j] + k[j]) for j in range(n)]
        for d in out:
            if d.expr.int_value() < 0:  # 0 is torch's empty result
                raise ctx.fail(f"would have {d.name} = {d.expr.text(True)} = {d.expr.int_value()}")
        return [keep(dims[:-n]) + out]

    return rule


def _unpool_example(n: int) -> list[dict[str, Any]]:
    """A MaxPool{n}d(2) output and its indices: what MaxUnpool{n}d is made to invert."""
    gen = torch.Generator().manual_seed(0)
    size = {1: (1, 1, 6), 2: (1, 1, 4, 4), 3: (1, 1, 4, 4, 4)}[n]
    x = torch.randn(size, generator=gen).mul(100).round().div(100)
    pooled, indices = getattr(torch.nn.functional, f"max_pool{n}d")(x, 2, return_indices=True)
    return [data(pooled.tolist()), data(indices.tolist(), "int64")]


def register_pool(reg: Registry) -> None:
    for n in (1, 2, 3):
        spatial = EXAMPLE_SPATIAL[n]
        example = [shape(1, 2, *spatial)]
        torch_entry(
            reg,
            f"MaxPool{n}d",
            "pool",
            {"kernel_size": 2},
            [inp(_SPATIAL[n])],
            example,
            with_indices(pool(n)),
            explain="pool",
            outputs=["output", "indices"],
        )
        torch_entry(
            reg,
            f"AvgPool{n}d",
            "pool",
            {"kernel_size": 2},
            [inp(_SPATIAL[n])],
            example,
            pool(n, has_dilation=False),
            explain="pool",
            params={"divisor_override": {"minimum": 1}},
        )
        torch_entry(
            reg,
            f"LPPool{n}d",
            "pool",
            {"norm_type": 2, "kernel_size": 2},
            [inp(_SPATIAL[n])],
            example,
            pool(n, has_padding=False, has_dilation=False),
            explain="pool",
        )
        torch_entry(
            reg,
            f"AdaptiveAvgPool{n}d",
            "pool",
            {"output_size": 3 if n < 3 else 2},
            [inp(_SPATIAL[n])],
            example,
            adaptive_pool(n),
            params={"output_size": {"minimum": 1, "nullable": False, "nullable_items": n > 1}},
        )
        torch_entry(
            reg,
            f"AdaptiveMaxPool{n}d",
            "pool",
            {"output_size": 3 if n < 3 else 2},
            [inp(_SPATIAL[n])],
            example,
            adaptive_pool(n),
            outputs=["output", "indices"],
            params={"output_size": {"minimum": 1, "nullable": False, "nullable_items": n > 1}},
        )


def register_more(reg: Registry) -> None:
    for n in (2, 3):
        example = shape(1, 2, 6, 6) if n == 2 else shape(1, 2, 5, 5, 5)
        torch_entry(
            reg,
            f"FractionalMaxPool{n}d",
            "pool",
            {"kernel_size": 2, "output_size": 3},
            [inp(_POOL_CONVENTION[n])],
            [example],
            _fractional_rule(n),
            outputs=["output", "indices"],
            params={
                "output_ratio": {"minimum": 0, "exclusive_minimum": True, "maximum": 1},
                "output_size": {"minimum": 0},
            },
        )
    for n in (1, 2, 3):
        torch_entry(
            reg,
            f"MaxUnpool{n}d",
            "pool",
            {"kernel_size": 2},
            [inp(_POOL_CONVENTION[n]), inp(_POOL_CONVENTION[n], "index", name="indices")],
            _unpool_example(n),
            _unpool_rule(n),
            factory=hooked(f"MaxUnpool{n}d", guards.unpool_indices),
        )


def register(reg: Registry) -> None:
    register_pool(reg)
    register_more(reg)
