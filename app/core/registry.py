"""The default catalog: torch.nn per family, the tutorial's custom layers, containers, plugins."""

from __future__ import annotations

import functools
import importlib

from app.core.catalog import Registry
from app.core.errors import LayerExplorerError


@functools.lru_cache(maxsize=None)
def default_registry(plugins: tuple[str, ...] = ()) -> Registry:
    """Build the catalog once per process (and per plugin list); it is plain data after that."""
    from app.core import families

    registry = Registry()
    families.register_all(registry)
    for extra in ("app.core.families_more", "app.core.custom"):
        try:
            module = importlib.import_module(extra)
        except ModuleNotFoundError as exc:
            if exc.name != extra:
                raise
            continue
        module.register_all(registry)
    if plugins:
        from app.core import plugins as plugin_mod

        plugin_mod.load(registry, plugins)
    return registry


__all__ = ["default_registry", "Registry", "LayerExplorerError"]
