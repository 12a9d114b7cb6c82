from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.api.delivery import CatalogAnswers
from app.api.deps import get_catalog
from app.core.service import unknown_layer

router = APIRouter(prefix="/api", tags=["layers"])


@router.get("/layers", response_model=dict[str, Any])
async def layers(request: Request, catalog: CatalogAnswers = Depends(get_catalog)) -> Response:
    """Every layer type: family, doc, parameters, inputs and a request that runs as it is.

    Serialised once, from what the first worker reported (app.api.delivery); answers carry a strong ETag
    and 304 on If-None-Match."""
    return catalog.layers.respond(request)


@router.get("/layers/{type_name}", response_model=dict[str, Any])
async def layer(type_name: str, request: Request, catalog: CatalogAnswers = Depends(get_catalog)) -> Response:
    answer = catalog.layer.get(type_name)
    if answer is None:  # the catalog's 404, with its suggestions
        raise unknown_layer(type_name, catalog.layer, catalog.unavailable)
    return answer.respond(request)
