"""A worker keeps the memory a request freed for its next request, and gives it back once idle (app.core.tasks.Janitor).

Trimming before every answer left cost the request the trim, and the next request faulted every page in
again (ResNet-18: ~13 000 minor faults, ~53 MB zeroed by the kernel, 10-20 ms of a 100 ms run).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from app.core import budget, tasks
from app.core.config import Settings
from app.core.errors import ServerBusy
from app.main import create_app
from tests.hardening_helpers import client, run_async

MiB = 1024**2
#: a request whose blocks (2-8 MiB activations) the next one reuses: 162 MiB reserved, under the keep
_NET = {
    "layer": {
        "type": "Sequential",
        "layers": [
            {"type": "Conv2d", "in_channels": 16, "out_channels": 16, "kernel_size": 3, "padding": 1},
            {"type": "ReLU"},
        ]
        * 3,
    },
    "inputs": [{"shape": [8, 16, 128, 128]}],
}


def _until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_the_janitor_trims_once_idle_and_never_while_a_task_runs(monkeypatch):
    running = threading.Event()
    overlapped = []
    monkeypatch.setattr(tasks, "return_memory", lambda: overlapped.append(running.is_set()) or 0)
    janitor = tasks.Janitor(0.05, 64 * MiB)
    try:
        assert janitor.trims == 0  # nothing is due before a task ended
        janitor.end()
        assert _until(lambda: janitor.trims == 1)

        janitor.begin()
        running.set()
        time.sleep(0.3)  # six delays: a task that runs that long is no idle time
        assert janitor.trims == 1
        running.clear()
        janitor.end()
        assert _until(lambda: janitor.trims == 2)
        time.sleep(0.2)
        assert janitor.trims == 2  # once per idle time, not every delay
        assert overlapped == [False, False]
    finally:
        janitor.close()


def test_the_keep_is_at_most_one_slots_share_of_the_budget():
    def ledger(limit: int, slots: int) -> budget.Ledger:
        return budget.Ledger(cells=[0] * (slots + 1), lock=None, limit=limit)

    assert tasks.keep_warm_bytes(None) == tasks.KEEP_WARM_BYTES
    assert tasks.keep_warm_bytes(ledger(64 * 1024**3, 4)) == tasks.KEEP_WARM_BYTES
    assert tasks.keep_warm_bytes(ledger(400 * MiB, 4)) == 100 * MiB


def test_kept_memory_counts_in_the_budget_for_the_others_not_for_the_worker_that_reuses_it():
    ctx = multiprocessing.get_context("spawn")
    ledger = budget.Ledger(ctx.RawArray("q", 3), ctx.Lock(), 100, ctx.RawArray("q", 2), ctx.RawArray("q", 2))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # dead, not yet waited for
    # it has exited, but os.kill(pid, 0) still finds it until it is waited for
    assert _until(lambda: not budget._alive(zombie.pid)) and budget._alive(os.getpid())
    zombie.wait()
    ledger.owners[0], ledger.kept[0] = int(dead.stdout), 30  # a worker that died keeping 30 bytes
    ledger.owners[1], ledger.kept[1] = 1, 20  # a live one (init) keeping 20
    budget.install(ledger)
    try:
        assert ledger.in_use() == 50
        assert budget.claim_kept()  # the dead worker's cell, and its bytes are gone with it
        assert ledger.owners[0] == os.getpid() and ledger.in_use() == 20
        budget.keep(60)
        assert budget.kept() == 60 and ledger.in_use() == 80
        budget.begin(0)
        budget.reserve(75)  # 20 kept by the other + 75 fit in 100: this worker's 60 is what it reuses
        with pytest.raises(ServerBusy):
            budget.reserve(10)  # 20 + 85 do not
        budget.end()
        budget.install(ledger)  # a new start: the claim is the new process's
        assert not budget.claim_kept()  # both cells are owned by live processes
        budget.keep(5)  # without a cell: nothing counted
        assert ledger.in_use() == 80
    finally:
        budget.end()
        budget.install(None)


_FAULTS = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from app.core import budget
    if sys.argv[1] == "keep":
        assert budget.keep_freed_memory()

    def request():
        # a request's blocks: eight 8 MiB arrays, written, then freed
        blocks = [np.ones(1 << 20) for _ in range(8)]
        del blocks

    request()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    request()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


@pytest.mark.skipif(budget._LIBC is None or not hasattr(budget._LIBC, "mallopt"), reason="glibc only")
def test_freed_memory_is_reused_by_the_next_request_without_faulting_it_in_again():
    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True)
        return int(out.stdout)

    kept, default = faults("keep"), faults("default")
    # 64 MiB is 16 384 pages: glibc's defaults give a quarter of them back (8 MiB blocks) and fault them in again
    assert default > 2000, default
    assert kept < 200, kept


def test_a_task_gives_memory_back_at_once_past_the_keep(monkeypatch):
    """Past the keep (its reservation, or what the worker grew since it last gave memory back), a task gives
    memory back before its answer goes, as it did before the Janitor; under it, not."""
    calls = []
    monkeypatch.setattr(tasks, "return_memory", lambda: calls.append(1) or 100 * MiB)
    resident = [100 * MiB]
    monkeypatch.setattr(tasks, "resident_bytes", lambda: resident[0])
    janitor = tasks.Janitor(3600, 64 * MiB)
    monkeypatch.setattr(tasks, "_janitor", janitor)
    try:
        small = {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}]}
        mid = {"layer": {"type": "ReLU"}, "inputs": [{"shape": [2048, 2048]}]}  # 16 MiB of input: ~70 MiB
        big = {"layer": {"type": "ReLU"}, "inputs": [{"shape": [4096, 2048]}]}
        assert tasks.task("run", json.dumps(small).encode(), Settings(), None, {})[0] == "ok"
        assert calls == []
        janitor.keep = 128 * MiB
        assert tasks.task("run", json.dumps(mid).encode(), Settings(), None, {})[0] == "ok"
        assert tasks.RETURN_MEMORY_FROM <= budget.reserved() <= janitor.keep and calls == []  # kept until idle
        resident[0] = 100 * MiB + janitor.keep + 1  # the worker grew past its keep
        assert tasks.task("run", json.dumps(mid).encode(), Settings(), None, {})[0] == "ok"
        assert calls == [1] and janitor.floor == 100 * MiB
        resident[0] = 100 * MiB
        assert tasks.task("run", json.dumps(big).encode(), Settings(), None, {})[0] == "ok"
        assert budget.reserved() > janitor.keep and calls == [1, 1]
    finally:
        janitor.close()


def _status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key))


def _minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[7])  # minflt, the 10th field


@pytest.mark.skipif(budget._LIBC is None or not hasattr(budget._LIBC, "mallopt"), reason="glibc only")
def test_a_worker_reuses_its_freed_memory_back_to_back_and_gives_it_back_when_idle():
    application = create_app(Settings(workers=1, queue=8, timeout_s=60))
    pool = application.state.pool
    pool.start(wait=120)
    try:

        async def post():
            async with client(application) as c:
                r = await c.post("/api/run", json=_NET)
                assert r.status_code == 200, r.text
                return r

        run_async(post)  # first use: imports, kernels
        (pid,) = pool.worker_pids()
        time.sleep(tasks.IDLE_TRIM_S + 0.5)  # idle: what the first request freed was given back
        base = _status(pid, "VmRSS")

        faults = []
        for _ in range(4):  # back to back: each reuses the pages of the one before
            f0 = _minor_faults(pid)
            run_async(post)
            faults.append(_minor_faults(pid) - f0)
        held = _status(pid, "VmRSS")
        assert pool.worker_pids() == [pid]
        # the first after the idle time faulted its pages in; the next three together fewer than it alone
        assert sum(faults[1:]) < faults[0], faults
        faulted = faults[0] * resource.getpagesize()  # what the first request took from the system
        assert held - base > faulted / 2, (held - base, faulted)  # kept for the next request...
        assert pool.stats()["reserved_bytes"] > faulted / 2  # ...and counted in the budget...
        # ...until given back once the worker is idle
        assert _until(lambda: _status(pid, "VmRSS") - base < faulted / 4), (held - base, faulted)
        assert _until(lambda: pool.stats()["reserved_bytes"] == 0)
    finally:
        pool.close()
