"""The real backend: diffusers' WanPipeline, loaded once per process.

Transformer in bf16 and VAE in fp32 on GPU (fp32 everywhere on CPU). The flow shift is set by
replacing the scheduler, prompt embeddings are cached so text encoding leaves the per-video path,
and every step reports progress and checks for cancellation.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from videophy_bench.common.cache import cache_dir
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

EMBED_CACHE_SIZE = 4096
# A decode may overlap the next denoise when both peaks together stay under this share of the device.
OVERLAP_MEMORY_FRACTION = 0.85


def _embed_key(text: str, max_len: int) -> str:
    """Key of a prompt's cached embedding: the text and the sequence length it was padded to."""
    return hashlib.sha256(f"{max_len}\x00{text}".encode()).hexdigest()


def resolve_model_dir(preset: Preset, model_path: str | None, revision: str | None,
                      cache_dir: str | None) -> tuple[Path, str]:
    """Local directory of the weights and the revision to record.

    A local directory is used as is (revision "local:<config hash>"); otherwise the preset's Hub repo
    is fetched through huggingface_hub (honours HF_HOME, HF_TOKEN and HF_HUB_OFFLINE) and the
    snapshot's commit hash is the revision.
    """
    source = model_path or preset.model_id
    if not source:
        raise InvalidRequest(f"preset {preset.name} has no Hub repo; pass --model-path")
    local = Path(source)
    if local.is_dir():
        index = local / "model_index.json"
        if not index.is_file():
            raise InvalidRequest(f"{local} is not a diffusers pipeline directory (no model_index.json)")
        digest = hashlib.sha256()
        for cfg in [*sorted(local.glob("*/config.json")), index]:
            digest.update(cfg.read_bytes())
        return local, f"local:{digest.hexdigest()[:12]}"
    from huggingface_hub import snapshot_download

    from videophy_bench.common import hub

    try:
        path = Path(hub.fetch(source, snapshot_download, repo_id=source, revision=revision,
                              cache_dir=cache_dir))
    except hub.HubUnavailable as exc:
        raise hub.HubUnavailable(f"{exc}; give a local diffusers directory with --model-path DIR, "
                                 f"{hub.WARM_CACHE_HINT}") from None
    return path, path.name  # snapshots/<commit sha>


