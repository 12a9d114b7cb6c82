"""How uvicorn serves the app: connection limits and timeouts that a slow or hostile client cannot outlast.

- headers: a connection that has not sent a complete request head within ``header_timeout_s`` of
  connecting (or of its previous response) is closed. uvicorn itself has no such timeout: its
  keep-alive timer is cancelled by the first byte that arrives, so a client trickling one header
  byte at a time would hold the connection for ever.
- header size: h11 refuses a request head over 16 KiB (``h11_max_incomplete_event_size``).
- idle keep-alive connections close after 5 s (``timeout_keep_alive``).
- the body must arrive within ``body_timeout_s`` (checked in :func:`app.api.deps.json_body`, 408).
- SIGTERM: uvicorn stops accepting, gives in-flight requests ``shutdown_grace_s`` to finish, cancels
  the rest (their workers are killed), then the app's lifespan stops the worker pool.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import uvicorn.config
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.core.config import Settings

MAX_HEAD_BYTES = 16 * 1024
KEEP_ALIVE_S = 5


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for each request head."""

    header_timeout_s = Settings.from_env().header_timeout_s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._seen_cycle = None
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        idle = self.cycle is None or self.cycle.response_complete or self.cycle is self._seen_cycle
        if idle and not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self.cycle is not self._seen_cycle:  # a complete request head arrived
            self._seen_cycle = self.cycle
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)


#: paths whose successful answers the quiet access log leaves out: a page load fetches dozens of static
#: files, and a kubelet probes every few seconds
QUIET_PREFIXES = ("/static/",)
QUIET_PATHS = ("/healthz", "/readyz")


class QuietAccess(logging.Filter):
    """uvicorn's access log, less static files and passing health probes (errors are always logged)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn's access record: (client, method, path with query, HTTP version, status)
        if not isinstance(args, tuple) or len(args) != 5:
            return True
        path, status = str(args[2]).split("?", 1)[0], args[4]
        if isinstance(status, int) and status >= 400:
            return True
        return not (path.startswith(QUIET_PREFIXES) or path in QUIET_PATHS)


def log_config(mode: str) -> dict[str, Any]:
    """uvicorn's logging configuration, with :class:`QuietAccess` on the access log unless ``mode`` is
    "all". A dict (not a filter added here), so each HTTP worker process applies it too."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    if mode != "all":
        config.setdefault("filters", {})["quiet"] = {"()": "app.serving.QuietAccess"}
        config["handlers"]["access"]["filters"] = ["quiet"]
    return config


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` that apply these limits."""
    # a class attribute, not a subclass made here: with several HTTP workers uvicorn pickles its config,
    # and each process re-imports this module and reads the same setting from the environment
    HeaderTimeoutH11.header_timeout_s = settings.header_timeout_s
    return {
        "http": HeaderTimeoutH11,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "timeout_graceful_shutdown": max(1, round(settings.shutdown_grace_s)),
        "log_config": log_config(settings.access_log),
        "access_log": settings.access_log != "off",
    }
