"""Shared request plumbing: settings and catalog from app state, and a guarded JSON body."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from app.core.service import BadRequest, Registry, Settings, TooLarge


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_registry(request: Request) -> Registry:
    return request.app.state.registry


async def json_body(request: Request) -> Any:
    """The body as JSON, refusing oversized or too deeply nested documents before parsing."""
    settings: Settings = request.app.state.settings
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
        raise TooLarge(f"the request body is {declared} bytes; the limit is {settings.max_body_bytes}")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > settings.max_body_bytes:
            raise TooLarge(f"the request body is larger than the limit of {settings.max_body_bytes} bytes")
    if not raw.strip():
        raise BadRequest("the request body is empty; send a JSON object with 'layer' and 'inputs'")
    _check_depth(raw)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the request body is nested too deeply") from None


MAX_DEPTH = 64


def _check_depth(raw: bytes | bytearray) -> None:
    """Reject deep nesting cheaply: count brackets outside strings (bytes.translate is C-speed)."""
    if raw.count(b"[") + raw.count(b"{") < MAX_DEPTH:
        return
    depth = 0
    in_string = False
    escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                raise BadRequest(f"the request body is nested deeper than {MAX_DEPTH} levels")
        elif byte in (0x5D, 0x7D):
            depth -= 1
