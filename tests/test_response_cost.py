"""The run's build and its answer cost only what the answer needs, and say exactly what they said before.

Each shortcut is checked against the general way it stands in for, on the same inputs, for the
identical answer (bit for bit): the finite-tensor summary against the masked one, an entry past the
budget against tensor_json's, a module left as built against ``module.to`` / ``module.train``. The
summaries that are sent are NumPy's statistics of the real tensors, and computed for those alone.
"""

from __future__ import annotations

import builtins
import dataclasses
import gc
import math
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from app.core import body, tensors
from app.core import tasks as tasks_mod
from app.core.config import Settings
from app.core.networks import graph
from app.core.presets import PRESETS, resnet
from app.core.registry import default_registry
from app.core.running import execute as execute_mod
from app.core.running import requests
from app.core.running.execute import execute
from app.core.running.respond import run_response
from app.core.schema import RunRequest, parse

SETTINGS = Settings()

# -------------------------------------------------------------------------------------------------
# summaries: the finite path is the masked path's numbers, bit for bit
# -------------------------------------------------------------------------------------------------

_DTYPES = st.sampled_from([np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_])


@st.composite
def _arrays(draw):
    dtype = np.dtype(draw(_DTYPES))
    # sizes across a chunk's edges (65536), where the merge of chunks matters
    n = draw(st.one_of(st.integers(0, 300), st.sampled_from([65535, 65536, 65537, 2 * 65536 + 5])))
    if dtype.kind == "f":
        scale = draw(st.sampled_from([1e-6, 1.0, 1e3, 1e30 if dtype.itemsize > 2 else 1e4]))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        values = (rng.standard_normal(n) * scale + draw(st.floats(-100, 100))).astype(dtype)
        if n and draw(st.booleans()):  # a few non-finite values: the general way
            bad = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4))
            values[bad] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return values
    return draw(hnp.arrays(dtype, n, elements=hnp.from_dtype(dtype)))


@settings(max_examples=120, deadline=None)
@given(_arrays())
def test_summary_equals_the_masked_summary_bit_for_bit(array):
    assert tensors.summary(array) == tensors._masked_summary(array.reshape(-1))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.integers(1, 400), elements=st.floats(-1e6, 1e6, width=32)))
def test_summary_is_numpys(array):
    got = tensors.summary(array)
    wide = array.astype(np.float64)
    assert got["min"] == float(wide.min()) and got["max"] == float(wide.max()) and got["nonfinite"] == 0
    assert got["mean"] == pytest.approx(float(wide.mean()), rel=1e-12, abs=1e-9)
    assert got["std"] == pytest.approx(float(wide.std()), rel=1e-9, abs=1e-9)


def test_non_finite_values_take_the_general_way():
    values = np.array([1.0, np.nan, 3.0, np.inf, -np.inf, 5.0], dtype=np.float32)
    assert tensors.summary(values) == {"min": 1.0, "max": 5.0, "mean": 3.0, "std": math.sqrt(8 / 3), "nonfinite": 3}
    assert tensors.summary(np.full(5, np.nan)) == {
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
        "nonfinite": 5,
    }


# -------------------------------------------------------------------------------------------------
# the answer: budget, summaries sent and computed, param_count
# -------------------------------------------------------------------------------------------------


def _resnet(side: int = 64) -> dict:
    return {"layer": resnet(18), "inputs": [{"shape": [1, 3, side, side]}], "seed": 0}


def _answer(registry, req: dict, settings: Settings) -> tuple[dict, execute_mod.Execution]:
    ex = execute(registry, parse(RunRequest, req), settings)
    return run_response(ex.plan, ex.module, ex.inputs, ex.outputs, settings, code=""), ex


