"""POST /api/receptive-field: which elements of every node of a network one output element depends on."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from app.api.deps import get_registry, get_settings, json_body
from app.core import service
from app.core.service import Registry, Settings
from app.core.service import ReceptiveFieldRequest

router = APIRouter(prefix="/api", tags=["receptive-field"])

_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ReceptiveFieldRequest.model_json_schema()}},
    }
}


@router.post("/receptive-field", openapi_extra=_SCHEMA)
async def receptive_field(
    body: Any = Depends(json_body),
    registry: Registry = Depends(get_registry),
    settings: Settings = Depends(get_settings),
) -> Any:
    """Structural (and effective, |∂y/∂x|) receptive field of one element, for every node of the graph."""
    return await run_in_threadpool(service.receptive_field, registry, body, settings)
