"""Normalisation layers: batch, instance, layer, RMS, group and local response norm."""

from __future__ import annotations

from typing import Any

from app.core.catalog import memory
from app.core.catalog.entries import EXAMPLE_SPATIAL, inp, shape, torch_entry
from app.core.catalog.spec import Registry
from app.core.shapes.context import (
    ShapeContext,
    fmt_shape,
)
from app.core.shapes.rules import (
    Rule,
    same,
)


def register(reg: Registry) -> None:
    for n, conv in ((1, "(N, C, L)"), (2, "(N, C, H, W)"), (3, "(N, C, D, H, W)")):
        ex = shape(2, 3, *EXAMPLE_SPATIAL[n])
        # BatchNorm1d takes (N, C) and (N, C, L) alike: its channels are dimension 1 either way
        channel_dim = 1 if n == 1 else None
        torch_entry(
            reg,
            f"BatchNorm{n}d",
            "norm",
            {"num_features": 3},
            [inp(conv)],
            [ex],
            _channels_same("num_features"),
            channel_dim=channel_dim,
        )
        torch_entry(reg, f"InstanceNorm{n}d", "norm", {"num_features": 3}, [inp(conv)], [ex], same)
    torch_entry(
        reg, "LayerNorm", "norm", {"normalized_shape": [6]}, [inp("(N, *)")], [shape(2, 4, 6)], _normalized_same
    )
    torch_entry(reg, "RMSNorm", "norm", {"normalized_shape": [6]}, [inp("(N, *)")], [shape(2, 4, 6)], _normalized_same)
    torch_entry(
        reg,
        "GroupNorm",
        "norm",
        {"num_groups": 2, "num_channels": 4},
        [inp("(N, C, *)")],
        [shape(2, 4, 5)],
        _channels_same("num_channels"),
        channel_dim=1,
    )
    for name, convention in (("LocalResponseNorm", "(N, C, *)"), ("CrossMapLRN2d", "(N, C, H, W)")):
        torch_entry(
            reg, name, "norm", {"size": 2}, [inp(convention)], [shape(1, 4, 5, 5)], same, memory=memory.cross_channel
        )


def _channels_same(arg: str) -> Rule:
    def rule(ctx: ShapeContext) -> list[list[Any]]:
        shape_ = ctx.shape(0)
        want = ctx.arg(arg)
        if len(shape_) < 2 or shape_[1] != want:
            got = shape_[1] if len(shape_) >= 2 else "none"
            raise ctx.fail(
                f"expects input 0 to have {arg}={want} channels at dimension 1, got {got} "
                f"(input shape {fmt_shape(shape_)})"
            )
        return same(ctx)

    return rule


def _normalized_same(ctx: ShapeContext) -> list[list[Any]]:
    want = tuple(ctx.arg("normalized_shape"))
    got = ctx.shape(0)[-len(want) :] if want else ()
    if tuple(got) != want:
        raise ctx.fail(
            f"normalises the last {len(want)} dimension(s), which must be normalized_shape={list(want)}; "
            f"input shape is {fmt_shape(ctx.shape(0))}"
        )
    return same(ctx)
