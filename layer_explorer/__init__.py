"""Layer Explorer from Python: a live ``nn.Module`` as the request body ``/api/run`` takes.

``to_config(model, x)`` needs no server: it traces the model on the example input and writes the
network config (catalog layers, containers, a ``Graph`` of the forward pass, opaque layers for what
the server does not know). ``weights=True`` adds the model's own parameters (base64 ``.npy``).
``explore(model, x)`` shows it (inline in a notebook, or in the browser); ``Client``/``AsyncClient`` speak
the REST API.
"""

import importlib

from layer_explorer.convert import (
    Conversion,
    body_bytes,
    body_limit,
    convert,
    fits,
    parameters_of,
    to_config,
)

# explore() and the clients need the web stack (uvicorn, httpx, the app): loaded on first use, so that
# ``to_config`` alone imports no web framework (a script or a notebook that only converts stays light)
_EXPLORE = frozenset({"ApiError", "AsyncClient", "Client", "explore"})


def __getattr__(name: str):
    if name in _EXPLORE:
        return getattr(importlib.import_module("layer_explorer._exports_explore"), name)
    raise AttributeError(f"module 'layer_explorer' has no attribute {name!r}")


__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "Conversion",
    "body_bytes",
    "body_limit",
    "convert",
    "explore",
    "fits",
    "parameters_of",
    "to_config",
]
