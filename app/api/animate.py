"""POST /api/animate: the sliding window as an animated GIF, WebM or MP4 (frames: app.core.running.animate)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import get_registry, get_settings, json_body
from app.core import service
from app.core.service import Registry, RunRequest, Settings

router = APIRouter(prefix="/api", tags=["animate"])

_SCHEMA = {"requestBody": {"required": True, "content": {"application/json": {"schema": RunRequest.model_json_schema()}}}}


@router.post("/animate", openapi_extra=_SCHEMA, response_class=Response)
async def animate(
    body: Any = Depends(json_body),
    format: Literal["gif", "webm", "mp4"] = Query("gif", description="gif, webm or mp4"),
    registry: Registry = Depends(get_registry),
    settings: Settings = Depends(get_settings),
) -> Response:
    """The sliding window of a convolution or pooling layer (the /api/run body) as an animation file."""
    data, media_type = await run_in_threadpool(service.animate, registry, body, settings, format)
    layer = body.get("layer", {}).get("type", "layer") if isinstance(body, dict) and isinstance(body.get("layer"), dict) else "layer"
    name = "".join(ch for ch in str(layer) if ch.isalnum())[:40] or "layer"
    return Response(data, media_type=media_type, headers={"content-disposition": f'attachment; filename="{name}-window.{format}"'})
