"""One server process: torch threads, settings, start-up checks, the app with warmed kernels.

``layer-explorer`` (app/cli.py) never imports this module itself: uvicorn imports
:func:`worker_app` in each server process (``factory=True``), so a supervisor of several HTTP
workers stays a small process without torch. Settings come from the environment, which the CLI
fills from its options.
"""

from __future__ import annotations

import os
import sys

import torch
from fastapi import FastAPI

from app.core import service
from app.core.service import LayerExplorerError, PluginError, Settings, default_registry
from app.main import create_app


class StartupError(Exception):
    """The server cannot start as configured (no such device, a plugin that does not import)."""


def configure_threads() -> int:
    """Apply ``LAYER_EXPLORER_TORCH_THREADS`` (set by the CLI to cpus // HTTP workers) to this process."""
    raw = os.environ.get("LAYER_EXPLORER_TORCH_THREADS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        torch.set_num_threads(int(raw))
    return torch.get_num_threads()


def check(settings: Settings) -> None:
    """Fail at start-up, in words, rather than on the first request."""
    try:
        service.resolve_device(settings.device, settings)
        default_registry(settings.plugins)
    except (LayerExplorerError, PluginError) as exc:
        raise StartupError(str(exc)) from None


def build(settings: Settings) -> FastAPI:
    # the torch work (and its warm-up) happens in the app's worker processes, which start with it
    return create_app(settings)


def worker_app() -> FastAPI:
    """The factory uvicorn calls in each server process."""
    configure_threads()
    settings = Settings.from_env()
    try:
        service.resolve_device(settings.device, settings)
        return build(settings)
    except (LayerExplorerError, PluginError) as exc:
        # SystemExit passes through uvicorn's loader: a clean message and status 2, no traceback
        print(f"layer-explorer: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


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
