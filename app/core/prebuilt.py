"""Imported by the workers' forkserver (app.core.workers.PRELOAD), before app.core.preloaded freezes what
the imports made: the default catalog (no plugins), built once there.

Each worker built its own catalog in its initializer: about 8 MiB of Python objects per worker, private
to it. Built in the forkserver, before any fork, it is one copy whose pages every worker shares
(:func:`app.core.tasks.init` takes it from here when the server has no plugins). Building it runs no
kernel, so the forkserver stays free of thread pools.
"""

from __future__ import annotations

from app.core.registry import Registry, default_registry

CATALOG: Registry = default_registry()
