"""The GPU's cached blocks after a request (app.core.gpu), with torch.cuda stood in for: no GPU needed.

The same logic on a real GPU: tests/gpu/test_gpu.py::test_idle_workers_give_cached_gpu_memory_back.
"""

from __future__ import annotations

import contextlib

import pytest

from app.core import gpu, tasks
from app.core.config import Settings

MiB = 1024**2


class FakeCuda:
    """torch.cuda's allocator calls, over a dict of reserved bytes per device."""

    def __init__(self, reserved: dict[int, int] | None, allocated: dict[int, int] | None = None) -> None:
        self.reserved = reserved  # None: CUDA never initialised in this process
        self.allocated = allocated or {}
        self.current = 0
        self.emptied: list[int] = []
        self.touched: set[int] = set()  # devices made current (cudaSetDevice creates a context)

    def is_initialized(self) -> bool:
        return self.reserved is not None

    def device_count(self) -> int:
        return len(self.reserved or {})

    def memory_reserved(self, d: int) -> int:
        assert self.reserved is not None, "asked for memory stats before CUDA was initialised"
        return self.reserved[d]

    @contextlib.contextmanager
    def device(self, d: int):
        prev, self.current = self.current, d
        self.touched.add(d)
        try:
            yield
        finally:
            self.current = prev

    def empty_cache(self) -> None:
        self.emptied.append(self.current)
        self.reserved[self.current] = self.allocated.get(self.current, 0)


def test_a_worker_that_never_used_cuda_is_left_alone():
    cuda = FakeCuda(None)
    assert gpu.release_cached(Settings(), cuda) == 0
    assert gpu.held_bytes(cuda) == 0
    assert cuda.emptied == [] and cuda.touched == set()


def test_within_the_allowance_the_cache_is_kept_for_the_next_request():
    cuda = FakeCuda({0: 100 * MiB})
    assert gpu.release_cached(Settings(gpu_idle_memory_bytes=128 * MiB), cuda) == 0
    assert cuda.emptied == [] and cuda.reserved == {0: 100 * MiB}


def test_past_the_allowance_unused_blocks_go_back_to_the_driver():
    cuda = FakeCuda({0: 12 * 1024 * MiB}, allocated={0: 32 * MiB})  # 32 MiB still in use (cuBLAS workspace)
    released = gpu.release_cached(Settings(gpu_idle_memory_bytes=128 * MiB), cuda)
    assert cuda.emptied == [0]
    assert released == 12 * 1024 * MiB - 32 * MiB
    assert gpu.held_bytes(cuda) == 32 * MiB


def test_the_allowance_counts_every_device_and_only_used_ones_are_touched():
    # 100 + 60 MiB: each under the allowance, together over it; device 1 was never used
    cuda = FakeCuda({0: 100 * MiB, 1: 0, 2: 60 * MiB})
    gpu.release_cached(Settings(gpu_idle_memory_bytes=128 * MiB), cuda)
    assert sorted(cuda.emptied) == [0, 2]
    assert cuda.touched == {0, 2}  # no context created on device 1
    assert cuda.current == 0  # the current device is restored


@pytest.mark.parametrize("limit", [0, 1])
def test_an_allowance_of_zero_empties_the_cache_after_every_request(limit):
    cuda = FakeCuda({0: 2 * MiB})
    gpu.release_cached(Settings(gpu_idle_memory_bytes=limit), cuda)
    assert cuda.emptied == [0] and gpu.held_bytes(cuda) == 0


def test_the_allowance_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("LAYER_EXPLORER_GPU_IDLE_MEMORY", str(64 * MiB))
    assert Settings.from_env().gpu_idle_memory_bytes == 64 * MiB
    monkeypatch.delenv("LAYER_EXPLORER_GPU_IDLE_MEMORY")
    assert Settings.from_env().gpu_idle_memory_bytes == Settings.gpu_idle_memory_bytes == 128 * MiB


def test_a_worker_gives_the_memory_back_after_each_task(monkeypatch):
    # the worker's task wrapper calls it after every request, whatever the outcome
    calls = []
    monkeypatch.setattr(gpu, "release_cached", lambda settings, cuda=None: calls.append(settings) or 0)
    ok = tasks.task("shape", {"layer": {"type": "ReLU"}, "inputs": [{"shape": [2]}]}, Settings(), None, {})
    bad = tasks.task("shape", {"layer": {"type": "Nope"}}, Settings(), None, {})
    assert ok[0] == "ok" and bad[0] == "error"
    assert len(calls) == 2
