"""What a service runs on: device, host and library versions (recorded with every result)."""

from __future__ import annotations

import importlib.metadata
import socket
from typing import Any

LIBRARIES = ("torch", "diffusers", "transformers", "peft", "grpcio", "protobuf", "imageio-ffmpeg",
             "decord", "openai", "videophy-bench")


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def resolve_device(requested: str = "auto") -> str:
    """`auto` -> `cuda` when a GPU is visible, else `cpu`; explicit values pass through."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but CUDA is not available")
    return requested


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"


def runtime_info(device: str) -> Any:
    """The `RuntimeInfo` a service reports with every result (build it once: none of it changes)."""
    from videophy_bench.proto.v1 import common_pb2

    return common_pb2.RuntimeInfo(device=device, device_name=device_name(device),
                                  hostname=socket.gethostname(), library_versions=library_versions())
