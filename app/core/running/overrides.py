"""Parameters set by hand: the request's top-level ``"parameters"`` field.

``{"weight": [[...]], "bias": [...], "block1.fc1.weight": {"npy": "<base64 .npy>"}}`` — keyed by the
names ``params[].name`` reports (``named_parameters()`` and ``named_buffers()`` of the built module).
Each value is checked against the module built on the meta device (name, shape, kind of dtype)
before anything is allocated, then copied in under ``torch.no_grad()`` right after the real module
is moved to the request's device and dtype: the seeded draws (every other weight, every input) are
the ones a request without the field gets.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import io
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from app.core.catalog.args import tensor_from_json
from app.core.errors import InvalidArgument, InvalidRequest, TooLarge
from app.core.shapes.context import fmt_shape


def named_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of the module by its dotted name (what ``params[].name`` reports)."""
    out: dict[str, torch.Tensor] = dict(module.named_parameters())
    for name, b in module.named_buffers():
        if b is not None:
            out.setdefault(name, b)
    return out


def _kind(dtype: torch.dtype) -> str:
    if dtype.is_floating_point:
        return "floating-point"
    if dtype == torch.bool:
        return "bool"
    if dtype.is_complex:
        return "complex"
    return "integer"


def _b64(text: Any, *, field: str) -> bytes:
    if not isinstance(text, str):
        raise InvalidArgument(f"{field}: 'npy' must be a base64 string", field=field)
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"{field}: 'npy' is not valid base64", field=field) from None


def _from_npy(raw: bytes, *, field: str, target: torch.Tensor) -> torch.Tensor:
    """A .npy file's array, its header checked against the target before the data is read."""
    buf = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(buf)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(buf)
        else:
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(buf)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise InvalidArgument(f"{field}: not a .npy file ({exc})", field=field) from None
    if dtype.hasobject:
        # object arrays are pickles: never loaded (allow_pickle=False below refuses them as well)
        raise InvalidArgument(f"{field}: a .npy of Python objects is refused; send numbers", field=field)
    if tuple(shape) != tuple(target.shape):
        raise InvalidArgument(
            f"{field}: the .npy has shape {fmt_shape(tuple(shape))}; this tensor has shape "
            f"{fmt_shape(tuple(target.shape))}",
            field=field,
        )
    want = _kind(target.dtype)
    have = {"f": "floating-point", "i": "integer", "u": "integer", "b": "bool", "c": "complex"}.get(dtype.kind, "")
    if have != want:
        raise InvalidArgument(
            f"{field}: the .npy holds {dtype} values; this tensor is {want} ({str(target.dtype).removeprefix('torch.')})",
            field=field,
        )
    if dtype.kind == "f" and dtype.itemsize not in (2, 4, 8):
        raise InvalidArgument(
            f"{field}: .npy dtype {dtype} is not one torch reads; use float32 or float64", field=field
        )
    try:
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidArgument(f"{field}: the .npy could not be read ({exc})", field=field) from None
    # ascontiguousarray makes a 0-d array 1-d: a scalar buffer (num_batches_tracked) keeps its shape ()
    return torch.from_numpy(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("="))).reshape(array.shape)


def decode(raw: Any, meta: nn.Module, *, max_elements: int) -> dict[str, torch.Tensor]:
    """The ``parameters`` field as CPU tensors, each checked against the (meta) module's tensor."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidRequest(
            "parameters must be an object: {name: nested list of numbers or {'npy': base64}}", field="parameters"
        )
    known = named_tensors(meta)
    out: dict[str, torch.Tensor] = {}
    for name, value in raw.items():
        field = f"parameters.{name}"
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise InvalidRequest(
                f"{type(meta).__name__} has no parameter or buffer named {name!r}{hint}; its names are: "
                f"{', '.join(known) or 'none'}",
                field=field,
                valid=list(known),
            )
        target = known[name]
        if target.numel() > max_elements:
            raise TooLarge(f"{field}: {target.numel()} elements; the limit is {max_elements} per tensor", field=field)
        if isinstance(value, dict):
            if set(value) != {"npy"}:
                raise InvalidArgument(f"{field}: give a nested list of numbers or {{'npy': base64}}", field=field)
            t = _from_npy(_b64(value["npy"], field=field), field=field, target=target)
        else:
            kind = _kind(target.dtype)
            # JSON numbers are read as float64 (exact), then copied into the tensor's own dtype
            dtype = torch.float64 if kind == "floating-point" else target.dtype
            t = tensor_from_json(value, field=field, what=field, dtype=dtype, max_elements=max_elements)
            if tuple(t.shape) != tuple(target.shape):
                raise InvalidArgument(
                    f"{field}: got shape {fmt_shape(tuple(t.shape))}; this tensor has shape "
                    f"{fmt_shape(tuple(target.shape))}",
                    field=field,
                )
        out[name] = t
    return out


def nbytes(values: dict[str, torch.Tensor]) -> int:
    """Bytes the decoded values hold (counted in the request's memory estimate)."""
    return sum(math.prod(t.shape) * t.element_size() for t in values.values())


def apply(module: nn.Module, values: dict[str, torch.Tensor]) -> None:
    """Copy each value into the module's tensor of that name (cast to its dtype, on its device)."""
    if not values:
        return
    tensors = named_tensors(module)
    with torch.no_grad():
        for name, t in values.items():
            tensors[name].copy_(t)
