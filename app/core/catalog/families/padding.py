"""Padding layers: each of the last n dimensions grows by its (before, after) padding."""

from __future__ import annotations

from typing import Any


from app.core.catalog.spec import Registry
from app.core.catalog.entries import inp, shape, torch_entry
from app.core.shapes.context import (
    ShapeContext, fmt_shape, out_name,
)
from app.core.shapes.expr import Dim, Sym
from app.core.shapes.rules import (
    Rule, check_positive,
)

# Plain conventions (no "or" alternatives): padding_layer names dimensions from them, and
# convention_names reads an unbatched input as the convention without its leading N.
_PAD_CONVENTION = {1: "(N, C, W_in)", 2: "(N, C, H_in, W_in)", 3: "(N, C, D_in, H_in, W_in)"}
_PAD_EXAMPLE = {1: ([1, 2, 4], 2), 2: ([1, 1, 3, 3], 1), 3: ([1, 1, 2, 2, 2], 1)}


def padding_layer(n: int) -> Rule:
    """Padding layers: each of the last n dims grows by its (left, right) padding."""

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        rank = ctx.expect_rank((n + 1, n + 2))
        pads = list(ctx.arg("padding"))
        dims = ctx.dims(0)
        out = [Dim(out_name(d.name), d) for d in dims[: rank - n]]
        # torch's padding tuple runs from the last dimension backwards: (left, right, top, bottom, ...)
        for j in range(n):
            axis = rank - n + j
            back = n - 1 - j
            before, after = pads[2 * back], pads[2 * back + 1]
            expr = dims[axis] + Sym(f"padding[{2 * back}]", before) + Sym(f"padding[{2 * back + 1}]", after)
            out.append(Dim(out_name(dims[axis].name), expr))
        return [check_positive(ctx, out)]

    return rule


def _padding_rule(n: int, limit: str | None) -> Rule:
    """Each of the last n dimensions grows by its (before, after) padding."""
    base = padding_layer(n)

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        rank = ctx.expect_rank((n + 1, n + 2))
        if limit:
            pads = list(ctx.arg("padding"))
            x = ctx.shape(0)
            letters = {1: ["W"], 2: ["H", "W"], 3: ["D", "H", "W"]}[n]
            for j in range(n):
                size = x[rank - n + j]
                back = n - 1 - j
                for pad in (pads[2 * back], pads[2 * back + 1]):
                    too_big = pad >= size if limit == "reflect" else pad > size
                    if too_big:
                        bound = "smaller than" if limit == "reflect" else "at most"
                        raise ctx.fail(
                            f"needs each padding to be {bound} the size it pads: padding {pad} along "
                            f"{letters[j]}_in = {size} (input shape {fmt_shape(x)})"
                        )
        return base(ctx)

    return rule


def register(reg: Registry) -> None:
    for n in (1, 2, 3):
        example, pad = _PAD_EXAMPLE[n]
        for kind, limit in (("Zero", None), ("Constant", None), ("Reflection", "reflect"),
                            ("Replication", None), ("Circular", "circular")):
            args: dict[str, Any] = {"padding": pad}
            if kind == "Constant":
                args["value"] = 3.5
            torch_entry(
                reg, f"{kind}Pad{n}d", "padding", args, [inp(_PAD_CONVENTION[n])], [shape(*example)],
                _padding_rule(n, limit),
            )
