"""Shared request plumbing: settings, catalog and worker pool from app state, and a guarded JSON body."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from app.api.delivery import CatalogAnswers
from app.api.middleware import accepts_gzip
from app.core.service import (
    BadRequest,
    GzippedJSON,
    JSONBytes,
    RequestTimeout,
    Settings,
    TooLarge,
    UnsupportedMediaType,
    WorkerPool,
)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_catalog(request: Request) -> CatalogAnswers:
    """The catalog and devices as the first worker reported them, serialised once (waits for the workers
    to start when a request comes first)."""
    state = request.app.state
    if state.catalog is None:
        facts = await state.pool.facts()
        if state.catalog is None:  # another request may have built it while this one waited
            state.catalog = CatalogAnswers.of(facts)
    return state.catalog


async def in_worker(request: Request, name: str, body: Any, **options: Any) -> Any:
    """Run one task in the worker pool; the client going away cancels it.

    A client that accepts gzip gets a large JSON answer compressed by the worker (app.core.compress.gzip_json):
    it is sent as it is, with Content-Encoding: gzip, which GZipMiddleware passes through untouched.
    """
    pool: WorkerPool = request.app.state.pool
    gzip = accepts_gzip(request.headers.get("accept-encoding", ""))
    result = await pool.call(name, body, options=options, disconnected=request.is_disconnected, gzip=gzip)
    # the worker's bytes are the body as they are: bytes() of a bytes subclass would copy them (1-3 MB for a
    # network's answer), and Starlette sends any bytes object
    if isinstance(result, GzippedJSON):
        return Response(
            result,
            media_type="application/json",
            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
        )
    if isinstance(result, JSONBytes):  # encoded by the worker: sent as it is
        return Response(result, media_type="application/json")
    return result


async def json_body(request: Request) -> Any:
    """The raw body, refusing non-JSON, oversized or slow ones; the worker that serves the request decodes it.

    Reading is bounded in time (``body_timeout_s``) and size; the depth check and the parse run in the
    worker process (:func:`app.core.body.decode_json`), so a large body never stalls the event loop.
    """
    settings: Settings = request.app.state.settings
    # A cross-site <form> or no-cors fetch can only send text/plain, form or multipart bodies without a
    # CORS preflight: insisting on application/json keeps other web pages from running layers here.
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        got = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
        raise UnsupportedMediaType(f"send the request body as JSON with Content-Type: application/json (got {got})")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
        raise TooLarge(f"the request body is {declared} bytes; the limit is {settings.max_body_bytes}")
    raw = bytearray()
    try:
        async with asyncio.timeout(settings.body_timeout_s):
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > settings.max_body_bytes:
                    raise TooLarge(f"the request body is larger than the limit of {settings.max_body_bytes} bytes")
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {settings.body_timeout_s:g} s") from None
    if not raw.strip():
        raise BadRequest("the request body is empty; send a JSON object with 'layer' and 'inputs'")
    # Parsed in the worker (app.core.body): json.loads of a large body holds the GIL for seconds.
    return bytes(raw)


Handler = Callable[[Request], Awaitable[Response]]


def served_by(handler: Handler) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark an endpoint of a :class:`LeanRoute`: FastAPI documents the endpoint (its query parameters and
    descriptions in /openapi.json), ``handler(request)`` serves its requests."""

    def mark(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        endpoint.served_by = handler  # type: ignore[attr-defined]
        return endpoint

    return mark


class LeanRoute(APIRoute):
    """A route whose requests skip FastAPI's dependency resolution: its endpoint's ``served_by`` handler
    reads the query and the body itself (:func:`query_choice`, :func:`json_body`) and returns a Response.

    For the torch routes, which only pass the raw body on to a worker, resolving ``Depends(json_body)`` and
    two query parameters (validation models, an exit stack per dependency) was about half of the web
    process's CPU per small request. Errors still go through the app's one handler (Starlette's
    exception wrapping around the handler is kept), with the same words as FastAPI's validation.
    """

    def get_route_handler(self) -> Handler:
        handler = getattr(self.endpoint, "served_by", None)
        return handler if handler is not None else super().get_route_handler()


def query_choice(request: Request, name: str, choices: tuple[str, ...]) -> str:
    """Query parameter ``name``, one of ``choices`` (the first when absent; the last value when repeated,
    as FastAPI reads it); anything else is the 422 FastAPI's validation of a ``Literal`` gives."""
    value = request.query_params.get(name)
    if value is None:
        return choices[0]
    if value not in choices:
        words = " or ".join(", ".join(repr(c) for c in choices).rsplit(", ", 1))
        raise RequestValidationError(
            [{"type": "literal_error", "loc": ("query", name), "msg": f"Input should be {words}", "input": value}]
        )
    return value


def answer(result: Any) -> Response:
    """A worker's result as a response: one already encoded (in_worker's) as it is, plain data as JSON."""
    return result if isinstance(result, Response) else JSONResponse(result)
