"""GPU tests run where torch sees a CUDA device and are *deselected* (not skipped) everywhere else.

`python -m pytest` on a CPU machine reports them as "deselected"; on a GPU machine they run with
the rest of the suite, or alone: `python -m pytest -m gpu tests/gpu`.
"""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu:
        config.hook.pytest_deselected(items=gpu)
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]


def pytest_report_header(config: pytest.Config) -> str:
    if torch.cuda.is_available():
        return f"gpu tests: run on {torch.cuda.get_device_name(0)}"
    return "gpu tests: deselected (torch.cuda.is_available() is False)"
