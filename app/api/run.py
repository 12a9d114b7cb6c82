"""POST /api/run, /api/shape, /api/explain: the torch work happens behind app.core.service."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import get_registry, get_settings, json_body
from app.core import service
from app.core.service import ExplainRequest, Registry, RunRequest, Settings

router = APIRouter(prefix="/api", tags=["run"])

_RUN_SCHEMA = {"requestBody": {"required": True, "content": {"application/json": {"schema": RunRequest.model_json_schema()}}}}
_EXPLAIN_SCHEMA = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": ExplainRequest.model_json_schema()}}}
}


@router.post("/run", openapi_extra=_RUN_SCHEMA)
async def run(
    body: Any = Depends(json_body),
    format: Literal["json", "npy"] = Query("json", description="npy: the output tensor as a NumPy .npy file"),
    tensor: str | None = Query(None, description="with format=npy: which output (default: the first)"),
    registry: Registry = Depends(get_registry),
    settings: Settings = Depends(get_settings),
) -> Any:
    """Build the layer, run a real forward pass, return output, params, predicted shape and formula."""
    if format == "npy":
        name, data = await run_in_threadpool(service.npy, registry, body, settings, tensor)
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"content-disposition": f'attachment; filename="{name}.npy"'},
        )
    return await run_in_threadpool(service.run, registry, body, settings)


@router.post("/shape", openapi_extra=_RUN_SCHEMA)
async def shape(
    body: Any = Depends(json_body),
    registry: Registry = Depends(get_registry),
    settings: Settings = Depends(get_settings),
) -> Any:
    """Output shapes, parameter shapes and formulas without allocating a tensor (meta device)."""
    return await run_in_threadpool(service.shape, registry, body, settings)


@router.post("/explain", openapi_extra=_EXPLAIN_SCHEMA)
async def explain(
    body: Any = Depends(json_body),
    registry: Registry = Depends(get_registry),
    settings: Settings = Depends(get_settings),
) -> Any:
    """One output element recomputed by hand from its inputs, weights and bias."""
    return await run_in_threadpool(service.explain, registry, body, settings)
