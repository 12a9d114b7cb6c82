"""The layer catalog: a registry derived from ``torch.nn`` itself, curated per family.

Each :class:`LayerSpec` says how to build one layer type from JSON (its parameters, read from the
constructor's signature and annotations), what its ``forward()`` takes, how to predict its output
shape, and a request that runs as it is. Unknown types fail here, before anything is built: a
request's ``type`` is only ever a key into this registry.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import torch
from torch import nn

from app.core.errors import UnknownLayer

# Constructor arguments that describe placement, not the layer: the request's device/dtype do that.
_PLACEMENT_ARGS = {"self", "device", "dtype", "factory_kwargs"}

@dataclass
class ParamSpec:
    """One constructor argument, named exactly as torch names it.

    ``type`` is the JSON type: int, float, bool, str, ints (int or a list of ``length`` ints),
    floats, int_list, float_list, tensor (nested list of numbers), layer (a nested config).
    """

    name: str
    type: str
    default: Any = None
    required: bool = False
    nullable: bool = False
    choices: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    length: int | None = None
    doc: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": _jsonable_default(self.default),
            "nullable": self.nullable,
        }
        for key in ("choices", "minimum", "maximum", "length"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.exclusive_minimum:
            out["exclusive_minimum"] = True
        if self.doc:
            out["doc"] = self.doc
        return out


def _jsonable(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_jsonable(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _jsonable_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, (bool, int, float, str, list)):
        return value
    return None


@dataclass
class InputSpec:
    """One ``forward()`` argument.

    ``kind`` says how a ``{"shape": ...}`` input is drawn: normal (``torch.randn``), uniform
    (``torch.rand``), index (``torch.randint(0, high, shape)``), sign (±1), binary (0/1).
    ``high`` is a parameter name or ``"input0.shape[1]"``-style reference for index inputs.
    """

    name: str
    convention: str
    kind: str = "normal"
    high: str | int | None = None
    optional: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "convention": self.convention, "kind": self.kind}
        if self.high is not None:
            out["high"] = self.high
        if self.optional:
            out["optional"] = True
        return out

    @property
    def is_integer(self) -> bool:
        return self.kind == "index"


# A shape rule predicts output dimensions from the built (meta) module, the validated arguments
# and the input shapes, and raises ShapeMismatch with a readable message for shapes it rejects.
ShapeRule = Callable[[nn.Module, dict[str, Any], list[tuple[int, ...]]], list[list[Any]]]


@dataclass
class LayerSpec:
    type: str
    family: str
    factory: Callable[..., nn.Module]
    params: list[ParamSpec]
    inputs: list[InputSpec]
    example: dict[str, Any]
    doc: str = ""
    outputs: list[str] = field(default_factory=lambda: ["output"])
    rule: ShapeRule | None = None
    explain: str | None = None  # linear, bilinear, conv, transposed, pool
    source: str = "torch"  # torch, custom, plugin, container
    #: Python source a reproduction script needs before it can build this type (class definitions)
    code_prelude: str = ""
    #: how a script names the constructor, e.g. "torch.nn.Linear" or "BasicLinear"
    code_name: str = ""
    #: how a script passes the inputs when forward() groups them, e.g. "{0}, ({1}, {2})" for LSTM
    code_call: dict[int, str] = field(default_factory=dict)

    @property
    def windows(self) -> bool:
        return self.explain in {"conv", "transposed", "pool"}

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.params if p.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "family": self.family,
            "doc": self.doc,
            "source": self.source,
            "params": [p.to_dict() for p in self.params],
            "inputs": [i.to_dict() for i in self.inputs],
            "outputs": list(self.outputs),
            "explainable": self.explain is not None,
            "windows": self.windows,
            "example": self.example,
        }


class Registry:
    """Layer types by name. Plain data built at import time; every process builds its own."""

    def __init__(self) -> None:
        self._specs: dict[str, LayerSpec] = {}

    def add(self, spec: LayerSpec, *, replace: bool = False) -> LayerSpec:
        if spec.type in self._specs and not replace:
            raise ValueError(f"layer type {spec.type!r} is already registered")
        self._specs[spec.type] = spec
        return spec

    def get(self, type_name: Any, *, field: str = "layer.type") -> LayerSpec:
        if not isinstance(type_name, str) or not type_name:
            raise UnknownLayer("'type' must name a layer, e.g. \"Linear\"", field=field)
        spec = self._specs.get(type_name)
        if spec is None:
            import difflib

            close = difflib.get_close_matches(type_name, self._specs, n=3, cutoff=0.6)
            lowered = {k.lower(): k for k in self._specs}
            if type_name.lower() in lowered:
                close = [lowered[type_name.lower()]]
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownLayer(
                f"Unknown layer type {type_name!r}.{hint} GET /api/layers lists the "
                f"{len(self._specs)} types this server knows.",
                field=field,
            )
        return spec

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._specs

    def __iter__(self):
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def families(self) -> list[str]:
        seen: dict[str, None] = {}
        for spec in self._specs.values():
            seen.setdefault(spec.family, None)
        return list(seen)


# ---------------------------------------------------------------------------------------------
# Introspection of torch.nn
# ---------------------------------------------------------------------------------------------

def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (Union, getattr(__import__("types"), "UnionType", Union)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        nullable = len(args) != len(typing.get_args(tp))
        if len(args) == 1:
            return args[0], nullable
        return Union[tuple(args)], nullable  # type: ignore[return-value]
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
            if any(typing.get_origin(a) in (list, tuple) for a in ints[1:]) or any(
                a is torch.Size for a in ints[1:]
            ):
                return "ints", nullable, None, None
        if ints and ints[0] is float:
            return "floats", nullable, None, None
        if all(a in (int, float) for a in args):
            return "float", nullable, None, None
        if any(a is torch.Size for a in args) or all(_is_tuple_of(a, int) is not None for a in args if a is not torch.Size):
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
    except Exception:  # forward references torch never resolves (e.g. 'TransformerEncoderLayer')
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
        if not _jsonable(default):
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
