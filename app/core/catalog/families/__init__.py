"""One module per family of ``torch.nn`` (and the tutorial's layers); each has ``register(registry)``."""

from __future__ import annotations

from app.core.catalog.families import (
    activation,
    conv,
    distance,
    dropout,
    embedding,
    linear,
    loss,
    norm,
    opaque,
    padding,
    pooling,
    recurrent,
    reshape,
    transformer,
    tutorial,
)
from app.core.catalog.spec import Registry

# The order the catalog lists them in.
FAMILIES = (
    linear,
    conv,
    pooling,
    activation,
    dropout,
    norm,
    loss,
    recurrent,
    transformer,
    embedding,
    reshape,
    padding,
    distance,
    tutorial,
    opaque,
)


def register_all(registry: Registry) -> None:
    for family in FAMILIES:
        family.register(registry)
