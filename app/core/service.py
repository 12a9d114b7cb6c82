"""The one door from the web layer into the torch side: what ``app.api`` may call.

Every function takes plain data (the decoded JSON body, :class:`Settings`) and returns plain data,
so that it can be called in this process or in a worker process alike.
"""

from __future__ import annotations

from app.core.body import JSONBytes
from app.core.budget import trim as trim_memory
from app.core.catalog.plugins import PluginError
from app.core.catalog.spec import LayerSpec, Registry
from app.core.config import Settings
from app.core.errors import (
    BadRequest,
    LayerExplorerError,
    RequestTimeout,
    ServerBusy,
    TooLarge,
    UnsupportedMediaType,
)
from app.core.graphs.endpoints import import_model, receptive_field
from app.core.graphs.receptive import ReceptiveFieldRequest
from app.core.lesson import lesson
from app.core.presets import presets
from app.core.registry import default_registry
from app.core.running.animate import animate
from app.core.running.devices import list_devices, resolve_device
from app.core.running.requests import explain, npy, output_tensor, run, shape, warm_up
from app.core.schema import ExplainRequest, RunRequest
from app.core.spool import read_chunks
from app.core.workers import WorkerPool

__all__ = [
    "BadRequest",
    "ExplainRequest",
    "JSONBytes",
    "LayerExplorerError",
    "LayerSpec",
    "PluginError",
    "ReceptiveFieldRequest",
    "Registry",
    "RequestTimeout",
    "RunRequest",
    "ServerBusy",
    "Settings",
    "TooLarge",
    "UnsupportedMediaType",
    "WorkerPool",
    "animate",
    "default_registry",
    "explain",
    "import_model",
    "lesson",
    "list_devices",
    "npy",
    "output_tensor",
    "presets",
    "read_chunks",
    "receptive_field",
    "resolve_device",
    "run",
    "shape",
    "trim_memory",
    "warm_up",
]
