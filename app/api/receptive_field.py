"""POST /api/receptive-field: which elements of every node of a network one output element depends on."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from app.api.deps import in_worker, json_body
from app.core.service import ReceptiveFieldRequest

router = APIRouter(prefix="/api", tags=["receptive-field"])

_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ReceptiveFieldRequest.model_json_schema()}},
    }
}


@router.post("/receptive-field", openapi_extra=_SCHEMA)
async def receptive_field(request: Request, body: bytes = Depends(json_body)) -> Any:
    """Structural (and effective, |∂y/∂x|) receptive field of one element, for every node of the graph."""
    return await in_worker(request, "receptive_field", body)