@pytest.mark.parametrize("budget", [2 * 1024**2, 300_000, 20_000])
def test_summaries_sent_are_numpys_and_computed_for_those_alone(registry, monkeypatch, budget):
    computed = []
    summary = tensors.summary
    monkeypatch.setattr(tensors, "summary", lambda a: computed.append(a.size) or summary(a))
    d, ex = _answer(registry, _resnet(), dataclasses.replace(SETTINGS, response_budget_bytes=budget))
    entries = [d["output"], *d["inputs"], *d["params"]]
    sent = [e for e in entries if e.get("summary") is not None]
    assert len(computed) == len(sent)  # once per tensor sent with a summary, never for one without
    held = dict(ex.module.named_parameters())
    for e in d["params"]:
        if e["values"] == "none":  # past the budget: no values, no statistics, no preview
            assert e["data"] is None and e["summary"] is None and e["preview"] is None and "preview_step" not in e
            assert e["full"] == {"format": "npy", "tensor": e["name"]}
            continue
        real = held[e["name"]].detach().double().numpy()
        s = e["summary"]
        assert (s["min"], s["max"], s["nonfinite"]) == (float(real.min()), float(real.max()), 0), e["name"]
        assert s["mean"] == pytest.approx(float(real.mean()), rel=1e-9, abs=1e-12), e["name"]
        assert s["std"] == pytest.approx(float(real.std()), rel=1e-9, abs=1e-12), e["name"]
    if budget == 20_000:
        assert any(e["values"] == "none" for e in d["params"])
    assert d["param_count"] == sum(p.numel() for p in ex.module.parameters())


def test_entries_past_the_budget_are_tensor_jsons_own(registry, monkeypatch):
    """The shortcut for a spent budget writes what tensor_json writes for it, in the same key order."""
    small = dataclasses.replace(SETTINGS, response_budget_bytes=30_000)
    fast, _ = _answer(registry, _resnet(), small)
    monkeypatch.setattr(tensors.ValueBudget, "spent", property(lambda self: False))
    general, _ = _answer(registry, _resnet(), small)
    assert body.encode_json(fast) == body.encode_json(general)


# -------------------------------------------------------------------------------------------------
# materialise: a module already where and what the run wants is left as built
# -------------------------------------------------------------------------------------------------


def _requests() -> list[tuple[str, dict]]:
    out = []
    for p in PRESETS:
        out.append((p["id"], p["request"]))
    out.append(("resnet18-eval-float64", {**_resnet(32), "train": False, "dtype": "float64"}))
    out.append(("lstm-bfloat16", {"layer": {"type": "LSTM", "input_size": 4, "hidden_size": 3}, "inputs": [{"shape": [5, 2, 4]}], "dtype": "bfloat16"}))  # fmt: skip
    return out


@pytest.mark.parametrize(("name", "req"), _requests(), ids=[n for n, _ in _requests()])
def test_a_module_left_as_built_answers_as_one_moved_and_switched(registry, monkeypatch, name, req):
    fast = body.encode_json(requests.run(registry, req, SETTINGS))
    monkeypatch.setattr(execute_mod, "_settled", lambda *a: (True, True))  # always .to() and .train()
    execute_mod._SETTLED.clear()  # not what the first run found, kept with its plan
    graph._CACHE.clear()
    general = body.encode_json(requests.run(registry, req, SETTINGS))
    assert fast == general


class _OwnTrain(nn.Module):
    def train(self, mode: bool = True) -> _OwnTrain:
        return super().train(mode)


@pytest.mark.parametrize(
    ("module", "device", "dtype", "train", "want"),
    [
        (nn.Linear(2, 3), "cpu", torch.float32, True, (False, False)),
        (nn.Linear(2, 3), "cpu", torch.float64, True, (True, False)),
        (nn.Linear(2, 3), "cpu", torch.float32, False, (False, True)),
        (nn.Linear(2, 3), "meta", torch.float32, True, (True, False)),
        (nn.BatchNorm1d(3), "cpu", torch.float64, True, (True, False)),  # the int64 counter alone would not
        (nn.Sequential(nn.ReLU(), _OwnTrain()), "cpu", torch.float32, True, (False, True)),
        (nn.Linear(2, 3, bias=False), "cpu", torch.float32, True, (False, False)),  # a None parameter
    ],
)
def test_settled_says_what_to_and_train_would_change(module, device, dtype, train, want):
    assert execute_mod._settled(module, torch.device(device), dtype, train) == want


