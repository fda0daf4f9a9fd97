"""The generator's model abstraction: what the gRPC servicer needs from any video model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from services.generator.presets import Params, Preset

StepCallback = Callable[[int, int], None]  # (step done, total steps)
StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class GenerationJob:
    prompt: str
    params: Params


@dataclass
class GenerationOutput:
    frames: np.ndarray  # (F, H, W, 3) float32 in [0, 1]
    timings_s: dict[str, float] = field(default_factory=dict)
    attempts: int = 1


class GeneratorBackend(Protocol):
    """A loaded text-to-video model.

    Contract: `load` and `warmup` run once before the service reports ready; `generate` is called
    from a single worker thread, one job at a time; it calls `on_step` after every denoising step
    and raises `services.common.errors.Cancelled` at the next step once `should_stop()` is true.
    Device out-of-memory surfaces as `torch.OutOfMemoryError`; `enable_low_memory` then switches to
    the slower low-memory mode (VAE tiling, offload of idle components) for a retry.
    """

    preset: Preset
    model_id: str
    revision: str
    device: str
    dtype: str
    acceleration: str

    def load(self) -> None: ...

    def warmup(self) -> None: ...

    def prepare(self, prompts: list[str], negative_prompt: str) -> tuple[int, int]:
        """Encode prompts ahead of time; returns (newly encoded, already cached)."""
        ...

    def generate(self, job: GenerationJob, on_step: StepCallback,
                 should_stop: StopCheck) -> GenerationOutput: ...

    def free_memory(self) -> None: ...

    def enable_low_memory(self) -> None: ...
