from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(prefix="/api", tags=["presets"])


@router.get("/presets", response_model=dict[str, Any])
def presets(request: Request) -> Response:
    """Ready-made networks (the tutorial's, LeNet-5, ...), each a complete /api/run request.

    Serialised once at start-up (app.api.delivery), with a strong ETag and 304 on If-None-Match."""
    return request.app.state.presets.respond(request)
