"""The web process never imports torch: its workers do the torch work and report the catalog as data."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import pytest

from app.core import budget, service, tasks, workers
from app.core.config import Settings
from app.core.errors import UnknownLayer
from app.core.registry import default_registry

ROOT = Path(__file__).resolve().parent.parent

# A real server (uvicorn, the app's lifespan, its worker pool) in a fresh interpreter; a few requests of
# every kind over HTTP; then what that process has imported.
SERVER = textwrap.dedent(
    """
    import asyncio, json, socket, sys, threading, time
    import httpx, uvicorn
    from app.core.config import Settings
    from app.main import create_app

    def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        app = create_app(Settings(workers=1, timeout_s=120))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", ws="none"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        linear = {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [2, 10]}]}
        statuses = {}
        with httpx.Client(base_url=base, timeout=120) as c:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if c.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            torch_at_start = "torch" in sys.modules
            private = {}
            for pid in app.state.pool.worker_pids():
                with open(f"/proc/{pid}/smaps_rollup") as fh:
                    private[pid] = next(int(l.split()[1]) for l in fh if l.startswith("Private_Dirty:")) * 1024
            for expected, method, path, body in [
                (200, "GET", "/", None),
                (200, "GET", "/api/layers", None),
                (200, "GET", "/api/layers/Linear", None),
                (404, "GET", "/api/layers/linear", None),
                (200, "GET", "/api/devices", None),
                (200, "GET", "/api/presets", None),
                (200, "GET", "/api/lesson", None),
                (200, "GET", "/openapi.json", None),
                (200, "POST", "/api/run", linear),
                (200, "POST", "/api/run?format=npy", linear),
                (200, "POST", "/api/shape", linear),
                (200, "POST", "/api/explain", {**linear, "index": [0, 0]}),
                (422, "POST", "/api/run", {"layer": {"type": "Linear"}, "inputs": []}),
                (200, "POST", "/api/import", {"code": "nn.Sequential(nn.Linear(4, 2), nn.ReLU())"}),
                # enough brackets for the web process to measure the body's nesting (app.core.body.max_depth)
                (200, "POST", "/api/shape", {"layer": {"type": "Sequential", "layers": [{"type": "ReLU"}] * 70}, "inputs": [{"shape": [2, 3]}]}),
                (400, "POST", "/api/run", {"layer": json.loads("[" * 100 + "]" * 100)}),
            ]:
                got = c.request(method, path, json=body).status_code
                statuses[f"{method} {path} {json.dumps(body)[:40]}"] = [expected, got]
            devices = c.get("/api/devices").json()
            layers = len(c.get("/api/layers").json()["layers"])
        server.should_exit = True
        thread.join(30)
        print(json.dumps({
            "torch_at_start": torch_at_start,
            "torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")),
            "numpy": sorted(m for m in sys.modules if m == "numpy" or m.startswith("numpy.")),
            "statuses": statuses, "devices": devices, "layers": layers, "private": list(private.values()),
        }))

    if __name__ == "__main__":
        main()
    """
)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    script = tmp_path_factory.mktemp("lean") / "serve.py"
    script.write_text(SERVER)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300, env=_env()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_the_web_process_never_imports_torch(served):
    assert served["torch_at_start"] is False
    assert served["torch"] == []  # after requests of every kind, answered by its workers


def test_the_web_process_never_imports_numpy(served):
    # nesting is measured with itertools and .npy files are streamed as bytes: NumPy is the workers' alone
    # (about 6 MiB of an idle server's memory)
    assert served["numpy"] == []


def test_it_serves_every_kind_of_request_without_it(served, registry):
    # 404: the catalog's words for an unknown type, from data; 422: a request the worker refused
    wrong = {what: codes for what, codes in served["statuses"].items() if codes[0] != codes[1]}
    assert not wrong, wrong
    assert len(served["statuses"]) == 16
    assert served["layers"] == len(registry)
    assert served["devices"] == service.list_devices(Settings())


def test_an_idle_worker_shares_what_the_forkserver_imported(served):
    # torch, sympy, dynamo and the app's modules are imported and frozen in the forkserver
    # (app.core.preloaded); a worker's own pages are what it built since (catalog, warm-up): measured
    # 24 MB, against 90 MB when the collector's first pass copied every page it visited
    assert served["private"] and all(p < 60 * 1024**2 for p in served["private"]), served["private"]


def test_the_pool_knows_every_task_the_workers_run():
    assert set(tasks.TASKS) == workers.TASK_NAMES


def test_the_catalog_is_reported_as_plain_data():
    facts = tasks.hello(Settings())
    # only builtins: the web process unpickles it without importing torch (a TorchVersion would)
    pending = [facts]
    while pending:
        item = pending.pop()
        assert type(item) in (dict, list, str, int, float, bool, type(None)), type(item)
        pending += list(item.values()) if isinstance(item, dict) else item if isinstance(item, list) else []
    assert [d["type"] for d in facts["layers"]] == [spec.type for spec in default_registry()]


@pytest.mark.parametrize("name", ["linear", "Conv2", "LinearCrossEntropyLos", "Nothing"])
def test_the_web_sides_unknown_layer_words_are_the_catalogs(name):
    registry = default_registry()
    with pytest.raises(UnknownLayer) as caught:
        registry.get(name)
    words = service.unknown_layer(name, [s.type for s in registry], registry.absent_types())
    assert str(words) == str(caught.value) and words.field == caught.value.field


def test_only_a_large_request_pays_for_giving_memory_back(monkeypatch):
    # a full collection and a read of /proc after every task cost a small run twice its own time
    calls = []
    monkeypatch.setattr(tasks, "return_memory", lambda: calls.append(1) or 0)
    small = {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}]}
    assert tasks.task("run", json.dumps(small).encode(), Settings(), None, {})[0] == "ok"
    assert budget.reserved() < tasks.RETURN_MEMORY_FROM and calls == []
    large = {"layer": {"type": "ReLU"}, "inputs": [{"shape": [2048, 2048]}]}  # 16 MiB of input alone
    assert tasks.task("run", json.dumps(large).encode(), Settings(), None, {})[0] == "ok"
    assert budget.reserved() >= tasks.RETURN_MEMORY_FROM and calls == [1]


def test_giving_memory_back_walks_only_what_requests_made_since_and_still_frees_cycles():
    # the survivors of a collection that found no garbage are the worker's own caches: frozen, the next
    # large request's collection does not walk them again (it cost 17-35 ms per large request)
    net = {
        "layer": {"type": "Sequential", "layers": [{"type": "Linear", "in_features": 8, "out_features": 8}] * 4},
        "inputs": [{"shape": [2, 8]}],
    }
    try:
        for _ in range(3):
            assert tasks.task("run", json.dumps(net).encode(), Settings(), None, {})[0] == "ok"
            tasks.return_memory()
        assert len(gc.get_objects()) < 1000, len(gc.get_objects())

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the collector frees it
        gone = weakref.ref(a)
        del a, b
        tasks.return_memory()
        assert gone() is None
    finally:
        gc.unfreeze()  # this is the test session's process, not a worker


def test_a_cycle_frozen_while_kept_is_freed_by_a_later_sweep(monkeypatch):
    # a worker's cache holds a cycle (a kept fx graph) when a large request freezes the survivors; the cache
    # drops it later. Only a collection that looks at the frozen objects again can free it.
    class Node:
        pass

    cache = [Node(), Node()]
    cache[0].other, cache[1].other = cache[1], cache[0]
    gone = weakref.ref(cache[0])
    monkeypatch.setattr(tasks, "_large_requests", 0)  # the sweep comes at the SWEEP_EVERY-th call from here
    try:
        tasks.return_memory()  # frozen while the cache keeps it
        assert gc.get_freeze_count() > 0
        cache.clear()  # dropped from the cache: garbage now, but frozen
        tasks.return_memory()
        survivors = 0
        for _ in range(tasks.SWEEP_EVERY):
            survivors += gone() is not None
            tasks.return_memory()
        assert gone() is None, "the sweep never looked at the frozen cycle"
        assert survivors >= 1  # it did outlive the plain collections: the sweep freed it, not them
    finally:
        gc.unfreeze()
