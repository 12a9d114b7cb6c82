"""The default catalog: torch.nn per family, the tutorial's custom layers, containers, plugins."""

from __future__ import annotations

import functools

from app.core.catalog import families, plugins
from app.core.catalog.spec import Registry
from app.core.networks import containers


@functools.cache
def default_registry(plugin_targets: tuple[str, ...] = ()) -> Registry:
    """Build the catalog once per process (and per plugin list); it is plain data after that."""
    registry = Registry()
    families.register_all(registry)
    containers.register(registry)
    if plugin_targets:
        plugins.load(registry, plugin_targets)
    return registry
