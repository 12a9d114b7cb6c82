"""One error hierarchy for everything a request can get wrong.

The HTTP layer has a single handler that turns any :class:`LayerExplorerError` into a JSON
response with ``status``; messages are written for the person who sent the request.
"""

from __future__ import annotations

from typing import Any


class LayerExplorerError(Exception):
    """Base class: a request that cannot be served, with a message a person can act on."""

    status: int = 422
    code: str = "invalid_request"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.detail, "error": self.code, "field": self.field}
        body.update(self.extra)
        return body


class BadRequest(LayerExplorerError):
    status = 400
    code = "bad_request"


class UnknownLayer(LayerExplorerError):
    status = 404
    code = "unknown_layer"


class TooLarge(LayerExplorerError):
    status = 413
    code = "too_large"


class InvalidRequest(LayerExplorerError):
    code = "invalid_request"


class InvalidArgument(LayerExplorerError):
    code = "invalid_argument"


class ShapeMismatch(LayerExplorerError):
    code = "shape_mismatch"


class DeviceUnavailable(LayerExplorerError):
    code = "device_unavailable"


class NotExplainable(LayerExplorerError):
    code = "not_explainable"
