"""Padding layers: each of the last n dimensions grows by its (before, after) padding."""

from __future__ import annotations

from typing import Any

from app.core.catalog.entries import inp, shape, torch_entry
from app.core.catalog.spec import Registry
from app.core.shapes.context import (
    ShapeContext,
    fmt_shape,
    out_name,
)
from app.core.shapes.expr import Dim, Sym
from app.core.shapes.rules import (
    Rule,
)

# Plain conventions (no "or" alternatives): the rule names dimensions from them, and
# convention_names reads an unbatched input as the convention without its leading N.
_PAD_CONVENTION = {1: "(N, C, W_in)", 2: "(N, C, H_in, W_in)", 3: "(N, C, D_in, H_in, W_in)"}
_PAD_EXAMPLE = {1: ([1, 2, 4], 2), 2: ([1, 1, 3, 3], 1), 3: ([1, 1, 2, 2, 2], 1)}


# Negative padding crops, down to an empty dimension. How far a pad may reach into the input, and
# whether every padded dimension may end up empty, depends on the mode: torch's own limits.
_LIMITS = {
    # mode: (largest pad relative to the size it pads: "<" size or "<=" size, all padded dims may be 0)
    "zeros": (None, True),
    "constant": (None, True),
    "reflect": ("<", False),
    "replicate": (None, False),
    "circular": ("<=", True),
}


def _padding_rule(n: int, mode: str) -> Rule:
    """Input: (N, C, *spatial_in) -> each of the last n dimensions grows by its (before, after) padding."""
    reach, all_empty = _LIMITS[mode]
    letters = {1: ["W"], 2: ["H", "W"], 3: ["D", "H", "W"]}[n]

    def rule(ctx: ShapeContext) -> list[list[Dim]]:
        rank = ctx.expect_rank((n + 1, n + 2))
        pads = list(ctx.arg("padding"))
        x = ctx.shape(0)
        dims = ctx.dims(0)
        out = [Dim(out_name(d.name), d) for d in dims[: rank - n]]
        # torch's padding tuple runs from the last dimension backwards: (left, right, top, bottom, ...)
        for j in range(n):
            axis = rank - n + j
            size = x[axis]
            back = n - 1 - j
            before, after = pads[2 * back], pads[2 * back + 1]
            if reach is not None:
                for pad in (before, after):
                    if pad >= size if reach == "<" else pad > size:
                        bound = "smaller than" if reach == "<" else "at most"
                        raise ctx.fail(
                            f"needs each padding to be {bound} the size it pads: padding {pad} along "
                            f"{letters[j]}_in = {size} (input shape {fmt_shape(x)})"
                        )
            expr = dims[axis] + Sym(f"padding[{2 * back}]", before) + Sym(f"padding[{2 * back + 1}]", after)
            value = expr.int_value()
            if value < 0:
                raise ctx.fail(
                    f"would make {letters[j]}_out = {expr.text(True)} = {value}: negative padding crops at most "
                    f"the whole input"
                )
            out.append(Dim(out_name(dims[axis].name), expr))
        if not all_empty and all(d.expr.int_value() == 0 for d in out[rank - n :]):
            raise ctx.fail(
                f"would leave every padded dimension empty ({', '.join(f'{d.name} = 0' for d in out[rank - n :])}); "
                f"in {mode} mode at least one must keep a size of 1 or more"
            )
        return [out]

    return rule


def register(reg: Registry) -> None:
    for n in (1, 2, 3):
        example, pad = _PAD_EXAMPLE[n]
        for kind, mode in (
            ("Zero", "zeros"),
            ("Constant", "constant"),
            ("Reflection", "reflect"),
            ("Replication", "replicate"),
            ("Circular", "circular"),
        ):
            args: dict[str, Any] = {"padding": pad}
            if kind == "Constant":
                args["value"] = 3.5
            torch_entry(
                reg,
                f"{kind}Pad{n}d",
                "padding",
                args,
                [inp(_PAD_CONVENTION[n])],
                [shape(*example)],
                _padding_rule(n, mode),
                params={"padding": {"minimum": None}},
            )
