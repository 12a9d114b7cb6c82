"""Assembles the ASGI app: settings, catalog, worker pool, routers, middleware, error handler, static files.

No app is built at import time (that would read the environment and import plugins as a side
effect of an import); servers call the factory: ``uvicorn --factory app.main:create_app``, or
``layer-explorer``, which loads ``app.server:worker_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES

from app import __version__
from app.api import (
    animate,
    delivery,
    devices,
    docs,
    errors,
    health,
    imports,
    layers,
    lesson,
    middleware,
    openapi,
    pages,
    presets,
    receptive_field,
    run,
)
from app.core.service import Settings, WorkerPool
from app.core.service import lesson as the_lesson
from app.core.service import presets as all_presets
from app.paths import STATIC_DIR


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Workers start with the server and stop with it (SIGTERM: uvicorn drains, then this stops them).

    The port opens at once: /healthz answers while the workers import torch and warm up, and
    /readyz says when they can serve (requests that arrive before then wait for them).
    """
    # Starting the pool blocks for seconds (the forkserver imports torch): in a thread, not awaited
    # here, so that uvicorn opens the port now. A request that comes first waits for it (WorkerPool.call).
    starting = asyncio.get_running_loop().run_in_executor(None, app.state.pool.start)
    try:
        yield
    finally:
        owner = await starting
        if owner:  # a pool started by someone else (a test fixture) is theirs to stop
            await run_in_threadpool(app.state.pool.close)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    app = FastAPI(
        title="Layer Explorer",
        version=__version__,
        description="Build any torch.nn layer from JSON, run it, predict its shapes, explain any output element.",
        lifespan=lifespan,
        # /docs is app.api.docs (Swagger UI from vendored assets); FastAPI's pages would load it from a CDN
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # this process never imports torch: the torch work, and building the catalog, happen in the pool's
    # workers; the first one to start reports the catalog and the devices as data (app.api.deps.get_catalog)
    app.state.pool = WorkerPool(settings)
    app.state.catalog = None
    # delivery: JSON built once; static files under a content-hashed prefix; modules to preload
    app.state.presets = delivery.Prebuilt.of({"presets": all_presets()})
    app.state.lesson = delivery.Prebuilt.of(the_lesson())
    app.state.static_version = delivery.static_version(STATIC_DIR)
    app.state.modules = delivery.module_graph(STATIC_DIR)
    errors.install(app)
    for module in (run, receptive_field, health, devices, layers, presets, lesson, imports, animate, pages, docs):
        app.include_router(module.router)
    app.mount(
        f"/static/v/{app.state.static_version}",
        delivery.CachedStatic(directory=STATIC_DIR, cache_control=delivery.IMMUTABLE),
        name="static-versioned",
    )
    app.mount("/static", delivery.CachedStatic(directory=STATIC_DIR, cache_control=delivery.REVALIDATE), name="static")
    openapi.install(app)
    # added last = outermost: the Host check comes first, and every answer carries the security headers
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["content-type"],
        )
    # JSON, HTML, JS, CSS and SVG shrink 4-10x; woff2/PNG are compressed already and gain nothing (the
    # middleware still skips bodies under minimum_size and clients that do not send Accept-Encoding: gzip).
    # A .npy (application/octet-stream) is float bits that gzip shrinks by 7% at ~36 MB/s of the web
    # process's CPU (measured 1.8 s for 16 M random float32): sent as it is instead.
    # The JSON answers of the torch work come compressed already: each worker gzips its own (app.api.deps.in_worker).
    app.add_middleware(
        middleware.GZip,
        minimum_size=500,
        compresslevel=6,
        exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/octet-stream"),
    )
    app.state.bodies = middleware.BodyTally(settings.max_bodies_bytes)
    app.add_middleware(middleware.BodyBudget, tally=app.state.bodies)
    app.add_middleware(middleware.JSONTrustedHost, allowed_hosts=settings.allowed_hosts)
    # inside the security headers, outside everything that can be cancelled mid-request
    app.add_middleware(middleware.CancelledAsJSON)
    app.add_middleware(middleware.SecurityHeaders)
    return app
