"""The torch work runs in a pool of worker processes; the web process only waits for answers.

Why processes: a request can crash libtorch (a segfault takes the whole process with it), run for
hours inside one C++ kernel (a thread cannot be stopped, a process can), or draw from torch's
process-global RNG while another request seeds it. In a worker each request has the process to itself,
and the pool kills and replaces a worker that crashes or runs past the deadline.

The pool is `pebble <https://pypi.org/project/Pebble/>`_'s ``ProcessPool``: a per-task timeout that
kills and replaces the worker, ``future.cancel()`` that stops a running task, a crashed worker
reported as ``ProcessExpired`` for that task only while the others keep running, and an initializer
per worker. (loky's reusable executor has no per-task timeout and breaks the whole executor when a
worker dies, failing every other request in flight.) Workers are forked by a *forkserver*: a clean,
single-threaded process that has imported torch but never run a kernel. Forking the web process
itself, with its threads (and possibly torch's thread pools), would be unsafe.

Admission happens here, in the parent, before pebble sees a task: at most two tasks per worker are
handed to pebble (the one it runs and its next, :data:`PREFETCH`), so a request that is abandoned while
it waits here is simply dropped, and one abandoned in pebble's pipe is marked and skipped by the worker
that takes it (nothing to kill); at most ``settings.queue`` requests may wait, here or in the pipe (more:
503 with Retry-After). Each task handed to pebble owns one slot of the memory-budget ledger
(:mod:`app.core.budget`; a task reserves only once it runs); the parent zeroes the slot when the task
ends in any way, including its worker being killed.

Tasks are dispatched by name (``"run"``, ``"shape"``, ``"explain"``, ``"npy"``): plain request data
and :class:`Settings` in, plain data out (JSON already encoded, or a ``.npy`` file in shared memory:
:mod:`app.core.spool`). Nothing here imports the web framework, nor torch: the worker side is
:mod:`app.core.tasks`, loaded by name inside the workers.

Idle workers all wake for each task: pebble's workers share one pipe and each waits in ``poll()`` on
it, then the first to take the channel's lock reads the task and the others go back to waiting. pebble
has no per-worker channel to change that. Measured here: about 0.08 ms of CPU per idle worker per task,
against about 2.3 ms of CPU for the whole of a small /api/run; concurrent.futures' ProcessPoolExecutor
dispatched a task for the same CPU (0.107 ms against pebble's 0.10 with four in flight) and has no
per-task timeout or cancellation of a running task, so pebble stays.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import importlib
import multiprocessing
import multiprocessing.util as mp_util
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pebble import ProcessExpired, ProcessPool

from app.core import budget, spool
from app.core.config import Settings
from app.core.errors import (
    ClientClosed,
    DeadlineExceeded,
    InternalError,
    Reported,
    ServerBusy,
    WorkerCrashed,
)

# ---------------------------------------------------------------------------------------------
# inside a worker process: entry points pebble pickles by name; the work itself is app.core.tasks
# ---------------------------------------------------------------------------------------------

#: the worker side, loaded by name inside the worker (the forkserver has it preloaded): importing it
#: here would import torch into the web process, which only waits for answers
WORKER_SIDE = "app.core.tasks"
_side: Any = None
#: the pool's settings, given to each worker once at its start (the initializer's first argument)
_settings: Settings | None = None


def _init_worker(settings: Settings, *args: Any) -> None:
    global _side, _settings
    _settings = settings
    _side = importlib.import_module(WORKER_SIDE)
    _side.init(settings, *args)


def _task(name: str, body: Any, slot: int | None, options: dict[str, Any], gzip: bool) -> tuple[Any, ...]:
    # a task carries no Settings: a pool's are fixed, and each worker has them from its start. Pickled per
    # task, they cost 4 us in pebble's scheduling thread (the web process's GIL) and 8.5 us in the worker.
    return _side.task(name, body, _settings, slot, options, gzip)


def _hello(settings: Settings) -> dict[str, Any]:
    """The pool's first task: the catalog and the devices, which the web process serves as data."""
    return _side.hello(settings)


