"""Devices and dtypes: what this server can run on, and the names requests use for them."""

from __future__ import annotations

from typing import Any

import torch

from app.core import tensors
from app.core.config import Settings
from app.core.errors import DeviceUnavailable, InvalidRequest


def list_devices(settings: Settings) -> dict[str, Any]:
    devices: list[dict[str, Any]] = [{"id": "cpu", "kind": "cpu", "name": "CPU"}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append(
                {"id": f"cuda:{i}", "kind": "cuda", "name": props.name, "memory_bytes": int(props.total_memory)}
            )
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append({"id": "mps", "kind": "mps", "name": "Apple Metal (MPS)"})
    return {"default": settings.device, "devices": devices}


def resolve_device(name: str | None, settings: Settings) -> torch.device:
    # None is "the server's default"; an empty or blank name is a mistake, refused below like any unknown name
    name = (settings.device or "cpu" if name is None else name).strip().lower()
    available = [d["id"] for d in list_devices(settings)["devices"]]
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda:0")
        if "mps" in available:
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda":
        name = "cuda:0"
    if name in available:
        return torch.device(name)
    if name.startswith("cuda") and not torch.cuda.is_available():
        reason = "this server has no CUDA device (torch.cuda.is_available() is False)"
    elif name.startswith(("cuda", "mps", "cpu")):
        reason = f"this server has no device {name!r}"
    else:
        reason = f"{name!r} is not a device name (use cpu, cuda, cuda:N, mps or auto)"
    raise DeviceUnavailable(f"{reason}; available: {', '.join(available)}", field="device")


def resolve_dtype(name: str) -> torch.dtype:
    if name not in tensors.DTYPES:
        raise InvalidRequest(f"dtype must be one of {', '.join(tensors.DTYPES)}; got {name!r}", field="dtype")
    return tensors.DTYPES[name]
