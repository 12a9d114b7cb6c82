"""Worker processes through the ASGI pool_app: deadline, crashes, cancellation, the bounded queue, the memory budget.

The pool_app here loads a test-only plugin (tests/plugins/hardening_layers.py) with a layer that burns CPU
for as long as it is told and one that kills its own process, and runs 2 workers with a 3 s deadline.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from concurrent.futures import Future

import httpx
import pytest

from app.core import budget, service, workers
from app.core.config import Settings
from app.core.errors import ServerBusy
from app.main import create_app
from tests.hardening_helpers import LINEAR, PLUGIN, client, run_async, spin

MiB = 1024**2
# Spin on 1Mi float32 elements: 4 MiB of input, 4 MiB of output, a plugin's working memory, the response
BIG = [1024, 1024]


def _estimate(body: dict) -> int:
    settings = Settings(plugins=(PLUGIN,))
    return service.shape(service.default_registry(settings.plugins), body, settings)["estimate_bytes"]


ESTIMATE = _estimate({"layer": {"type": "Spin", "seconds": 0.3}, "inputs": [{"shape": BIG}]})
BUDGET = ESTIMATE * 3 // 2  # room for one such request at a time, not two


@pytest.fixture(scope="module")
def pool_app():
    settings = Settings(plugins=(PLUGIN,), workers=2, queue=16, timeout_s=3.0, memory_budget_bytes=BUDGET)
    application = create_app(settings)
    application.state.pool.start(wait=120)
    yield application
    application.state.pool.close()


def _settled(pool, within: float = 10) -> bool:
    """No task running and nothing reserved (soon: a killed worker's slot is freed once it has exited)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        stats = pool.stats()
        if stats["running"] == 0 and stats["reserved_bytes"] == 0:
            return True
        time.sleep(0.05)
    return False


async def _ready(c) -> None:
    """Wait until a small request succeeds (a replaced worker may still be starting)."""
    for _ in range(40):
        r = await c.post("/api/run", json=LINEAR)
        if r.status_code == 200:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"the pool did not recover: {r.status_code} {r.text}")


def test_deadline_is_a_504_and_healthz_keeps_answering(pool_app):
    async def go():
        async with client(pool_app) as c:
            await _ready(c)
            slow = asyncio.create_task(c.post("/api/run", json=spin(60)))
            await asyncio.sleep(0.3)
            health = await c.get("/healthz")
            health_done_first = not slow.done()
            r = await slow
            after = await c.post("/api/run", json=LINEAR)
            return health, health_done_first, r, after

    health, health_first, r, after = run_async(go)
    assert health.status_code == 200 and health_first
    assert r.status_code == 504, r.text
    body = r.json()
    assert body["error"] == "deadline_exceeded" and "3 s" in body["detail"] and body["timeout_s"] == 3.0
    assert after.status_code == 200
    # the killed task's slot and reservation are given back once its worker process is gone
    assert _settled(pool_app.state.pool)


@pytest.mark.parametrize("how, named", [("segv", "SIGSEGV"), ("exit", "exit code 3"), ("abort", "SIGABRT")])
def test_a_crashed_worker_is_a_json_500_and_others_are_unaffected(pool_app, how, named):
    async def go():
        async with client(pool_app) as c:
            await _ready(c)
            other = asyncio.create_task(c.post("/api/run", json=spin(0.8)))
            await asyncio.sleep(0.1)
            crash = await c.post("/api/run", json={"layer": {"type": "Crash", "how": how}, "inputs": [{"shape": [2]}]})
            return crash, await other, await c.post("/api/run", json=LINEAR)

    crash, other, after = run_async(go)
    assert crash.status_code == 500
    assert crash.headers["content-type"] == "application/json"
    body = crash.json()
    assert body["error"] == "worker_crashed" and named in body["detail"] and "replaced" in body["detail"]
    assert "Traceback" not in crash.text
    assert other.status_code == 200, other.text  # the request on the other worker ran to the end
    assert after.status_code == 200


def test_a_worker_dying_while_idle_does_not_break_the_pool(pool_app):
    # pebble gives up on a pool whose idle worker dies (as the OOM killer might do); a new one takes over
    pool = pool_app.state.pool
    run_async(lambda: _ready_client(pool_app))
    victim = pool.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    time.sleep(0.5)

    async def go():
        async with client(pool_app) as c:
            return await asyncio.gather(*[c.post("/api/run", json=LINEAR) for _ in range(4)])

    assert [r.status_code for r in run_async(go)] == [200] * 4
    assert victim not in pool.worker_pids()


