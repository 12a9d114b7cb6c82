"""Assembles the ASGI app: settings, catalog, routers, error handler, static files.

No app is built at import time (that would read the environment and import plugins as a side
effect of an import); servers call the factory: ``uvicorn --factory app.main:create_app``, or
``layer-explorer``, which loads ``app.server:worker_app``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.api import animate, devices, errors, health, imports, layers, pages, presets, receptive_field, run
from app.core.service import Settings, default_registry
from app.paths import STATIC_DIR


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    app = FastAPI(
        title="Layer Explorer",
        version=__version__,
        description="Build any torch.nn layer from JSON, run it, predict its shapes, explain any output element.",
    )
    app.state.settings = settings
    app.state.registry = default_registry(settings.plugins)
    errors.install(app)
    for module in (health, devices, layers, presets, run, imports, receptive_field, animate, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    return app
