"""What a shape rule sees, and the small helpers every rule shares.

A rule receives a :class:`ShapeContext` (the catalog entry, the module built on the meta device,
the validated arguments, the input shapes) and names each dimension in torch's vocabulary, read
from the input's convention such as ``(N, C_in, L_in)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from torch import nn

from app.core.errors import ShapeMismatch
from app.core.shapes.expr import Dim, Sym

#: the letters torch uses for 1, 2 and 3 spatial dimensions
SPATIAL_LETTERS = {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}


class InputView(Protocol):
    name: str
    convention: str


class SpecView(Protocol):
    """What a rule reads of its catalog entry (kept abstract: shapes sit below the catalog)."""

    type: str
    inputs: Sequence[InputView]

    def param(self, name: str) -> Any: ...


@dataclass
class ShapeContext:
    spec: SpecView
    module: nn.Module
    args: dict[str, Any]
    shapes: list[tuple[int, ...]]

    @property
    def type(self) -> str:
        return self.spec.type

    def arg(self, name: str, default: Any = None) -> Any:
        """A constructor argument as the built module holds it (torch's normalisation), else as given."""
        if hasattr(self.module, name):
            return getattr(self.module, name)
        if name in self.args:
            return self.args[name]
        p = self.spec.param(name)
        return p.default if p is not None else default

    def shape(self, i: int = 0) -> tuple[int, ...]:
        return self.shapes[i]

    def names(self, i: int = 0) -> list[str]:
        return convention_names(self.spec.inputs[i].convention, len(self.shapes[i]))

    def dims(self, i: int = 0) -> list[Sym]:
        return [Sym(n, v) for n, v in zip(self.names(i), self.shapes[i])]

    def fail(self, message: str, i: int = 0) -> ShapeMismatch:
        """The input's shape does not fit; ``related`` names the constructor arguments the message names
        (kernel_size, in_features…), the other side of the mismatch, so a client can show the message at
        whichever of them the person just edited."""
        related: list[str] = []
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", message):
            if f"layer.{word}" not in related and self.spec.param(word) is not None:
                related.append(f"layer.{word}")
        return ShapeMismatch(f"{self.type} {message}", field=f"inputs[{i}].shape", related=related)

    def expect_rank(self, ranks: Sequence[int], i: int = 0) -> int:
        rank = len(self.shapes[i])
        if rank not in ranks:
            conv = self.spec.inputs[i].convention
            allowed = " or ".join(f"{r}-D" for r in ranks)
            raise self.fail(
                f"expects input {i} to be {allowed} {conv}, got {rank}-D shape {fmt_shape(self.shapes[i])}", i
            )
        return rank


def fmt_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def convention_names(convention: str, rank: int) -> list[str]:
    """Names for each dimension of a shape, from a convention like ``(N, C_in, L_in)`` or ``(N, *, H_in)``.

    A convention that starts with N also describes the unbatched form (one dimension fewer), and
    ``"(N, C) or (C)"`` lists alternatives: the first whose rank fits names the dimensions.
    """
    for alternative in convention.split(" or "):
        names = _parse_convention(alternative, rank)
        if names is not None:
            return names
    return [f"d{k}" for k in range(rank)]


_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _sub(k: int) -> str:
    return str(k).translate(_SUBSCRIPTS)


def _parse_convention(convention: str, rank: int) -> list[str] | None:
    names = [n.strip() for n in convention.strip().strip("()").split(",") if n.strip()]
    if "*" in names:
        star = names.index("*")
        extra = rank - (len(names) - 1)
        if extra < 0:
            names = names[:star] + names[star + 1 :]
        else:
            # several dimensions under one "*": *₁, *₂, … (1-based, as the web page names them too)
            names = names[:star] + [f"*{_sub(k + 1)}" if extra > 1 else "*" for k in range(extra)] + names[star + 1 :]
    if len(names) == rank + 1 and names and names[0] == "N":
        names = names[1:]
    return names if len(names) == rank else None


def out_name(name: str) -> str:
    if name.endswith("_in"):
        return name[:-3] + "_out"
    return name


def ntuple(value: Any, n: int) -> list[Any]:
    if isinstance(value, (tuple, list)):
        if len(value) == 1 and n > 1:
            return list(value) * n
        return list(value)
    return [value] * n


def spatial_rank_of(type_name: str) -> int | None:
    """The spatial rank a type name promises (Conv2d -> 2); None for types without one."""
    m = re.search(r"(\d)d$", type_name)
    return int(m.group(1)) if m else None


def syms(names: Sequence[str], sizes: Sequence[int]) -> list[Sym]:
    return [Sym(n, int(v)) for n, v in zip(names, sizes)]


def keep(syms: Sequence[Sym]) -> list[Dim]:
    return [Dim(s.name, s) for s in syms]


def generic_names(rank: int, lead: str | None = "N") -> list[str]:
    if rank == 0:
        return []
    if lead:
        return [lead] + [f"d{k}" for k in range(1, rank)]
    return [f"d{k}" for k in range(rank)]


def sym_list(name: str, value: Any, n: int) -> list[Sym]:
    values = ntuple(value, n)
    if n == 1:
        return [Sym(name, int(values[0]))]
    return [Sym(f"{name}[{k}]", int(values[k])) for k in range(n)]


def input_name(ctx: ShapeContext, i: int) -> str:
    return f"input {i} ({ctx.spec.inputs[i].name})" if i else "input 0"


def axis(ctx: ShapeContext, dim: int, rank: int, arg: str) -> int:
    if not -rank <= dim < rank:
        raise ctx.fail(
            f"{arg}={dim} is out of range for input 0 with {rank} dimension(s) {fmt_shape(ctx.shape(0))} "
            f"(allowed: {-rank} to {rank - 1})"
        )
    return dim % rank
