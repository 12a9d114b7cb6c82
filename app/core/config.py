"""Server settings, read from the environment (``LAYER_EXPLORER_*``) and the command line.

Settings are a plain frozen dataclass passed to the core functions, never a module global, so a
worker process can be handed the same limits as the server that spawned it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    #: where forward passes run when a request names no device
    device: str = "cpu"
    #: refuse a request whose tensors (inputs, parameters, outputs) are estimated above this
    memory_limit_bytes: int = 2 * 1024**3
    #: request bodies larger than this are refused before parsing
    max_body_bytes: int = 8 * 1024**2
    #: tensors with more elements than this are summarised instead of listed in JSON
    max_elements: int = 4096
    #: most elements a single input or parameter given as JSON data may have
    max_data_elements: int = 1_000_000
    #: sliding-window maps larger than this many cells are omitted
    max_window_cells: int = 200_000
    #: plugin modules imported at start-up (chosen by whoever starts the server)
    plugins: tuple[str, ...] = field(default_factory=tuple)
    #: also run the meta pass where a formula answers, and report its shapes (tests of the formulas)
    meta_check: bool = False

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        plugins = tuple(p for p in os.environ.get("LAYER_EXPLORER_PLUGINS", "").replace(",", " ").split() if p)
        base = cls(
            device=os.environ.get("LAYER_EXPLORER_DEVICE", "cpu"),
            memory_limit_bytes=_env_int("LAYER_EXPLORER_MEMORY_LIMIT", cls.memory_limit_bytes),
            max_body_bytes=_env_int("LAYER_EXPLORER_MAX_BODY", cls.max_body_bytes),
            max_elements=_env_int("LAYER_EXPLORER_MAX_ELEMENTS", cls.max_elements),
            plugins=plugins,
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})
