"""Rules shared by many families: same shape, losses, broadcasting, and the spatial checks.

Each rule is a function of a :class:`ShapeContext` returning one list of :class:`Dim` per output;
rules check what their formula needs and raise :class:`ShapeMismatch` in the user's words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from app.core.shapes.context import SPATIAL_LETTERS, ShapeContext, fmt_shape, generic_names, input_name, out_name
from app.core.shapes.expr import Dim, Sym

Rule = Callable[[ShapeContext], list[list[Dim]]]


def same(ctx: ShapeContext, i: int = 0) -> list[list[Dim]]:
    """Output has the input's shape (element-wise layers, norms, dropout, activations)."""
    return [[Dim(out_name(s.name), s) for s in ctx.dims(i)]]


def scalar() -> list[Dim]:
    return []


def loss(per_element: Callable[[ShapeContext], list[Dim]]) -> Rule:
    """Losses: a scalar for reduction 'mean'/'sum', the per-element shape for 'none'; the inputs'
    shapes are checked (by ``per_element``) whatever the reduction."""

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        dims = per_element(ctx)
        return [dims] if ctx.arg("reduction", "mean") == "none" else [scalar()]

    rule.__doc__ = per_element.__doc__
    return rule


def broadcast(ctx: ShapeContext, idxs: Sequence[int], shapes: Sequence[Sequence[int]] | None = None) -> list[Sym]:
    """torch's broadcast of the given inputs' shapes (aligned on the right)."""
    shapes = [ctx.shape(i) for i in idxs] if shapes is None else shapes
    rank = max(len(s) for s in shapes)
    names = generic_names(rank, None)
    out: list[Sym] = []
    for k in range(rank):
        sizes = [s[k - (rank - len(s))] if k >= rank - len(s) else 1 for s in shapes]
        distinct = {v for v in sizes if v != 1}
        if len(distinct) > 1:
            listed = " and ".join(f"{input_name(ctx, i)} {fmt_shape(s)}" for i, s in zip(idxs, shapes))
            raise ctx.fail(f"expects inputs of the same shape (or shapes that broadcast); got {listed}", idxs[-1])
        out.append(Sym(names[k], max(sizes)))
    return out


def same_shape(ctx: ShapeContext, a: int, b: int) -> None:
    if ctx.shape(a) != ctx.shape(b):
        raise ctx.fail(
            f"expects {input_name(ctx, b)} to have the shape of {input_name(ctx, a)} {fmt_shape(ctx.shape(a))}, "
            f"got {fmt_shape(ctx.shape(b))}",
            b,
        )


def check_spatial_rank(ctx: ShapeContext, n: int, *, channels: int | None, channel_arg: str = "in_channels") -> bool:
    """Check (N, C, *spatial) or unbatched (C, *spatial); return True when batched."""
    rank = ctx.expect_rank((n + 1, n + 2))
    batched = rank == n + 2
    if channels is not None:
        c = ctx.shape(0)[1 if batched else 0]
        if c != channels:
            conv = ctx.spec.inputs[0].convention
            raise ctx.fail(
                f"expects input 0 to have {channel_arg}={channels} channels at dimension {1 if batched else 0} "
                f"{conv}, got {c} (input shape {fmt_shape(ctx.shape(0))})"
            )
    return batched


def lead(ctx: ShapeContext, batched: bool, channel: Dim) -> list[Dim]:
    lead = [Dim("N", Sym("N", ctx.shape(0)[0]))] if batched else []
    return lead + [channel]


def spatial_in(ctx: ShapeContext, n: int, batched: bool) -> list[Sym]:
    names = SPATIAL_LETTERS[n]
    offset = 2 if batched else 1
    return [Sym(f"{names[k]}_in", ctx.shape(0)[offset + k]) for k in range(n)]


_TOO_SMALL = (
    "the kernel (with dilation) is larger than the padded input {shape}. Use a larger input, more padding or a "
    "smaller kernel_size/dilation."
)
#: a transposed convolution's padding trims its output: less of it, not more, makes the output larger
TRANSPOSED_TOO_SMALL = (
    "padding trims more than the transposed convolution produces from the input {shape}. Use less padding, a "
    "larger input, stride, kernel_size or dilation."
)


def check_positive(ctx: ShapeContext, dims: list[Dim], *, least: int = 1, why: str = _TOO_SMALL) -> list[Dim]:
    """Refuse an output size below ``least``: 1 where torch refuses an empty window (convolution,
    pooling), 0 where torch itself may return an empty dimension (a transposed convolution)."""
    for d in dims:
        v = d.expr.int_value()
        if v < least:
            reason = why.format(shape=fmt_shape(ctx.shape(0)))
            raise ctx.fail(f"output would have {d.name} = {d.expr.text(True)} = {v}: {reason}")
    return dims