def test_graph_key_reuses_the_answers_repr(registry, monkeypatch):
    req = _resnet(64)
    graph._CACHE.clear()
    first = requests.run(registry, req, SETTINGS)
    spelled = []
    monkeypatch.setattr(graph, "repr", lambda m: spelled.append(m) or builtins.repr(m), raising=False)
    second = requests.run(registry, req, SETTINGS)
    assert spelled == []  # the key was the answer's own repr, not the meta module's spelled again
    assert second["graph"] == first["graph"] and first["graph"]["method"] != "none"


# -------------------------------------------------------------------------------------------------
# the forward's inputs: lent where large, copied where the layer may change them
# -------------------------------------------------------------------------------------------------


#: test-only networks that change tensors in place, their own input included (the catalog builds none)
PLUGIN = str(Path(__file__).parent / "plugins" / "in_place_layers.py")


@pytest.fixture(scope="module")
def with_in_place():
    return default_registry((PLUGIN,))


def _catalog_requests(registry) -> list[dict]:
    return [spec.example for spec in registry if spec.example] + [p["request"] for p in PRESETS]


def _answers(registry, reqs: list[dict]) -> list[bytes]:
    out = []
    for req in reqs:
        try:
            out.append(body.encode_json(requests.run(registry, req, SETTINGS)))
        except Exception as exc:  # noqa: BLE001 - a refusal is an answer too, and must stay the same
            out.append(f"{type(exc).__name__}: {exc}".encode())
    return out


def test_lent_inputs_answer_as_copied_ones_over_the_catalog(with_in_place, monkeypatch):
    """Every input lent (none is small enough to copy) against every input copied: the same answers,
    in-place layers included (they are copied, or caught by their inputs' version counters and run again)."""
    reqs = _catalog_requests(with_in_place)
    monkeypatch.setattr(execute_mod, "LEND_BYTES", -1)
    lent = _answers(with_in_place, reqs)
    monkeypatch.setattr(execute_mod, "_in_place", lambda module: False)  # none says so: versions catch them
    unannounced = _answers(with_in_place, reqs)
    monkeypatch.setattr(execute_mod, "LEND_BYTES", 2**62)
    copied = _answers(with_in_place, reqs)
    assert lent == unannounced
    assert len(lent) > 100
    assert lent == copied


def test_an_input_changed_in_place_unannounced_is_run_again_on_copies(with_in_place, monkeypatch):
    # its first layer is ReLU(inplace=True) on the network's input, of 1.2 MB
    req = {"layer": {"type": "InPlaceFirst"}, "inputs": [{"shape": [60_000, 5]}], "seed": 5}
    want = requests.run(with_in_place, req, SETTINGS)  # a layer says inplace: copied
    runs = []
    real_run = execute_mod._run
    monkeypatch.setattr(execute_mod, "_run", lambda *a, **k: runs.append(k["copy"]) or real_run(*a, **k))
    monkeypatch.setattr(execute_mod, "_in_place", lambda module: False)  # as if it did not say so
    got = requests.run(with_in_place, req, SETTINGS)
    assert runs == [None, True]  # lent, changed, run again on copies
    assert body.encode_json(got) == body.encode_json(want)
    assert want["inputs"][0]["summary"]["min"] < 0  # the input as drawn, not as the layer left it


