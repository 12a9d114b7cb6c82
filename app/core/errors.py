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

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with the response (Retry-After for a busy server)."""
        return {}


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


class UnsupportedMediaType(LayerExplorerError):
    status = 415
    code = "unsupported_media_type"


class RequestTimeout(LayerExplorerError):
    status = 408
    code = "request_timeout"


class ServerBusy(LayerExplorerError):
    """Admission control refused the request for now (queue full, memory budget in use): retry later."""

    status = 503
    code = "server_busy"

    def __init__(self, detail: str, *, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extra)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.extra.get("retry_after", 1))}


class DeadlineExceeded(LayerExplorerError):
    status = 504
    code = "deadline_exceeded"


class WorkerCrashed(LayerExplorerError):
    status = 500
    code = "worker_crashed"


class InternalError(LayerExplorerError):
    status = 500
    code = "internal_error"


class ClientClosed(LayerExplorerError):
    """The client went away before the answer was ready; its work was cancelled (nobody reads this)."""

    status = 499
    code = "client_closed_request"


class Reported(LayerExplorerError):
    """An error raised in a worker process, carried back to the web process as plain data."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body.get("detail", "")), field=body.get("field"))
        self.status = status
        self.body = body
        self._headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        return dict(self.body)

    def headers(self) -> dict[str, str]:
        return dict(self._headers)
