"""POST /api/import: a model pasted as PyTorch code, turned into a layer config (parsed, never run)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from app.api.deps import in_worker, json_body

router = APIRouter(prefix="/api", tags=["import"])

_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["code"],
                    "properties": {"code": {"type": "string", "example": "nn.Sequential(nn.Linear(10, 5), nn.ReLU())"}},
                }
            }
        },
    }
}


@router.post("/import", openapi_extra=_SCHEMA)
async def import_code(request: Request, body: bytes = Depends(json_body)) -> Any:
    """Constructor calls of catalog layers with literal arguments -> {"layer": config, "inputs": [...]}."""
    return await in_worker(request, "import", body)
