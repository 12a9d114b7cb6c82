"""The one error handler: every error becomes JSON ``{detail, error, field, ...}`` with its status."""

from __future__ import annotations

import sys
import traceback

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.service import LayerExplorerError


class ErrorBody(BaseModel):
    """What every error response carries (some add more: ``path``, ``trace``, ``estimate_bytes`` ...)."""

    model_config = ConfigDict(extra="allow")

    detail: str
    error: str
    field: str | None = None


async def handle_app_error(request: Request, exc: LayerExplorerError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=exc.headers() or None)


async def handle_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    field = ".".join(str(p) for p in err["loc"] if p not in ("body", "query"))
    return JSONResponse(
        {
            "detail": f"{field}: {err['msg']}" if field else err["msg"],
            "error": "invalid_request",
            "field": field or None,
        },
        status_code=422,
    )


async def handle_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    # exc.headers carries Allow on a 405
    return JSONResponse(
        {"detail": exc.detail, "error": "http_error", "field": None}, status_code=exc.status_code, headers=exc.headers
    )


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Anything else is a bug: JSON 500 without the traceback (which goes to the server log)."""
    traceback.print_exception(exc, file=sys.stderr)
    return JSONResponse(
        {
            "detail": "the server failed on this request (an internal error; the server log has the details)",
            "error": "internal_error",
            "field": None,
        },
        status_code=500,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(LayerExplorerError, handle_app_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, handle_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, handle_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, handle_unexpected)
