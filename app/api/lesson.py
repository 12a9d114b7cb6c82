"""GET /api/lesson: the tutorial as a lesson, its steps in order (data: app.core.lesson)."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(prefix="/api", tags=["lesson"])


@router.get("/lesson", response_model=dict[str, Any])
def lesson(request: Request) -> Response:
    """The tutorial's sections in order, each the /api/run request it opens, the view that shows it
    (``layer`` or ``network``), an output element to pin, and what to look at.

    Serialised once at start-up (app.api.delivery), with a strong ETag and 304 on If-None-Match."""
    return request.app.state.lesson.respond(request)
