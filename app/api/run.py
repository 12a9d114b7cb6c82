"""POST /api/run, /api/shape, /api/explain: the torch work happens in a worker process (app.core.workers)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from app.api.deps import in_worker, json_body
from app.core.service import stream_file

router = APIRouter(prefix="/api", tags=["run"])


@router.post("/run")
async def run(
    request: Request,
    body: bytes = Depends(json_body),
    format: Literal["json", "npy"] = Query("json", description="npy: the output tensor as a NumPy .npy file"),
    tensor: str | None = Query(None, description="with format=npy: which output (default: the first)"),
) -> Any:
    """Build the layer, run a real forward pass, return output, params, predicted shape and formula."""
    if format == "npy":
        # the worker wrote the file into shared memory; it is streamed from there (app.core.spool)
        name, fh, size = await in_worker(request, "npy", body, tensor=tensor)
        return StreamingResponse(
            stream_file(fh),
            media_type="application/octet-stream",
            headers={"content-disposition": f'attachment; filename="{name}.npy"', "content-length": str(size)},
        )
    return await in_worker(request, "run", body)


@router.post("/shape")
async def shape(
    request: Request,
    body: bytes = Depends(json_body),
    detail: Literal["full", "shapes"] = Query(
        "full",
        description="shapes: the formulas' answer alone, in milliseconds at any size (no dataflow graph, no "
        "trace of the submodules a layer builds inside itself, which take meta passes)",
    ),
) -> Any:
    """Output shapes, parameter shapes and formulas without allocating a tensor (meta device)."""
    return await in_worker(request, "shape", body, detail=detail)


@router.post("/explain")
async def explain(request: Request, body: bytes = Depends(json_body)) -> Any:
    """One output element recomputed by hand from its inputs, weights and bias."""
    return await in_worker(request, "explain", body)