def test_a_large_input_is_lent_once(registry, monkeypatch):
    req = {"layer": {"type": "ReLU"}, "inputs": [{"shape": [2, 3, 300, 300]}], "seed": 5}
    runs = []
    real_run = execute_mod._run
    monkeypatch.setattr(execute_mod, "_run", lambda *a, **k: runs.append(k["copy"]) or real_run(*a, **k))
    snapshots = []
    real_snapshot = tensors.snapshot
    monkeypatch.setattr(tensors, "snapshot", lambda v: snapshots.append(v) or real_snapshot(v))
    ex = execute(registry, parse(RunRequest, req), SETTINGS, hooks=None)
    assert runs == [None] and snapshots == []  # no copy of the 2 MiB input
    assert torch.equal(ex.outputs[0][1], torch.relu(ex.inputs[0])) and ex.inputs[0].min() < 0


# -------------------------------------------------------------------------------------------------
# the cyclic collector: paused while a run builds its answer, as it was afterwards
# -------------------------------------------------------------------------------------------------


def test_the_collector_is_paused_during_a_run_and_runs_again_after(registry, monkeypatch):
    seen = []
    real = execute_mod._materialise  # what a run calls: materialise and its walk of the module
    monkeypatch.setattr(execute_mod, "_materialise", lambda plan: seen.append(gc.isenabled()) or real(plan))
    assert gc.isenabled()
    linear = {"layer": {"type": "Linear", "in_features": 3, "out_features": 2}, "inputs": [{"shape": [4, 3]}]}
    requests.run(registry, linear, SETTINGS)
    assert seen == [False] and gc.isenabled()
    with pytest.raises(Exception, match="no argument"):  # a refused request resumes it too
        requests.run(registry, {"layer": {"type": "Linear", "nope": 1}}, SETTINGS)
    assert gc.isenabled()


def test_the_pause_is_shared_by_overlapping_requests_and_keeps_a_disabled_collector_off():
    first, second = requests.collector_paused(), requests.collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the other request still runs
    second.__exit__(None, None, None)
    assert gc.isenabled()
    gc.disable()
    try:
        with requests.collector_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_a_workers_json_answer_is_encoded_and_freed_before_the_collector_runs_again(registry, monkeypatch):
    """Re-enabled with the answer alive, the collector's first collection walked all of it: the pause
    lasts until the answer is bytes and its objects are gone (gzipped or not, a refusal resumes it too)."""

    class Answer(dict):  # a dict that a weak reference can watch
        pass

    answers: list[weakref.ref] = []
    encoded: list[bool] = []
    alive_at_enable: list[bool] = []
    real_run, real_encode, real_dumps = tasks_mod.TASKS["run"], body.encode_json, body.dumps

    def run(*args: Any, **kwargs: Any) -> Answer:
        answer = Answer(real_run(*args, **kwargs))
        answers.append(weakref.ref(answer))
        return answer

    class Collector:  # the gc module as requests.collector_paused sees it, telling when it is enabled
        def __getattr__(self, name: str) -> Any:
            return getattr(gc, name)

        def enable(self) -> None:
            alive_at_enable.append(any(a() is not None for a in answers))
            gc.enable()

    monkeypatch.setitem(tasks_mod.TASKS, "run", run)
    monkeypatch.setattr(requests, "gc", Collector())
    monkeypatch.setattr(body, "encode_json", lambda r: encoded.append(gc.isenabled()) or real_encode(r))
    monkeypatch.setattr(body, "dumps", lambda r: encoded.append(gc.isenabled()) or real_dumps(r))
    linear = {"layer": {"type": "Linear", "in_features": 3, "out_features": 2}, "inputs": [{"shape": [4, 3]}]}
    for gzip in (False, True):
        status, data = tasks_mod.task("run", linear, SETTINGS, None, {}, gzip=gzip)
        assert status == "ok" and len(data) > 0
    assert len(encoded) >= 2 and not any(encoded)  # encoded with the collector paused, gzipped or not
    assert alive_at_enable == [False, False] and gc.isenabled()
    assert tasks_mod.task("run", {"layer": {"type": "Linear", "nope": 1}}, SETTINGS, None, {})[0] == "error"
    assert gc.isenabled()
