"""One server process: settings and the app; start-up checks for the CLI.

``layer-explorer`` (app/cli.py) never imports this module itself: uvicorn imports
:func:`worker_app` in each server process (``factory=True``), so a supervisor of several HTTP
workers stays a small process without torch. Settings come from the environment, which the CLI
fills from its options. The server process does not import torch either: its worker pool does the
torch work (with ``LAYER_EXPLORER_TORCH_THREADS`` threads each) and reports the catalog as data.
"""

from __future__ import annotations

import sys

from fastapi import FastAPI

from app.core import service
from app.core.service import LayerExplorerError, Settings
from app.main import create_app


class StartupError(Exception):
    """The server cannot start as configured (no such device, a plugin that does not import)."""


def check(settings: Settings) -> None:
    """Fail at start-up, in words, rather than on the first request (imports torch: run it in a short-lived
    process, ``python -m app.server --check``, as the CLI does)."""
    try:
        service.resolve_device(settings.device, settings)
        service.default_registry(settings.plugins)
    except (LayerExplorerError, service.PluginError) as exc:
        raise StartupError(str(exc)) from None


def build(settings: Settings) -> FastAPI:
    # the torch work (and its warm-up) happens in the app's worker processes, which start with it
    return create_app(settings)


def worker_app() -> FastAPI:
    """The factory uvicorn calls in each server process."""
    return build(Settings.from_env())


def main() -> None:
    """``python -m app.server --check``: the start-up checks alone (the CLI runs this before starting workers)."""
    if sys.argv[1:] != ["--check"]:
        sys.exit("usage: python -m app.server --check")
    try:
        check(Settings.from_env())
    except StartupError as exc:
        print(f"layer-explorer: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
