"""The regression corpus: every crasher, hang and 5xx found so far, each with the answer it must get.

The cases run in one spawned process, so that a guard that stops working shows up as a failed
test (with the process's exit code), not as a test run killed by a segfault.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from app.core import service

CORPUS = json.loads((Path(__file__).parent / "corpus" / "crashers.json").read_text())


def _answer(case: dict) -> tuple[int, str | None, str]:
    registry, settings = service.default_registry(), service.Settings()
    try:
        getattr(service, case["endpoint"])(registry, case["body"], settings)
    except service.LayerExplorerError as exc:
        return exc.status, exc.field, exc.detail
    return 200, None, ""


def _child(queue):
    queue.put([_answer(case) for case in CORPUS])


@pytest.fixture(scope="module")
def answers():
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue,))
    proc.start()
    try:
        result = queue.get(timeout=300)
    except Exception:  # noqa: BLE001 - the process died: say how
        proc.join(timeout=10)
        pytest.fail(f"the corpus process died with exit code {proc.exitcode}")
    proc.join(timeout=60)
    return result


@pytest.mark.parametrize("i", range(len(CORPUS)), ids=[c["why"][:60] for c in CORPUS])
def test_corpus_case_gets_its_answer(answers, i):
    case = CORPUS[i]
    status, field, detail = answers[i]
    assert status == case["status"], f"{case['why']}: got {status} {detail}"
    assert field == case["field"], f"{case['why']}: field {field!r}: {detail}"
    if status != 200:
        assert detail and "Traceback" not in detail and len(detail) < 600
