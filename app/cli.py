"""``layer-explorer``: start the server."""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="layer-explorer", description="Serve the Layer Explorer web app and API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--device", default=None, help="default device: cpu (default), cuda, cuda:N, mps or auto")
    parser.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE",
        help="import MODULE at start-up to register custom layers (repeatable)",
    )
    parser.add_argument("--memory-limit", type=int, default=None, metavar="BYTES", help="refuse requests estimated above this")
    args = parser.parse_args(argv)

    import uvicorn

    from app import serving
    from app.core.config import Settings
    from app.main import create_app

    env_plugins = tuple(p for p in os.environ.get("LAYER_EXPLORER_PLUGINS", "").replace(",", " ").split() if p)
    settings = Settings.from_env(
        device=args.device,
        memory_limit_bytes=args.memory_limit,
        plugins=tuple(dict.fromkeys(env_plugins + tuple(args.plugin))) or None,
    )
    from app.core import engine
    from app.core.errors import LayerExplorerError
    from app.core.plugins import PluginError

    try:
        engine.resolve_device(settings.device, settings)  # fail at start-up, not on the first request
        app = create_app(settings)
    except (LayerExplorerError, PluginError) as exc:
        parser.exit(2, f"layer-explorer: {exc}\n")
    # timeouts, head size and SIGTERM grace (app/serving.py); the worker processes warm up themselves
    uvicorn.run(app, host=args.host, port=args.port, **serving.uvicorn_options(settings))


if __name__ == "__main__":
    main()
