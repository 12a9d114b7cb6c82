"""Reshaping layers: flatten, fold, pixel and channel shuffle, upsampling."""

from __future__ import annotations

import math
from collections.abc import Sequence

from app.core.catalog.entries import inp, shape, torch_entry
from app.core.catalog.spec import Registry
from app.core.errors import ShapeMismatch
from app.core.shapes.context import (
    ShapeContext,
    axis,
    fmt_shape,
    generic_names,
    keep,
    ntuple,
    sym_list,
    syms,
)
from app.core.shapes.expr import Const, Dim, Expr, ScaledFloor, Sym, floor_div, prod


def _flatten_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """(*, S_start, …, S_end, *) -> (*, S_start·…·S_end, *)."""
    x = ctx.shape(0)
    start, end = ctx.arg("start_dim"), ctx.arg("end_dim")
    if len(x) == 0:
        if start in (0, -1) and end in (0, -1):
            return [[Dim("d0", Const(1))]]
        raise ctx.fail(f"cannot flatten a scalar from start_dim={start}; use start_dim=0")
    s, e = axis(ctx, start, len(x), "start_dim"), axis(ctx, end, len(x), "end_dim")
    if s > e:
        raise ctx.fail(f"start_dim={start} comes after end_dim={end} for a {len(x)}-D input")
    dims = syms(generic_names(len(x), None), x)
    merged = Dim(f"d{s}" if s == e else f"d{s}…d{e}", prod(*dims[s : e + 1]) if e > s else dims[s])
    return [keep(dims[:s]) + [merged] + keep(dims[e + 1 :])]


def _unflatten_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """(*, S_dim, *) -> (*, U_1, …, U_n, *) with U_1·…·U_n = S_dim (one U may be -1: inferred)."""
    x = ctx.shape(0)
    ax = axis(ctx, ctx.arg("dim"), len(x), "dim")
    sizes = list(ctx.arg("unflattened_size"))
    dims = syms(generic_names(len(x), None), x)
    known = math.prod(s for s in sizes if s != -1)
    if sizes.count(-1) > 1 or any(s < -1 or s == 0 for s in sizes):
        raise ShapeMismatch(
            f"{ctx.type}: unflattened_size may hold positive sizes and at most one -1, got {sizes}",
            field="layer.unflattened_size",
        )
    new: list[Dim] = []
    for k, s in enumerate(sizes):
        if s == -1:
            if x[ax] % known:
                raise ctx.fail(f"cannot infer the -1 in unflattened_size={sizes}: {x[ax]} is not divisible by {known}")
            new.append(Dim(f"U{k}", floor_div(dims[ax], Sym("∏(others)", known))))
        else:
            new.append(Dim(f"U{k}", Sym(f"unflattened_size[{k}]", s)))
    if -1 not in sizes and known != x[ax]:
        raise ctx.fail(
            f"expects dimension {ctx.arg('dim')} of input 0 to hold {' × '.join(map(str, sizes))} = {known} "
            f"elements, got {x[ax]} (input shape {fmt_shape(x)})"
        )
    return [keep(dims[:ax]) + new + keep(dims[ax + 1 :])]


def _window_counts(ctx: ShapeContext, spatial: Sequence[Expr], n: int) -> list[Expr]:
    k = sym_list("kernel_size", ctx.arg("kernel_size"), n)
    d = sym_list("dilation", ctx.arg("dilation"), n)
    p = sym_list("padding", ctx.arg("padding"), n)
    s = sym_list("stride", ctx.arg("stride"), n)
    return [floor_div(spatial[j] + 2 * p[j] - d[j] * (k[j] - 1) - 1, s[j]) + 1 for j in range(n)]


def _unfold_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """(N, C, H, W) -> (N, C·∏(kernel_size), L), L = ∏_d ⌊(spatial_d + 2·padding − dilation·(k − 1) − 1)/stride⌋ + 1."""
    rank = ctx.expect_rank((3, 4))
    x = ctx.shape(0)
    batched = rank == 4
    names = (["N"] if batched else []) + ["C", "H_in", "W_in"]
    dims = syms(names, x)
    counts = _window_counts(ctx, dims[-2:], 2)
    for j, c in enumerate(counts):
        if c.int_value() < 1:
            raise ctx.fail(
                f"finds no complete block along {names[-2 + j]}: the kernel is larger than the padded input {fmt_shape(x)}"
            )
    k = sym_list("kernel_size", ctx.arg("kernel_size"), 2)
    out = ([Dim("N", dims[0])] if batched else []) + [
        Dim("C×∏(kernel_size)", dims[-3] * k[0] * k[1]),
        Dim("L", prod(*counts)),
    ]
    return [out]


