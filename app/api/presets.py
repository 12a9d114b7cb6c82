from typing import Any

from fastapi import APIRouter

from app.core.service import presets as all_presets

router = APIRouter(prefix="/api", tags=["presets"])


@router.get("/presets")
def presets() -> dict[str, Any]:
    """Ready-made networks (the tutorial's, LeNet-5, ...), each a complete /api/run request."""
    return {"presets": all_presets()}
