"""The default catalog: torch.nn per family, the tutorial's custom layers, containers, plugins."""

from __future__ import annotations

import functools

from app.core.catalog import Registry


@functools.lru_cache(maxsize=None)
def default_registry(plugins: tuple[str, ...] = ()) -> Registry:
    """Build the catalog once per process (and per plugin list); it is plain data after that."""
    from app.core import custom, families, families_more

    registry = Registry()
    families.register_all(registry)
    families_more.register_all(registry)
    custom.register_all(registry)
    if plugins:
        from app.core import plugins as plugin_mod

        plugin_mod.load(registry, plugins)
    return registry

