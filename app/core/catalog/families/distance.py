"""Distances between two inputs: cosine similarity and pairwise distance."""

from __future__ import annotations

from app.core.catalog.entries import inp, shape, torch_entry
from app.core.catalog.spec import Registry
from app.core.shapes.context import (
    ShapeContext,
    axis,
    keep,
)
from app.core.shapes.expr import Const, Dim
from app.core.shapes.rules import (
    broadcast,
)


def _cosine_similarity_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """x1, x2 (*1, D, *2) (broadcastable) -> (*1, *2): dimension dim is reduced."""
    dims = broadcast(ctx, [0, 1])
    dim = ctx.arg("dim")
    if not dims:
        raise ctx.fail("expects inputs with at least one dimension, got scalars")
    k = axis(ctx, dim, len(dims), "dim")
    return [keep(dims[:k] + dims[k + 1 :])]


def _pairwise_distance_rule(ctx: ShapeContext) -> list[list[Dim]]:
    """x1, x2 (N, D) or (D) -> (N) or (); with keepdim (N, 1) or (1)."""
    dims = broadcast(ctx, [0, 1])
    if not dims:
        raise ctx.fail("expects inputs with at least one dimension (N, D) or (D), got scalars")
    out = keep(dims[:-1])
    if ctx.arg("keepdim"):
        out.append(Dim("1", Const(1)))
    return [out]


def register(reg: Registry) -> None:
    torch_entry(
        reg,
        "CosineSimilarity",
        "distance",
        {"dim": 1},
        [inp("(*1, D, *2)", name="x1"), inp("(*1, D, *2)", name="x2")],
        [shape(4, 8), shape(4, 8)],
        _cosine_similarity_rule,
    )
    torch_entry(
        reg,
        "PairwiseDistance",
        "distance",
        {},
        [inp("(N, D) or (D)", name="x1"), inp("(N, D) or (D)", name="x2")],
        [shape(4, 8), shape(4, 8)],
        _pairwise_distance_rule,
        params={"p": {"minimum": 0, "maximum": None}},
    )
