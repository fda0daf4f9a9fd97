"""The backend of every family whose pipeline runs as it ships (CogVideoX, LTX-Video, HunyuanVideo).

One call of the family's own diffusers pipeline per video, with the preset's scheduler, the
request's parameters (the family's own ones by keyword, videophy_bench.generator.families) and the
pipeline's own text encoding and VAE decode: the arithmetic is exactly the pipeline's. The whole
pipeline is bfloat16 on GPU (what the CogVideoX-5B / LTX-Video / HunyuanVideo cards run) and fp32 on
the CPU. The Wan family keeps its own backend (diffusers_backend.py: cached prompt embeddings, the
decode beside the next denoise); here `denoise` returns finished frames, so the engine never
overlaps a decode, and `prepare` encodes nothing ahead (the pipeline encodes per call).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from videophy_bench.common.errors import Cancelled, InvalidRequest
from videophy_bench.generator import prompt_tokens
from videophy_bench.generator.backend import (
    GenerationJob,
    GenerationOutput,
    StepCallback,
    StopCheck,
    enter_low_memory,
    free_device_memory,
)
from videophy_bench.generator.presets import Preset

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _timed_decode(vae: Any, timings: dict[str, float]) -> Iterator[None]:
    """Time the pipeline's own VAE decode calls (into timings["vae_decode"]) without changing them."""
    inner = vae.decode

    def decode(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            timings["vae_decode"] = timings.get("vae_decode", 0.0) + time.perf_counter() - t0

    vae.decode = decode
    try:
        yield
    finally:
        del vae.decode  # the class's method again


class DiffusersPipelineBackend:
    """The family's diffusers pipeline behind the GeneratorBackend contract
    (videophy_bench.generator.backend)."""

    decode_overlap_fits = False  # `denoise` decodes: nothing to overlap

    def __init__(self, preset: Preset, model_dir: Path, revision: str, device: str,
                 model_id: str | None = None, compile_blocks: bool | None = None,
                 acceleration: str = "lossless") -> None:
        self.preset = preset
        self.family = preset.family_spec
        self.model_dir = Path(model_dir)
        self.model_id = model_id or preset.model_id or str(model_dir)
        self.revision = revision
        self.device = device
        self.compile_blocks = compile_blocks
        self.dtype = "bfloat16" if device.startswith("cuda") else "float32"
        self.acceleration_preset = acceleration
        self.acceleration = acceleration
        self.pipe: Any = None
        self.scheduler_name = ""
        self._low_memory = False

    # -- lifecycle -------------------------------------------------------------------------------
    def load(self) -> None:
        import diffusers
        import torch

        dtype = torch.bfloat16 if self.dtype == "bfloat16" else torch.float32
        t0 = time.perf_counter()
        pipe = getattr(diffusers, self.family.pipeline).from_pretrained(self.model_dir, dtype=dtype)
        self.attach(pipe.to(self.device))
        log.info("loaded %s (%s, %s) on %s in %.1fs", self.model_id, self.revision, self.family.pipeline,
                 self.device, time.perf_counter() - t0)

    def attach(self, pipe: Any) -> None:
        """Take a pipeline already on the device: the preset's scheduler and the acceleration preset."""
        import diffusers

        from videophy_bench.generator.acceleration import apply_acceleration

        if type(pipe).__name__ != self.family.pipeline:
            raise InvalidRequest(f"{self.model_dir} holds a {type(pipe).__name__}, but preset "
                                 f"{self.preset.name} "
                                 f"is a {self.family.pipeline}")
        if self.preset.scheduler is not None:  # the official code's scheduler, from the shipped config
            name, config = self.preset.scheduler
            pipe.scheduler = getattr(diffusers, name).from_config(pipe.scheduler.config, **dict(config))
        self._base_scheduler_config = dict(pipe.scheduler.config)
        self.pipe = pipe
        self._scheduler_for(self.preset.flow_shift)
        self.scheduler_name = type(pipe.scheduler).__name__
        pipe.set_progress_bar_config(disable=True)
        # The pipeline encodes each prompt itself: its text encoder stays on the device.
        self.acceleration = apply_acceleration(pipe, self.acceleration_preset, self.device,
                                               self.compile_blocks, park_text_encoder=False)

    def _scheduler_for(self, shift: float | None) -> None:
        key = self.family.flow_shift
        if key is None or shift is None or float(self.pipe.scheduler.config.get(key, -1.0)) == float(shift):
            return
        cls = type(self.pipe.scheduler)
        self.pipe.scheduler = cls.from_config(self._base_scheduler_config, **{key: shift})

    def warmup(self) -> None:
        """One 2-step generation at the preset's size: compiles kernels before the service is ready."""
        from videophy_bench.generator.presets import resolve

        self.generate(GenerationJob("warm up", resolve(self.preset, seed=0, num_inference_steps=2)),
                      lambda *_: None, lambda: False)

    # -- text ------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return prompt_tokens.count(self.pipe.tokenizer, text)

    def prepare(self, prompts: list[str], negative_prompt: str) -> tuple[int, int]:
        return 0, 0  # the pipeline encodes per call; nothing to do ahead

    # -- generation ------------------------------------------------------------------------------
    def call_kwargs(self, p: Any) -> dict[str, Any]:
        """The family's own keywords of the pipeline call, from the resolved parameters."""
        kwargs: dict[str, Any] = {x.name: x.to_call(p.extra[x.name]) for x in self.family.extra
                                  if x.name in p.extra}
        if self.family.fps_kwarg:
            kwargs[self.family.fps_kwarg] = p.fps
        return kwargs

    def generate(self, job: GenerationJob, on_step: StepCallback, should_stop: StopCheck) -> GenerationOutput:
        return self.denoise(job, on_step, should_stop)

    def denoise(self, job: GenerationJob, on_step: StepCallback, should_stop: StopCheck) -> GenerationOutput:
        """The pipeline call, decode included: the output holds the frames."""
        import torch

        from videophy_bench.common.video import to_uint8

        p = job.params
        self._scheduler_for(p.flow_shift)

        def callback(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            on_step(i + 1, p.num_inference_steps)
            if should_stop():
                raise Cancelled(f"cancelled after step {i + 1}/{p.num_inference_steps}")
            return {}

        timings: dict[str, float] = {}
        generator = torch.Generator(device=self.device).manual_seed(p.seed)
        t0 = time.perf_counter()
        with torch.inference_mode(), _timed_decode(self.pipe.vae, timings):
            frames = self.pipe(
                prompt=job.prompt, negative_prompt=p.negative_prompt, height=p.height, width=p.width,
                num_frames=p.num_frames, num_inference_steps=p.num_inference_steps,
                guidance_scale=p.guidance_scale, generator=generator, output_type="np",
                max_sequence_length=p.max_sequence_length, callback_on_step_end=callback,
                **self.call_kwargs(p),
            ).frames[0]
        timings["denoise"] = time.perf_counter() - t0 - timings.get("vae_decode", 0.0)
        return GenerationOutput(frames=to_uint8(frames), timings_s=timings,
                                prompt_tokens=self.count_tokens(job.prompt),
                                negative_prompt_tokens=self.count_tokens(p.negative_prompt))

    def decode(self, out: GenerationOutput, side_stream: bool = False) -> GenerationOutput:
        return out  # `denoise` decoded already

    # -- memory ----------------------------------------------------------------------------------
    def free_memory(self) -> None:
        free_device_memory()

    def enable_low_memory(self) -> None:
        if self._low_memory:
            return
        enter_low_memory(self.pipe, self.device)
        self._low_memory = True
        self.acceleration += "+low-memory"
