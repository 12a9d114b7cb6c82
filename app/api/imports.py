"""POST /api/import: a model pasted as PyTorch code, turned into a layer config (parsed, never run)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from app.api.deps import get_registry, get_settings, json_body
from app.core import service
from app.core.service import Registry, Settings

router = APIRouter(prefix="/api", tags=["import"])

_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["code"],
            "properties": {"code": {"type": "string", "example": "nn.Sequential(nn.Linear(10, 5), nn.ReLU())"}},
        }}},
    }
}


@router.post("/import", openapi_extra=_SCHEMA)
async def import_code(
    body: Any = Depends(json_body),
    registry: Registry = Depends(get_registry),
    settings: Settings = Depends(get_settings),
) -> Any:
    """Constructor calls of catalog layers with literal arguments -> {"layer": config, "inputs": [...]}."""
    return await run_in_threadpool(service.import_model, registry, body, settings)
