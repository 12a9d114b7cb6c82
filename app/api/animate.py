"""POST /api/animate: the sliding window as an animated GIF, WebM or MP4 (frames: app.core.running.animate)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app.api.deps import in_worker, json_body
from app.core.service import RunRequest

router = APIRouter(prefix="/api", tags=["animate"])

_SCHEMA = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": RunRequest.model_json_schema()}}}
}


@router.post("/animate", openapi_extra=_SCHEMA, response_class=Response)
async def animate(
    request: Request,
    body: bytes = Depends(json_body),
    format: Literal["gif", "webm", "mp4"] = Query("gif", description="gif, webm or mp4"),
) -> Response:
    """The sliding window of a convolution or pooling layer (the /api/run body) as an animation file."""
    data, media_type, name = await in_worker(request, "animate", body, fmt=format)
    return Response(
        data, media_type=media_type, headers={"content-disposition": f'attachment; filename="{name}-window.{format}"'}
    )
