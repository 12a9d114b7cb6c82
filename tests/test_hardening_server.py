"""The real server in a subprocess (uvicorn through ``python -m app.cli``), on loopback.

Two worker processes, a 2 s deadline, a wait queue of 4, the test-only plugin (a layer that burns CPU
for as long as it is told). The plugin writes the PID of the worker that runs it to a file named by
the environment, so the tests can kill that worker or watch it stop.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.hardening_helpers import LINEAR, PLUGIN, spin

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    for _ in range(50):
        port = random.randint(20000, 29999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-29999")


class Server:
    def __init__(self, tmp: Path, **extra_env: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.pidfile = tmp / "worker.pid"
        self.log = tmp / "server.log"
        env = {
            **os.environ,
            "LAYER_EXPLORER_WORKERS": "2",
            "LAYER_EXPLORER_TIMEOUT": "2",
            "LAYER_EXPLORER_QUEUE": "4",
            "LAYER_EXPLORER_PLUGINS": PLUGIN,
            "LAYER_EXPLORER_BODY_TIMEOUT": "1",
            "LAYER_EXPLORER_HEADER_TIMEOUT": "1",
            "LAYER_EXPLORER_TEST_PIDFILE": str(self.pidfile),
            **extra_env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + self.log.read_text())
            time.sleep(0.2)

    def post(self, body, timeout=60):
        return httpx.post(f"{self.url}/api/run", json=body, timeout=timeout)

    def worker_pid(self, after: float) -> int:
        """The PID the plugin wrote once a forward pass started (after ``after``)."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.pidfile.exists() and self.pidfile.stat().st_mtime >= after and self.pidfile.read_text():
                return int(self.pidfile.read_text())
            time.sleep(0.05)
        raise AssertionError("no worker started the forward pass")

    def until_ok(self) -> httpx.Response:
        """A small request, retried while a replaced worker starts (503/504 meanwhile)."""
        deadline = time.monotonic() + 60
        while True:
            r = self.post(LINEAR)
            if r.status_code == 200 or time.monotonic() > deadline:
                return r
            assert r.status_code in (503, 504), r.text
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("server"))
    yield s
    s.stop()


def _gone(pid: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_a_worker_killed_mid_request(server):
    with ThreadPoolExecutor(1) as ex:
        started = time.time() - 0.01
        pending = ex.submit(server.post, spin(30))
        pid = server.worker_pid(started)
        os.kill(pid, signal.SIGKILL)
        r = pending.result()
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json()["error"] == "worker_crashed" and "SIGKILL" in r.json()["detail"]
    assert server.proc.poll() is None  # the server process itself (same PID) is still there
    assert server.until_ok().status_code == 200


def test_past_the_deadline_is_a_504_and_the_worker_stops(server):
    with ThreadPoolExecutor(1) as ex:
        started = time.time() - 0.01
        pending = ex.submit(server.post, spin(120))
        pid = server.worker_pid(started)
        health = httpx.get(f"{server.url}/healthz", timeout=10)
        assert health.status_code == 200 and not pending.done()  # answered while the worker is busy
        r = pending.result()
    assert r.status_code == 504 and r.json()["error"] == "deadline_exceeded"
    assert _gone(pid)  # killed: its CPU use stopped with it (it would have spun for 120 s)
    assert server.until_ok().status_code == 200


def _abandon(url: str, body: dict) -> socket.socket:
    data = json.dumps(body).encode()
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        b"POST /api/run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    return sock


def test_fifty_abandoned_long_requests_then_a_small_one(server):
    socks = [_abandon(server.url, spin(60)) for _ in range(50)]
    time.sleep(0.5)
    for s in socks:
        s.close()
    assert server.until_ok().status_code == 200
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_slow_headers_and_bodies_are_cut_off(server):
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as slow_head:
        slow_head.sendall(b"POST /api/run HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # ... and never the rest
        slow_head.settimeout(20)
        assert slow_head.recv(1024) == b""  # closed by the server after the 1 s header timeout
    with socket.create_connection((host, int(port))) as slow_body:
        slow_body.sendall(
            b"POST /api/run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"layer":'
        )
        slow_body.settimeout(20)
        answer = b""
        while b"request_timeout" not in answer and (chunk := slow_body.recv(4096)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in answer


def test_sigterm_drains_and_exits(server):
    with ThreadPoolExecutor(1) as ex:
        started = time.time() - 0.01
        in_flight = ex.submit(server.post, spin(0.5))
        server.worker_pid(started)
        server.proc.send_signal(signal.SIGTERM)
        r = in_flight.result()
        sent = time.monotonic()
        code = server.proc.wait(timeout=30)
        took = time.monotonic() - sent
    assert r.status_code == 200  # the request in flight was allowed to finish
    # uvicorn re-raises the signal once it has shut down cleanly, so the exit status is SIGTERM's
    log = server.log.read_text()
    assert code in (0, -signal.SIGTERM) and took < 15, log[-2000:]
    assert "Application shutdown complete" in log and "Finished server process" in log
    children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout
    assert children.strip() == ""


def test_past_the_grace_a_request_gets_json_and_the_stop_is_clean(tmp_path):
    """SIGTERM with a request that outlasts the grace: it is cancelled with a JSON 503 (not uvicorn's
    text/plain 500), the process stops without a leaked semaphore, and the access log kept only the
    lines worth reading (no static files, no passing probes)."""
    server = Server(tmp_path, LAYER_EXPLORER_SHUTDOWN_GRACE="1", LAYER_EXPLORER_TIMEOUT="60")
    try:
        page = httpx.get(f"{server.url}/", timeout=30)
        assert page.status_code == 200
        for asset in ("/static/css/app.css", "/static/js/api.js"):
            assert httpx.get(f"{server.url}{asset}", timeout=30).status_code == 200
        assert httpx.get(f"{server.url}/static/no-such-file.js", timeout=30).status_code == 404
        with ThreadPoolExecutor(1) as ex:
            started = time.time() - 0.01
            in_flight = ex.submit(server.post, spin(30))
            server.worker_pid(started)
            server.proc.send_signal(signal.SIGTERM)
            r = in_flight.result()
        code = server.proc.wait(timeout=30)
    finally:
        server.stop()
    assert r.status_code == 503 and r.headers["content-type"] == "application/json", r.text
    assert r.json()["error"] == "server_busy" and "shutting down" in r.json()["detail"]
    log = server.log.read_text()
    assert code in (0, -signal.SIGTERM), log[-2000:]
    assert "Finished server process" in log and "leaked semaphore" not in log, log[-2000:]
    access = [line for line in log.splitlines() if '" 200' in line or '" 404' in line or '" 503' in line]
    assert any('"GET / HTTP/1.1" 200' in line for line in access), access
    assert any("/static/no-such-file.js" in line for line in access), access  # errors are always logged
    assert not any(("/static/css/" in line or "/static/js/" in line) for line in access), access
    assert not any('"GET /readyz HTTP/1.1" 200' in line for line in access), access
