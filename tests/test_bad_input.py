"""Bad input never crashes: every catalog entry, every argument set to wrong values, odd shapes.

Each request either runs or raises a LayerExplorerError with a 4xx status (what the HTTP layer
turns into a clear JSON error); anything else would be a 5xx.
"""

from __future__ import annotations

import pytest

from app.core import service
from app.core.config import Settings
from app.core.errors import LayerExplorerError
from app.core.registry import default_registry

REGISTRY = default_registry()
SETTINGS = Settings(memory_limit_bytes=256 * 1024**2)
BAD_VALUES = [-1, 0, 10**9, "x", [], None, 1.5, True, [1, 2, 3, 4, 5], {"a": 1}, 2**70]
ODD_SHAPES = [[1], [1, 1, 1, 1, 1, 1], [3, 1, 2], [2, 7]]


def _variants(spec):
    ex = spec.example
    for p in spec.params:
        for value in BAD_VALUES:
            yield {**ex, "layer": {**ex["layer"], p.name: value}}
    for shape in ODD_SHAPES:
        yield {**ex, "inputs": [{"shape": shape}] + ex["inputs"][1:]}
    yield {**ex, "inputs": ex["inputs"][:1]}
    yield {**ex, "inputs": ex["inputs"] + [{"shape": [2]}]}


@pytest.mark.parametrize("spec", list(REGISTRY), ids=lambda s: s.type)
def test_wrong_values_get_4xx_never_a_crash(spec):
    for body in _variants(spec):
        for fn in (service.run, service.shape):
            try:
                fn(REGISTRY, body, SETTINGS)
            except LayerExplorerError as exc:
                assert 400 <= exc.status < 500
                assert exc.detail and "Traceback" not in exc.detail