def _fold_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """(N, C·∏(kernel_size), L) -> (N, C, output_size[0], output_size[1])."""
    rank = ctx.expect_rank((2, 3))
    x = ctx.shape(0)
    batched = rank == 3
    dims = syms((["N"] if batched else []) + ["C×∏(kernel_size)", "L"], x)
    k = sym_list("kernel_size", ctx.arg("kernel_size"), 2)
    kk = k[0].v * k[1].v
    if x[-2] % kk:
        raise ctx.fail(
            f"expects dimension {rank - 2} of input 0 to be C × ∏(kernel_size) = C × {kk}, got {x[-2]} "
            f"(not divisible by {kk})"
        )
    out_size = sym_list("output_size", ctx.arg("output_size"), 2)
    blocks = prod(*_window_counts(ctx, out_size, 2)).int_value()
    if x[-1] != blocks:
        raise ctx.fail(
            f"expects the last dimension of input 0 to be L = {blocks}, the number of blocks that fit in "
            f"output_size={[s.v for s in out_size]}; got {x[-1]}"
        )
    return [
        ([Dim("N", dims[0])] if batched else [])
        + [Dim("C", floor_div(dims[-2], prod(*k))), Dim("H_out", out_size[0]), Dim("W_out", out_size[1])]
    ]


def _pixel_shuffle_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """(*, C·r², H, W) -> (*, C, H·r, W·r) for PixelShuffle; the inverse for PixelUnshuffle."""
    x = ctx.shape(0)
    if len(x) < 3:
        raise ctx.fail(f"expects input 0 to be (*, C_in, H_in, W_in) with at least 3 dimensions, got {fmt_shape(x)}")
    lead = syms(generic_names(len(x) - 3), x[:-3])
    c, h, w = syms(["C_in", "H_in", "W_in"], x[-3:])
    if ctx.type == "PixelShuffle":
        r = Sym("upscale_factor", ctx.arg("upscale_factor"))
        if c.v % (r.v * r.v):
            raise ctx.fail(f"expects C_in={c.v} to be divisible by upscale_factor² = {r.v * r.v}")
        out = [Dim("C_out", floor_div(c, r * r)), Dim("H_out", h * r), Dim("W_out", w * r)]
    else:
        r = Sym("downscale_factor", ctx.arg("downscale_factor"))
        for name, d in (("H_in", h), ("W_in", w)):
            if d.v % r.v:
                raise ctx.fail(f"expects {name}={d.v} to be divisible by downscale_factor={r.v}")
        out = [Dim("C_out", c * r * r), Dim("H_out", floor_div(h, r)), Dim("W_out", floor_div(w, r))]
    return [keep(lead) + out]


def _channel_shuffle_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """(N, C, *) -> (N, C, *): the channels are regrouped, the shape is unchanged."""
    x = ctx.shape(0)
    if len(x) < 3:
        raise ctx.fail(f"expects input 0 to be (N, C, *) with more than 2 dimensions, got {fmt_shape(x)}")
    groups = ctx.arg("groups")
    if x[1] % groups:
        raise ctx.fail(f"expects the channels C={x[1]} to be divisible by groups={groups}")
    return [keep(syms(["N", "C"] + [f"d{k}" for k in range(2, len(x))], x))]


_UPSAMPLE_RANKS = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}


