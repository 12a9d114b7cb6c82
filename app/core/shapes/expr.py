"""A tiny symbolic arithmetic for shape formulas.

One expression written once — ``floor((L_in + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``
— yields its value, its text with names (``⌊(L_in + 2·padding − …) / stride⌋ + 1``), the same
text with the user's numbers substituted, and LaTeX for both. Writing the formula once is what
keeps the displayed formula and the predicted value from drifting apart.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

Number = int | Fraction

# Binding strength: higher binds tighter. Used to decide where parentheses are needed.
_ADD, _MUL, _ATOM = 1, 2, 3


class Expr:
    prec: int = _ATOM

    # -- construction -------------------------------------------------------------------
    def __add__(self, other: ExprLike) -> Expr:
        return BinOp("+", self, lift(other))

    def __radd__(self, other: ExprLike) -> Expr:
        return BinOp("+", lift(other), self)

    def __sub__(self, other: ExprLike) -> Expr:
        return BinOp("-", self, lift(other))

    def __rsub__(self, other: ExprLike) -> Expr:
        return BinOp("-", lift(other), self)

    def __mul__(self, other: ExprLike) -> Expr:
        return BinOp("*", self, lift(other))

    def __rmul__(self, other: ExprLike) -> Expr:
        return BinOp("*", lift(other), self)

    def __truediv__(self, other: ExprLike) -> Expr:
        return Div(self, lift(other))

    # -- evaluation and rendering ------------------------------------------------------
    def value(self) -> Number:
        raise NotImplementedError

    def text(self, subst: bool = False) -> str:
        raise NotImplementedError

    def latex(self, subst: bool = False) -> str:
        raise NotImplementedError

    def int_value(self) -> int:
        v = self.value()
        if isinstance(v, Fraction):
            if v.denominator != 1:
                raise ValueError(f"formula {self.text()} is not an integer: {v}")
            return int(v.numerator)
        return int(v)


ExprLike = Expr | int


def lift(x: ExprLike) -> Expr:
    return x if isinstance(x, Expr) else Const(int(x))


@dataclass(eq=False)
class Const(Expr):
    v: int

    def value(self) -> Number:
        return self.v

    def text(self, subst: bool = False) -> str:
        return str(self.v)

    def latex(self, subst: bool = False) -> str:
        return str(self.v)


@dataclass(eq=False)
class Sym(Expr):
    """A named quantity (an input dimension or a constructor argument) with its value."""

    name: str
    v: int
    tex: str | None = None

    def value(self) -> Number:
        return self.v

    def text(self, subst: bool = False) -> str:
        # a negative value (negative padding) stands in brackets: 4 + (−5), not 4 + -5
        if subst:
            return f"(−{-self.v})" if self.v < 0 else str(self.v)
        return self.name

    def latex(self, subst: bool = False) -> str:
        if subst:
            return f"({self.v})" if self.v < 0 else str(self.v)
        return self.tex if self.tex is not None else _tex_name(self.name)


def _tex_name(name: str) -> str:
    # "L_in" -> L_{\text{in}}, "kernel_size[0]" -> \text{kernel\_size}_{0}
    if len(name) == 1:
        return "\\ast" if name == "*" else name
    if name.startswith("*") and name[1:].isdigit():  # "*₂" (subscript digits) -> \ast_{2}
        return f"\\ast_{{{''.join(str(unicodedata.digit(c)) for c in name[1:])}}}"
    index = ""
    if name.endswith("]") and "[" in name:
        name, index = name[:-1].split("[", 1)
    if "_" in name and name.split("_", 1)[0] in {"L", "H", "W", "D", "C", "N", "E", "S", "T"}:
        head, sub = name.split("_", 1)
        base = f"{head}_{{\\text{{{sub}}}}}"
    else:
        base = "\\text{" + name.replace("_", "\\_") + "}"
    return f"{base}_{{{index}}}" if index else base


_TEXT_OPS = {"+": " + ", "-": " − ", "*": "·"}
_TEX_OPS = {"+": " + ", "-": " - ", "*": " \\cdot "}


@dataclass(eq=False)
class BinOp(Expr):
    op: str
    a: Expr
    b: Expr

    @property
    def prec(self) -> int:  # type: ignore[override]
        return _MUL if self.op == "*" else _ADD

    def value(self) -> Number:
        x, y = self.a.value(), self.b.value()
        return x + y if self.op == "+" else x - y if self.op == "-" else x * y

    def _operands(self, render, subst: bool, wrap) -> tuple[str, str]:
        left = render(self.a, subst)
        right = render(self.b, subst)
        if self.a.prec < self.prec:
            left = wrap(left)
        # a − (b + c) and a·(b·c) keep their parentheses on the right
        if self.b.prec < self.prec or (self.b.prec == self.prec and self.op == "-"):
            right = wrap(right)
        return left, right

    def text(self, subst: bool = False) -> str:
        left, right = self._operands(lambda e, s: e.text(s), subst, lambda s: f"({s})")
        return f"{left}{_TEXT_OPS[self.op]}{right}"

    def latex(self, subst: bool = False) -> str:
        left, right = self._operands(lambda e, s: e.latex(s), subst, lambda s: f"\\left({s}\\right)")
        return f"{left}{_TEX_OPS[self.op]}{right}"


@dataclass(eq=False)
class Div(Expr):
    a: Expr
    b: Expr
    prec = _MUL

    def value(self) -> Number:
        b = self.b.value()
        if b == 0:
            raise ZeroDivisionError(f"division by zero in {self.text()}")
        return Fraction(self.a.value()) / Fraction(b)

    def text(self, subst: bool = False) -> str:
        left = self.a.text(subst)
        right = self.b.text(subst)
        if self.a.prec < _ATOM:
            left = f"({left})"
        if self.b.prec < _ATOM:
            right = f"({right})"
        return f"{left} / {right}"

    def latex(self, subst: bool = False) -> str:
        return f"\\frac{{{self.a.latex(subst)}}}{{{self.b.latex(subst)}}}"


@dataclass(eq=False)
class Floor(Expr):
    a: Expr

    def value(self) -> Number:
        v = self.a.value()
        return v.numerator // v.denominator if isinstance(v, Fraction) else v

    def text(self, subst: bool = False) -> str:
        inner = self.a.text(subst)
        # ⌊(a) / b⌋ reads better as ⌊(a) / b⌋ than ⌊((a) / b)⌋
        return f"⌊{inner}⌋"

    def latex(self, subst: bool = False) -> str:
        return f"\\left\\lfloor {self.a.latex(subst)} \\right\\rfloor"


@dataclass(eq=False)
class Ceil(Expr):
    a: Expr

    def value(self) -> Number:
        v = self.a.value()
        return -((-v.numerator) // v.denominator) if isinstance(v, Fraction) else v

    def text(self, subst: bool = False) -> str:
        return f"⌈{self.a.text(subst)}⌉"

    def latex(self, subst: bool = False) -> str:
        return f"\\left\\lceil {self.a.latex(subst)} \\right\\rceil"


@dataclass(eq=False)
class Call(Expr):
    """A named function of integers, e.g. ``max(a, b)`` or ``prod(kernel_size)``."""

    fn: str
    args: tuple[Expr, ...]

    def value(self) -> Number:
        vals = [a.value() for a in self.args]
        if self.fn == "max":
            return max(vals)
        if self.fn == "min":
            return min(vals)
        if self.fn == "prod":
            out: Number = 1
            for v in vals:
                out *= v
            return out
        raise ValueError(self.fn)

    def text(self, subst: bool = False) -> str:
        if self.fn == "prod":
            return " · ".join(_wrap_text(a, subst) for a in self.args)
        return f"{self.fn}({', '.join(a.text(subst) for a in self.args)})"

    def latex(self, subst: bool = False) -> str:
        if self.fn == "prod":
            return " \\cdot ".join(a.latex(subst) for a in self.args)
        return f"\\{self.fn}\\left({', '.join(a.latex(subst) for a in self.args)}\\right)"

    @property
    def prec(self) -> int:  # type: ignore[override]
        return _MUL if self.fn == "prod" and len(self.args) > 1 else _ATOM


def _wrap_text(e: Expr, subst: bool) -> str:
    s = e.text(subst)
    return f"({s})" if e.prec < _MUL else s


def floor_div(a: ExprLike, b: ExprLike) -> Expr:
    return Floor(Div(lift(a), lift(b)))


def ceil_div(a: ExprLike, b: ExprLike) -> Expr:
    return Ceil(Div(lift(a), lift(b)))


def fmax(*args: ExprLike) -> Expr:
    return Call("max", tuple(lift(a) for a in args))


def fmin(*args: ExprLike) -> Expr:
    return Call("min", tuple(lift(a) for a in args))


def prod(*args: ExprLike) -> Expr:
    return Call("prod", tuple(lift(a) for a in args))


@dataclass(eq=False)
class Dim:
    """One output dimension: its name (``L_out``) and the expression that gives it."""

    name: str
    expr: Expr

    def to_dict(self) -> dict[str, object]:
        value = self.expr.int_value()
        return {
            "dim": self.name,
            "symbolic": self.expr.text(False),
            "substituted": self.expr.text(True),
            "value": value,
            "latex": self.expr.latex(False),
            "latex_substituted": self.expr.latex(True),
        }


@dataclass(eq=False)
class ScaledFloor(Expr):
    """⌊x·s⌋ for a float factor ``s``, computed in double precision exactly as torch does."""

    a: Expr
    name: str
    s: float

    def value(self) -> int:
        return math.floor(float(self.a.value()) * self.s)

    def _factor(self, subst: bool) -> str:
        return f"{self.s:g}" if subst else self.name

    def text(self, subst: bool = False) -> str:
        return f"⌊{self.a.text(subst)}·{self._factor(subst)}⌋"

    def latex(self, subst: bool = False) -> str:
        name = self._factor(subst) if subst else "\\text{" + self.name.replace("_", "\\_") + "}"
        return f"\\left\\lfloor {self.a.latex(subst)} \\cdot {name} \\right\\rfloor"
