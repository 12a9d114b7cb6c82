"""The one error handler: every LayerExplorerError becomes JSON with its status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.service import LayerExplorerError


async def handle_app_error(request: Request, exc: LayerExplorerError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status)


async def handle_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    field = ".".join(str(p) for p in err["loc"] if p not in ("body", "query"))
    return JSONResponse(
        {"detail": f"{field}: {err['msg']}" if field else err["msg"], "error": "invalid_request", "field": field or None},
        status_code=422,
    )


async def handle_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"detail": exc.detail, "error": "http_error", "field": None}, status_code=exc.status_code)


def install(app: FastAPI) -> None:
    app.add_exception_handler(LayerExplorerError, handle_app_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, handle_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, handle_http)  # type: ignore[arg-type]
