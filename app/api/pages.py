"""The web UI's HTML shell (rendered with Jinja2); everything else is static ES modules."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.paths import TEMPLATES_DIR

router = APIRouter(tags=["pages"])
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

# Vendored front-end libraries (static/vendor/<name>-<version>.*): one place to bump a version.
VENDOR = {"d3_version": "7.9.2", "katex_version": "0.16.47"}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request) -> HTMLResponse:
    # Root-relative, under the content-hashed prefix (cached for a year, immutable): a new release changes
    # the hash, so the page itself must always be revalidated (no-cache) and never a module.
    root = request.scope.get("root_path", "").rstrip("/")
    static = f"{root}/static/v/{request.app.state.static_version}"
    # every module main.js reaches, preloaded in parallel instead of one import level at a time
    preload = [m for m in request.app.state.modules if m != "js/main.js"]
    response = templates.TemplateResponse(request, "index.html", {"static": static, "preload": preload, **VENDOR})
    response.headers["Cache-Control"] = "no-cache"
    return response
