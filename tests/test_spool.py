"""``?format=npy`` through shared memory: the bytes are ``np.save``'s, and no file is left behind on any path."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import threading
import time

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from app.core import spool
from app.core.config import Settings
from app.core.errors import ClientClosed, DeadlineExceeded, WorkerCrashed
from app.core.service import npy as npy_in_process
from app.main import create_app


def _np_save(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


@pytest.fixture
def fresh_spool():
    sp = spool.Spool.create()
    yield sp
    sp.close()


# -- the file itself ---------------------------------------------------------------------------------

ODD = [
    np.float32(1.5).reshape(()),  # 0-d
    np.zeros((0, 3), np.float64),  # empty
    np.arange(24, dtype=np.int64).reshape(2, 3, 4)[:, ::2, 1:],  # not contiguous
    np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),  # Fortran order
    np.array([True, False, True]),
    np.arange(6, dtype=np.uint8).reshape(2, 3),
    np.array([1 + 2j], np.complex64),
    np.random.default_rng(0).standard_normal(1 << 24).astype(np.float32),  # 16 M elements, 64 MB
]


@pytest.mark.parametrize("array", ODD, ids=lambda a: f"{a.dtype}{list(a.shape)[:3]}")
def test_spooled_file_is_np_save_bit_for_bit(fresh_spool, array):
    spooled = fresh_spool.write_npy(array, slot=0)
    assert spooled.size == os.path.getsize(spooled.path)
    with fresh_spool.claim(spooled) as fh:
        assert fresh_spool.files() == []  # unlinked the moment it is opened
        assert fh.read() == _np_save(array)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.bool_]),
        shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6),
    )
)
def test_any_array_round_trips_exactly(fresh_spool, array):
    spooled = fresh_spool.write_npy(array, slot=1)
    assert _streamed(fresh_spool.claim(spooled), size=7) == _np_save(array)
    assert fresh_spool.files() == []


def _streamed(fh, size: int) -> bytes:
    async def collect() -> list[bytes]:
        return [bytes(chunk) async for chunk in spool.stream(fh, size=size)]

    chunks = asyncio.run(collect())
    assert all(len(c) == size for c in chunks[:-1]) and 0 < len(chunks[-1]) <= size
    assert fh.closed  # the mapping holds the (unlinked) file, not the descriptor
    return b"".join(chunks)


def test_claim_refuses_files_outside_the_spool(fresh_spool, tmp_path):
    other = tmp_path / "x.npy"
    other.write_bytes(b"x")
    with pytest.raises(ValueError, match="not a spool file"):
        fresh_spool.claim(spool.Spooled(str(other), 1))
    assert other.exists()


def test_no_room_on_tmpfs_falls_back_to_the_next_directory(tmp_path, monkeypatch):
    (tmp_path / "shm").mkdir()
    (tmp_path / "tmp").mkdir()
    both = spool.Spool.create([str(tmp_path / "shm"), str(tmp_path / "tmp")])
    first, second = both.dirs
    # the first has 1 KiB left (Docker's default 64 MB /dev/shm, nearly full)
    monkeypatch.setattr(spool, "_free_bytes", lambda d: 1024 if d == first else 1 << 40)
    spooled = both.write_npy(np.ones(1000, np.float32), slot=3)
    assert os.path.dirname(spooled.path) == second
    both.close()
    assert not os.path.exists(first) and not os.path.exists(second)


def test_discard_removes_what_a_killed_task_left(fresh_spool):
    path = fresh_spool.write_npy(np.ones(10), slot=5).path  # written, never claimed: its worker was killed
    fresh_spool.discard(5)
    assert not os.path.exists(path) and fresh_spool.files() == []


def test_a_dead_servers_spool_is_swept_by_the_next(tmp_path):
    # a PID that is not running: the highest possible one, or a reaped child's
    dead = spool.Spool((str(tmp_path / f"{spool.PREFIX}{2**22 + 1}-abc"),))
    os.makedirs(dead.dirs[0])
    (tmp_path / f"{spool.PREFIX}{2**22 + 1}-abc" / "slot-0.npy").write_bytes(b"left over")
    mine = spool.Spool.create([str(tmp_path)])
    assert not os.path.exists(dead.dirs[0])
    assert os.path.isdir(mine.dirs[0])  # its own is kept
    mine.close()


# -- through the server ------------------------------------------------------------------------------


def _req(layer, inputs, **kw):
    return {"layer": layer, "inputs": inputs, "seed": 3, **kw}


CASES = {
    "float32": _req({"type": "Linear", "in_features": 10, "out_features": 7}, [{"shape": [4, 10]}]),
    "float64": _req({"type": "Conv1d", "in_channels": 2, "out_channels": 3, "kernel_size": 3}, [{"shape": [2, 8]}]),
    "bfloat16 (widened)": _req({"type": "ReLU"}, [{"shape": [3, 5]}], dtype="bfloat16"),
    "0-d": _req({"type": "MSELoss"}, [{"shape": [3, 4]}, {"shape": [3, 4]}]),
    "int64": _req({"type": "Flatten"}, [{"data": [[[1, 2], [3, 4]]], "dtype": "int64"}]),
    "16 M elements": _req({"type": "ReLU"}, [{"shape": [4096, 4096]}]),
}
CASES["float64"]["dtype"] = "float64"


@pytest.mark.parametrize("case", list(CASES))
def test_npy_answer_is_np_save_of_the_output(api, app, registry, case):
    req = CASES[case]
    r = api.post("/api/run?format=npy", json=req)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    assert int(r.headers["content-length"]) == len(r.content)
    _, expected = npy_in_process(registry, req, Settings(memory_limit_bytes=1024**3))
    assert r.content == expected
    assert app.state.pool.spool.files() == []


def test_npy_over_a_real_connection_is_np_save_of_the_output(live_url, registry):
    # uvicorn writes the mapped file's chunks to a socket (the ASGI tests above collect them in-process)
    req = CASES["16 M elements"]
    r = httpx.post(f"{live_url}/api/run?format=npy", json=req, timeout=120)
    assert r.status_code == 200, r.text
    _, expected = npy_in_process(registry, req, Settings(memory_limit_bytes=1024**3))
    assert int(r.headers["content-length"]) == len(expected) and r.content == expected


def test_npy_is_not_gzipped(api):
    r = api.post("/api/run?format=npy", json=CASES["float32"], headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and "content-encoding" not in r.headers
    assert np.load(io.BytesIO(r.content)).shape == (4, 7)


def test_a_result_nobody_reads_leaves_nothing(app):
    pool = app.state.pool
    name, fh, size = asyncio.run(pool.call("npy", json.dumps(CASES["float32"]).encode()))
    assert name == "output" and size > 0
    assert pool.spool.files() == []  # claimed: only the open file holds it
    fh.close()


# -- failures: a small pool of its own (its workers get killed) ----------------------------------------

SLOW = _req(
    {"type": "Conv2d", "in_channels": 128, "out_channels": 128, "kernel_size": 3},
    [{"shape": [4, 128, 128, 128]}],
    dtype="float64",  # 9.5 GFLOP in float64 (no fast kernel): over a second here, where the tests stop it at 0.2-0.25 s
)


@pytest.fixture(scope="module")
def small_pool():
    application = create_app(Settings(memory_limit_bytes=1024**3, workers=1, timeout_s=60))
    application.state.pool.start(wait=120)
    yield application.state.pool
    application.state.pool.close()
    assert not any(os.path.exists(d) for d in application.state.pool.spool.dirs)


def _settled(pool) -> None:
    deadline = time.monotonic() + 20
    while pool.stats()["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.stats()["running"] == 0


def test_deadline_mid_task_leaves_nothing(small_pool, monkeypatch):
    monkeypatch.setattr(small_pool, "settings", dataclasses.replace(small_pool.settings, timeout_s=0.2))
    with pytest.raises(DeadlineExceeded):
        asyncio.run(small_pool.call("npy", json.dumps(SLOW).encode()))
    _settled(small_pool)
    assert small_pool.spool.files() == []


def test_client_gone_mid_task_leaves_nothing(small_pool):
    started = time.monotonic()

    async def gone() -> bool:
        return time.monotonic() - started > 0.05  # gone by the first look (0.25 s in)

    with pytest.raises(ClientClosed):
        asyncio.run(small_pool.call("npy", json.dumps(SLOW).encode(), disconnected=gone))
    _settled(small_pool)
    assert small_pool.spool.files() == []


def test_worker_killed_while_writing_leaves_nothing(small_pool):
    big = _req({"type": "ReLU"}, [{"shape": [6144, 6144]}])  # 144 MB to write
    slot_pids = small_pool._pids
    killed = []

    def kill_when_writing() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pid = int(slot_pids[0])
            if pid > 0 and small_pool.spool.files():  # its file is being written
                os.kill(pid, 9)
                killed.append(pid)
                return
            time.sleep(0.001)

    killer = threading.Thread(target=kill_when_writing)
    killer.start()
    with pytest.raises(WorkerCrashed):
        asyncio.run(small_pool.call("npy", json.dumps(big).encode()))
    killer.join()
    assert killed, "the worker was never seen writing its file"
    _settled(small_pool)
    assert small_pool.spool.files() == []
    # the pool serves on with its replaced worker
    _, fh, _ = asyncio.run(small_pool.call("npy", json.dumps(CASES["float32"]).encode()))
    with fh:
        assert np.load(fh).shape == (4, 7)
