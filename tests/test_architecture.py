"""Boundaries that the next steps (worker processes, Docker) rely on."""

from __future__ import annotations

import ast
import multiprocessing
from pathlib import Path

import app.core

CORE = Path(app.core.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_torch_side_never_imports_the_web_framework():
    for path in CORE.glob("*.py"):
        assert not _imports(path) & {"fastapi", "starlette", "uvicorn"}, path.name


def _run_in_child(queue):
    from app.core import engine
    from app.core.config import Settings
    from app.core.registry import default_registry

    out = engine.run(default_registry(), {"layer": {"type": "Linear", "in_features": 10, "out_features": 5},
                                          "inputs": [{"shape": [5, 10]}], "seed": 42}, Settings())
    queue.put(out["output"]["data"][0][0])


def test_core_runs_in_a_fresh_worker_process():
    # what crash isolation will do: plain request data in, plain JSON-able data out, no shared state
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run_in_child, args=(queue,))
    proc.start()
    value = queue.get(timeout=120)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert abs(value - 0.7910) < 1e-4
