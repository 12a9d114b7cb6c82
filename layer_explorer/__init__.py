"""Layer Explorer from Python: a live ``nn.Module`` as the request body ``/api/run`` takes.

``to_config(model, x)`` needs no server: it traces the model on the example input and writes the
network config (catalog layers, containers, a ``Graph`` of the forward pass, opaque layers for what
the server does not know). ``weights=True`` adds the model's own parameters (base64 ``.npy``).
``explore(model, x)`` shows it (inline in a notebook, or in the browser); ``Client``/``AsyncClient`` speak
the REST API.
"""

from layer_explorer._exports_explore import ApiError, AsyncClient, Client, explore
from layer_explorer.convert import (
    Conversion,
    body_bytes,
    body_limit,
    convert,
    fits,
    parameters_of,
    to_config,
)

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
