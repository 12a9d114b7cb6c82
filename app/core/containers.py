"""Resolving and instantiating layer configs, including containers that nest other configs.

``resolve`` validates a config (recursively for containers) into (spec, kwargs) without building
anything; ``instantiate`` builds the module from that, under whatever device context the caller
set (meta for planning, CPU under the seed for the real run).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from app.core.build import build_module, lookup, resolve_args
from app.core.catalog import LayerSpec, Registry


def resolve(registry: Registry, config: Any, *, field: str) -> tuple[LayerSpec, dict[str, Any]]:
    spec = lookup(registry, config, field=field)
    kwargs = resolve_args(spec, config, field=field)
    for p in spec.params:
        if p.name not in kwargs:
            continue
        if p.type == "layer" and kwargs[p.name] is not None:
            kwargs[p.name] = resolve(registry, kwargs[p.name], field=f"{field}.{p.name}")
        elif p.type == "layers":
            kwargs[p.name] = [
                (_child_name(child, i), *resolve(registry, child, field=f"{field}.{p.name}[{i}]"))
                for i, child in enumerate(kwargs[p.name])
            ]
    return spec, kwargs


def _child_name(config: Any, index: int) -> str:
    name = config.get("name") if isinstance(config, dict) else None
    return name if isinstance(name, str) and name else str(index)


def instantiate(registry: Registry | None, spec: LayerSpec, kwargs: dict[str, Any], *, field: str) -> nn.Module:
    """Build ``spec`` from resolved kwargs; nested configs are built first, in argument order."""
    built: dict[str, Any] = {}
    for p in spec.params:
        if p.name not in kwargs:
            continue
        value = kwargs[p.name]
        if p.type == "layer" and value is not None:
            child_spec, child_kwargs = value
            built[p.name] = instantiate(registry, child_spec, child_kwargs, field=f"{field}.{p.name}")
        elif p.type == "layers":
            built[p.name] = [
                (name, instantiate(registry, cs, ck, field=f"{field}.{p.name}[{i}]"))
                for i, (name, cs, ck) in enumerate(value)
            ]
        else:
            built[p.name] = value
    return build_module(spec, built, field=field)


def trace_hooks(ex_kind: str = "run") -> Any:
    return None


def trace_fields(plan: Any, ex: Any) -> dict[str, Any]:
    return {}


def shape_trace_fields(plan: Any) -> dict[str, Any]:
    return {}