#: the tasks a worker runs (app.core.tasks.TASKS), by name
TASK_NAMES = frozenset({"run", "shape", "explain", "npy", "animate", "receptive_field", "import"})
#: the tasks that write their result into the spool (app.core.tasks._npy): only their slots can hold a
#: file to remove when the task is over
SPOOLED_TASKS = frozenset({"npy"})
#: seconds between two looks at whether a waiting request's client is still there
POLL_S = 0.25
#: tasks handed to pebble per worker while requests wait: the one a worker runs, and the next, already in
#: pebble's pipe, which a worker that finishes takes at once. Handing each task over only once a worker
#: was free put a round trip through the web process (pebble's result thread, the event loop, pebble's
#: scheduling thread, each waiting for the GIL) between every two tasks of a busy worker.
PREFETCH = 2
#: seconds a request that needs the catalog waits for the first worker to start (torch import, warm-up)
STARTUP_WAIT_S = 120.0


# ---------------------------------------------------------------------------------------------
# in the web process
# ---------------------------------------------------------------------------------------------


# Imported once by the forkserver, so a new worker starts with them. Imports only: no kernel runs there,
# so no thread pool exists when the forkserver forks. What torch imports lazily on a worker's first
# meta-device pass is here too: ``torch._check``, which most of torch's Python meta kernels call (conv's
# among them), imports symbolic_shapes and sympy on its first call (about 35 MiB, 0.5 s). torch._dynamo
# (and torch._inductor with it: 36 MiB more, 1.1 s) is not: the meta kernels that imported it no longer
# do (app.core.nodynamo), so a server whose requests never need it never loads it.
PRELOAD = [
    "app.core.workers",
    WORKER_SIDE,
    "app.core.networks.containers",
    "app.core.explaining.windows",
    "torch.fx.experimental.symbolic_shapes",
    "app.core.preloaded",  # last: freezes all of the above, so that forked workers keep sharing it
]


def _dispose(pool: ProcessPool) -> None:
    pool.stop()
    with contextlib.suppress(TimeoutError, FutureTimeout, RuntimeError):
        pool.join(timeout=10)


