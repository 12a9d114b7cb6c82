"""Server settings, read from the environment (``LAYER_EXPLORER_*``) and the command line.

Settings are a plain frozen dataclass passed to the core functions, never a module global, so a
worker process can be handed the same limits as the server that spawned it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path


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


def machine_cpus(cgroup_dir: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota.

    ``os.cpu_count()`` reports the node's cores; a container started with ``--cpus 2`` or a pod
    with ``limits.cpu: 2`` sees all of them but is throttled to two, so the quota is what counts.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = (cgroup_dir / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):  # no cgroup v2 CPU controller here: the affinity mask is all we know
        pass
    return cpus


def threads_per_worker(cpus: int, processes: int) -> int:
    """torch intra-op threads for each of ``processes`` busy processes sharing ``cpus`` (no oversubscription)."""
    return max(1, cpus // max(1, processes))


@dataclass(frozen=True)
class Settings:
    #: where forward passes run when a request names no device
    device: str = "cpu"
    #: refuse a request whose tensors (inputs, parameters, outputs) are estimated above this
    memory_limit_bytes: int = 2 * 1024**3
    #: request bodies larger than this are refused before parsing
    max_body_bytes: int = 8 * 1024**2
    #: request bodies held at once by this HTTP process, all connections together (past it: 503)
    max_bodies_bytes: int = 64 * 1024**2
    #: tensors with more elements than this are summarised instead of listed in JSON
    max_elements: int = 4096
    #: bytes of tensor values (data, previews, summaries) one answer sends at most, all tensors together;
    #: past it tensors are sent as their shape and a pointer to their ``.npy``
    response_budget_bytes: int = 2 * 1024**2
    #: most elements a single input or parameter given as JSON data may have
    max_data_elements: int = 1_000_000
    #: sliding windows with more cells than this (output positions × kernel elements) are omitted: the
    #: description sent is small, but torch's probe that it is read from grows with the cells
    max_window_cells: int = 1_000_000
    #: plugin modules imported at start-up (chosen by whoever starts the server)
    plugins: tuple[str, ...] = field(default_factory=tuple)
    #: also run the meta pass where a formula answers, and report its shapes (tests of the formulas)
    meta_check: bool = False
    #: worker processes that run the torch work (0: one per core)
    workers: int = 0
    #: requests that may wait for a free worker; past this the server answers 503 with Retry-After
    queue: int = 64
    #: seconds a request may take, waiting included; past it the worker is killed and the answer is 504
    timeout_s: float = 10.0
    #: the sum of the memory estimates of the requests in flight stays below this (0: half the machine's RAM)
    memory_budget_bytes: int = 0
    #: GPU memory a worker's caching allocator may keep between requests; past it, the worker hands its
    #: unused blocks back to the driver after the request (app.core.gpu)
    gpu_idle_memory_bytes: int = 128 * 1024**2
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

    #: uvicorn processes serving this app; each has its own worker pool and its share of CPUs and memory
    http_workers: int = 1
    #: torch intra-op threads per worker process (0: the CPUs divided among every worker of every process)
    torch_threads: int = 0
    #: access log: "quiet" (API calls and pages, and every error; not static files or passing health
    #: probes, which a page load and a kubelet make by the dozen), "all", or "off"
    access_log: str = "quiet"

    def worker_count(self) -> int:
        """Worker processes of this server process's pool: one per CPU of its share by default."""
        return self.workers if self.workers > 0 else max(1, machine_cpus() // max(1, self.http_workers))

    def worker_threads(self) -> int:
        """torch threads per worker: the CPUs shared out over all workers of all HTTP processes."""
        if self.torch_threads > 0:
            return self.torch_threads
        return threads_per_worker(machine_cpus(), max(1, self.http_workers) * self.worker_count())

    def needs_start_check(self) -> bool:
        """Whether this configuration can fail at start-up: a device other than the CPU, or plugins to import.

        The CPU without plugins always works; checking it would cost a torch import (~2 s) that the server
        process never needs otherwise (its workers do the torch work).
        """
        return self.device.strip().lower() != "cpu" or bool(self.plugins)

    def memory_budget(self) -> int:
        """This process's share of the server-wide budget (half the machine's RAM by default)."""
        if self.memory_budget_bytes > 0:
            return self.memory_budget_bytes // max(1, self.http_workers)
        return machine_memory_bytes() // 2 // max(1, self.http_workers)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        plugins = tuple(p for p in os.environ.get("LAYER_EXPLORER_PLUGINS", "").replace(",", " ").split() if p)
        base = cls(
            device=os.environ.get("LAYER_EXPLORER_DEVICE") or "cpu",
            memory_limit_bytes=_env_int("LAYER_EXPLORER_MEMORY_LIMIT", cls.memory_limit_bytes),
            max_body_bytes=_env_int("LAYER_EXPLORER_MAX_BODY", cls.max_body_bytes),
            max_bodies_bytes=_env_int("LAYER_EXPLORER_MAX_BODIES", cls.max_bodies_bytes),
            max_elements=_env_int("LAYER_EXPLORER_MAX_ELEMENTS", cls.max_elements),
            response_budget_bytes=_env_int("LAYER_EXPLORER_RESPONSE_BUDGET", cls.response_budget_bytes),
            plugins=plugins,
            workers=_env_int("LAYER_EXPLORER_WORKERS", cls.workers),
            queue=_env_int("LAYER_EXPLORER_QUEUE", cls.queue),
            timeout_s=_env_float("LAYER_EXPLORER_TIMEOUT", cls.timeout_s),
            memory_budget_bytes=_env_int("LAYER_EXPLORER_MEMORY_BUDGET", cls.memory_budget_bytes),
            gpu_idle_memory_bytes=_env_int("LAYER_EXPLORER_GPU_IDLE_MEMORY", cls.gpu_idle_memory_bytes),
            allowed_hosts=_env_list("LAYER_EXPLORER_ALLOWED_HOSTS", cls.allowed_hosts),
            cors_origins=_env_list("LAYER_EXPLORER_CORS_ORIGINS", cls.cors_origins),
            body_timeout_s=_env_float("LAYER_EXPLORER_BODY_TIMEOUT", cls.body_timeout_s),
            header_timeout_s=_env_float("LAYER_EXPLORER_HEADER_TIMEOUT", cls.header_timeout_s),
            shutdown_grace_s=_env_float("LAYER_EXPLORER_SHUTDOWN_GRACE", cls.shutdown_grace_s),
            http_workers=_env_int("LAYER_EXPLORER_HTTP_WORKERS", cls.http_workers),
            torch_threads=_env_int("LAYER_EXPLORER_TORCH_THREADS", cls.torch_threads),
            access_log=os.environ.get("LAYER_EXPLORER_ACCESS_LOG") or cls.access_log,
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


#: the settings that have no command-line option, for ``layer-explorer --help``: name -> what and default
ENVIRONMENT_ONLY: dict[str, str] = {
    "LAYER_EXPLORER_WORKERS": "torch worker processes per HTTP worker (default: one per CPU of its share)",
    "LAYER_EXPLORER_MEMORY_BUDGET": "bytes: the sum of the estimates of the requests in flight, per HTTP worker "
    "(default: half the machine's memory)",
    "LAYER_EXPLORER_GPU_IDLE_MEMORY": "bytes: GPU memory each torch worker keeps cached between requests; past "
    f"it the worker returns its unused blocks to the driver (default {Settings.gpu_idle_memory_bytes})",
    "LAYER_EXPLORER_QUEUE": f"requests that may wait for a free worker; more get 503 (default {Settings.queue})",
    "LAYER_EXPLORER_TIMEOUT": f"seconds a request may take, waiting included; past it 504 (default {Settings.timeout_s:g})",
    "LAYER_EXPLORER_ALLOWED_HOSTS": "Host header values answered, space- or comma-separated, *.example.com "
    f"for subdomains (default: {' '.join(Settings.allowed_hosts)})",
    "LAYER_EXPLORER_CORS_ORIGINS": "origins allowed to call the API from other sites (default: none)",
    "LAYER_EXPLORER_MAX_BODY": f"bytes: the largest request body (default {Settings.max_body_bytes})",
    "LAYER_EXPLORER_MAX_BODIES": "bytes: all request bodies held at once, across connections; past it 503 "
    f"(default {Settings.max_bodies_bytes})",
    "LAYER_EXPLORER_MAX_ELEMENTS": "tensors with more elements are summarised in JSON, not listed "
    f"(default {Settings.max_elements})",
    "LAYER_EXPLORER_RESPONSE_BUDGET": "bytes: the tensor values (data, previews, summaries) of one answer, all "
    "tensors together; past it a tensor is sent as its shape and where its .npy is "
    f"(default {Settings.response_budget_bytes})",
    "LAYER_EXPLORER_BODY_TIMEOUT": f"seconds to send a request body; 408 after (default {Settings.body_timeout_s:g})",
    "LAYER_EXPLORER_HEADER_TIMEOUT": "seconds to send a request head; the connection is closed after "
    f"(default {Settings.header_timeout_s:g})",
    "LAYER_EXPLORER_SHUTDOWN_GRACE": "seconds requests in flight get to finish on SIGTERM "
    f"(default {Settings.shutdown_grace_s:g})",
    "LAYER_EXPLORER_ACCESS_LOG": "quiet: API calls, pages and errors, not static files or passing probes; "
    f"all; off (default {Settings.access_log})",
}
