"""Entry points of the graph features: plain functions of (registry, request body, settings).

``import_model`` answers ``POST /api/import``, ``receptive_field`` ``POST /api/receptive-field``; the routers
call only these.
"""

from __future__ import annotations

import math
from typing import Any

from app.core.catalog.spec import Registry
from app.core.config import Settings
from app.core.errors import InvalidRequest, LayerExplorerError
from app.core.graphs import receptive
from app.core.graphs.importer import Imported, parse_model
from app.core.networks.tree import resolve
from app.core.running.plan import plan_request
from app.core.running.requests import collector_paused
from app.core.schema import RunRequest

# spatial sizes tried, in order, when the first layer's example input does not fit the network
_SIDES = (28, 32, 224, 64, 16, 8, *range(9, 64))
_MAX_TRIES = 40


def import_model(registry: Registry, body: Any, settings: Settings) -> dict[str, Any]:
    """``{"code": "...", "entry": "Net(10)"?}`` -> ``{"layer": <config>, "inputs": [...], "warnings": [...]}``;
    the code is parsed, never run. ``entry`` picks the model where the code has no instantiation line."""
    if not isinstance(body, dict) or set(body) - {"code", "entry"}:
        raise InvalidRequest('the request body must be {"code": "<PyTorch code>", "entry": "Net(...)"}', field="code")
    imported = parse_model(registry, body.get("code"), body.get("entry"))
    try:
        resolve(registry, imported.layer, field="layer")
    except LayerExplorerError as exc:
        raise _located(exc, imported) from None
    inputs = imported.inputs
    if inputs is None or not _fits(registry, imported.layer, inputs, settings):
        inputs = suggest_inputs(registry, imported.layer, settings)
    return {"layer": imported.layer, "inputs": inputs, "warnings": imported.warnings}


def _located(exc: LayerExplorerError, imported: Imported) -> LayerExplorerError:
    """The catalog's complaint about a config field, pointed at the line and column it came from."""
    field = exc.field or ""
    while field and field not in imported.positions:
        cut = max(field.rfind("."), field.rfind("["))
        field = field[:cut] if cut > 0 else ""
    if field:
        line, col = imported.positions[field]
        exc.detail = f"line {line}, column {col}: {exc.detail}"
        exc.args = (exc.detail,)
        exc.extra.update(line=line, column=col, config_field=exc.field)
        exc.field = "code"
    return exc


def _first_leaf(config: dict[str, Any]) -> dict[str, Any]:
    """The first layer the network's (first) input meets: into Sequentials and Graphs."""
    for _ in range(64):
        if config.get("type") == "Sequential":
            config = config["layers"][0]
        elif config.get("type") == "Graph":
            first = (config.get("inputs") or ["x"])[0]
            nodes = [n for n in config.get("nodes", []) if "module" in n]
            # the first module fed by the input itself, else the first module at all
            feeds = [n for n in nodes if first in n.get("args", [])]
            if not (feeds or nodes):
                return config
            config = (feeds or nodes)[0]["module"]
        else:
            break
    return config


def _parameter_sizes(config: dict[str, Any]) -> list[int]:
    """The sizes of the first Graph's parameter nodes, last dimension first, without repeats."""
    leaf = config
    for _ in range(64):
        if leaf.get("type") == "Sequential" and leaf.get("layers"):
            leaf = leaf["layers"][0]
        elif leaf.get("type") == "Graph":
            nodes = leaf.get("nodes", [])
            params = [n["parameter"].get("shape", []) for n in nodes if isinstance(n.get("parameter"), dict)]
            if params:
                sizes = [d for shape in params for d in reversed(shape) if isinstance(d, int)]
                return list(dict.fromkeys(sizes))
            modules = [n["module"] for n in nodes if isinstance(n.get("module"), dict)]
            if not modules:
                break
            leaf = modules[0]
        else:
            break
    return []


def _guess(registry: Registry, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The first layer's example input, resized to the sizes its arguments name."""
    leaf = _first_leaf(config)
    spec = registry.get(leaf["type"])
    inputs = [dict(i) for i in spec.example.get("inputs", []) if "shape" in i]
    if not inputs:
        return []
    shape = list(inputs[0]["shape"])
    for key in ("in_channels", "num_features", "num_channels"):
        if isinstance(leaf.get(key), int) and len(shape) >= 2:
            shape[1] = leaf[key]
    for key in ("in_features", "input_features", "in1_features", "d_model", "embed_dim", "input_size"):
        if isinstance(leaf.get(key), int):
            shape[-1] = leaf[key]
    inputs[0] = {**inputs[0], "shape": shape}
    return inputs


def _fits(registry: Registry, config: dict[str, Any], inputs: list[dict[str, Any]], settings: Settings) -> bool:
    try:
        plan_request(registry, RunRequest.model_validate({"layer": config, "inputs": inputs}), settings)
    except (LayerExplorerError, ValueError):
        return False
    return True


def suggest_inputs(registry: Registry, config: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """Inputs the pasted network accepts: the first layer's example, else (for images and signals)
    the first square size it fits, e.g. 28×28 for a LeNet whose Linear expects 16·4·4 features."""
    inputs = _guess(registry, config)
    if inputs and _fits(registry, config, inputs, settings):
        return inputs
    # a graph of parameters and ops (the tutorial's BasicLinear: x @ weights.t() + bias): rows of features
    # as wide as one of its parameters' sizes
    for width in _parameter_sizes(config)[:_MAX_TRIES]:
        candidate = [{"shape": [1, width]}]
        if _fits(registry, config, candidate, settings):
            return candidate
    if not inputs:
        return inputs
    shape = inputs[0]["shape"]
    spatial = len(shape) - 2
    if spatial < 1:
        return inputs
    for tries, side in enumerate(_SIDES):
        if tries >= _MAX_TRIES or math.prod(shape[:2]) * side**spatial > 4_000_000:
            break
        candidate = [{**inputs[0], "shape": [*shape[:2], *([side] * spatial)]}, *inputs[1:]]
        if _fits(registry, config, candidate, settings):
            return candidate
    return inputs


def receptive_field(registry: Registry, body: Any, settings: Settings) -> dict[str, Any]:
    """The /api/run body plus ``index`` (and ``path`` or ``node``): per graph node, the elements it depends on.

    Python's cyclic collector is paused meanwhile, as for /api/run: a deep network's answer is a run's
    worth of small objects (plan, trace, graph nodes, an entry per node), and each 700 of them started a
    collection (a 512-block Linear net measured about 25 of its 160 ms in the collector)."""
    with collector_paused():
        return receptive.receptive_field(registry, body, settings)
