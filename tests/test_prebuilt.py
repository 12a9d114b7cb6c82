"""The forkserver builds the default catalog once (app.core.prebuilt) and every worker shares it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = str(ROOT / "tests" / "plugins" / "in_place_layers.py")

# what the forkserver imports (workers.PRELOAD), then each worker's initializer, with and without plugins
WORKER = r"""
import importlib, json, sys
from app.core import workers
for name in workers.PRELOAD:
    importlib.import_module(name)
from app.core import prebuilt, tasks
from app.core.config import Settings
from app.core.registry import default_registry
out = {}
for label, settings in [("default", Settings()), ("plugins", Settings(plugins=(sys.argv[1],)))]:
    tasks.init(settings, 1, None, None, None)
    facts = tasks.hello(settings)
    out[label] = {
        "shared": tasks._registry is prebuilt.CATALOG,
        "types": [d["type"] for d in facts["layers"]],
        "fresh": [spec.type for spec in default_registry(settings.plugins)],
    }
print(json.dumps(out))
"""


def test_workers_share_the_forkservers_catalog_unless_plugins_change_it() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, PLUGIN], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["default"]["shared"] is True
    assert got["plugins"]["shared"] is False  # a plugin adds layers: the worker builds its own catalog
    # the shared catalog is the one a worker would have built
    assert got["default"]["types"] == got["default"]["fresh"]
    assert got["plugins"]["types"] == got["plugins"]["fresh"]
    assert len(got["plugins"]["types"]) > len(got["default"]["types"])
