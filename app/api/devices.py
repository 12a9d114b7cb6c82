from typing import Any

from fastapi import APIRouter, Depends

from app.api.delivery import CatalogAnswers
from app.api.deps import get_catalog

router = APIRouter(prefix="/api", tags=["devices"])


@router.get("/devices")
async def devices(catalog: CatalogAnswers = Depends(get_catalog)) -> dict[str, Any]:
    """The devices this server can run forward passes on (as its first worker found them)."""
    return catalog.devices
