"""A run request's plan is kept for the same request but its seed, and answers exactly as a fresh plan.

The kept plan stands in for planning afresh (app.core.running.execute.planned): every answer made
from it must be the one a fresh plan gives, bit for bit, whatever the seed; what a run adds to a plan
(its warnings) must not pile up in the kept one; and what the key cannot tell apart is never kept.
"""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from app.core import body
from app.core.config import Settings
from app.core.networks import graph
from app.core.presets import PRESETS
from app.core.running import execute as execute_mod
from app.core.running import requests
from app.core.schema import RunRequest, parse
from benchmarks.scale import conv_net, linear_net

SETTINGS = Settings()


def _requests() -> list[tuple[str, dict]]:
    out = [(p["id"], p["request"]) for p in PRESETS]
    out.append(("linear-64-blocks", linear_net(64, 8)))
    out.append(("conv-16-blocks-eval-float64", {**conv_net(16, 2, 5), "train": False, "dtype": "float64"}))
    return out


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(execute_mod, "_PLANS", type(execute_mod._PLANS)())


def _answer(registry, req: dict) -> bytes:
    graph._CACHE.clear()
    return body.encode_json(requests.run(registry, req, SETTINGS))


@pytest.mark.parametrize(("name", "req"), _requests(), ids=[n for n, _ in _requests()])
def test_a_kept_plan_answers_as_a_fresh_one_whatever_the_seed(registry, monkeypatch, name, req):
    planned_afresh = []
    real_plan_request = execute_mod.plan_request
    monkeypatch.setattr(
        execute_mod, "plan_request", lambda *a, **k: planned_afresh.append(1) or real_plan_request(*a, **k)
    )
    seeds = [0, 7, 0]
    kept = [_answer(registry, {**req, "seed": s}) for s in seeds]
    kept_at_all = execute_mod._plan_key(registry, parse(RunRequest, req), SETTINGS) is not None
    # the first request planned and the others used its plan; a text input is decoded afresh each time
    assert len(planned_afresh) == (1 if kept_at_all else len(seeds))
    assert kept_at_all or name == "text-self-attention"
    fresh = []
    for s in seeds:
        execute_mod._PLANS.clear()
        fresh.append(_answer(registry, {**req, "seed": s}))
    assert kept == fresh
    assert kept[0] == kept[2] and kept[0] != kept[1]  # the seed still decides the numbers


def test_what_a_run_adds_to_its_plan_stays_out_of_the_kept_plan(registry):
    # (torch warns of padding='same' with an even kernel once per process: a warning is simulated here)
    req = parse(RunRequest, linear_net(4, 8))
    first = execute_mod.execute(registry, req, SETTINGS)
    first.plan.warnings.append("a warning of the first run")
    first.plan.inputs[0].high = 99
    second = execute_mod.execute(registry, req, SETTINGS)
    assert "a warning of the first run" not in second.plan.warnings
    assert second.plan.inputs[0].high is None
    assert second.plan.node is first.plan.node  # the plan itself was kept


def test_a_kept_plan_reserves_its_estimate_again(registry, monkeypatch):
    reserved = []
    monkeypatch.setattr(execute_mod.budget, "reserve", reserved.append)
    req = parse(RunRequest, linear_net(4, 8))
    first = execute_mod.planned(registry, req, SETTINGS)
    second = execute_mod.planned(registry, req, SETTINGS)
    assert second is not first and second.warnings is not first.warnings
    assert reserved[-1] == first.estimate_bytes > 0


@pytest.mark.parametrize(
    "body_",
    [
        {"layer": {"type": "Linear", "in_features": 2, "out_features": 2}, "inputs": [{"data": [[1.0, 2.0]]}]},
        {
            "layer": {"type": "Linear", "in_features": 2, "out_features": 2},
            "inputs": [{"shape": [1, 2]}],
            "parameters": {"bias": [0.0, 1.0]},
        },
        {"layer": {"type": "LeakyReLU", "negative_slope": float("nan")}, "inputs": [{"shape": [1, 2]}]},
        {
            "layer": {"type": "Linear", "in_features": 2, "out_features": 2, "bias": 2**70},
            "inputs": [{"shape": [1, 2]}],
        },
    ],
    ids=["data", "given-parameters", "nan", "wide-integer"],
)
def test_what_the_key_cannot_tell_apart_is_not_kept(registry, body_):
    assert execute_mod._plan_key(registry, parse(RunRequest, body_), SETTINGS) is None


def test_the_key_tells_apart_what_torch_tells_apart(registry):
    def key(**changes):
        layer = {"type": "LeakyReLU", "negative_slope": changes.pop("slope", 0.5)}
        return execute_mod._plan_key(registry, parse(RunRequest, {"layer": layer, **changes}), SETTINGS)

    keys = [
        key(),
        key(slope=1),
        key(slope=1.0),
        key(slope=True),
        key(slope=-0.0),
        key(slope=0.0),
        key(dtype="float64"),
        key(train=False),
        key(inputs=[{"shape": [2, 3]}]),
        key(inputs=[{"shape": [2, 3], "dtype": "float64"}]),
        key(slope=None),
    ]
    assert None not in keys and len(set(keys)) == len(keys)
    assert key(seed=5) == key(seed=6)  # the seed is not planned: it decides only the numbers


def test_a_worker_finds_the_plan_with_the_settings_each_task_unpickles(registry):
    req = parse(RunRequest, linear_net(2, 3))
    first = execute_mod._plan_key(registry, req, SETTINGS)
    assert execute_mod._plan_key(registry, req, pickle.loads(pickle.dumps(SETTINGS))) == first
    assert execute_mod._plan_key(registry, req, dataclasses.replace(SETTINGS, max_elements=7)) != first


def test_the_cache_keeps_the_most_recent_plans(registry, monkeypatch):
    monkeypatch.setattr(execute_mod, "PLAN_CACHE_SIZE", 2)
    for width in (2, 3, 4):
        requests.run(registry, linear_net(2, width), SETTINGS)
    assert len(execute_mod._PLANS) == 2
