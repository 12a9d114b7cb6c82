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


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _env_list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return tuple(p for p in raw.replace(",", " ").split() if p)


def machine_memory_bytes() -> int:
    """Physical memory of this machine (the default server-wide budget is half of it)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a modest 8 GiB
        return 8 * 1024**3


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
    #: worker processes that run the torch work (0: one per core)
    workers: int = 0
    #: requests that may wait for a free worker; past this the server answers 503 with Retry-After
    queue: int = 64
    #: seconds a request may take, waiting included; past it the worker is killed and the answer is 504
    timeout_s: float = 10.0
    #: the sum of the memory estimates of the requests in flight stays below this (0: half the machine's RAM)
    memory_budget_bytes: int = 0
    #: Host header values this server answers (DNS-rebinding protection); the port is ignored
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")
    #: origins allowed to call the API from another site (CORS); empty: none
    cors_origins: tuple[str, ...] = ()
    #: seconds a client may take to send its request body
    body_timeout_s: float = 30.0
    #: seconds a client may take to send a request's headers (from connecting, or after the last response)
    header_timeout_s: float = 10.0
    #: on SIGTERM, seconds in-flight requests get to finish before they are cancelled
    shutdown_grace_s: float = 3.0

    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)

    def memory_budget(self) -> int:
        return self.memory_budget_bytes if self.memory_budget_bytes > 0 else machine_memory_bytes() // 2

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        plugins = tuple(p for p in os.environ.get("LAYER_EXPLORER_PLUGINS", "").replace(",", " ").split() if p)
        base = cls(
            device=os.environ.get("LAYER_EXPLORER_DEVICE", "cpu"),
            memory_limit_bytes=_env_int("LAYER_EXPLORER_MEMORY_LIMIT", cls.memory_limit_bytes),
            max_body_bytes=_env_int("LAYER_EXPLORER_MAX_BODY", cls.max_body_bytes),
            max_elements=_env_int("LAYER_EXPLORER_MAX_ELEMENTS", cls.max_elements),
            plugins=plugins,
            workers=_env_int("LAYER_EXPLORER_WORKERS", cls.workers),
            queue=_env_int("LAYER_EXPLORER_QUEUE", cls.queue),
            timeout_s=_env_float("LAYER_EXPLORER_TIMEOUT", cls.timeout_s),
            memory_budget_bytes=_env_int("LAYER_EXPLORER_MEMORY_BUDGET", cls.memory_budget_bytes),
            allowed_hosts=_env_list("LAYER_EXPLORER_ALLOWED_HOSTS", cls.allowed_hosts),
            cors_origins=_env_list("LAYER_EXPLORER_CORS_ORIGINS", cls.cors_origins),
            body_timeout_s=_env_float("LAYER_EXPLORER_BODY_TIMEOUT", cls.body_timeout_s),
            header_timeout_s=_env_float("LAYER_EXPLORER_HEADER_TIMEOUT", cls.header_timeout_s),
            shutdown_grace_s=_env_float("LAYER_EXPLORER_SHUTDOWN_GRACE", cls.shutdown_grace_s),
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})
