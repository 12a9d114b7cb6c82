"""Validate a layer config's arguments against its catalog entry, before torch sees them.

Values are checked against the parameter's JSON type and bounds so that the common mistakes get a
message naming the field; whatever torch itself still rejects is translated where it is built.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any

import torch
from torch import nn

from app.core.catalog.spec import LayerSpec, ParamSpec, Registry
from app.core.errors import InvalidArgument, TooLarge


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _describe(p: ParamSpec) -> str:
    bounds = ""
    if p.minimum is not None and p.maximum is not None:
        bounds = f" between {_num(p.minimum)} and {_num(p.maximum)}"
    elif p.minimum is not None:
        bounds = f" > {_num(p.minimum)}" if p.exclusive_minimum else f" >= {_num(p.minimum)}"
    elif p.maximum is not None:
        bounds = f" <= {_num(p.maximum)}"
    kinds = {
        "int": f"an integer{bounds}",
        "float": f"a number{bounds}",
        "bool": "true or false",
        "str": "a string",
        "ints": (
            f"an integer{bounds} or a list of {p.length} such integers"
            if p.length
            else f"an integer{bounds} or a list of integers"
        ),
        "floats": f"a number{bounds} or a list of numbers",
        "int_list": f"a list of integers{bounds}",
        "float_list": "a list of numbers",
        "tensor": "a (nested) list of numbers",
        "layer": "a layer config object",
        "layers": "a list of layer config objects",
        "shapes": f"a list of at most {MAX_SHAPES} shapes (lists of at most {MAX_SHAPE_RANK} sizes)",
        "named_shapes": f"an object of at most {MAX_SHAPES} names (dotted identifiers) -> shapes",
    }
    text = kinds.get(p.type, p.type)
    if p.choices:
        options = ", ".join(repr(c) for c in p.choices)
        text = f"one of {options}" if p.type == "str" else f"{text}, or one of {options}"
    if p.nullable:
        text += ", or null"
    if p.nullable_items:
        text += " (an entry may be null: that dimension keeps the input's size)"
    return text


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _check_bounds(p: ParamSpec, v: float, field: str, type_name: str) -> None:
    if not math.isfinite(v):
        raise InvalidArgument(f"{type_name}: {p.name} must be a finite number, got {v}", field=field)
    if isinstance(v, int) and not -(2**63) <= v < 2**63:
        # torch keeps integer arguments in 64 bits: larger ones fail deep inside its C++ code
        raise InvalidArgument(
            f"{type_name}: {p.name} must fit in 64 bits (|value| < 2**63); got {_fmt(v)}", field=field
        )
    too_small = p.minimum is not None and (v <= p.minimum if p.exclusive_minimum else v < p.minimum)
    too_big = p.maximum is not None and v > p.maximum
    if too_small or too_big:
        raise InvalidArgument(f"{type_name}: {p.name} must be {_describe(p)}; got {_fmt(v)}", field=field)


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return repr(v)
    try:
        text = json.dumps(v)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def coerce_value(p: ParamSpec, value: Any, *, field: str, type_name: str) -> Any:
    """Check one JSON value against its ParamSpec and convert it to what torch expects."""

    given = value

    def bad() -> InvalidArgument:
        # worded only when raised: a network checks thousands of values, nearly all of them good
        return InvalidArgument(f"{type_name}: {p.name} must be {_describe(p)}; got {_fmt(given)}", field=field)

    if value is None:
        if p.nullable:
            return None
        raise bad()
    t = p.type
    if t == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if t == "int":
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
        if not _is_int(value):
            raise bad()
        _check_bounds(p, value, field, type_name)
        return value
    if t == "float":
        if not _is_number(value):
            raise bad()
        _check_bounds(p, float(value), field, type_name)
        return float(value)
    if t == "str":
        if not isinstance(value, str):
            raise bad()
        if p.choices and value not in p.choices:
            close = difflib.get_close_matches(value, [str(c) for c in p.choices], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InvalidArgument(f"{type_name}: {p.name} must be {_describe(p)}; got {value!r}.{hint}", field=field)
        return value
    if t in ("ints", "floats"):
        check = _is_int if t == "ints" else _is_number
        if isinstance(value, str):
            if p.choices and value in p.choices:
                return value
            raise bad()
        if check(value):
            _check_bounds(p, value, field, type_name)
            return value if t == "ints" else float(value)
        if isinstance(value, list) and value and all(check(v) or (v is None and p.nullable_items) for v in value):
            if p.length and len(value) != p.length:
                raise InvalidArgument(
                    f"{type_name}: {p.name} must be {_describe(p)}; got a list of {len(value)}", field=field
                )
            for v in value:
                if v is not None:
                    _check_bounds(p, v, field, type_name)
            if p.length == 1:
                # 1-d layers take a plain number everywhere; some (LPPool1d) break on a 1-tuple
                return value[0] if t == "ints" else float(value[0])
            return tuple(value) if t == "ints" else tuple(float(v) for v in value)
        raise bad()
    if t in ("int_list", "float_list"):
        check = _is_int if t == "int_list" else _is_number
        if not isinstance(value, list) or not all(check(v) for v in value):
            raise bad()
        if p.length and len(value) != p.length:
            raise InvalidArgument(
                f"{type_name}: {p.name} must be a list of {p.length}; got {len(value)} values", field=field
            )
        for v in value:
            _check_bounds(p, v, field, type_name)
        return list(value)
    if t == "tensor":
        return tensor_from_json(value, field=field, what=f"{type_name}: {p.name}")
    if t == "shapes":
        if not isinstance(value, list) or len(value) > MAX_SHAPES:
            raise bad()
        return [_shape(v, f"{field}[{i}]", type_name) for i, v in enumerate(value)]
    if t == "named_shapes":
        if not isinstance(value, dict) or len(value) > MAX_SHAPES:
            raise bad()
        out = {}
        for name, v in value.items():
            parts = name.split(".")
            if not all(part.isidentifier() and part not in RESERVED_NAMES for part in parts):
                raise InvalidArgument(
                    f"{type_name}: {p.name}: {name!r} is not a parameter name (identifiers joined by '.', none of "
                    "them a name torch.nn.Module uses itself)",
                    field=f"{field}.{name}",
                )
            out[name] = _shape(v, f"{field}.{name}", type_name)
        names = list(out)
        clash = next((a for a in names for b in names if b.startswith(a + ".")), None)
        if clash is not None:
            raise InvalidArgument(f"{type_name}: {p.name}: {clash!r} is both a parameter and a module", field=field)
        total = sum(math.prod(s) for s in out.values())
        if total > MAX_SHAPE_ELEMENTS:
            raise TooLarge(
                f"{type_name}: {p.name} hold {total} elements in all; the limit is {MAX_SHAPE_ELEMENTS}", field=field
            )
        return out
    if t == "layer":
        if not isinstance(value, dict):
            raise bad()
        return value
    if t == "layers":
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            raise InvalidArgument(f"{type_name}: {p.name} must be a non-empty list of layer configs", field=field)
        if len(value) > MAX_CHILDREN:
            raise TooLarge(f"{type_name}: {p.name} has {len(value)} layers; the limit is {MAX_CHILDREN}", field=field)
        names = [v.get("name") for v in value if v.get("name") is not None]
        for name in names:
            if not isinstance(name, str) or not name or "." in name:
                raise InvalidArgument(
                    f"{type_name}: a layer name must be a non-empty string without '.'; got {_fmt(name)}", field=field
                )
            if name in RESERVED_NAMES:
                raise InvalidArgument(
                    f"{type_name}: a layer cannot be named {name!r}: torch.nn.Module already uses that name for its "
                    f"own {'method' if callable(getattr(nn.Module, name, None)) else 'attribute'}; pick another name",
                    field=field,
                )
        if len(set(names)) != len(names):
            raise InvalidArgument(f"{type_name}: layer names must be unique; got {names}", field=field)
        return value
    raise bad()


_MAX_DEPTH = 8
MAX_CHILDREN = 256
#: "shapes" and "named_shapes" arguments (an opaque layer's recorded shapes): entries, rank, elements
MAX_SHAPES = 1024
MAX_SHAPE_RANK = 8
MAX_SHAPE_ELEMENTS = 50_000_000


def _shape(value: Any, field: str, type_name: str) -> list[int]:
    """One recorded shape: a list of at most MAX_SHAPE_RANK sizes >= 0, at most MAX_SHAPE_ELEMENTS elements."""
    if (
        not isinstance(value, list)
        or len(value) > MAX_SHAPE_RANK
        or not all(_is_int(v) and 0 <= v < 2**31 for v in value)
    ):
        raise InvalidArgument(
            f"{type_name}: a shape is a list of at most {MAX_SHAPE_RANK} sizes (whole numbers >= 0); got {_fmt(value)}",
            field=field,
        )
    if math.prod(value) > MAX_SHAPE_ELEMENTS:
        raise TooLarge(
            f"{type_name}: the shape {_fmt(value)} has {math.prod(value)} elements; the limit is {MAX_SHAPE_ELEMENTS}",
            field=field,
        )
    return list(value)


# A child is an attribute of its parent module: names torch.nn.Module itself uses (training, forward,
# __class__, ...) would shadow them, and torch refuses them with a KeyError.
RESERVED_NAMES = frozenset(dir(nn.Module())) | frozenset(vars(nn.Module()))


def tensor_from_json(
    value: Any, *, field: str, what: str, dtype: torch.dtype | None = None, max_elements: int = 1_000_000
) -> torch.Tensor:
    """A tensor from a nested list of numbers, refusing ragged, non-numeric or oversized data."""
    shape: list[int] = []
    probe = value
    while isinstance(probe, list):
        if len(shape) >= _MAX_DEPTH:
            raise InvalidArgument(f"{what}: data is nested deeper than {_MAX_DEPTH} levels", field=field)
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    numel = math.prod(shape) if shape else 1
    if numel > max_elements:
        raise TooLarge(f"{what}: data has {numel} elements; the limit is {max_elements}", field=field)

    flat: list[float] = []

    as_bool = dtype == torch.bool

    def walk(node: Any, depth: int) -> None:
        if depth == len(shape):
            if as_bool and isinstance(node, bool):
                flat.append(node)
                return
            if isinstance(node, bool) or not isinstance(node, (int, float, str)):
                raise InvalidArgument(f"{what}: data must contain only numbers; found {_fmt(node)}", field=field)
            if isinstance(node, str):
                if node not in ("inf", "-inf", "nan"):
                    raise InvalidArgument(
                        f'{what}: data must contain only numbers (or "inf", "-inf", "nan"); found {node!r}',
                        field=field,
                    )
                node = float(node)
            flat.append(node)
            return
        if not isinstance(node, list) or len(node) != shape[depth]:
            raise InvalidArgument(
                f"{what}: data is ragged: every list at depth {depth} must have {shape[depth]} entries",
                field=field,
            )
        for child in node:
            walk(child, depth + 1)

    walk(value, 0)
    if dtype is None:
        dtype = torch.int64 if flat and all(isinstance(v, int) for v in flat) else torch.float32
    if not dtype.is_floating_point and dtype != torch.bool:
        bad = next((v for v in flat if isinstance(v, float) and not v.is_integer()), None)
        if bad is not None:
            raise InvalidArgument(f"{what}: holds indices, which must be whole numbers; found {bad}", field=field)
    try:
        return torch.tensor(flat, dtype=dtype).reshape(shape)
    except (RuntimeError, OverflowError, ValueError, TypeError) as exc:
        raise InvalidArgument(f"{what}: a value does not fit {dtype}: {exc}", field=field) from None


def resolve_args(spec: LayerSpec, config: dict[str, Any], *, field: str = "layer") -> dict[str, Any]:
    """Validated constructor keyword arguments (only those the user gave)."""
    if not isinstance(config, dict):
        raise InvalidArgument("a layer config must be a JSON object with a 'type'", field=field)
    names = {p.name: p for p in spec.params}
    kwargs: dict[str, Any] = {}
    for key, value in config.items():
        if key in ("type", "name"):
            continue
        p = names.get(key)
        if p is None:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            known = ", ".join(names) or "none"
            raise InvalidArgument(
                f"{spec.type} has no argument {key!r}.{hint} Its arguments are: {known}.",
                field=f"{field}.{key}",
            )
        kwargs[key] = coerce_value(p, value, field=f"{field}.{key}", type_name=spec.type)
    missing = [p.name for p in spec.params if p.required and p.name not in kwargs]
    if missing:
        p = names[missing[0]]
        raise InvalidArgument(
            f"{spec.type} needs {p.name} ({_describe(p)})"
            + (f"; also missing: {', '.join(missing[1:])}" if len(missing) > 1 else ""),
            field=f"{field}.{p.name}",
        )
    return kwargs


def lookup(registry: Registry, config: Any, *, field: str = "layer") -> LayerSpec:
    if not isinstance(config, dict):
        raise InvalidArgument("a layer config must be a JSON object with a 'type'", field=field)
    return registry.get(config.get("type"), field=f"{field}.type")
