"""The one door from the web layer into the torch side: what ``app.api`` may call.

The web process does not import torch: it only waits for the worker pool's answers. What it imports from
here is torch-free (errors, settings, request models, the pool, the catalog's words for an unknown
type, presets and the lesson, which are plain data). The request functions themselves (``run``,
``shape``, ``default_registry``, ...) are loaded on first use (PEP 562), for what calls them in its own
process: the workers, ``python -m app.server --check``, tests, benchmarks, the reproduction scripts.
Every function takes plain data (the decoded JSON body, :class:`Settings`) and returns plain data, so
that it can be called in this process or in a worker process alike.
"""

from __future__ import annotations

import importlib
from typing import Any

from app.core.body import JSONBytes
from app.core.budget import trim as trim_memory
from app.core.catalog.names import unknown_layer
from app.core.compress import GzippedJSON
from app.core.config import Settings
from app.core.errors import (
    BadRequest,
    LayerExplorerError,
    RequestTimeout,
    ServerBusy,
    TooLarge,
    UnsupportedMediaType,
)
from app.core.lesson import lesson
from app.core.presets import presets
from app.core.schema import ExplainRequest, ReceptiveFieldRequest, RunRequest
from app.core.spool import stream as stream_file
from app.core.workers import WorkerPool

#: the torch side, by name: imported where one of these is first used, never by the web process
TORCH_SIDE: dict[str, tuple[str, str]] = {
    "LayerSpec": ("app.core.catalog.spec", "LayerSpec"),
    "Registry": ("app.core.catalog.spec", "Registry"),
    "PluginError": ("app.core.catalog.plugins", "PluginError"),
    "default_registry": ("app.core.registry", "default_registry"),
    "import_model": ("app.core.graphs.endpoints", "import_model"),
    "receptive_field": ("app.core.graphs.endpoints", "receptive_field"),
    "animate": ("app.core.running.animate", "animate"),
    "list_devices": ("app.core.running.devices", "list_devices"),
    "resolve_device": ("app.core.running.devices", "resolve_device"),
    "explain": ("app.core.running.requests", "explain"),
    "npy": ("app.core.running.requests", "npy"),
    "output_tensor": ("app.core.running.requests", "output_tensor"),
    "run": ("app.core.running.requests", "run"),
    "shape": ("app.core.running.requests", "shape"),
    "warm_up": ("app.core.running.requests", "warm_up"),
}


def __getattr__(name: str) -> Any:
    if name not in TORCH_SIDE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = TORCH_SIDE[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # once: later look-ups are plain attributes
    return value


__all__ = [
    "BadRequest",
    "ExplainRequest",
    "GzippedJSON",
    "JSONBytes",
    "LayerExplorerError",
    "ReceptiveFieldRequest",
    "RequestTimeout",
    "RunRequest",
    "ServerBusy",
    "Settings",
    "TooLarge",
    "UnsupportedMediaType",
    "WorkerPool",
    "lesson",
    "presets",
    "stream_file",
    "trim_memory",
    "unknown_layer",
    *TORCH_SIDE,
]
