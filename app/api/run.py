"""POST /api/run, /api/shape, /api/explain: the torch work happens in a worker process (app.core.workers).

Each endpoint's signature documents it (OpenAPI) and serves it where FastAPI resolves its parameters; the
app serves it through its lean twin (``serve_*``, :class:`app.api.deps.LeanRoute`), which reads the same
body and query itself and does the same work.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from app.api.deps import LeanRoute, answer, in_worker, json_body, query_choice, served_by
from app.core.service import stream_file

router = APIRouter(prefix="/api", tags=["run"], route_class=LeanRoute)


async def _run(request: Request, body: bytes, format: str, tensor: str | None) -> Response:
    if format == "npy":
        # the worker wrote the file into shared memory; it is streamed from there (app.core.spool)
        name, fh, size = await in_worker(request, "npy", body, tensor=tensor)
        return StreamingResponse(
            stream_file(fh),
            media_type="application/octet-stream",
            headers={"content-disposition": f'attachment; filename="{name}.npy"', "content-length": str(size)},
        )
    return answer(await in_worker(request, "run", body))


async def serve_run(request: Request) -> Response:
    body = await json_body(request)  # first, as the dependency was: a bad body is refused before the query
    format = query_choice(request, "format", ("json", "npy"))
    return await _run(request, body, format, request.query_params.get("tensor"))


@router.post("/run")
@served_by(serve_run)
async def run(
    request: Request,
    body: bytes = Depends(json_body),
    format: Literal["json", "npy"] = Query("json", description="npy: the output tensor as a NumPy .npy file"),
    tensor: str | None = Query(None, description="with format=npy: which output (default: the first)"),
) -> Any:
    """Build the layer, run a real forward pass, return output, params, predicted shape and formula."""
    return await _run(request, body, format, tensor)


async def serve_shape(request: Request) -> Response:
    body = await json_body(request)
    detail = query_choice(request, "detail", ("full", "shapes"))
    return answer(await in_worker(request, "shape", body, detail=detail))


@router.post("/shape")
@served_by(serve_shape)
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
    return answer(await in_worker(request, "shape", body, detail=detail))


async def serve_explain(request: Request) -> Response:
    return answer(await in_worker(request, "explain", await json_body(request)))


@router.post("/explain")
@served_by(serve_explain)
async def explain(request: Request, body: bytes = Depends(json_body)) -> Any:
    """One output element recomputed by hand from its inputs, weights and bias."""
    return answer(await in_worker(request, "explain", body))
