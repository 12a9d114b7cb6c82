from typing import Any

from fastapi import APIRouter, Depends

from app.api.deps import get_registry
from app.core.service import Registry

router = APIRouter(prefix="/api", tags=["layers"])


@router.get("/layers")
def layers(registry: Registry = Depends(get_registry)) -> dict[str, Any]:
    """Every layer type: family, doc, parameters, inputs and a request that runs as it is."""
    return {"families": registry.families(), "layers": [spec.to_dict() for spec in registry]}


@router.get("/layers/{type_name}")
def layer(type_name: str, registry: Registry = Depends(get_registry)) -> dict[str, Any]:
    return registry.get(type_name).to_dict()