def _upsample_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """out = size, or ⌊in·scale_factor⌋ for each spatial dimension."""
    m = ctx.module
    x = ctx.shape(0)
    ranks = (4,) if ctx.type.startswith("Upsampling") else (3, 4, 5)
    rank = ctx.expect_rank(ranks)
    mode = m.mode
    if mode in _UPSAMPLE_RANKS and rank != _UPSAMPLE_RANKS[mode]:
        need = _UPSAMPLE_RANKS[mode]
        raise ctx.fail(
            f"with mode={mode!r} expects a {need}-D input {('(N, C, W)', '(N, C, H, W)', '(N, C, D, H, W)')[need - 3]}, got {fmt_shape(x)}"
        )
    n = rank - 2
    letters = {1: ["W"], 2: ["H", "W"], 3: ["D", "H", "W"]}[n]
    dims = syms(["N", "C"] + [f"{s}_in" for s in letters], x)
    out = keep(dims[:2])
    if m.size is not None:
        sizes = ntuple(m.size, n)
        if len(sizes) != n:
            raise ctx.fail(
                f"has size={list(sizes)} for {len(sizes)} spatial dimensions, but input 0 {fmt_shape(x)} has {n}"
            )
        for j in range(n):
            out.append(
                Dim(
                    f"{letters[j]}_out",
                    Sym("size" if n == 1 or not isinstance(m.size, (tuple, list)) else f"size[{j}]", int(sizes[j])),
                )
            )
    elif m.scale_factor is not None:
        factors = ntuple(m.scale_factor, n)
        if len(factors) != n:
            raise ctx.fail(
                f"has scale_factor={list(factors)} for {len(factors)} spatial dimensions, but input 0 {fmt_shape(x)} has {n}"
            )
        for j in range(n):
            name = "scale_factor" if not isinstance(m.scale_factor, (tuple, list)) else f"scale_factor[{j}]"
            size = dims[2 + j].v * float(factors[j])
            if not math.isfinite(size) or size >= 2**62:
                raise ShapeMismatch(
                    f"{ctx.type}: {name}={factors[j]:g} would make {letters[j]}_out = {letters[j]}_in·{name} "
                    f"≈ {size:.3g}, which no tensor can have; use a smaller scale_factor",
                    field="layer.scale_factor",
                )
            expr = ScaledFloor(dims[2 + j], name, float(factors[j]))
            # 'area' is adaptive average pooling, which returns an empty tensor for 0; the others refuse
            if expr.int_value() < (0 if mode == "area" else 1):
                raise ctx.fail(
                    f"would make {letters[j]}_out = {expr.text(True)} = {expr.int_value()}; use a larger scale_factor"
                )
            out.append(Dim(f"{letters[j]}_out", expr))
    else:
        raise ShapeMismatch(f"{ctx.type} needs size or scale_factor", field="layer.size")
    return [out]


def register(reg: Registry) -> None:
    torch_entry(reg, "Flatten", "shape", {}, [inp("(*, S_start, *, S_end, *)")], [shape(2, 3, 4, 5)], _flatten_rule)
    torch_entry(
        reg,
        "Unflatten",
        "shape",
        {"dim": 1, "unflattened_size": [2, 5]},
        [inp("(*, S_dim, *)")],
        [shape(3, 10)],
        _unflatten_rule,
    )
    torch_entry(
        reg,
        "Unfold",
        "shape",
        {"kernel_size": 2},
        [inp("(N, C, H_in, W_in) or (C, H_in, W_in)")],
        [shape(1, 2, 4, 4)],
        _unfold_rule,
        params={k: {"length": 2} for k in ("kernel_size", "dilation", "padding", "stride")},
    )
    torch_entry(
        reg,
        "Fold",
        "shape",
        {"output_size": [4, 4], "kernel_size": 2},
        [inp("(N, C×∏(kernel_size), L) or (C×∏(kernel_size), L)")],
        [shape(1, 8, 9)],
        _fold_rule,
        params={k: {"length": 2} for k in ("output_size", "kernel_size", "dilation", "padding", "stride")},
    )
    torch_entry(
        reg,
        "PixelShuffle",
        "shape",
        {"upscale_factor": 2},
        [inp("(*, C_in, H_in, W_in)")],
        [shape(1, 8, 3, 3)],
        _pixel_shuffle_rule,
    )
    torch_entry(
        reg,
        "PixelUnshuffle",
        "shape",
        {"downscale_factor": 2},
        [inp("(*, C_in, H_in, W_in)")],
        [shape(1, 2, 4, 4)],
        _pixel_shuffle_rule,
    )
    torch_entry(
        reg, "ChannelShuffle", "shape", {"groups": 2}, [inp("(N, C, *)")], [shape(1, 4, 2, 2)], _channel_shuffle_rule
    )
    modes = ["nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact"]
    factor = {"scale_factor": {"minimum": 0, "exclusive_minimum": True}}
    torch_entry(
        reg,
        "Upsample",
        "shape",
        {"scale_factor": 2, "mode": "nearest"},
        [inp("(N, C, W_in) or (N, C, H_in, W_in) or (N, C, D_in, H_in, W_in)")],
        [shape(1, 1, 2, 3)],
        _upsample_rule,
        params={"mode": {"choices": modes}, **factor},
    )
    for name in ("UpsamplingNearest2d", "UpsamplingBilinear2d"):
        torch_entry(
            reg,
            name,
            "shape",
            {"scale_factor": 2},
            [inp("(N, C, H_in, W_in)")],
            [shape(1, 1, 2, 3)],
            _upsample_rule,
            params=factor,
        )
