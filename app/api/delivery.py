"""Delivery: versioned static files with long caching, modulepreload hints, and JSON built once with an ETag.

- Static files are served twice: under ``/static/v/<hash>/`` (the hash of every file's path and bytes,
  computed at start-up) with ``Cache-Control: public, max-age=31536000, immutable``, which is what the
  page references, and under ``/static/`` (``no-cache``: the browser revalidates with the ETag that
  StaticFiles sends) for links from elsewhere. A new release changes the hash, so a new page never
  gets an old module from a cache. ES module imports inside static/js are relative, so they inherit
  the versioned prefix without rewriting any file.
- ``modulepreload``: the page names every module main.js reaches (followed at start-up), so the
  browser fetches them in parallel instead of one import level at a time.
- The catalog and the presets do not change while the server runs: their JSON is serialised once and
  answered with a strong ETag (a hash of the bytes), ``Cache-Control: no-cache`` and 304 on a match.
Compression is Starlette's GZipMiddleware (added in app.main); these JSON answers are gzipped once, at start-up.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.api.middleware import accepts_gzip

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

# static `import ... from "x"`, `export ... from "x"`, side-effect `import "x"` and dynamic `import("x")`
_IMPORT = re.compile(
    r"""(?:\bimport|\bexport)\s[^'"();]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)"""
)


def static_version(root: Path) -> str:
    """A short hash of every file's relative path and bytes: it changes whenever any served file does."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _imports(source: str) -> list[str]:
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)  # prose in comments may look like an import
    source = re.sub(r"(?m)^\s*//.*$", "", source)
    return [next(g for g in groups if g) for groups in _IMPORT.findall(source)]


def module_graph(root: Path, entry: str = "js/main.js") -> list[str]:
    """Paths (relative to ``root``) of ``entry`` and every module it imports, transitively, in discovery order."""
    seen: list[str] = []
    todo = [entry]
    while todo:
        rel = todo.pop(0)
        if rel in seen or not (root / rel).is_file():
            continue
        seen.append(rel)
        base = os.path.dirname(rel)
        for spec in _imports((root / rel).read_text(encoding="utf-8")):
            if spec.startswith("."):
                todo.append(os.path.normpath(os.path.join(base, spec)).replace(os.sep, "/"))
    return seen


class CachedStatic(StaticFiles):
    """StaticFiles that adds one Cache-Control header to every answer."""

    def __init__(self, *, directory: Path, cache_control: str) -> None:
        super().__init__(directory=str(directory))
        self.cache_control = cache_control

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = self.cache_control
        return response


def _json_bytes(content: Any) -> bytes:
    # the same bytes FastAPI's JSONResponse would send
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Prebuilt:
    """One JSON answer serialised once, with its strong ETag."""

    body: bytes
    etag: str = field(init=False)
    gzipped: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "etag", f'"{hashlib.sha256(self.body).hexdigest()[:32]}"')
        # compressed once too (GZipMiddleware passes a body that already has a Content-Encoding through)
        object.__setattr__(self, "gzipped", gzip.compress(self.body, compresslevel=9, mtime=0))

    @classmethod
    def of(cls, content: Any) -> Prebuilt:
        return cls(_json_bytes(content))

    def respond(self, request: Request) -> Response:
        headers = {"ETag": self.etag, "Cache-Control": REVALIDATE}
        if _matches(request.headers, self.etag):
            return Response(status_code=304, headers=headers)
        headers["Vary"] = "Accept-Encoding"
        if accepts_gzip(request.headers.get("accept-encoding", "")):
            return Response(
                self.gzipped, media_type="application/json", headers={**headers, "Content-Encoding": "gzip"}
            )
        return Response(self.body, media_type="application/json", headers=headers)


def _matches(headers: Headers, etag: str) -> bool:
    wanted = headers.get("if-none-match")
    if not wanted:
        return False
    # GZipMiddleware leaves the ETag as it is; a proxy may weaken it (W/"..."), which still names the same bytes
    tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
    return "*" in tags or etag in tags


@dataclass(frozen=True)
class CatalogAnswers:
    """/api/layers, /api/layers/{type} and /api/devices, serialised once from what the first worker reported
    (app.core.tasks.hello): the web process never builds the catalog itself, which would import torch."""

    layers: Prebuilt
    layer: dict[str, Prebuilt]
    unavailable: dict[str, str]
    devices: dict[str, Any]

    @classmethod
    def of(cls, facts: dict[str, Any]) -> CatalogAnswers:
        specs = {spec["type"]: spec for spec in facts["layers"]}
        return cls(
            layers=Prebuilt.of(
                {
                    "families": facts["families"],
                    "layers": list(specs.values()),
                    # types this catalog knows of but the installed torch lacks, each with the reason
                    "unavailable": facts["unavailable"],
                }
            ),
            layer={name: Prebuilt.of(d) for name, d in specs.items()},
            unavailable=dict(facts["unavailable"]),
            devices=facts["devices"],
        )
