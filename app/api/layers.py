from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.api.deps import get_registry
from app.core.service import Registry

router = APIRouter(prefix="/api", tags=["layers"])


@router.get("/layers", response_model=dict[str, Any])
def layers(request: Request) -> Response:
    """Every layer type: family, doc, parameters, inputs and a request that runs as it is.

    Serialised once at start-up (app.api.delivery); answers carry a strong ETag and 304 on If-None-Match."""
    return request.app.state.catalog.layers.respond(request)


@router.get("/layers/{type_name}", response_model=dict[str, Any])
def layer(type_name: str, request: Request, registry: Registry = Depends(get_registry)) -> Response:
    answers = request.app.state.catalog.layer
    if type_name not in answers:
        registry.get(type_name)  # raises the catalog's 404 with its suggestions
    return answers[type_name].respond(request)
