"""Layer Explorer from Python: a live ``nn.Module`` as the request body ``/api/run`` takes.

``to_config(model, x)`` needs no server: it traces the model on the example input and writes the
network config (catalog layers, containers, a ``Graph`` of the forward pass, opaque layers for what
the server does not know). ``weights=True`` adds the model's own parameters (base64 ``.npy``).
"""

from layer_explorer.convert import (
    Conversion,
    body_bytes,
    body_limit,
    convert,
    fits,
    parameters_of,
    to_config,
)

__all__ = ["Conversion", "body_bytes", "body_limit", "convert", "fits", "parameters_of", "to_config"]
