"""Shared request plumbing: settings, catalog and worker pool from app state, and a guarded JSON body."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import numpy as np
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from app.core.catalog import Registry
from app.core.config import Settings
from app.core.errors import BadRequest, RequestTimeout, TooLarge
from app.core.workers import WorkerPool


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_registry(request: Request) -> Registry:
    return request.app.state.registry


def get_pool(request: Request) -> WorkerPool:
    return request.app.state.pool


async def in_worker(request: Request, name: str, body: Any, **options: Any) -> Any:
    """Run one task in the worker pool; the client going away cancels it."""
    pool: WorkerPool = request.app.state.pool
    return await pool.call(name, body, options=options, disconnected=request.is_disconnected)


async def json_body(request: Request) -> Any:
    """The body as JSON, refusing oversized, slow or too deeply nested documents.

    Reading is bounded in time (``body_timeout_s``) and size; the depth check and the parse run in a
    thread, so a large body never stalls the event loop (``/healthz`` keeps answering).
    """
    settings: Settings = request.app.state.settings
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
        raise RequestTimeout(
            f"the request body did not arrive within {settings.body_timeout_s:g} s"
        ) from None
    if not raw.strip():
        raise BadRequest("the request body is empty; send a JSON object with 'layer' and 'inputs'")
    return await run_in_threadpool(decode_json, bytes(raw))


MAX_DEPTH = 64

# A JSON string (quotes and escapes included): brackets inside strings do not nest.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
# Every byte value except the four brackets, for bytes.translate(None, delete).
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def decode_json(raw: bytes) -> Any:
    """Depth check, then json.loads; every failure is a 400 naming what is wrong."""
    depth = max_depth(raw)
    if depth > MAX_DEPTH:
        raise BadRequest(f"the request body is nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the request body is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal past Python's 4300-digit conversion limit
        raise BadRequest(f"the request body has a number that cannot be read: {exc}") from None


def max_depth(raw: bytes) -> int:
    """Deepest bracket nesting outside strings, at C speed (regex, translate, numpy cumsum)."""
    if raw.count(b"[") + raw.count(b"{") < MAX_DEPTH:
        return 0
    skeleton = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not skeleton:
        return 0
    marks = np.frombuffer(skeleton, dtype=np.uint8)
    steps = np.where((marks == ord("[")) | (marks == ord("{")), 1, -1).astype(np.int64)
    return int(np.cumsum(steps).max())