async def _ready_client(app) -> None:
    async with client(app) as c:
        await _ready(c)


def test_a_client_that_goes_away_cancels_its_work(pool_app):
    async def go():
        async with client(pool_app) as c:
            await _ready(c)
            slow = asyncio.create_task(c.post("/api/run", json=spin(60)))
            await asyncio.sleep(0.5)
            running = pool_app.state.pool.stats()["running"]
            slow.cancel()  # the client gives up: the request's task is cancelled, so is its work
            await asyncio.gather(slow, return_exceptions=True)
            return running, await c.post("/api/run", json=LINEAR)

    running_before, after = run_async(go)
    assert running_before == 1
    assert after.status_code == 200
    assert _settled(pool_app.state.pool)


def test_a_full_queue_is_a_503_with_retry_after(pool_app):
    assert _settled(pool_app.state.pool)  # workers stopped by earlier tests have exited

    async def go():
        async with client(pool_app) as c:
            await _ready(c)
            # 2 run, 16 wait, the rest are refused at once
            return await asyncio.gather(*[c.post("/api/run", json=spin(1.5)) for _ in range(22)])

    results = run_async(go)
    codes = [r.status_code for r in results]
    busy = [r for r in results if r.status_code == 503]
    assert len(busy) == 4, codes
    assert all(r.headers["retry-after"] == "1" and "queue holds 16" in r.json()["detail"] for r in busy)
    assert set(codes) <= {200, 503, 504}, codes
    assert codes.count(200) >= 2


def test_the_memory_budget_caps_the_sum_of_requests_in_flight(pool_app):
    pool = pool_app.state.pool
    assert _settled(pool)

    async def go():
        async with client(pool_app) as c:
            await _ready(c)
            return await asyncio.gather(*[c.post("/api/run", json=spin(0.3, BIG)) for _ in range(16)])

    results = run_async(go)
    codes = [r.status_code for r in results]
    assert set(codes) <= {200, 503, 504}, codes
    assert codes.count(200) >= 1 and codes.count(503) >= 1, codes
    busy = next(r for r in results if r.status_code == 503)
    assert busy.json()["error"] == "server_busy" and "memory budget" in busy.json()["detail"]
    assert busy.headers["retry-after"]
    stats = pool.stats()
    assert ESTIMATE <= stats["peak_reserved_bytes"] <= BUDGET  # one at a time was admitted, never two
    assert stats["reserved_bytes"] == 0  # every reservation was given back


def test_a_request_over_the_whole_budget_is_a_413(pool_app):
    async def go():
        async with client(pool_app) as c:
            return await c.post("/api/run", json=spin(0, [4096, 1024]))  # 32 MiB > the 12 MiB budget

    r = run_async(go)
    assert r.status_code == 413 and "memory budget" in r.json()["detail"]


def _outputs(results):
    return [r.json()["output"]["data"] for r in results]


def test_same_seed_dropout_is_identical_under_concurrency(app):
    # the suite's app (conftest): 2 workers, a queue long enough for all 24
    body = {"layer": {"type": "Dropout", "p": 0.5}, "inputs": [{"shape": [8, 16]}], "seed": 7, "train": True}

    async def go():
        async with client(app) as c:
            await _ready(c)
            return await asyncio.gather(*[c.post("/api/run", json=body) for _ in range(24)])

    results = run_async(go)
    assert all(r.status_code == 200 for r in results)
    outs = _outputs(results)
    assert all(o == outs[0] for o in outs)
    assert any(v == 0 for row in outs[0] for v in row)  # dropout really dropped something


def test_concurrent_losses_are_each_their_own(app):
    bodies = [
        {"layer": {"type": "MSELoss"}, "inputs": [{"shape": [4, 3]}, {"shape": [4, 3]}], "seed": s} for s in range(6)
    ]

    async def go():
        async with client(app) as c:
            await _ready(c)
            alone = [await c.post("/api/run", json=b) for b in bodies]
            together = await asyncio.gather(*[c.post("/api/run", json=b) for b in bodies * 4])
            return alone, together

    alone, together = run_async(go)
    expected = [r.json()["output"]["data"] for r in alone]
    assert len(set(map(str, expected))) == 6
    assert [r.json()["output"]["data"] for r in together] == expected * 4


