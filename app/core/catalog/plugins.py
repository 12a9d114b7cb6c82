"""Loading plugin modules named at start-up and adding their layers to a registry."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.core.catalog.introspect import doc_summary, introspect_params
from app.core.catalog.spec import InputSpec, LayerSpec, ParamSpec, Registry
from app.core.shapes.context import convention_names
from app.core.shapes.expr import Dim, Sym
from app.core.tensors import flatten_outputs

# Classes offered by plugin modules as they are imported, in this process. The list only grows
# while a plugin module is being imported; load() turns the entries into catalog specs.
_PENDING: list[PluginLayer] = []


def pending() -> list[PluginLayer]:
    return _PENDING


@dataclass
class PluginLayer:
    cls: type
    name: str
    family: str
    params: list[ParamSpec] | None
    inputs: list[InputSpec] | None
    outputs: list[str] | None
    example: dict[str, Any] | None
    rule: Callable[..., Any] | None
    doc: str | None
    module: str


class PluginError(RuntimeError):
    """A plugin could not be loaded: raised at start-up, never for a request."""


def _import(target: str) -> Any:
    if target.endswith(".py"):
        path = Path(target).resolve()
        if not path.is_file():
            raise PluginError(f"plugin file {target} does not exist")
        name = f"layer_explorer_plugin_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"cannot load plugin file {target}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise PluginError(_failed(target, exc)) from exc
        return module
    try:
        return importlib.import_module(target)
    except ImportError as exc:
        raise PluginError(f"cannot import plugin module {target!r}: {exc}") from exc
    except Exception as exc:
        raise PluginError(_failed(target, exc)) from exc


def _failed(target: str, exc: BaseException) -> str:
    """A plugin's own code raised while it was imported (a NameError, a SyntaxError ...): the error and
    the plugin's line that raised it, in one sentence, as for a plugin that does not import at all."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.lineno:
        where = f" ({Path(exc.filename or target).name}, line {exc.lineno})"
    else:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "importlib" not in f.filename]
        if frames:
            where = f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})"
    return f"plugin {target!r} failed while it was imported: {type(exc).__name__}: {exc}{where}"


def _meta_rule(ctx: Any) -> list[list[Dim]]:
    """Without a declared rule, a plugin layer's shape comes from a meta-device forward pass."""
    xs = [torch.empty(s, device="meta") for s in ctx.shapes]
    with torch.no_grad():
        result = ctx.module(*xs)
    outs = []
    for _, t in flatten_outputs(result, ctx.spec.outputs):
        names = convention_names("(*)", t.dim())
        outs.append([Dim(f"{n}_out" if n.startswith("d") else n, Sym(str(v), int(v))) for n, v in zip(names, t.shape)])
    return outs


def to_spec(p: PluginLayer) -> LayerSpec:
    params = p.params if p.params is not None else introspect_params(p.cls)
    inputs = p.inputs or [InputSpec("input", "(*)")]
    example = dict(p.example or {})
    layer = {"type": p.name, **example.get("layer", {})}
    layer["type"] = p.name
    example = {"layer": layer, "inputs": example.get("inputs", [{"shape": [2, 4]}]), "seed": example.get("seed", 0)}
    return LayerSpec(
        type=p.name,
        family=p.family,
        factory=p.cls,
        params=params,
        inputs=inputs,
        example=example,
        doc=p.doc or doc_summary(p.cls),
        outputs=p.outputs or ["output"],
        rule=p.rule or _meta_rule,
        source="plugin",
        code_prelude=_import_line(p),
        code_name=p.cls.__name__,
    )


def _import_line(p: PluginLayer) -> str:
    if p.module.startswith("layer_explorer_plugin_"):
        path = getattr(sys.modules.get(p.module), "__file__", "the plugin file")
        return f"# {p.cls.__name__} is defined in the server's plugin file {path}; import it from there"
    return f"from {p.module} import {p.cls.__name__}"


def load(registry: Registry, targets: tuple[str, ...]) -> list[str]:
    """Import each plugin module and register the layers it offered; returns their names."""
    added: list[str] = []
    for target in targets:
        start = len(_PENDING)
        module = _import(target)
        offered = list(_PENDING[start:]) or [p for p in _PENDING if p.module == module.__name__]
        if not offered:
            raise PluginError(f"plugin {target!r} registered no layer (use @register_layer)")
        for p in offered:
            if p.name in registry:
                raise PluginError(f"plugin {target!r}: a layer named {p.name!r} is already in the catalog")
            registry.add(to_spec(p))
            added.append(p.name)
    return added
