"""Liveness and readiness: both answered on the event loop, neither waits for the worker pool."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the server is up (answered from the moment the port opens)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "the worker processes are still starting"}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 once a worker process has answered (torch imported, kernels warm), else 503."""
    stats = request.app.state.pool.stats()
    if request.app.state.pool.ready():
        return JSONResponse({"status": "ready", "workers": stats["workers"]})
    return JSONResponse(
        {"status": "starting", "detail": "the worker processes are starting (importing torch, warming up)"},
        status_code=503,
        headers={"Retry-After": "1"},
    )