class DiffusersWanBackend:
    """WanPipeline behind the GeneratorBackend contract (see videophy_bench.generator.backend)."""

    def __init__(self, preset: Preset, model_dir: Path, revision: str, device: str,
                 model_id: str | None = None, compile_blocks: bool | None = None,
                 acceleration: str = "lossless") -> None:
        self.preset = preset
        self.model_dir = Path(model_dir)
        self.model_id = model_id or preset.model_id or str(model_dir)
        self.revision = revision
        self.device = device
        self.compile_blocks = compile_blocks
        self.dtype = "bfloat16" if device.startswith("cuda") else "float32"
        self.acceleration_preset = acceleration  # videophy_bench.generator.acceleration.PRESET_NAMES
        self.acceleration = acceleration
        self.pipe: Any = None
        self.scheduler_name = ""
        self._embeds: OrderedDict[str, Any] = OrderedDict()
        self._low_memory = False
        self._stream: Any = None
        # AutoencoderKLWan keeps its causal cache on the module (_feat_map): one decode at a time, and
        # no switch to the low-memory mode (which moves the VAE) while one runs.
        self._vae_lock = threading.Lock()
        self.decode_overlap_fits: bool | None = None  # measured by warmup() on CUDA

    # -- lifecycle -------------------------------------------------------------------------------
    def load(self) -> None:
        import torch
        from diffusers import AutoencoderKLWan, WanPipeline

        dtype = torch.bfloat16 if self.dtype == "bfloat16" else torch.float32
        t0 = time.perf_counter()
        vae = AutoencoderKLWan.from_pretrained(self.model_dir, subfolder="vae", dtype=torch.float32)
        pipe = WanPipeline.from_pretrained(self.model_dir, vae=vae, dtype=dtype)
        self._check_layout(pipe)  # before the (large) transfer to the device
        self.attach(pipe.to(self.device))
        log.info("loaded %s (%s) on %s in %.1fs", self.model_id, self.revision, self.device,
                 time.perf_counter() - t0)

    def attach(self, pipe: Any) -> None:
        """Take a pipeline already on the device: the preset's scheduler and the acceleration preset."""
        from diffusers import UniPCMultistepScheduler

        from videophy_bench.generator.acceleration import apply_acceleration

        self._check_layout(pipe)
        self._base_scheduler_config = dict(pipe.scheduler.config)
        pipe.scheduler = UniPCMultistepScheduler.from_config(self._base_scheduler_config,
                                                             flow_shift=self.preset.flow_shift)
        self.scheduler_name = type(pipe.scheduler).__name__
        pipe.set_progress_bar_config(disable=True)
        self.acceleration = apply_acceleration(pipe, self.acceleration_preset, self.device,
                                               self.compile_blocks)
        self.pipe = pipe

    def _check_layout(self, pipe: Any) -> None:
        """The weights must match the preset's architecture (two experts iff a boundary)."""
        has_two = getattr(pipe, "transformer_2", None) is not None
        if has_two != (self.preset.boundary_ratio is not None):
            raise InvalidRequest(
                f"{self.model_dir} has {'two experts' if has_two else 'one transformer'} but preset "
                f"{self.preset.name} expects {'two' if self.preset.boundary_ratio else 'one'}")

    def warmup(self) -> None:
        """One short generation at the preset's size: compiles kernels before we report ready, and
        measures on CUDA whether a decode fits in memory beside a denoise (`decode_overlap_fits`)."""
        from videophy_bench.generator.presets import resolve

        job = GenerationJob("warm up", resolve(self.preset, seed=0, num_inference_steps=self._warmup_steps()))
        if not self.device.startswith("cuda"):
            self.generate(job, lambda *_: None, lambda: False)
            return
        import torch

        dev = torch.device(self.device)
        # Encode first: the parked text encoder's visit to the GPU is not part of a denoise's peak.
        self.prepare([job.prompt], job.params.negative_prompt)
        torch.cuda.reset_peak_memory_stats(dev)
        out = self.denoise(job, lambda *_: None, lambda: False)
        denoise_peak = torch.cuda.max_memory_allocated(dev)
        held = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        self.decode(out)
        decode_extra = torch.cuda.max_memory_allocated(dev) - held
        total = torch.cuda.get_device_properties(dev).total_memory
        # Both at once need about the sum of the allocated peaks; the margin covers what the allocator
        # keeps cached per stream (the other stream cannot reuse it). An estimate: an out-of-memory in
        # an overlapped decode still turns the overlap off and decodes again (GenerationEngine).
        self.decode_overlap_fits = denoise_peak + decode_extra <= OVERLAP_MEMORY_FRACTION * total
        log.info("warm-up peaks: denoise %.1f GiB, decode +%.1f GiB of %.1f GiB: overlap %s",
                 denoise_peak / 2**30, decode_extra / 2**30, total / 2**30,
                 "fits" if self.decode_overlap_fits else "does not fit")

    def _warmup_steps(self, most: int = 8) -> int:
        """2, or for two experts the fewest steps whose schedule reaches both, so both are compiled
        before ready (A14B at shift 12, boundary 875: 2 steps give timesteps 999, 923; 3 give 999,
        960, 857)."""
        if self.preset.boundary_ratio is None:
            return 2
        from diffusers import UniPCMultistepScheduler

        boundary = self.preset.boundary_ratio * self.pipe.scheduler.config.num_train_timesteps
        sched = UniPCMultistepScheduler.from_config(self._base_scheduler_config,
                                                    flow_shift=self.preset.flow_shift)
        for n in range(2, most + 1):
            sched.set_timesteps(n, device="cpu")
            ts = sched.timesteps
            if bool((ts >= boundary).any()) and bool((ts < boundary).any()):
                return n
        return most

    # -- text ------------------------------------------------------------------------------------
    def _encode(self, text: str, max_len: int) -> Any:
        key = _embed_key(text, max_len)
        if key in self._embeds:
            self._embeds.move_to_end(key)
            return self._embeds[key]
        import torch

        from videophy_bench.generator.acceleration import text_encoder_on

        with torch.inference_mode(), text_encoder_on(self.pipe, self.device):
            embeds, _ = self.pipe.encode_prompt(
                prompt=text, negative_prompt=None, do_classifier_free_guidance=False,
                num_videos_per_prompt=1, max_sequence_length=max_len, device=self.device,
            )
        self._embeds[key] = embeds
        while len(self._embeds) > EMBED_CACHE_SIZE:
            self._embeds.popitem(last=False)
        return embeds

    def count_tokens(self, text: str) -> int:
        """The prompt's tokens with the pipeline's own tokenizer, as `encode_prompt` tokenizes it but
        before its cut at max_sequence_length (device thread: the tokenizer is not shared across threads)."""
        return prompt_tokens.count(self.pipe.tokenizer, text)

    def prepare(self, prompts: list[str], negative_prompt: str) -> tuple[int, int]:
        texts = [*prompts, negative_prompt]
        max_len = self.preset.max_sequence_length
        cached = sum(_embed_key(t, max_len) in self._embeds for t in texts)
        if cached < len(texts):
            from videophy_bench.generator.acceleration import text_encoder_on

            with text_encoder_on(self.pipe, self.device):  # one round trip of a parked encoder
                for t in texts:
                    self._encode(t, max_len)
        return len(texts) - cached, cached

    # -- generation ------------------------------------------------------------------------------
    def _scheduler_for(self, shift: float) -> None:
        from diffusers import UniPCMultistepScheduler

        if float(self.pipe.scheduler.config.flow_shift) != float(shift):
            self.pipe.scheduler = UniPCMultistepScheduler.from_config(self._base_scheduler_config,
                                                                      flow_shift=shift)

    def generate(self, job: GenerationJob, on_step: StepCallback, should_stop: StopCheck) -> GenerationOutput:
        return self.decode(self.denoise(job, on_step, should_stop))

    def denoise(self, job: GenerationJob, on_step: StepCallback, should_stop: StopCheck) -> GenerationOutput:
        """The denoising loop; the output carries the final latents (on the device) and no frames."""
        import torch

        p = job.params
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        prompt_embeds = self._encode(job.prompt, p.max_sequence_length)
        negative_embeds = self._encode(p.negative_prompt, p.max_sequence_length)
        timings["text_encode"] = time.perf_counter() - t0
        self._scheduler_for(p.flow_shift)

        def callback(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            on_step(i + 1, p.num_inference_steps)
            if should_stop():
                raise Cancelled(f"cancelled after step {i + 1}/{p.num_inference_steps}")
            return {}

        kwargs: dict[str, Any] = {}
        if p.guidance_scale_2 is not None:
            kwargs["guidance_scale_2"] = p.guidance_scale_2
        generator = torch.Generator(device=self.device).manual_seed(p.seed)
        t1 = time.perf_counter()
        with torch.inference_mode():
            latents = self.pipe(
                prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds,
                height=p.height, width=p.width, num_frames=p.num_frames,
                num_inference_steps=p.num_inference_steps, guidance_scale=p.guidance_scale,
                generator=generator, output_type="latent", max_sequence_length=p.max_sequence_length,
                callback_on_step_end=callback, **kwargs,
            ).frames
        if self.device.startswith("cuda"):
            torch.cuda.current_stream().synchronize()  # denoise time is device time; the latents are final
        timings["denoise"] = time.perf_counter() - t1
        return GenerationOutput(frames=None, latents=latents, timings_s=timings,
                                prompt_tokens=self.count_tokens(job.prompt),
                                negative_prompt_tokens=self.count_tokens(p.negative_prompt))

    def decode(self, out: GenerationOutput, side_stream: bool = False) -> GenerationOutput:
        """VAE decode of `out.latents` into uint8 frames (F, H, W, 3), in place on `out`.

        The same arithmetic as WanPipeline's own decode plus `output_type="np"` and
        `videophy_bench.common.video.to_uint8` (denormalise, clamp, x255, round half to even), but the
        rounding runs on the device, so a quarter of the bytes cross to the host and no float copy of
        the video is made there. `side_stream` runs it on the backend's decode stream (CUDA), so it can
        overlap the next item's denoising on the default stream."""
        import torch
        from diffusers.utils.torch_utils import get_module_execution_device

        vae = self.pipe.vae
        t0 = time.perf_counter()
        stream = self._decode_stream() if side_stream else None
        with self._vae_lock, torch.inference_mode(), (torch.cuda.stream(stream) if stream is not None
                                                      else contextlib.nullcontext()):
            latents = out.latents
            if stream is not None:
                # `denoise` synchronized its stream, so the latents are final: no wait here (waiting on
                # the default stream would wait for the next item's kernels queued there meanwhile).
                latents.record_stream(stream)
            latents = latents.to(get_module_execution_device(vae), dtype=vae.dtype)
            shape = (1, vae.config.z_dim, 1, 1, 1)
            mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents.device, latents.dtype)
            inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(shape).to(latents.device, latents.dtype)
            video = vae.decode(latents / inv_std + mean, return_dict=False)[0]  # (1, 3, F, H, W) in [-1, 1]
            frames = torch.round((video[0] * 0.5 + 0.5).clamp(0, 1) * 255.0).to(torch.uint8)
            frames = frames.permute(1, 2, 3, 0).contiguous().cpu().numpy()  # the host copy syncs
        out.frames, out.latents = frames, None
        out.timings_s["vae_decode"] = time.perf_counter() - t0
        return out

    def _decode_stream(self) -> Any:
        import torch

        if not self.device.startswith("cuda"):
            return None
        if self._stream is None:
            self._stream = torch.cuda.Stream(device=torch.device(self.device))
        return self._stream

    # -- memory ----------------------------------------------------------------------------------
    def free_memory(self) -> None:
        free_device_memory()

    def enable_low_memory(self) -> None:
        """VAE tiling plus offload of idle components (`enter_low_memory`), not while a decode runs."""
        with self._vae_lock:
            if self._low_memory:
                return
            enter_low_memory(self.pipe, self.device)
            self._low_memory = True
        self.acceleration += "+low-memory"


def default_tiny_dir(layout: str) -> Path:
    return cache_dir() / f"tiny-wan-{layout}"
