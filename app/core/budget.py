"""One memory budget for the whole server: the hook that ``engine.plan_request`` calls.

``reserve(nbytes)`` is called once a request's memory estimate is known. In a plain process (tests,
scripts, the CLI's warm-up) nothing is installed and it does nothing. In a worker process the pool
installs a shared ledger: one int64 slot per task the pool may run at once, plus one cell for the peak
of the sum. A reservation is admitted only while the sum over all slots plus ``nbytes`` fits in the
budget; otherwise the request is refused with 503 (``ServerBusy``) and may be retried.

The parent owns the accounting: it hands each task a slot and zeroes that slot when the task ends in
any way, including its worker being killed; the worker zeroes it too when a task returns normally.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.core.errors import ServerBusy, TooLarge


@dataclass
class Ledger:
    """The shared state: ``cells`` is a raw shared int64 array (slots, then the peak), ``lock`` guards admission.

    ``kept`` and ``owners`` (raw shared int64 arrays of one length, optional): a cell per worker process for
    the memory it keeps between tasks, freed but not yet given back (app.core.tasks.Janitor), and the PID
    that owns the cell (0: free). Kept bytes count against the budget like reservations, until the worker
    gives them back.
    """

    cells: Any
    lock: Any
    limit: int
    kept: Any = None
    owners: Any = None

    @property
    def slots(self) -> int:
        return len(self.cells) - 1

    def in_use(self) -> int:
        held = sum(self.kept[i] for i in range(len(self.kept))) if self.kept is not None else 0
        return sum(self.cells[i] for i in range(self.slots)) + held

    def peak(self) -> int:
        return int(self.cells[self.slots])

    def clear(self, slot: int) -> None:
        # One aligned 8-byte store: readers see the old value or zero, never a torn one, so no lock
        # is needed to release (and a lock held by a killed worker can never block a release).
        self.cells[slot] = 0


def _libc() -> Any:
    """glibc, for ``malloc_trim``; None elsewhere (musl, macOS), where freed memory is left to the allocator."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def trim() -> None:
    """Return the free pages of every malloc arena to the system (``malloc_trim(0)``).

    glibc keeps memory a process freed for its own reuse, so a process that once held a large request
    stays that large while idle, and nothing counts it. Trimming after a large request keeps the
    budget's picture of the server true.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: blocks of at least this size are mapped for themselves and unmapped when freed (glibc's own ceiling for
#: the threshold it adjusts by itself); smaller ones come from the heap, where a freed block is reused
MMAP_FROM = 32 * 1024**2
#: glibc gives the top of the heap back by itself only past this much free (the largest value mallopt takes)
TRIM_FROM = 2**31 - 1


def keep_freed_memory() -> bool:
    """Let this process reuse the memory a request freed for the next request: only :func:`trim` gives it back.

    By default glibc maps blocks over its adjusting threshold (a 9 MiB weight of ResNet-18) for themselves
    and unmaps them when freed, and gives the heap's free top back past twice that: every request of a
    worker then faulted all its pages in again, zeroed by the kernel (13 000 minor faults, about 53 MB, and
    10-20 ms of a ResNet-18 run of about 100 ms). With these settings a request reuses the pages of the one
    before (none measured); the worker gives them back when it goes idle (app.core.tasks). False where the
    C library has no ``mallopt`` (musl, macOS): its default behaviour stays.
    """
    if _LIBC is None or not hasattr(_LIBC, "mallopt"):
        return False
    return bool(_LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_FROM)) and bool(_LIBC.mallopt(_M_TRIM_THRESHOLD, TRIM_FROM))


_ledger: Ledger | None = None
_slot: int | None = None
#: this process's cell of ``Ledger.kept`` (claim_kept), None without one
_kept: int | None = None
#: bytes the running task has reserved in this process (counted with or without a ledger)
_reserved = 0
#: the lock guards a few arithmetic operations; one held this long belongs to a dead process
STALE_LOCK_S = 2.0


@contextlib.contextmanager
def _acquire(lock: Any) -> Iterator[None]:
    """Hold the ledger lock, breaking it if its holder died inside the critical section.

    Blocking SIGTERM covers this thread only: a signal delivered to one of torch's threads, or a
    SIGKILL, can still end a worker that holds the lock. A multiprocessing Lock has no owner, so it
    can be released here and taken again; without this, every later request would wait for ever.
    """
    if not lock.acquire(timeout=STALE_LOCK_S):
        with contextlib.suppress(ValueError):  # released meanwhile
            lock.release()
        if not lock.acquire(timeout=STALE_LOCK_S):
            raise ServerBusy("the server's memory ledger is busy; retry shortly")
    try:
        yield
    finally:
        lock.release()


def install(ledger: Ledger | None) -> None:
    """Called once in each worker process by the pool's initializer."""
    global _ledger, _kept
    _ledger, _kept = ledger, None  # a kept cell is claimed in this ledger (claim_kept)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs: not gone, and not a zombie (dead, its exit status not yet collected)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS), or gone meanwhile
        return True


