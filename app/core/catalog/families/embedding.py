"""Embedding and EmbeddingBag: Input: (*) of indices -> Output: (*, H), H = embedding_dim."""

from __future__ import annotations

from app.core.catalog import guards
from app.core.catalog.entries import hooked, inp, shape, torch_entry
from app.core.catalog.spec import Registry
from app.core.shapes.context import (
    ShapeContext,
    fmt_shape,
    generic_names,
    keep,
    syms,
)
from app.core.shapes.expr import Dim, Expr, Sym


def _embedding_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """Input (*) of indices -> output (*, H), H = embedding_dim."""
    x = ctx.shape(0)
    dims = syms(generic_names(len(x), None), x)
    return [keep(dims) + [Dim("H", Sym("embedding_dim", ctx.module.embedding_dim))]]


def _embedding_bag_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """Input (B, N) bags, or (N) with offsets (B) -> output (B, embedding_dim)."""
    m = ctx.module
    x = ctx.shape(0)
    h = Dim("H", Sym("embedding_dim", m.embedding_dim))
    if len(x) == 2:
        if len(ctx.shapes) > 1:
            raise ctx.fail("takes offsets only with a 1-D input; a 2-D input (B, N) is already B bags of N", 1)
        out = [Dim("B", Sym("B", x[0])), h]
        want = x
    elif len(x) == 1:
        if len(ctx.shapes) < 2:
            raise ctx.fail(
                "needs offsets (input 1) with a 1-D input: the start of each bag in it (or give a 2-D input (B, N))"
            )
        offsets = ctx.shape(1)
        if len(offsets) != 1:
            raise ctx.fail(f"expects offsets (input 1) to be 1-D (B), got {fmt_shape(offsets)}", 1)
        b: Expr = Sym("len(offsets)", offsets[0])
        if m.include_last_offset:
            b = b - 1
        out = [Dim("B", b), h]
        want = x
    else:
        raise ctx.fail(f"expects input 0 to be (B, N) or (N), got {len(x)}-D shape {fmt_shape(x)}")
    if len(ctx.shapes) > 2 and tuple(ctx.shape(2)) != tuple(want):
        raise ctx.fail(
            f"expects per_sample_weights (input 2) to have the input's shape {fmt_shape(want)}, "
            f"got {fmt_shape(ctx.shape(2))}",
            2,
        )
    return [out]


def register(reg: Registry) -> None:
    torch_entry(
        reg,
        "Embedding",
        "embedding",
        {"num_embeddings": 10, "embedding_dim": 3},
        [inp("(*)", "index", high="num_embeddings")],
        [shape(2, 4)],
        _embedding_rule,
        params={"max_norm": {"minimum": 0, "exclusive_minimum": True}},
        factory=hooked("Embedding", guards.embedding),
    )
    torch_entry(
        reg,
        "EmbeddingBag",
        "embedding",
        {"num_embeddings": 10, "embedding_dim": 3, "mode": "mean"},
        [
            inp("(B, N) or (N)", "index", high="num_embeddings"),
            inp("(B)", "index", name="offsets", high="input0.shape[0]", optional=True),
            inp("(B, N) or (N)", "uniform", name="per_sample_weights", optional=True),
        ],
        [shape(2, 4)],
        _embedding_bag_rule,
        params={"mode": {"choices": ["sum", "mean", "max"]}, "max_norm": {"minimum": 0, "exclusive_minimum": True}},
        factory=hooked("EmbeddingBag", guards.embedding),
    )
