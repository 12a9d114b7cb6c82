from typing import Any

from fastapi import APIRouter, Depends

from app.api.deps import get_settings
from app.core import service
from app.core.service import Settings

router = APIRouter(prefix="/api", tags=["devices"])


@router.get("/devices")
def devices(settings: Settings = Depends(get_settings)) -> dict[str, Any]:
    """The devices this server can run forward passes on."""
    return service.list_devices(settings)
