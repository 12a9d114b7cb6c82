"""GPU memory a worker keeps between requests.

PyTorch's caching allocator keeps every block a request freed, for the next request to reuse: after a
run of large requests on an H200 the idle workers held 12 GB of the GPU's memory that no request was
using. After each request, a worker whose cache holds more than ``Settings.gpu_idle_memory_bytes``
(``LAYER_EXPLORER_GPU_IDLE_MEMORY``) hands its unused blocks back to the driver, so an idle server holds
at most that much per worker (plus each process's CUDA context, which torch cannot release). Below the
limit the blocks stay cached: small requests then reuse them instead of paying for ``cudaMalloc``.

Nothing here creates a CUDA context: a worker that never ran on the GPU is left alone, and only devices
whose cache holds something are asked (``cudaSetDevice`` initialises a device that was never used).
"""

from __future__ import annotations

from typing import Any

import torch

from app.core.config import Settings


def held_bytes(cuda: Any = torch.cuda) -> int:
    """What this process's caching allocator holds on every GPU (0 where CUDA was never initialised)."""
    if not cuda.is_initialized():
        return 0
    return sum(int(cuda.memory_reserved(d)) for d in range(cuda.device_count()))


def release_cached(settings: Settings, cuda: Any = torch.cuda) -> int:
    """After a request: give cached GPU blocks back to the driver if they exceed the idle allowance.

    Returns the bytes handed back (0 when the cache was within the allowance, or CUDA was never used).
    ``empty_cache`` synchronises the device, which is why it runs only past the allowance.
    """
    if not cuda.is_initialized():
        return 0
    held = {d: int(cuda.memory_reserved(d)) for d in range(cuda.device_count())}
    if sum(held.values()) <= settings.gpu_idle_memory_bytes:
        return 0
    for d, nbytes in held.items():
        if nbytes:
            with cuda.device(d):
                cuda.empty_cache()
    return sum(held.values()) - held_bytes(cuda)
