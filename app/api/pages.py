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
    # Root-relative and independent of how the static mount is named.
    static = f"{request.scope.get('root_path', '').rstrip('/')}/static"
    return templates.TemplateResponse(request, "index.html", {"static": static, **VENDOR})
