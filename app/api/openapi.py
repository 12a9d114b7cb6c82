"""An honest OpenAPI document: the request bodies the routes really read, and every error they send.

The POST routes read their body through :func:`app.api.deps.json_body` (size, depth and time limits
before parsing), so FastAPI does not see the models; they are added here as components and referenced,
with no dangling ``$ref``. Every operation lists the statuses it can answer with, all in the one
error shape :class:`app.api.errors.ErrorBody`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from app.api.errors import ErrorBody
from app.core.service import ExplainRequest, ReceptiveFieldRequest, RunRequest

REF = "#/components/schemas/{model}"

DESCRIPTIONS = {
    400: "Bad request: a Host header this server does not answer to, or a body that is not valid JSON",
    404: "Unknown layer type (or no such path)",
    408: "The request body did not arrive in time",
    413: "The body, or the memory the request needs, is over the server's limit",
    415: "The body is not declared as Content-Type: application/json",
    422: "The request is well-formed JSON but cannot be run; `field` names the culprit",
    499: "The client closed the connection; its work was cancelled (nobody receives this answer)",
    500: "An internal error, or the worker process running the request crashed (`error`: worker_crashed)",
    503: "Busy: the wait queue is full or the server's memory budget is in use; retry after `Retry-After` s",
    504: "The request ran past the server's deadline (LAYER_EXPLORER_TIMEOUT); its worker was replaced",
}
EVERY = (400, 500)
BODIED = (400, 404, 408, 413, 415, 422, 499, 500, 503, 504)


class ImportBody(BaseModel):
    """POST /api/import: PyTorch code to read (parsed with ast, never run)."""

    model_config = ConfigDict(extra="forbid")
    # at most 20,000 characters: longer code is a 413, like every other size limit of this server
    code: str = Field(
        examples=["nn.Sequential(nn.Linear(10, 5), nn.ReLU())"],
        description="PyTorch code: constructor calls of catalog layers (20,000 characters at most)",
    )


BODIES = {
    "/api/run": RunRequest,
    "/api/shape": RunRequest,
    "/api/explain": ExplainRequest,
    "/api/animate": RunRequest,
    "/api/receptive-field": ReceptiveFieldRequest,
    "/api/import": ImportBody,
}
MEDIA = {
    "/api/run": {"application/octet-stream": "with ?format=npy the output tensor as a NumPy .npy file"},
    "/api/animate": {"image/gif": "format=gif", "video/webm": "format=webm", "video/mp4": "format=mp4"},
}


def _error(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}},
    }
    if status == 503:
        response["headers"] = {
            "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
        }
    return response


def build(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components: dict[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (*dict.fromkeys(BODIES.values()), ErrorBody):
        js = model.model_json_schema(ref_template=REF)
        components.update(js.pop("$defs", {}))
        components[model.__name__] = js
    for path, item in schema.get("paths", {}).items():
        for _method, op in item.items():
            responses = op.setdefault("responses", {})
            statuses = BODIED if path in BODIES else EVERY + ((404, 422) if "{" in path else ())
            for status in statuses:
                responses[str(status)] = _error(status)
            if path in BODIES:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": REF.format(model=BODIES[path].__name__)}}},
                }
            if path in MEDIA and "200" in responses:
                content = responses["200"].setdefault("content", {})
                if path == "/api/animate":
                    content.clear()
                for media_type in MEDIA[path]:
                    content[media_type] = {"schema": {"type": "string", "format": "binary"}}
                responses["200"]["description"] = "; ".join(f"{m}: {why}" for m, why in MEDIA[path].items())
    # FastAPI's own 422 shape is never sent (our handler answers with ErrorBody): drop it.
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
