"""``layer-explorer``: start the server, as one process or as N uvicorn worker processes.

Every option has an environment variable (``LAYER_EXPLORER_*``), so a container is configured
with ``-e``/``env:`` alone. The server processes build themselves from the environment
(:func:`app.server.worker_app`, loaded by uvicorn from an import string): this module writes its
options there and never imports torch, so the supervisor of several HTTP workers stays small.
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import subprocess
import sys
import textwrap

import uvicorn

from app import serving
from app.core.config import ENVIRONMENT_ONLY, Settings, threads_per_worker
from app.core.config import machine_cpus as available_cpus

#: the import string uvicorn loads in each server process (a factory: called once per process)
WORKER_FACTORY = "app.server:worker_app"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        raise SystemExit(f"layer-explorer: {name}={raw!r} is not a whole number") from None


def build_parser() -> argparse.ArgumentParser:
    width = max(len(name) for name in ENVIRONMENT_ONLY)
    parser = argparse.ArgumentParser(
        prog="layer-explorer",
        description="Serve the Layer Explorer web app and API. Every option can also be set through the "
        "environment variable named in its help.",
        epilog="settings read from the environment only:\n"
        + "\n".join(
            textwrap.fill(what, 100, initial_indent=f"  {name:<{width}}  ", subsequent_indent=" " * (width + 4))
            for name, what in ENVIRONMENT_ONLY.items()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("LAYER_EXPLORER_HOST") or "127.0.0.1",
        help="address to bind (LAYER_EXPLORER_HOST; default 127.0.0.1, the container image sets 0.0.0.0)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=_env_int("LAYER_EXPLORER_PORT", 8000),
        help="port (LAYER_EXPLORER_PORT; default 8000)",
    )
    parser.add_argument(
        "--device",
        default=None,
        help="default device: cpu (default), cuda, cuda:N, mps or auto (LAYER_EXPLORER_DEVICE)",
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE at start-up to register custom layers (repeatable; LAYER_EXPLORER_PLUGINS)",
    )
    parser.add_argument(
        "--memory-limit",
        type=int,
        default=None,
        metavar="BYTES",
        help="refuse requests estimated above this (LAYER_EXPLORER_MEMORY_LIMIT)",
    )
    parser.add_argument(
        "--http-workers",
        type=int,
        default=_env_int("LAYER_EXPLORER_HTTP_WORKERS", 1),
        metavar="N",
        help="uvicorn worker processes (LAYER_EXPLORER_HTTP_WORKERS; default 1); each gets max(1, cpus // N) "
        "torch threads",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=_env_int("LAYER_EXPLORER_TORCH_THREADS", 0),
        metavar="N",
        help="torch intra-op threads per server process (LAYER_EXPLORER_TORCH_THREADS; default: the CPUs this "
        "container may use divided by --http-workers)",
    )
    # `layer-explorer open FILE.py:Name`: a model file of yours, imported here (never by the server)
    commands = parser.add_subparsers(dest="command", metavar="open", title="commands")
    opener = commands.add_parser(
        "open",
        help="import a model from your Python file and explore it in the browser",
        description="Import FILE.py here, on your machine (a server never imports or runs code it is sent), build "
        "Name (an nn.Module class built with no arguments, an instance, or a function returning one), run it on "
        "random inputs of the --input shapes and open the network in Layer Explorer.",
    )
    opener.add_argument(
        "target", metavar="FILE.py:Name", help="a Python file and the module class, instance or function in it"
    )
    opener.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="SHAPE",
        help="an example input's shape, e.g. 1,3,224,224 (random normal values); repeat for several inputs",
    )
    opener.add_argument(
        "--weights",
        action="store_true",
        help="compute with the module's own parameters (as Name built them); a local server adds them to the page's requests",
    )
    opener.add_argument("--server", default=None, metavar="URL", help="open on a running server instead of a local one")
    opener.add_argument(
        "--no-browser",
        action="store_true",
        help="print the address instead of opening a browser (also LAYER_EXPLORER_NO_BROWSER=1)",
    )
    return parser


def server_environment(args: argparse.Namespace) -> dict[str, str]:
    """The options as the environment variables each server process reads (Settings.from_env)."""
    env_plugins = tuple(p for p in os.environ.get("LAYER_EXPLORER_PLUGINS", "").replace(",", " ").split() if p)
    settings = Settings.from_env(
        device=args.device,
        memory_limit_bytes=args.memory_limit,
        plugins=tuple(dict.fromkeys(env_plugins + tuple(args.plugin))) or None,
    )
    # each HTTP process has its own pool of torch workers: the CPUs are shared out over all of them
    pool = Settings.from_env(http_workers=args.http_workers).worker_count()
    threads = (
        args.torch_threads if args.torch_threads > 0 else threads_per_worker(available_cpus(), args.http_workers * pool)
    )
    return {
        "LAYER_EXPLORER_DEVICE": settings.device,
        "LAYER_EXPLORER_MEMORY_LIMIT": str(settings.memory_limit_bytes),
        "LAYER_EXPLORER_PLUGINS": " ".join(settings.plugins),
        "LAYER_EXPLORER_HTTP_WORKERS": str(args.http_workers),
        "LAYER_EXPLORER_TORCH_THREADS": str(threads),
    }


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (taken, not an address here), or None.

    Checked before anything starts: uvicorn binds only after the app's start-up, so a taken port would
    otherwise be found after the worker processes had imported torch.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return exc.strerror
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            sock.bind(address)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "open":
        # loaded by name only for `open`: it imports torch and the user's model, which serving never needs
        cli_open = importlib.import_module("layer_explorer.cli_open")
        try:
            cli_open.run(args)
        except cli_open.OpenError as exc:
            parser.exit(2, f"layer-explorer open: {exc}\n")
        return
    if args.http_workers < 1:
        parser.error("--http-workers must be at least 1")
    if not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    access_log = Settings.from_env().access_log
    if access_log not in ("quiet", "all", "off"):
        parser.error(f"LAYER_EXPLORER_ACCESS_LOG must be quiet, all or off; got {access_log!r}")
    problem = port_problem(args.host, args.port)
    if problem:
        parser.exit(
            2,
            f"layer-explorer: cannot listen on {args.host}:{args.port}: {problem} (is another server running "
            "there? choose a port with --port or LAYER_EXPLORER_PORT)\n",
        )
    os.environ.update(server_environment(args))
    # timeouts, head size and SIGTERM grace (app/serving.py)
    options = serving.uvicorn_options(Settings.from_env())
    # A device or plugins that cannot work: found once, in a short-lived process (it imports torch, which
    # the server processes never do), before uvicorn starts (and would restart) its processes
    if Settings.from_env().needs_start_check():
        checked = subprocess.run([sys.executable, "-m", "app.server", "--check"], check=False)
        if checked.returncode != 0:
            parser.exit(checked.returncode or 2)
    if args.http_workers == 1:
        # one process: uvicorn calls the factory here
        uvicorn.run(WORKER_FACTORY, factory=True, host=args.host, port=args.port, **options)
        return
    uvicorn.run(WORKER_FACTORY, factory=True, host=args.host, port=args.port, workers=args.http_workers, **options)


if __name__ == "__main__":
    main()
