"""The API on a CUDA device: the same answers as on CPU, the same limits, nothing left on the GPU.

Runs only where torch sees a GPU (see conftest.py); through the ASGI app, in this process, so
torch.cuda's allocator counters describe exactly what the requests left behind.
"""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest
import torch

from app.core import gpu, tensors
from app.core.config import Settings
from app.main import create_app

pytestmark = pytest.mark.gpu

CASES = {
    "Linear": ({"type": "Linear", "in_features": 64, "out_features": 32}, [{"shape": [16, 64]}]),
    "Conv2d": (
        {"type": "Conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": 3, "padding": 1},
        [{"shape": [2, 3, 8, 8]}],  # 1024 output elements: listed in full in JSON (max_elements 4096)
    ),
    "LSTM": ({"type": "LSTM", "input_size": 8, "hidden_size": 16, "num_layers": 2}, [{"shape": [5, 3, 8]}]),
}


def request(layer, inputs, device, **extra):
    return {"layer": layer, "inputs": inputs, "seed": 42, "device": device, **extra}


def as_array(tensor_json):
    return np.asarray(tensor_json["data"], dtype=np.float64)


@pytest.fixture(autouse=True)
def _nothing_left_on_the_gpu():
    """Every test: what the caching allocator holds for tensors is back where it was afterwards."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    yield
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == before, "a request left tensors allocated on the GPU"


def test_devices_lists_the_gpu_with_name_and_memory(api):
    devices = api.get("/api/devices").json()["devices"]
    cuda = [d for d in devices if d["kind"] == "cuda"]
    assert len(cuda) == torch.cuda.device_count() >= 1
    first = cuda[0]
    assert first["id"] == "cuda:0"
    assert first["name"] == torch.cuda.get_device_name(0)
    assert first["memory_bytes"] == torch.cuda.get_device_properties(0).total_memory > 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_run_on_cuda_equals_cpu(api, name):
    layer, inputs = CASES[name]
    cpu = api.post("/api/run", json=request(layer, inputs, "cpu"))
    gpu = api.post("/api/run", json=request(layer, inputs, "cuda"))
    assert cpu.status_code == gpu.status_code == 200, gpu.text
    cpu, gpu = cpu.json(), gpu.json()
    assert gpu["device"] == "cuda:0" and cpu["device"] == "cpu"
    assert gpu["predicted_shape"] == cpu["predicted_shape"]

    # same seed, same weights and inputs (drawn on CPU, then moved); cuDNN may convolve in TF32 (torch's
    # default for cudnn.allow_tf32), whose 10-bit mantissa puts single elements ~1e-3 apart
    def resolved(answer):  # outputs[0] says same_as "output" rather than repeating it
        return [answer["output"] if o.get("same_as") == "output" else o for o in answer["outputs"]]

    for out_cpu, out_gpu in zip(resolved(cpu), resolved(gpu), strict=True):
        assert out_gpu["shape"] == out_cpu["shape"]
        np.testing.assert_allclose(as_array(out_gpu), as_array(out_cpu), rtol=1e-3, atol=2e-3)


def test_npy_from_the_gpu(api):
    # large enough to be summarised in JSON: .npy carries every value
    layer, inputs = CASES["Conv2d"][0], [{"shape": [4, 3, 32, 32]}]
    cpu = api.post("/api/run?format=npy", json=request(layer, inputs, "cpu"))
    gpu = api.post("/api/run?format=npy", json=request(layer, inputs, "cuda"))
    assert gpu.status_code == 200 and gpu.headers["content-type"] == "application/octet-stream"
    a, b = np.load(io.BytesIO(cpu.content)), np.load(io.BytesIO(gpu.content))
    assert b.shape == (4, 8, 32, 32) and b.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=2e-3)


def test_npy_named_output_from_the_gpu(api):
    layer, inputs = CASES["LSTM"]
    r = api.post("/api/run?format=npy&tensor=c_n", json=request(layer, inputs, "cuda"))
    assert r.status_code == 200 and np.load(io.BytesIO(r.content)).shape == (2, 3, 16)


@pytest.mark.parametrize(
    "layer, inputs, index",
    [
        ({"type": "Linear", "in_features": 10, "out_features": 5}, [{"shape": [5, 10]}], [1, 2]),
        (
            {"type": "Conv2d", "in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1},
            [{"shape": [1, 2, 6, 6]}],
            [0, 1, 0, 5],
        ),
        ({"type": "MaxPool2d", "kernel_size": 2}, [{"shape": [1, 1, 4, 4]}], [0, 0, 1, 1]),
    ],
)
def test_explain_on_the_gpu(api, layer, inputs, index):
    gpu = api.post("/api/explain", json=request(layer, inputs, "cuda", index=index))
    cpu = api.post("/api/explain", json=request(layer, inputs, "cpu", index=index))
    assert gpu.status_code == cpu.status_code == 200, gpu.text
    g, c = gpu.json(), cpu.json()
    assert g["match"] is True
    assert g["value"] == pytest.approx(c["value"], rel=1e-3, abs=1e-4)
    assert g["manual"] == pytest.approx(c["manual"], rel=1e-3, abs=1e-4)
    assert len(g["terms"]) == len(c["terms"])


def test_memory_limit_is_a_413_on_the_gpu_before_anything_is_allocated(api, settings):
    # 40000 x 40000 float32 is 6 GiB: over the suite's 512 MiB limit, refused from the estimate
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    held = torch.cuda.memory_allocated()
    r = api.post(
        "/api/run",
        json=request({"type": "Linear", "in_features": 40000, "out_features": 2}, [{"shape": [40000, 40000]}], "cuda"),
    )
    assert r.status_code == 413, r.text
    d = r.json()
    assert d["error"] == "too_large" and d["limit_bytes"] == settings.memory_limit_bytes
    torch.cuda.synchronize()
    assert torch.cuda.max_memory_allocated() == held  # refused before a single byte went to the GPU


def test_nothing_stays_allocated_after_many_requests(api):
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    for name in sorted(CASES):
        layer, inputs = CASES[name]
        for _ in range(3):
            assert api.post("/api/run", json=request(layer, inputs, "cuda")).status_code == 200
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == before


@pytest.fixture(scope="module")
def one_gpu_worker():
    """A pool of one worker, so that a task scheduled on it is known to run in the process that served."""
    application = create_app(Settings(memory_limit_bytes=4 * 1024**3, workers=1, timeout_s=120))
    application.state.pool.start(wait=120)
    yield application.state.pool
    application.state.pool.close()


def _in_worker(pool, fn):
    return pool._pool.schedule(fn).result(timeout=60)


def test_idle_workers_give_cached_gpu_memory_back(one_gpu_worker):
    pool = one_gpu_worker
    allowance = pool.settings.gpu_idle_memory_bytes
    small = request({"type": "Linear", "in_features": 64, "out_features": 32}, [{"shape": [16, 64]}], "cuda")
    asyncio.run(pool.call("run", json.dumps(small).encode()))
    kept = _in_worker(pool, gpu.held_bytes)
    assert 0 < kept <= allowance  # a small request's blocks stay cached for the next one
    # about 1 GiB of activations: the cache grows past the allowance during the request...
    big = request(
        {"type": "Conv2d", "in_channels": 64, "out_channels": 128, "kernel_size": 3},
        [{"shape": [64, 64, 112, 112]}],
        "cuda",
    )
    asyncio.run(pool.call("run", json.dumps(big).encode()))
    # ...and is handed back to the driver after it
    assert _in_worker(pool, gpu.held_bytes) <= allowance


@pytest.mark.parametrize("shape", [(), (7,), (64, 64), (3, 200, 300)])
def test_summaries_and_previews_are_computed_on_the_gpu_and_equal_the_cpus(shape):
    t = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    if t.numel() > 1:
        t.view(-1)[::17] = float("nan")
    cpu = tensors.tensor_json("x", t, max_elements=4096)
    gpu_json = tensors.tensor_json("x", t.cuda(), max_elements=4096)
    assert gpu_json.keys() == cpu.keys()
    assert gpu_json["data"] == cpu["data"] and gpu_json["preview"] == cpu["preview"]  # the same float32 values
    assert gpu_json.get("preview_step") == cpu.get("preview_step")
    for key, value in cpu["summary"].items():
        assert gpu_json["summary"][key] == pytest.approx(value, rel=1e-9), key
