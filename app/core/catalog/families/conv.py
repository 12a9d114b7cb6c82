"""Convolutions and transposed convolutions, 1-D to 3-D: Input: (N, C_in, *spatial_in)."""

from __future__ import annotations

from app.core.catalog import memory
from app.core.catalog.entries import EXAMPLE_SPATIAL, inp, shape, torch_entry
from app.core.catalog.spec import Registry
from app.core.errors import InvalidArgument
from app.core.shapes.context import (
    SPATIAL_LETTERS,
    ShapeContext,
    sym_list,
)
from app.core.shapes.expr import Dim, Sym, floor_div, lift
from app.core.shapes.rules import (
    TRANSPOSED_TOO_SMALL,
    Rule,
    check_positive,
    check_spatial_rank,
    lead,
    spatial_in,
)

_SPATIAL_CONV = {1: "(N, C_in, L_in)", 2: "(N, C_in, H_in, W_in)", 3: "(N, C_in, D_in, H_in, W_in)"}


def conv(n: int) -> Rule:
    """Input: (N, C_in, *spatial_in) -> (N, C_out, *spatial_out); out = ⌊(in + 2p − d(k − 1) − 1)/s⌋ + 1."""

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        batched = check_spatial_rank(ctx, n, channels=ctx.arg("in_channels"))
        spatial = spatial_in(ctx, n, batched)
        names = SPATIAL_LETTERS[n]
        padding = ctx.arg("padding")
        out: list[Dim] = []
        k = sym_list("kernel_size", ctx.arg("kernel_size"), n)
        d = sym_list("dilation", ctx.arg("dilation"), n)
        s = sym_list("stride", ctx.arg("stride"), n)
        if padding == "same":
            out = [Dim(f"{names[j]}_out", spatial[j]) for j in range(n)]
        else:
            p = [lift(0)] * n if padding == "valid" else sym_list("padding", ctx.arg("padding"), n)
            out = [
                Dim(f"{names[j]}_out", floor_div(spatial[j] + 2 * p[j] - d[j] * (k[j] - 1) - 1, s[j]) + 1)
                for j in range(n)
            ]
        channel = Dim("C_out", Sym("out_channels", ctx.arg("out_channels")))
        return [lead(ctx, batched, channel) + check_positive(ctx, out)]

    rule.__doc__ = f"Conv{n}d output shape."
    return rule


def conv_transpose(n: int) -> Rule:
    """out = (in − 1)·stride − 2·padding + dilation·(kernel_size − 1) + output_padding + 1."""

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        batched = check_spatial_rank(ctx, n, channels=ctx.arg("in_channels"))
        spatial = spatial_in(ctx, n, batched)
        names = SPATIAL_LETTERS[n]
        k = sym_list("kernel_size", ctx.arg("kernel_size"), n)
        d = sym_list("dilation", ctx.arg("dilation"), n)
        s = sym_list("stride", ctx.arg("stride"), n)
        p = sym_list("padding", ctx.arg("padding"), n)
        op = sym_list("output_padding", ctx.arg("output_padding"), n)
        for j in range(n):
            # torch's rule: the extra rows must fit inside one stride step or one dilation gap
            if op[j].v >= s[j].v and op[j].v >= d[j].v:
                raise InvalidArgument(
                    f"{ctx.type}: output_padding ({op[j].v}) must be smaller than stride ({s[j].v}) or dilation "
                    f"({d[j].v})" + (f" along {names[j]}" if n > 1 else ""),
                    field="layer.output_padding",
                )
        out = [
            Dim(f"{names[j]}_out", (spatial[j] - 1) * s[j] - 2 * p[j] + d[j] * (k[j] - 1) + op[j] + 1) for j in range(n)
        ]
        channel = Dim("C_out", Sym("out_channels", ctx.arg("out_channels")))
        # A size of 0 is torch's to judge: its CPU kernels return an empty tensor (e.g. (1, 2, 0, 0))
        # where its shape checks let one through, and refuse otherwise, so the formula answers 0 and
        # the run reports torch's own verdict; a negative size no kernel accepts.
        return [lead(ctx, batched, channel) + check_positive(ctx, out, least=0, why=TRANSPOSED_TOO_SMALL)]

    return rule


def register(reg: Registry) -> None:
    for n in (1, 2, 3):
        spatial = EXAMPLE_SPATIAL[n]
        torch_entry(
            reg,
            f"Conv{n}d",
            "conv",
            {"in_channels": 3, "out_channels": 5 if n == 1 else 4, "kernel_size": 4 if n == 1 else 3},
            [inp(_SPATIAL_CONV[n])],
            [shape(6, 3, 8) if n == 1 else shape(1, 3, *spatial)],
            conv(n),
            explain="conv",
            params={"padding": {"choices": ["valid", "same"]}},
            memory=memory.convolution,
        )
        torch_entry(
            reg,
            f"ConvTranspose{n}d",
            "conv",
            {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2},
            [inp(_SPATIAL_CONV[n])],
            [shape(1, 2, *(min(s, 4) for s in spatial))],
            conv_transpose(n),
            explain="transposed",
            params={"padding_mode": {"choices": ["zeros"]}},
            memory=memory.convolution,
        )
