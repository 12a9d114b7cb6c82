"""Protection for a service on localhost that any web page the user visits could otherwise reach.

- Host allowlist (DNS rebinding): Starlette's ``TrustedHostMiddleware`` decides; the refusal is JSON.
- Request bodies must be ``Content-Type: application/json`` (415 otherwise): checked where bodies are
  read, :func:`app.api.deps.json_body`.
- The request bodies one HTTP process holds at once, over all connections, are capped
  (``LAYER_EXPLORER_MAX_BODIES``; 503 past it): :class:`BodyBudget`.
- Security headers on every response: CSP (pages: only this app's own scripts, styles and fonts),
  ``X-Content-Type-Options: nosniff``, ``Referrer-Policy``, ``frame-ancestors 'none'``,
  ``Cross-Origin-Resource-Policy: same-origin``.

CORS is off unless ``LAYER_EXPLORER_CORS_ORIGINS`` names origins (see :func:`app.main.create_app`).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import GZipMiddleware, GZipResponder, IdentityResponder
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.service import ServerBusy, trim_memory

# The app's pages: scripts, styles and fonts from this origin only. Style *attributes* stay allowed:
# KaTeX writes its layout as inline style attributes and the SVG export copies computed styles onto
# the copy it saves; neither can run script.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; manifest-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'"


def _host_pattern(host: str) -> str:
    """'localhost:8000' -> 'localhost', '[::1]:8000' -> '[::1]': TrustedHostMiddleware compares hosts without ports."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


class JSONTrustedHost:
    """Starlette's TrustedHostMiddleware decides whether the Host header is allowed; a refusal is JSON 400."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.allowed = [_host_pattern(h) for h in allowed_hosts] or ["localhost"]
        self.check = TrustedHostMiddleware(self._passed, allowed_hosts=self.allowed, www_redirect=False)

    @staticmethod
    async def _passed(scope: Scope, receive: Receive, send: Send) -> None:
        scope["layer_explorer.host_ok"] = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def discard(message: Message) -> None:
            return None

        await self.check(scope, receive, discard)
        if scope.pop("layer_explorer.host_ok", False):
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host")
        response = JSONResponse(
            {
                "detail": f"this server does not answer to the host {host!r}; it answers to "
                f"{', '.join(self.allowed)} (LAYER_EXPLORER_ALLOWED_HOSTS)",
                "error": "bad_host",
                "field": None,
            },
            status_code=400,
        )
        await response(scope, receive, send)


class SecurityHeaders:
    """nosniff, Referrer-Policy, CORP and a Content-Security-Policy on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
                # /docs sets its own policy (app.api.docs: the hash of its one inline script); setdefault keeps it
                if headers.get("content-type", "").startswith("text/html"):
                    csp = PAGE_CSP
                else:
                    csp = OTHER_CSP
                headers.setdefault("Content-Security-Policy", csp)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CancelledAsJSON:
    """A request cancelled before its answer started (SIGTERM's grace ran out while it ran) gets a JSON
    503, not uvicorn's text/plain "Internal Server Error": every error this server sends is JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except asyncio.CancelledError:
            if started:  # half an answer cannot be replaced: uvicorn closes the connection
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # answered here: the cancellation has done its work
            refusal = ServerBusy(
                "the server is shutting down and stopped this request before it finished; send it again "
                "(another instance, or this one once restarted, will answer)",
                retry_after=1,
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": refusal.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", str(refusal.headers()["Retry-After"]).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": json.dumps(refusal.to_dict()).encode()})


#: a request that held at least this much body makes the process return freed memory once no body is held
TRIM_AFTER_BYTES = 1024**2


@dataclass
class BodyTally:
    """Body bytes held now by one HTTP process, its highest so far, and the cap (one event loop: no lock)."""

    limit: int
    held: int = 0
    peak: int = 0


class BodyBudget:
    """The request bodies this process holds, all connections together, stay under ``limit`` bytes.

    Each request's limit (``LAYER_EXPLORER_MAX_BODY``) bounds one body; without a total, many clients
    each sending a body just under it (300 connections × 8 MiB − 1 byte measured 3.6 GB) could fill the
    web process. Every chunk a request reads is counted until that request has been answered (its body
    is held until then); a chunk that would take the total past ``limit`` is refused: 503 JSON
    ``server_busy`` with Retry-After, through the app's error handler like any other refusal.
    """

    def __init__(self, app: ASGIApp, tally: BodyTally) -> None:
        self.app = app
        self.tally = tally

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tally = self.tally
        mine = 0

        async def counted() -> Message:
            nonlocal mine
            message = await receive()
            size = len(message.get("body", b"")) if message["type"] == "http.request" else 0
            if size:
                if tally.held + size > tally.limit:
                    raise ServerBusy(
                        f"the server is busy receiving other requests' bodies ({_mib(tally.held)} of its "
                        f"{_mib(tally.limit)} for all bodies at once, LAYER_EXPLORER_MAX_BODIES); retry shortly",
                        retry_after=1,
                    )
                tally.held += size
                mine += size
                tally.peak = max(tally.peak, tally.held)
            return message

        try:
            await self.app(scope, counted, send)
        finally:
            tally.held -= mine
            if mine >= TRIM_AFTER_BYTES and tally.held == 0:
                # the bodies' buffers are freed, but glibc keeps the pages: give them back (off the loop)
                asyncio.get_running_loop().run_in_executor(None, trim_memory)


def _mib(n: int) -> str:
    return f"{n / 1024**2:.1f} MiB"


@functools.lru_cache(maxsize=64)  # clients send the same few headers again and again
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (RFC 9110 12.5.3): ``gzip`` (or ``x-gzip``) with a
    non-zero q-value, or ``*`` with one where gzip is not named. ``gzip;q=0`` refuses it."""
    named: float | None = None
    star: float | None = None
    for item in accept_encoding.lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding in ("gzip", "x-gzip"):
            named = q if named is None else max(named, q)
        elif coding == "*":
            star = q
    if named is not None:
        return named > 0
    return star is not None and star > 0


class GZip(GZipMiddleware):
    """Starlette's GZipMiddleware, deciding from :func:`accepts_gzip` (Starlette looks for the substring
    "gzip", so ``gzip;q=0`` got gzip): the same answer as the workers, which compress the JSON answers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        responder: GZipResponder | IdentityResponder
        # The responders are given no exclusions and then the ones normalised once in __init__: each would
        # normalise all 16 content types again (a fifth of this layer's cost on every request).
        if accepts_gzip(Headers(scope=scope).get("accept-encoding", "")):
            responder = GZipResponder(
                self.app,
                self.minimum_size,
                compresslevel=self.compresslevel,
                thread_minimum_size=self.thread_minimum_size,
                exclude_content_types=(),
            )
        else:
            responder = IdentityResponder(self.app, self.minimum_size, exclude_content_types=())
        responder.exclude_content_types = self.exclude_content_types
        await responder(scope, receive, send)