def claim_kept() -> bool:
    """Take a cell of the ledger's ``kept`` for this process: a free one, or one whose owner died (its kept
    bytes die with it). False where there is none (no ledger, no cells, or all owned by live processes):
    this process then keeps nothing between tasks."""
    global _kept
    ledger = _ledger
    if ledger is None or ledger.kept is None or ledger.owners is None:
        return False
    with _acquire(ledger.lock):
        for i in range(len(ledger.owners)):
            owner = int(ledger.owners[i])
            if owner == 0 or (owner != os.getpid() and not _alive(owner)):
                ledger.kept[i] = 0
                ledger.owners[i] = os.getpid()
                _kept = i
                return True
    return False


def keep(nbytes: int) -> None:
    """Count ``nbytes`` as what this process keeps between tasks (0: it gave them back). One aligned 8-byte
    store, as :meth:`Ledger.clear`: a reader sees the old value or the new one."""
    ledger, cell = _ledger, _kept
    if ledger is not None and cell is not None:
        ledger.kept[cell] = max(0, int(nbytes))


def kept() -> int:
    """What this process counts as kept between tasks."""
    ledger, cell = _ledger, _kept
    return int(ledger.kept[cell]) if ledger is not None and cell is not None else 0


def begin(slot: int | None) -> None:
    """The task about to run in this process owns ``slot``."""
    global _slot, _reserved
    _slot, _reserved = slot, 0


def reserved() -> int:
    """What the running (or last) task reserved in this process: its memory estimate and what it added."""
    return _reserved


def end() -> None:
    """The task is over: give its reservation back."""
    global _slot
    if _ledger is not None and _slot is not None:
        _ledger.clear(_slot)
    _slot = None


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def reserve(nbytes: int) -> None:
    """Count ``nbytes`` against the server's budget for the running task, or refuse the request."""
    global _reserved
    ledger, slot = _ledger, _slot
    if nbytes > 0:
        _reserved += nbytes
    if ledger is None or slot is None or nbytes <= 0:
        return
    if nbytes > ledger.limit:
        raise TooLarge(
            f"this request needs about {_human(nbytes)}; the whole server's memory budget is {_human(ledger.limit)}",
            estimate_bytes=int(nbytes),
            limit_bytes=ledger.limit,
        )
    # SIGTERM (how the pool stops a worker past its deadline) waits until the lock is released, so a
    # killed worker does not leave the lock held (see _acquire for when it still could).
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        with _acquire(ledger.lock):
            # what this process keeps is memory this request reuses: not another request's
            others = ledger.in_use() - ledger.cells[slot] - kept()
            if others + ledger.cells[slot] + nbytes > ledger.limit:
                raise ServerBusy(
                    f"the server is busy: this request needs about {_human(nbytes)} and "
                    f"{_human(others)} of the {_human(ledger.limit)} memory budget is in use by other "
                    "requests; retry shortly",
                    estimate_bytes=int(nbytes),
                    budget_bytes=ledger.limit,
                )
            ledger.cells[slot] += nbytes
            total = others + ledger.cells[slot]
            if total > ledger.cells[ledger.slots]:
                ledger.cells[ledger.slots] = total
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