def _release_semaphore(lock: Any) -> None:
    """Unlink the named semaphore behind a multiprocessing lock now, once no worker will open it again.

    multiprocessing unlinks it in an exit hook; uvicorn ends the process by re-raising SIGTERM after its
    shutdown, so exit hooks never run and the resource tracker reported "1 leaked semaphore" at every
    stop. The lock's own finalizer is run (once: it will not run again at exit).
    """
    name = getattr(getattr(lock, "_semlock", None), "name", None)
    if name is None:
        return
    for finalizer in list(mp_util._finalizer_registry.values()):
        if getattr(finalizer, "_args", None) == (name,):
            finalizer()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "it stopped unexpectedly"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class WorkerPool:
    """Worker processes with a bounded wait queue, a deadline per request and one shared memory budget."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.size = settings.worker_count()
        # one budget slot per task handed to pebble: running, or next in its pipe (PREFETCH)
        self.slots = self.size * PREFETCH
        # the CPUs shared out over every worker of every HTTP process, so that busy workers do not
        # oversubscribe the cores
        self.threads = settings.worker_threads()
        # forkserver: a clean single-threaded process that has imported torch and PRELOAD once (never run a
        # kernel) forks each worker, so a replacement is ready in ~0.2 s instead of ~3 s re-importing torch.
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        self._lock = threading.Lock()
        self._pool: ProcessPool | None = None
        self._free: list[int] = []
        self._waiting: collections.deque[Future] = collections.deque()
        self._closed = False
        self.ledger: budget.Ledger | None = None
        self._started: Future | None = None
        self._skip: Any = None
        self._pids: Any = None
        self._dying: dict[int, bool] = {}  # slots whose cancelled task's worker is being stopped
        # slots whose task may have left a spool file (SPOOLED_TASKS): removing a file that cannot be there
        # cost every small request two failed unlink calls in the thread that delivers results
        self._spooling: set[int] = set()
        self.spool: spool.Spool | None = None  # large results (.npy) come back through files here

    # -- life cycle -------------------------------------------------------------------------

    def start(self, wait: float = 0) -> bool:
        """Start the worker processes (idempotent; the first request starts them if nobody did).

        With ``wait``, block up to that many seconds until a worker answers (the server's start-up).
        True when this call started them (its caller then owns :meth:`close`).
        """
        with self._lock:
            fresh = self._pool is None and not self._closed
            if fresh:
                self._started = self._start()
                atexit.register(self.close)
            started = self._started
        if wait and started is not None:
            try:
                started.result(timeout=wait)
            except (FutureTimeout, TimeoutError):
                print(f"layer-explorer: no worker process was ready after {wait:g} s", file=sys.stderr)
        return fresh

    def ready(self) -> bool:
        """A worker has answered: requests are served now, not after a start-up wait."""
        started = self._started
        return (
            started is not None
            and started.done()
            and not started.cancelled()
            and started.exception() is None
            and not self._closed
        )

    def _start(self) -> Future:
        cells = self._ctx.RawArray("q", self.slots + 1)
        # a kept-memory cell per worker, twice over: a replacement claims one while its dead predecessor's
        # may still be owned (app.core.tasks.Janitor)
        kept = self._ctx.RawArray("q", 2 * self.size)
        owners = self._ctx.RawArray("q", 2 * self.size)
        self.ledger = budget.Ledger(cells, self._ctx.Lock(), self.settings.memory_budget(), kept, owners)
        self._skip = self._ctx.RawArray("b", self.slots)
        self._pids = self._ctx.RawArray("q", self.slots)
        self.spool = spool.Spool.create()
        self._free = list(reversed(range(self.slots)))  # slot 0 first: a one-worker pool runs in slot 0
        return self._new_pool()

    def _new_pool(self) -> Future:
        self._pool = ProcessPool(
            max_workers=self.size,
            initializer=_init_worker,
            initargs=(self.settings, self.threads, self.ledger, self._skip, self._pids, self.spool),
            context=self._ctx,
        )
        # scheduling starts pebble's manager threads, which launch every worker now, not on first use
        return self._pool.schedule(_hello, args=(self.settings,))

    def _live_pool(self) -> ProcessPool | None:
        """The pebble pool, replaced first if it has failed.

        pebble gives up on the whole pool when a worker dies while no task runs (killed while idle, e.g.
        by the kernel's OOM killer, or a failed start); its tasks in flight then fail with
        BrokenProcessPool (answered 500). A new pool is started for the requests that follow.
        """
        with self._lock:
            old = self._pool
            if old is None or self._closed or old.active:
                return old
            print(
                "layer-explorer: the worker pool failed (a worker died while idle); starting a new one", file=sys.stderr
            )
            self._new_pool()
            pool = self._pool
        threading.Thread(target=_dispose, args=(old,), name="dispose-pool", daemon=True).start()
        return pool

    def close(self) -> None:
        """Refuse new work, drop waiting requests, stop the workers (running tasks are killed)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiting = list(self._waiting)
            self._waiting.clear()
            pool = self._pool
        for ticket in waiting:
            ticket.cancel()
        if pool is not None:
            _dispose(pool)
        if self.ledger is not None:
            _release_semaphore(self.ledger.lock)
        if self.spool is not None:
            self.spool.close()

    def worker_pids(self) -> list[int]:
        """PIDs of the current worker processes (for tests and the load benchmark)."""
        pool = self._pool
        if pool is None:
            return []
        return list(pool._pool_manager.worker_manager.workers)  # pebble keeps no public list

    def stats(self) -> dict[str, int]:
        with self._lock:
            handed = self.slots - len(self._free) if self._pool is not None else 0
            running = min(handed, self.size)
            waiting = len(self._waiting) + handed - running  # in this queue, or next in pebble's pipe
        ledger = self.ledger
        return {
            "workers": self.size,
            "running": running,
            "waiting": waiting,
            "queue": self.settings.queue,
            "reserved_bytes": ledger.in_use() if ledger else 0,
            "peak_reserved_bytes": ledger.peak() if ledger else 0,
            "budget_bytes": ledger.limit if ledger else self.settings.memory_budget(),
        }

    # -- admission --------------------------------------------------------------------------

    def _admit(self) -> Future:
        """A ticket that resolves to a budget slot once a worker is free, or a worker's next task may wait
        in pebble's pipe (:data:`PREFETCH`); 503 when the queue is full.

        The queue (``settings.queue``) counts every request that waits, here or in pebble's pipe.
        """
        ticket: Future = Future()
        with self._lock:
            if self._closed:
                raise ServerBusy("the server is shutting down; retry shortly", retry_after=2)
            handed = self.slots - len(self._free)
            waiting = len(self._waiting) + max(handed - self.size, 0)
            if self._free and not self._waiting and (handed < self.size or waiting < self.settings.queue):
                ticket.set_running_or_notify_cancel()
                ticket.set_result(self._free.pop())
            elif waiting >= self.settings.queue:
                raise ServerBusy(
                    f"the server is busy: all {self.size} workers are running and {waiting} "
                    f"requests are waiting (the queue holds {self.settings.queue}); retry shortly",
                    retry_after=1,
                )
            else:
                self._waiting.append(ticket)
        return ticket

    def _release(self, slot: int) -> None:
        """A task is over (done, failed, timed out, cancelled, crashed): its slot goes to the next in line.

        A cancelled task's future is done at once, while its worker lives on until pebble kills it (up to
        a tenth of a second later): its reservation is kept until that process is gone.
        """
        with self._lock:
            dying = self._dying.pop(slot, False)
        if dying:
            threading.Thread(target=self._release_after_exit, args=(slot,), name="release", daemon=True).start()
            return
        self._release_now(slot)

    def _release_after_exit(self, slot: int) -> None:
        # The worker writes its PID as it starts the task and -1 when the task ends (it may have ended just
        # as it was cancelled); one killed before it started never allocated anything.
        deadline = time.monotonic() + 0.5
        while not self._pids[slot] and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = int(self._pids[slot])
        deadline = time.monotonic() + 10
        while pid > 0 and self._pids[slot] == pid and spool.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        self._release_now(slot)

    def _release_now(self, slot: int) -> None:
        if self.ledger is not None:
            self.ledger.clear(slot)
        if self.spool is not None and slot in self._spooling:
            # a task that failed or was killed while writing its file left it there
            self._spooling.discard(slot)
            self.spool.discard(slot)
        with self._lock:
            while self._waiting:
                ticket = self._waiting.popleft()
                if ticket.set_running_or_notify_cancel():  # False: it was abandoned meanwhile
                    ticket.set_result(slot)
                    return
            self._free.append(slot)

    def _abandon(self, ticket: Future) -> None:
        with self._lock:
            if ticket in self._waiting:
                self._waiting.remove(ticket)
                ticket.cancel()
                return
        if ticket.done() and not ticket.cancelled():  # granted, but its task was never scheduled
            self._release(ticket.result())

    # -- one request ------------------------------------------------------------------------

    async def call(
        self,
        name: str,
        body: Any,
        *,
        options: dict[str, Any] | None = None,
        disconnected: Callable[[], Awaitable[bool]] | None = None,
        gzip: bool = False,
    ) -> Any:
        """Run task ``name`` on ``body`` in a worker; raises a LayerExplorerError for every failure.

        ``gzip``: the client accepts gzip; a large JSON answer then comes back compressed by the worker
        (:class:`app.core.compress.GzippedJSON`), in parallel with the other workers and off the event loop.

        ``disconnected`` is polled while waiting: when the client has gone, its work is cancelled
        (a running worker is killed and replaced). The deadline counts from arrival, waiting included.
        """
        if name not in TASK_NAMES:
            raise KeyError(name)
        loop = asyncio.get_running_loop()
        if self._started is None:  # (still) starting the processes blocks: not on the event loop
            await loop.run_in_executor(None, self.start)
        timeout = self.settings.timeout_s
        deadline = loop.time() + timeout
        ticket = self._admit()
        future: Future | None = None
        try:
            await self._wait(ticket, deadline, disconnected)
            if not ticket.done():
                raise DeadlineExceeded(
                    f"no worker became free within the server's deadline of {timeout:g} s "
                    "(LAYER_EXPLORER_TIMEOUT); the server is busy, retry shortly",
                    timeout_s=timeout,
                )
            slot = ticket.result()
            pool = self._live_pool()
            if pool is None or self._closed:
                self._release(slot)
                raise ServerBusy("the server is shutting down; retry shortly", retry_after=2)
            remaining = max(deadline - loop.time(), 0.05)
            self._skip[slot] = 0
            self._pids[slot] = 0  # written by the worker that starts the task
            if name in SPOOLED_TASKS:
                self._spooling.add(slot)
            future = pool.schedule(_task, args=(name, body, slot, options or {}, gzip), timeout=remaining + 1)
            # first claim a spooled result (open and unlink its file), then give the slot to the next task
            future.add_done_callback(self._claim)
            future.add_done_callback(lambda _f, s=slot: self._release(s))
            await self._wait(future, deadline, disconnected)
            if not future.done():
                self._stop(future, slot)
                raise DeadlineExceeded(
                    f"this request ran past the server's deadline of {timeout:g} s (LAYER_EXPLORER_TIMEOUT); "
                    "its worker was stopped and replaced. Try a smaller input or layer",
                    timeout_s=timeout,
                )
        except BaseException:
            # Deadline, disconnect, or the request's task was cancelled (client gone, server stopping).
            if future is not None:
                self._stop(future, slot)
            else:
                self._abandon(ticket)
            raise
        return self._outcome(future, name, timeout)

    async def facts(self) -> dict[str, Any]:
        """What the first worker reported (app.core.tasks.hello): the catalog as data, and the devices.

        Waits for the workers to start (a request that comes first waits, as :meth:`call` does).
        """
        loop = asyncio.get_running_loop()
        if self._started is None:
            await loop.run_in_executor(None, self.start)
        started = self._started
        if started is None:
            raise ServerBusy("the server is shutting down; retry shortly", retry_after=2)
        await self._wait(started, loop.time() + STARTUP_WAIT_S, None)
        if not started.done():
            raise ServerBusy("the worker processes are still starting; retry shortly", retry_after=2)
        try:
            return started.result()
        except Exception as exc:  # noqa: BLE001 - the workers could not start: said in words, not a traceback
            raise WorkerCrashed(f"the worker processes could not start ({exc})") from None

    def _stop(self, future: Future, slot: int) -> None:
        """Stop a task: a running one is cancelled (pebble kills its worker, which is replaced); one still
        in the pipe to the workers is marked, so the worker that picks it up returns at once, unkilled."""
        if future.done():
            return
        if not future.running():
            self._skip[slot] = 1
            if not future.running():
                return
        with self._lock:
            self._dying[slot] = True
        future.cancel()

    async def _wait(self, future: Future, deadline: float, disconnected: Callable[[], Awaitable[bool]] | None) -> None:
        """Wait for ``future`` until the deadline; raise ClientClosed when the client goes away.

        One plain asyncio future per :data:`POLL_S`, woken by the pool's thread or by a timer: no task and
        no ``wait_for`` per wait (each made a Task, an Event and a timeout), which a small request paid for
        on the one event loop that serves every client.
        """
        if future.done():
            return
        loop = asyncio.get_running_loop()
        woken = [loop.create_future()]  # the future the loop waits on now (a new one each round)

        def wake() -> None:
            if not woken[0].done():
                woken[0].set_result(None)

        future.add_done_callback(lambda _f: loop.call_soon_threadsafe(wake) if not loop.is_closed() else None)
        while not future.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            timer = loop.call_later(min(remaining, POLL_S), wake)
            try:
                await woken[0]
            finally:
                timer.cancel()
            if future.done():
                return
            woken[0] = loop.create_future()
            if disconnected is not None and await disconnected():
                raise ClientClosed("the client closed the connection; its work was cancelled")

    def _claim(self, future: Future) -> None:
        """A result that came back as a spool file: opened and unlinked now, whoever waits for it (if the
        request was given up meanwhile, the open file is all that is left, and it closes with the future)."""
        if future.cancelled() or future.exception() is not None or self.spool is None:
            return
        outcome = future.result()
        if outcome[0] == "ok" and isinstance(outcome[1], tuple) and len(outcome[1]) == 2:
            name, result = outcome[1]
            if isinstance(result, spool.Spooled):
                future.spooled = (name, self.spool.claim(result), result.size)  # type: ignore[attr-defined]

    def _outcome(self, future: Future, name: str, timeout: float) -> Any:
        try:
            outcome = future.result()
        except ProcessExpired as exc:
            raise WorkerCrashed(
                f"the worker process running this {name} request crashed ({_describe_exit(exc.exitcode)}); "
                "it has been replaced and other requests were not affected",
                exit_code=exc.exitcode,
            ) from None
        except FutureTimeout:
            raise DeadlineExceeded(
                f"this request ran past the server's deadline of {timeout:g} s (LAYER_EXPLORER_TIMEOUT); "
                "its worker was stopped and replaced. Try a smaller input or layer",
                timeout_s=timeout,
            ) from None
        except CancelledError:
            raise ServerBusy("the request was cancelled as the server stopped; retry shortly", retry_after=2) from None
        except BrokenProcessPool:
            raise WorkerCrashed(f"the worker pool failed while running this {name} request") from None
        except Exception as exc:  # noqa: BLE001 - e.g. a result that could not be sent back
            print(f"layer-explorer: {name} task failed in the pool: {exc!r}", file=sys.stderr)
            raise InternalError(f"the server failed on this {name} request (an internal error)") from None
        if outcome[0] == "ok":
            # a spooled .npy: (name, open file, size), claimed in _claim
            spooled = getattr(future, "spooled", None)
            if (
                spooled is None
                and isinstance(outcome[1], tuple)
                and any(isinstance(v, spool.Spooled) for v in outcome[1])
            ):
                raise InternalError(f"the server failed on this {name} request (its result file could not be read)")
            return spooled or outcome[1]
        if outcome[0] == "skipped":
            raise ClientClosed("the request was given up before a worker started it")
        _, status, body, headers = outcome
        raise Reported(status, body, headers)