def test_a_ledger_lock_left_by_a_dead_worker_is_broken():
    ctx = multiprocessing.get_context("spawn")
    ledger = budget.Ledger(ctx.RawArray("q", 3), ctx.Lock(), 100)
    ledger.lock.acquire()  # as if a worker had died holding it
    budget.install(ledger)
    budget.begin(0)
    try:
        budget.reserve(40)
        assert ledger.in_use() == 40 and ledger.peak() == 40
        budget.begin(1)
        with pytest.raises(ServerBusy):
            budget.reserve(70)  # 40 + 70 > 100
    finally:
        budget.end()
        budget.install(None)
    assert ledger.cells[1] == 0


def test_port_opens_before_the_workers_are_ready(monkeypatch):
    """/healthz answers while the workers still start; /readyz says 503 until one has answered, then 200;
    a request that comes first waits for them instead of failing."""
    gate: Future = Future()
    real_start = workers.WorkerPool._start

    def slow_start(self):
        real = real_start(self)  # the real pool; its first answer is held back until the gate opens
        held: Future = Future()
        gate.add_done_callback(lambda _g: real.add_done_callback(lambda f: held.set_result(f.result())))
        return held

    monkeypatch.setattr(workers.WorkerPool, "_start", slow_start)
    application = create_app(Settings(workers=1))

    async def scenario():
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
                assert (await c.get("/healthz")).json() == {"status": "ok"}
                starting = await c.get("/readyz")
                assert starting.status_code == 503 and starting.json()["status"] == "starting"
                assert starting.headers["retry-after"] == "1"
                run = asyncio.create_task(c.post("/api/run", json=LINEAR))
                await asyncio.sleep(0.2)
                assert (await c.get("/healthz")).status_code == 200  # the event loop is free meanwhile
                gate.set_result(None)
                answer = await run
                assert answer.status_code == 200, answer.text
                for _ in range(100):
                    ready = await c.get("/readyz")
                    if ready.status_code == 200:
                        break
                    await asyncio.sleep(0.1)
                assert ready.status_code == 200 and ready.json() == {"status": "ready", "workers": 1}

    asyncio.run(scenario())


def test_a_request_abandoned_in_pebbles_pipe_is_skipped_not_killed(pool_app):
    # every worker busy: the next request is handed to pebble at once (workers.PREFETCH), so that the
    # worker that finishes first takes it without a round trip through the web process
    pool = pool_app.state.pool
    assert _settled(pool)

    async def go():
        async with client(pool_app) as c:
            await _ready(c)
            pids = set(pool.worker_pids())
            busy = [asyncio.create_task(c.post("/api/run", json=spin(1.0))) for _ in range(pool.size)]
            await asyncio.sleep(0.4)
            queued = asyncio.create_task(c.post("/api/run", json=spin(30)))
            await asyncio.sleep(0.2)
            stats = {**pool.stats(), "waiting here": len(pool._waiting)}
            queued.cancel()  # its client gives up while it is next in pebble's pipe
            await asyncio.gather(queued, return_exceptions=True)
            done = await asyncio.gather(*busy)
            after = await asyncio.gather(*[c.post("/api/run", json=LINEAR) for _ in range(2 * pool.size + 1)])
            return pids, stats, done, after

    pids, stats, done, after = run_async(go)
    assert stats["running"] == pool.size and stats["waiting"] == 1 and stats["waiting here"] == 0, stats
    assert [r.status_code for r in done] == [200] * pool.size
    assert [r.status_code for r in after] == [200] * (2 * pool.size + 1)
    assert set(pool.worker_pids()) == pids  # nobody was killed: the worker that took it skipped it
    assert _settled(pool)


def test_prefetch_hands_pebble_at_most_two_tasks_per_worker_and_counts_them_as_waiting():
    pool = workers.WorkerPool(Settings(workers=3, queue=4))
    pool._free = list(reversed(range(pool.slots)))
    assert pool.slots == 3 * workers.PREFETCH
    granted = [pool._admit() for _ in range(3 + 4)]  # 3 run, 3 next in pebble's pipe, 1 waits here
    assert sum(t.done() for t in granted) == pool.slots and not granted[-1].done()
    with pytest.raises(ServerBusy, match="4 requests are waiting"):
        pool._admit()
    pool._pool = object()  # stats() counts slots only once a pool exists
    assert pool.stats()["running"] == 3 and pool.stats()["waiting"] == 4
    pool._release_now(granted[0].result())  # a task ends: its slot goes to the one that waited here
    assert granted[-1].done() and pool.stats()["waiting"] == 3
