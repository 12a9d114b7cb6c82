"""Introspection of ``torch.nn``: constructor parameters from signatures and annotations, docs."""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal, Union

import torch

from app.core.catalog.spec import ParamSpec, jsonable

# Constructor arguments that describe placement, not the layer: the request's device/dtype do that.
_PLACEMENT_ARGS = {"self", "device", "dtype", "factory_kwargs"}
# ---------------------------------------------------------------------------------------------
# Introspection of torch.nn
# ---------------------------------------------------------------------------------------------


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        nullable = len(args) != len(typing.get_args(tp))
        if len(args) == 1:
            return args[0], nullable
        return Union[tuple(args)], nullable  # type: ignore[return-value]  # noqa: UP007 - built at run time
    return tp, False


def _is_tuple_of(tp: Any, elem: type) -> int | None:
    """Length of ``tuple[elem, ...]`` annotations (0 for variadic), else None."""
    if typing.get_origin(tp) in (tuple, list, Sequence, typing.get_origin(Sequence[int])):
        args = typing.get_args(tp)
        if not args:
            return 0
        if args[-1] is Ellipsis or len(args) == 1:
            return 0 if args[0] is elem else None
        return len(args) if all(a is elem for a in args) else None
    return None


def param_type_from_annotation(tp: Any, default: Any) -> tuple[str, bool, list[Any] | None, int | None] | None:
    """Map a constructor annotation to (json type, nullable, choices, length); None if not JSON-able."""
    tp, nullable = _strip_optional(tp)
    if default is None:
        nullable = True
    if isinstance(tp, str):  # an unresolved forward reference: not expressible as JSON
        return None
    if tp is inspect.Parameter.empty:
        if isinstance(default, bool):
            return "bool", nullable, None, None
        if isinstance(default, int):
            return "int", nullable, None, None
        if isinstance(default, float):
            return "float", nullable, None, None
        if isinstance(default, str):
            return "str", nullable, None, None
        return None
    if tp is bool:
        return "bool", nullable, None, None
    if tp is int:
        return "int", nullable, None, None
    if tp is float:
        return "float", nullable, None, None
    if tp is str:
        return "str", nullable, None, None
    if typing.get_origin(tp) is Literal:
        return "str", nullable, list(typing.get_args(tp)), None
    if tp is torch.Tensor:
        return "tensor", nullable, None, None
    if typing.get_origin(tp) is Union:
        args = typing.get_args(tp)
        if any(a is torch.Tensor for a in args):
            return None
        str_choice = any(a is str for a in args)
        ints = [a for a in args if a is not str]
        if ints and ints[0] is int:
            lengths = [_is_tuple_of(a, int) for a in ints[1:]]
            if all(n is not None for n in lengths):
                length = max((n for n in lengths if n), default=None)
                return "ints", nullable, ([] if str_choice else None), length
            if any(typing.get_origin(a) in (list, tuple) for a in ints[1:]) or any(a is torch.Size for a in ints[1:]):
                return "ints", nullable, None, None
        if ints and ints[0] is float:
            return "floats", nullable, None, None
        if all(a in (int, float) for a in args):
            return "float", nullable, None, None
        if any(a is torch.Size for a in args) or all(
            _is_tuple_of(a, int) is not None for a in args if a is not torch.Size
        ):
            return "int_list", nullable, None, None
        if str_choice:
            # e.g. Transformer's activation: str | Callable — only the string form is JSON
            return "str", nullable, None, None
        return None
    n = _is_tuple_of(tp, int)
    if n is not None:
        return "int_list", nullable, None, n or None
    if _is_tuple_of(tp, float) is not None:
        return "float_list", nullable, None, None
    return None


def doc_summary(cls: type) -> str:
    paragraphs = (inspect.getdoc(cls) or "").split("\n\n")
    # RNN/LSTM/GRU docstrings open with an ``__init__(...)`` signature line
    while len(paragraphs) > 1 and paragraphs[0].lstrip().startswith("__init__("):
        paragraphs.pop(0)
    para = paragraphs[0]
    return re.sub(r"\s+", " ", _strip_rst(para)).strip()


def _strip_rst(text: str) -> str:
    text = re.sub(r":(?:class|func|meth|attr|math|mod):`~?([^`]*)`", r"\1", text)
    return text.replace("``", "`")


def arg_docs(cls: type) -> dict[str, str]:
    """First sentence of each argument in the docstring's ``Args:`` section."""
    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    in_args = False
    current: str | None = None
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in {"Args:", "Arguments:", "Parameters:"}:
            in_args = True
            continue
        if in_args and stripped and not line.startswith(" "):
            in_args = False
        if not in_args:
            continue
        m = re.match(r"^\s{2,8}([A-Za-z_][A-Za-z0-9_]*)(?: \(([^)]*)\))?:\s*(.*)$", line)
        if m and m.group(1) != "Default" and line.startswith("    ") and not line.startswith("         "):
            current = m.group(1)
            out[current] = m.group(3)
        elif current and stripped:
            out[current] += " " + stripped
    return {k: _strip_rst(re.sub(r"\s+", " ", v)).strip() for k, v in out.items()}


def introspect_params(cls: type, *, skip: Sequence[str] = ()) -> list[ParamSpec]:
    """Parameters of ``cls.__init__`` that plain JSON can express, with torch's defaults."""
    sig = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except (
        NameError,
        TypeError,
        AttributeError,
    ):  # forward references torch never resolves ('TransformerEncoderLayer')
        hints = {}
    docs = arg_docs(cls)
    out: list[ParamSpec] = []
    for name, p in sig.parameters.items():
        if name in _PLACEMENT_ARGS or name in skip or name.startswith("_"):
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = None if p.default is p.empty else p.default
        mapped = param_type_from_annotation(hints.get(name, p.annotation), default)
        if mapped is None:
            continue
        type_, nullable, choices, length = mapped
        if p.default is p.empty:
            # a required argument is never null, whatever its annotation allows
            nullable = False
        if not jsonable(default):
            default = None
        out.append(
            ParamSpec(
                name=name,
                type=type_,
                default=default,
                required=p.default is p.empty,
                nullable=nullable,
                choices=choices or None,
                length=length,
                doc=docs.get(name, ""),
            )
        )
    return out
