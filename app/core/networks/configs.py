"""The JSON config of a module built inside another one (the tutorial block's fc1, an encoder layer's
linear1): read back from the module's own attributes, checked against the catalog, so the layer view can
open it on the input it received there."""

from __future__ import annotations

import threading
from typing import Any

import torch
from torch import nn

from app.core.catalog.args import resolve_args
from app.core.catalog.spec import Registry
from app.core.errors import LayerExplorerError
from app.core.tensors import on_meta_without_init

_MISSING = object()


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, float, str)):
        return value
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, float, bool)) for v in value):
        return list(value)
    return _MISSING


def module_config(registry: Registry | None, module: nn.Module) -> dict[str, Any] | None:
    """``{"type": ..., <argument>: <value>}`` for a catalog layer, or None when it cannot be read back
    exactly (an argument that is not an attribute, or a config that does not rebuild the same weights)."""
    type_name = type(module).__name__
    if registry is None or type_name not in registry:
        return None
    spec = registry.get(type_name)
    if any(p.type in ("layer", "layers", "tensor") for p in spec.params):
        return None
    config: dict[str, Any] = {"type": type_name}
    for p in spec.params:
        value = getattr(module, p.name, _MISSING)
        if p.name == "bias" and (value is None or isinstance(value, torch.Tensor)):
            value = value is not None
        elif isinstance(value, torch.Tensor) or value is _MISSING:
            if p.required:
                return None
            continue
        value = _jsonable(value)
        if value is _MISSING:
            if p.required:
                return None
            continue
        if not p.required and value == p.default:
            continue
        config[p.name] = value
    shapes = tuple((n, tuple(t.shape)) for n, t in module.named_parameters())
    key = (type_name, repr(sorted(config.items())), shapes)
    with _LOCK:
        known = _CHECKED.get(key)
    if known is None:
        known = _rebuilds(spec, config, shapes)
        with _LOCK:
            _CHECKED[key] = known
            if len(_CHECKED) > _CHECKED_SIZE:
                _CHECKED.pop(next(iter(_CHECKED)))
    return dict(config) if known else None


#: configs already checked, by (type, config, parameter shapes): a network of 512 equal blocks rebuilds one
_CHECKED: dict[tuple[Any, ...], bool] = {}
_CHECKED_SIZE = 4096
_LOCK = threading.Lock()  # requests run in a thread pool


def _rebuilds(spec: Any, config: dict[str, Any], shapes: tuple[tuple[str, tuple[int, ...]], ...]) -> bool:
    """Whether ``config`` builds a module with these parameter shapes (on meta, nothing initialised)."""
    try:
        kwargs = resolve_args(spec, config, field="layer")
    except LayerExplorerError:
        return False
    try:
        with on_meta_without_init():
            rebuilt = spec.factory(**kwargs)
    except Exception:  # noqa: BLE001 - a config torch refuses is no config
        return False
    return tuple((n, tuple(t.shape)) for n, t in rebuilt.named_parameters()) == shapes
