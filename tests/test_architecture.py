"""Boundaries of the code base: the layers of app/core, no cycles, one door from the web layer."""

from __future__ import annotations

import ast
import multiprocessing
from pathlib import Path

import pytest

import app

APP = Path(app.__file__).parent
CORE = APP / "core"

# app/core, lowest layer first: a module may import only from its own layer or the layers before it.
LAYERS = [
    [
        "errors",
        "config",
        "tensors",
        "schema",
        "torch_errors",
        "body",
        "budget",
        "spool",
        "gpu",
        "nodynamo",
        "preloaded",
    ],
    ["shapes", "compress"],
    ["catalog"],
    ["networks"],
    ["registry", "presets", "lesson"],
    ["explaining"],
    ["running"],
    ["graphs"],
    ["tasks"],
    ["workers"],
    ["service"],
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}
# Imported inside a function on purpose: optional dependencies, absent from a plain install.
OPTIONAL = set()


def _modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(APP.parent).with_suffix("").parts).removesuffix(".__init__"): path
        for path in APP.rglob("*.py")
    }


def _imports(path: Path, *, top_level: bool) -> list[tuple[str, int]]:
    """(module, line) for every import; with top_level, only those at module level."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.module, node.lineno)]
            out += [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
    return out


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["app", "core"] or len(parts) < 3:
        return None
    return LAYER_OF.get(parts[2])


def test_every_core_module_has_a_layer():
    for name in _modules():
        if name.startswith("app.core.") and name != "app.core":
            assert _layer(name) is not None, f"{name}: add its package to LAYERS"


def test_core_imports_only_downwards():
    modules = _modules()
    bad = []
    for name, path in modules.items():
        own = _layer(name)
        if own is None:
            continue
        for target, line in _imports(path, top_level=False):
            theirs = _layer(target)
            if theirs is not None and theirs > own and target in modules | {t.rsplit(".", 1)[0] for t in modules}:
                bad.append(f"{name}:{line} imports {target} (layer {theirs} > {own})")
    assert not bad, "\n".join(bad)


def test_no_function_local_imports():
    bad = []
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        guarded = {id(n) for stmt in tree.body if isinstance(stmt, ast.If) for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top | guarded:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if not {n.split(".")[0] for n in names} <= OPTIONAL:
                    bad.append(f"{name}:{node.lineno} imports {', '.join(names)} inside a function")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    modules = _modules()
    graph = {
        name: {t for t, _ in _imports(path, top_level=True) if t in modules and t != name}
        for name, path in modules.items()
    }
    # a package's __init__ importing its own submodules is not a cycle through them
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_torch_side_never_imports_the_web_framework():
    for path in CORE.rglob("*.py"):
        names = {t.split(".")[0] for t, _ in _imports(path, top_level=False)}
        assert not names & {"fastapi", "starlette", "uvicorn"}, path


def test_web_layer_enters_the_core_only_through_the_service():
    for path in (APP / "api").rglob("*.py"):
        for target, line in _imports(path, top_level=False):
            if target.startswith("app.core.") and not target.startswith("app.core.service"):
                pytest.fail(f"{path.name}:{line} imports {target}; go through app.core.service")


def _run_in_child(queue):
    from app.core import service

    out = service.run(
        service.default_registry(),
        {"layer": {"type": "Linear", "in_features": 10, "out_features": 5}, "inputs": [{"shape": [5, 10]}], "seed": 42},
        service.Settings(),
    )
    queue.put(out["output"]["data"][0][0])


def test_core_runs_in_a_fresh_worker_process():
    # what crash isolation relies on: plain request data in, plain JSON-able data out, no shared state
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run_in_child, args=(queue,))
    proc.start()
    value = queue.get(timeout=120)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert abs(value - 0.7910) < 1e-4
