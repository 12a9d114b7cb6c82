"""Locations of the files the web app serves, found through the package, never the working directory.

A wheel installs the repository's top-level ``static/`` and ``templates/`` inside the package
(``app/static``, ``app/templates``; see ``[tool.hatch.build.targets.wheel.force-include]`` in
pyproject.toml). An editable install runs ``app/`` from the checkout, where they sit beside it.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def web_dir(name: str, package_dir: Path = PACKAGE_DIR) -> Path:
    """``package_dir/name`` in an installed wheel, else ``package_dir/../name`` in a checkout."""
    for candidate in (package_dir / name, package_dir.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"the web UI's {name}/ folder is neither in the installed package ({package_dir / name}) "
        f"nor beside it in a checkout ({package_dir.parent / name}); reinstall layer-explorer"
    )


STATIC_DIR = web_dir("static")
TEMPLATES_DIR = web_dir("templates")
