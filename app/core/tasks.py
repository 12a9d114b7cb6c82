"""What a worker process runs: its start-up, and each task by name (the torch side of app.core.workers).

The web process never imports this module (it would import torch): the pool's picklable entry points
in :mod:`app.core.workers` load it by name inside the worker. Tasks are dispatched by name (``"run"``,
``"shape"``, ``"explain"``, ``"npy"``, ...): plain request data and :class:`Settings` in, plain data out
(JSON already encoded, or a spooled ``.npy`` file's name).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch

from app.core import body as body_mod
from app.core import budget, compress, gpu, nodynamo, spool, tensors
from app.core.config import Settings
from app.core.errors import InternalError, LayerExplorerError
from app.core.graphs.endpoints import import_model, receptive_field
from app.core.registry import default_registry
from app.core.running import requests
from app.core.running.animate import animate
from app.core.running.devices import list_devices
from app.core.running.memory import reserve_more

_registry = None
_skip: Any = None  # per slot: 1 when the web process gave up on a task before a worker picked it up
_pids: Any = None  # per slot: the PID of the worker running its task
_spool: spool.Spool | None = None  # where large results are written for the web process
_slot: int | None = None  # the slot of the task this worker runs now
_janitor: Janitor | None = None  # gives memory back while the worker is idle (started by init)


def init(
    settings: Settings, threads: int, ledger: budget.Ledger, skip: Any, pids: Any, spooled: spool.Spool | None = None
) -> None:
    """Runs once in each new worker: torch threads, the catalog (with plugins), the budget, warm kernels."""
    global _registry, _skip, _pids, _spool, _janitor
    _skip, _pids, _spool = skip, pids, spooled
    # pebble installs a Python SIGTERM handler, which only runs once a running torch kernel returns;
    # the default action stops a worker past its deadline at once, whatever it is doing.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(threads)
    nodynamo.install()  # done already where the forkserver preloaded app.core.preloaded
    _registry = default_registry(settings.plugins)
    budget.install(ledger)
    requests.warm_up(_registry, settings)
    # torch, the catalog and the warmed kernels leave ~215k tracked objects that live as long as the worker;
    # a full collection walked all of them (measured ~100 ms on the dev machine, inside a request). Frozen,
    # the collector skips them: a full collection after warm-up measured ~0 ms.
    gc.collect()
    gc.freeze()
    # From here, the memory a request frees is reused by the next (no page faults) and given back once the
    # worker is idle, counted in the budget's ledger meanwhile: where the ledger has a cell for it, and glibc
    # takes the settings.
    keeping = budget.claim_kept() and budget.keep_freed_memory()
    budget.trim()  # what the warm-up freed
    if keeping:
        _janitor = Janitor(IDLE_TRIM_S, keep_warm_bytes(ledger))


def hello(settings: Settings) -> dict[str, Any]:
    """The first task of a pool: what the web process serves without torch (the catalog, the devices).

    The web process never builds the registry (that imports torch and the plugins): /api/layers and
    /api/devices answer what a worker reported here. (A default device the server cannot use is found
    before it starts, by ``python -m app.server --check``, and named by every request that uses it.)
    """
    registry = _registry or default_registry(settings.plugins)
    return {
        "pid": os.getpid(),
        "families": registry.families(),
        "layers": [spec.to_dict() for spec in registry],
        "unavailable": registry.absent_types(),
        "devices": list_devices(settings),
        "torch": str(torch.__version__),  # a TorchVersion would import torch where it is unpickled
    }


#: a task that reserved at least this much gives the memory it freed back to the system as it ends (outside a
#: worker, or past its Janitor's ``keep``; a worker gives the rest back once idle)
RETURN_MEMORY_FROM = 16 * 1024**2

#: every this many large requests, the collection looks at the frozen objects too (see return_memory)
SWEEP_EVERY = 32
_large_requests = 0


def return_memory() -> int:
    """Give the memory a finished request freed back to the system; the worker's resident bytes after.

    glibc keeps freed heap memory for reuse: after a large request (an animation's frames, a loss over
    a big batch) an idle worker measured 870 MB resident against 250 MB before it, memory that no
    reservation of the budget counts any more. Trimmed, it measured 254 MB. Collecting first frees
    what only cycles still held.

    What a full collection leaves is what the worker keeps (what torch.fx, sympy and the catalog cache on
    first use: about 38k objects after a first network request), and it is frozen like the start-up's
    (:func:`init`): a full collection walked all of it after every large request, 17-35 ms measured for
    the 16- and 512-block nets, before the answer could go; frozen, the walk is over what the requests
    made since (0.3-2 ms). Frozen objects are still freed when nothing refers to them (this request's
    own data, acyclic, is freed as the task returns); only a cycle among them that became garbage later
    would stay. The worker's caches do make such cycles: the receptive fields' kept fx graphs (whose
    nodes and graph refer to each other) are dropped, oldest first, long after they were frozen. So every
    ``SWEEP_EVERY``-th large request unfreezes everything first: one collection over the whole heap (about
    100 ms), a few ms a large request spread out, and a shared server's memory stays bounded.
    """
    global _large_requests
    _large_requests += 1
    if _large_requests % SWEEP_EVERY == 0:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    budget.trim()
    return resident_bytes()


#: seconds without a task after which a worker gives back the memory its requests freed (:class:`Janitor`)
IDLE_TRIM_S = 1.0
#: the most a task may have reserved for its worker to keep what it freed until idle; past it (or past
#: :func:`keep_warm_bytes`'s share of the budget) the worker gives it back at once, before the answer goes
KEEP_WARM_BYTES = 256 * 1024**2


def keep_warm_bytes(ledger: budget.Ledger | None) -> int:
    """What one worker may keep between tasks: :data:`KEEP_WARM_BYTES`, at most one slot's share of the budget
    (the slots are twice the workers, so all workers together keep at most half of it)."""
    if ledger is None:
        return KEEP_WARM_BYTES
    return min(KEEP_WARM_BYTES, ledger.limit // max(1, ledger.slots))


class Janitor:
    """Gives the worker's freed memory back (:func:`return_memory`) once no task has come for ``delay`` seconds.

    Done before each answer left, the collection and ``malloc_trim`` cost the request their time, and (with
    glibc's defaults) the next request paid for every page again: ResNet-18 faulted in ~53 MB per run. Now a
    task of up to ``keep`` reserved bytes leaves what it freed to the next task of this worker
    (:func:`app.core.budget.keep_freed_memory`), and this thread gives it back when the worker goes idle:
    an idle worker holds what it held before, ``delay`` seconds later.

    What the worker keeps (what it grew by since it last gave memory back, at most ``keep``) is counted in the
    budget's ledger (:func:`app.core.budget.keep`) until it is given back: other workers' requests see it as
    in use, this worker's next request reuses it. A larger task, or one after which the worker grew by more
    than ``keep`` (:meth:`after_large_task`), gives it back at once, as before.

    A task never overlaps the trim: :meth:`begin` waits while one runs (a few milliseconds, what the task
    would have waited for before).
    """

    def __init__(self, delay: float, keep: int) -> None:
        self.delay = delay
        self.keep = keep
        self._cv = threading.Condition(threading.Lock())
        self._due: float | None = None  # when to trim, unless a task comes first
        self._busy = False
        self._closed = False
        self.trims = 0  # how many times it gave memory back (for tests)
        #: the worker's resident bytes after it last gave memory back: it keeps at most ``keep`` more
        self.floor = resident_bytes()
        threading.Thread(target=self._loop, name="give-memory-back", daemon=True).start()

    def begin(self) -> None:
        """A task starts (after any trim under way)."""
        with self._cv:
            self._busy = True

    def end(self) -> None:
        """A task ended: give memory back ``delay`` seconds from now, unless another task comes first."""
        with self._cv:
            self._busy = False
            idle = self._due is None
            self._due = time.monotonic() + self.delay
            if idle:  # the thread waits without a deadline only while nothing is due
                self._cv.notify()

    def after_large_task(self, reserved: int) -> None:
        """A task that reserved ``reserved`` bytes ended: keep what the worker grew by since it last gave memory
        back, counted in the budget's ledger, or give it back now where that is more than ``keep``.

        Freed blocks are not always reused: a small allocation that outlives a request (a cache entry) can
        land in a freed 16 MiB block and split it, and the next request's 16 MiB then extend the heap. A
        ReLU on [2048, 2048] grew the worker by 16-32 MiB a request, back to back, all of it free memory
        that a trim gave back: past ``keep`` the task gives it back at once.
        """
        grown = resident_bytes() - self.floor if reserved <= self.keep else None
        if grown is None or grown > self.keep:
            self.floor = return_memory()
            grown = 0
        budget.keep(grown)

    def close(self) -> None:
        """Stop the thread (what is due is not done)."""
        with self._cv:
            self._closed = True
            self._cv.notify()

    def _loop(self) -> None:
        with self._cv:
            while not self._closed:
                if self._due is None:
                    self._cv.wait()
                    continue
                left = self._due - time.monotonic()
                if self._busy or left > 0:
                    # woken at the deadline of the moment: a task that ended since has moved it later
                    self._cv.wait(left if left > 0 else self.delay)
                    continue
                self._due = None
                try:
                    self.floor = return_memory()
                    budget.keep(0)
                except Exception:  # noqa: BLE001 - a bug: logged, and the thread stays for the next idle time
                    traceback.print_exc(file=sys.stderr)
                self.trims += 1


def resident_bytes() -> int:
    """This process's resident set (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _animate(registry: Any, body: Any, settings: Settings, fmt: str) -> tuple[bytes, str, str]:
    """The animation's bytes and media type, and a file name stem from the layer's type."""
    data, media_type = animate(registry, body, settings, fmt)
    layer = body.get("layer") if isinstance(body, dict) else None
    kind = layer.get("type", "layer") if isinstance(layer, dict) else "layer"
    return data, media_type, "".join(ch for ch in str(kind) if ch.isalnum())[:40] or "layer"


def _npy(registry: Any, body: Any, settings: Settings, tensor: str | None = None) -> tuple[str, Any]:
    """``?format=npy``: the output written by ``np.save`` into the web process's spool (shared memory), its
    file name sent back instead of its bytes (app.core.spool)."""
    if _spool is None or not _spool.dirs:  # no spool (called outside a pool): the bytes themselves
        return requests.npy(registry, body, settings, tensor)
    name, t, estimate = requests.npy_output(registry, body, settings, tensor)
    # NumPy's copy where the dtype is widened (half precision to float32), and the file in shared memory
    wide = t.numel() * max(t.element_size(), 4)
    reserve_more("writing the output as .npy", 2 * wide, estimate, settings)
    return name, _spool.write_npy(tensors.numpy_of(t), _slot)


TASKS: dict[str, Callable[..., Any]] = {
    "run": requests.run,
    "shape": requests.shape,
    "explain": requests.explain,
    "npy": _npy,
    "animate": _animate,
    "receptive_field": receptive_field,
    "import": import_model,
}


#: tasks whose answer is a JSON document, encoded in the worker (see app.core.body.encode_json; gzipped by app.core.compress)
JSON_TASKS = frozenset({"run", "shape", "explain", "receptive_field", "import"})


def _encoded(name: str, body: Any, settings: Settings, options: dict[str, Any], gzip: bool) -> Any:
    """A JSON task's answer as bytes (gzipped where ``gzip``); the answer's objects die with this call."""
    result = TASKS[name](_registry or default_registry(settings.plugins), body, settings, **options)
    if gzip:  # the JSON as plain bytes, read once by the compressor (no JSONBytes copy of it)
        return compress.gzip_json(body_mod.dumps(result))
    return body_mod.encode_json(result)


def task(
    name: str, body: Any, settings: Settings, slot: int | None, options: dict[str, Any], gzip: bool = False
) -> tuple[Any, ...]:
    """One request in a worker: ("ok", result) or ("error", status, body, headers), all plain data.

    ``gzip``: the client accepts gzip, so a JSON answer comes back compressed (:func:`app.core.compress.gzip_json`)
    where it is large enough to gain from it.
    """
    global _slot
    if _skip is not None and slot is not None and _skip[slot]:
        return ("skipped",)  # its client is gone: nothing to do (and no reason to kill this worker)
    if _pids is not None and slot is not None:
        _pids[slot] = os.getpid()
    _slot = slot
    if _janitor is not None:
        _janitor.begin()
    budget.begin(slot)
    try:
        if isinstance(body, (bytes, bytearray)):
            body = body_mod.decode_json(bytes(body))
        if name not in JSON_TASKS:
            return ("ok", TASKS[name](_registry or default_registry(settings.plugins), body, settings, **options))
        # the collector stays paused until the answer is bytes and its objects are freed (by reference
        # counts: plain JSON data holds no cycles): re-enabled with the answer alive, its first collection
        # walked all of it (a 512-block Conv net's first run: 35 of its ~190 ms in the collector, 20 so)
        with requests.collector_paused():
            return ("ok", _encoded(name, body, settings, options, gzip))
    except LayerExplorerError as exc:
        return ("error", exc.status, exc.to_dict(), exc.headers())
    except Exception:  # noqa: BLE001 - a bug: the traceback goes to the server log, not to the client
        traceback.print_exc(file=sys.stderr)
        return (
            "error",
            500,
            InternalError(
                f"the server failed on this {name} request (an internal error; the server log has the details)"
            ).to_dict(),
            {},
        )
    finally:
        # A worker keeps what a task of up to its Janitor's ``keep`` bytes freed for its next task, and
        # gives it back once idle. A larger task gives it back now, before the reservation is released:
        # what the budget counted is gone when it is released. Outside a worker (no Janitor) a large task
        # does so too; a small one never: a full collection and reading /proc cost 0.85 ms, more than a
        # small run itself (0.7 ms for Linear(10, 5)), and a small request leaves little to give back.
        reserved = budget.reserved()
        if reserved >= RETURN_MEMORY_FROM:
            if _janitor is None:
                return_memory()
            else:
                _janitor.after_large_task(reserved)
        # and the GPU's cached blocks past the idle allowance (a no-op where CUDA was never used)
        with contextlib.suppress(RuntimeError):  # a CUDA error is the request's, answered already
            gpu.release_cached(settings)
        budget.end()
        if _pids is not None and slot is not None:
            _pids[slot] = -1  # finished: nothing of this task is left in this process
        if _janitor is not None:
            _janitor.end()
