"""/docs: Swagger UI for the OpenAPI document, from vendored assets (it works offline; no CDN).

FastAPI's own page loads Swagger UI from a CDN; this one is FastAPI's page with the pinned copy under
``static/vendor`` (``swagger-ui-<version>-bundle.js`` and ``.css``). The page starts Swagger UI with one
inline script: its SHA-256 goes into this page's Content-Security-Policy, so no other inline script runs.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["pages"])

SWAGGER_UI_VERSION = "5.35.0"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def docs_csp(script_hashes: list[str]) -> str:
    """The page's policy: this origin's scripts and styles, plus the one inline script by its hash;
    Swagger UI writes inline style attributes and shows data: images."""
    scripts = " ".join(f"'sha256-{h}'" for h in script_hashes)
    return (
        f"default-src 'none'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    vendor = f"{root}/static/v/{request.app.state.static_version}/vendor/swagger-ui-{SWAGGER_UI_VERSION}"
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - API",
        swagger_js_url=f"{vendor}-bundle.js",
        swagger_css_url=f"{vendor}.css",
        swagger_favicon_url="data:,",  # no icon to fetch (as the app's own page)
    )
    body = bytes(page.body).decode()
    hashes = [
        base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() for script in _INLINE_SCRIPT.findall(body)
    ]
    page.headers["Content-Security-Policy"] = docs_csp(hashes)
    page.headers["Cache-Control"] = "no-cache"
    return page
