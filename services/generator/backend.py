"""The generator's model abstraction: what the gRPC servicer needs from any video model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from videophy_bench.generator.presets import Params, Preset

# When the VAE decode of one item may run beside the next item's denoising (GeneratorServicer).
DECODE_OVERLAP = ("auto", "on", "off")
StepCallback = Callable[[int, int], None]  # (step done, total steps)
StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class GenerationJob:
    prompt: str
    params: Params


@dataclass
class GenerationOutput:
    # (F, H, W, 3) uint8, or float32 in [0, 1]; None between `denoise` and `decode`
    frames: np.ndarray | None
    timings_s: dict[str, float] = field(default_factory=dict)
    attempts: int = 1
    latents: Any = None  # device tensor between `denoise` and `decode`
    # Text-encoder tokens of the prompt and of the negative prompt, before the cap
    # (videophy_bench.generator.prompt_tokens); None when the backend does not count them.
    prompt_tokens: int | None = None
    negative_prompt_tokens: int | None = None


class GeneratorBackend(Protocol):
    """A loaded text-to-video model.

    Contract: `load` and `warmup` run once before the service reports ready; `generate` (or
    `denoise`) is called from a single worker thread, one job at a time; it calls `on_step` after every
    denoising step and raises `videophy_bench.common.errors.Cancelled` at the next step once `should_stop()`
    is true. `decode` may run on a second thread beside the next `denoise`.
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
                 should_stop: StopCheck) -> GenerationOutput:
        """`denoise` then `decode`."""
        ...

    def denoise(self, job: GenerationJob, on_step: StepCallback,
                should_stop: StopCheck) -> GenerationOutput:
        """The step loop alone; the output holds `latents` and no frames yet, and the token counts
        of the prompt and the negative prompt."""
        ...

    def decode(self, out: GenerationOutput, side_stream: bool = False) -> GenerationOutput:
        """Latents -> frames, in place. With `side_stream` it may run on another thread while the
        next `denoise` runs (the servicer does so only when the warm-up showed that both fit)."""
        ...

    def free_memory(self) -> None: ...

    def enable_low_memory(self) -> None: ...


def free_device_memory() -> None:
    """Drop unreachable tensors and give the CUDA allocator's cache back (after a failed or cancelled run)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def enter_low_memory(pipe: Any, device: str) -> None:
    """VAE tiling plus offload of idle components: slower, but fits where the resident mode doesn't."""
    pipe.vae.enable_tiling()
    if device.startswith("cuda"):
        pipe.enable_model_cpu_offload(device=device)
