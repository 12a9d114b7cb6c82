from typing import Any

from fastapi import APIRouter, Depends

from app.api.deps import get_settings
from app.core import engine
from app.core.config import Settings

router = APIRouter(prefix="/api", tags=["devices"])


@router.get("/devices")
def devices(settings: Settings = Depends(get_settings)) -> dict[str, Any]:
    """The devices this server can run forward passes on."""
    return engine.list_devices(settings)
