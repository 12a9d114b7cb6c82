"""Browser tests: the real app served by uvicorn in a thread, driven by headless Chromium.

Every test fails on a console error or an uncaught page exception, unless it names the exact
message it expects (e.g. the 422 a deliberately invalid request produces).
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/lib/chromium/chromium"


def _chromium() -> str | None:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


def pytest_collection_modifyitems(config, items):
    # Browser tests are part of the suite, never silently skipped: without Chromium they fail.
    if _chromium() is None and any("browser" in item.keywords for item in items):
        raise pytest.UsageError(
            f"the browser tests need Debian's Chromium at {CHROMIUM}: apt-get install -y chromium "
            "(or deselect them with -m 'not browser')"
        )


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": _chromium() or CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


# pytest-playwright keeps Playwright (and with it an asyncio loop running in the main thread) for
# the whole session; tests run after this package that drive their own event loop would then fail
# with "Cannot run the event loop while another loop is running". These overrides scope Playwright
# and the browser to this package, so both stop when the browser tests are done.
@pytest.fixture(scope="package")
def playwright(_pw_api_request_contexts):
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    if _pw_api_request_contexts:
        _pw_api_request_contexts.instrument(pw)
    yield pw
    pw.stop()


@pytest.fixture(scope="package")
def browser_type(playwright, browser_name):
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args, browser_type):
    def launch(**kwargs):
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser):
    b = launch_browser()
    yield b
    b.close()


@pytest.fixture(scope="package")
def browser_context_args(base_url):
    return {"base_url": base_url, "viewport": {"width": 1280, "height": 800}, "accept_downloads": True}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def base_url():
    """Overrides pytest-base-url's fixture, so page.goto("/") reaches this server."""
    import uvicorn

    from app.main import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # the worker processes start before the server answers
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


class ConsoleLog:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(a.search(e) for a in self.allowed)]


@pytest.fixture(autouse=True)
def console(page):
    log = ConsoleLog()

    def on_console(msg):
        if msg.type == "error":
            loc = msg.location or {}
            log.errors.append(f"console.error: {msg.text} ({loc.get('url', '')}:{loc.get('lineNumber', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: log.errors.append(f"pageerror: {exc}"))
    yield log
    bad = log.unexpected()
    assert not bad, "errors in the browser console:\n" + "\n".join(bad)


@pytest.fixture(scope="session")
def catalog(base_url):
    import httpx

    return httpx.get(f"{base_url}/api/layers", timeout=30).json()


@pytest.fixture(scope="session")
def presets(base_url):
    import httpx

    return httpx.get(f"{base_url}/api/presets", timeout=30).json()["presets"]


@pytest.fixture(scope="session")
def api_run(base_url):
    import httpx

    def run(body: dict) -> dict:
        r = httpx.post(f"{base_url}/api/run", json=body, timeout=60)
        r.raise_for_status()
        return r.json()

    return run
