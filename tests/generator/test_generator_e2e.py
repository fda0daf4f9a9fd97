"""Generation end to end over gRPC on the real tiny diffusers pipelines, and parity with plain diffusers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from generator_harness import SERVICE_NAME, generate, request, running_generator, tiny_backend
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from videophy_bench.common.storage import sha256_file
from videophy_bench.common.video import decode_mp4, to_uint8
from videophy_bench.generator.backend import GenerationJob
from videophy_bench.generator.cli import build_parser, make_backend
from videophy_bench.generator.presets import PRESETS, WAN_NEGATIVE_PROMPT, Params, resolve
from videophy_bench.proto.v1 import common_pb2, generator_pb2_grpc

PROMPT = "a man throws a ball into the water"


def _direct_wan(model_dir: Path, params: Params, prompt: str) -> np.ndarray:
    """The same video from a freshly loaded diffusers WanPipeline, every parameter passed explicitly."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline

    vae = AutoencoderKLWan.from_pretrained(model_dir, subfolder="vae", dtype=torch.float32)
    pipe = WanPipeline.from_pretrained(model_dir, vae=vae, dtype=torch.float32)
    # The Hub/tiny scheduler may carry another shift (A14B: 3.0); the maintainers' way to set it.
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config, flow_shift=params.flow_shift)
    pipe.set_progress_bar_config(disable=True)
    kwargs: dict[str, Any] = {}
    if params.guidance_scale_2 is not None:
        kwargs["guidance_scale_2"] = params.guidance_scale_2
    out = pipe(
        prompt=prompt,
        negative_prompt=params.negative_prompt,
        height=params.height,
        width=params.width,
        num_frames=params.num_frames,
        num_inference_steps=params.num_inference_steps,
        guidance_scale=params.guidance_scale,
        generator=torch.Generator("cpu").manual_seed(params.seed),
        output_type="np",
        max_sequence_length=params.max_sequence_length,
        **kwargs,
    )
    return out.frames[0]


def test_generate_end_to_end(tmp_path: Path) -> None:
    """The CLI's own backend factory, warm-up included; progress, result fields and the MP4 on disk."""

    async def main() -> None:
        backend = make_backend(build_parser().parse_args(["--model", "tiny", "--device", "cpu"]))
        async with (
            running_generator(backend, tmp_path, ["--model", "tiny"], warmup=True) as run,
            run.channel() as ch,
        ):
            events, res = await generate(ch, request("r1", "p1", PROMPT, seed=11, steps=4))
            steps = [(e.progress.phase, e.progress.step, e.progress.total_steps) for e in events[:-1]]
            assert steps == [("queued", 0, 4)] + [("denoise", k, 4) for k in range(1, 5)]
            elapsed = [e.progress.elapsed_s for e in events[1:-1]]
            assert elapsed == sorted(elapsed) and elapsed[0] > 0

            assert res.artifact.uri == "videos/p1/r1.mp4" and res.artifact.mime == "video/mp4"
            path = tmp_path / res.artifact.uri
            assert res.artifact.sha256 == sha256_file(path) and res.artifact.bytes == path.stat().st_size
            assert (res.num_frames, res.height, res.width, res.fps) == (9, 64, 64, 24)
            assert res.duration_s == pytest.approx(9 / 24)
            assert not res.cached and res.attempts == 1
            p = res.params
            assert (p.num_inference_steps, p.seed, p.guidance_scale, p.flow_shift) == (4, 11, 5.0, 5.0)
            assert p.negative_prompt == WAN_NEGATIVE_PROMPT and p.max_sequence_length == 512
            assert not p.HasField("guidance_scale_2") and not p.HasField("boundary_ratio")
            assert p.scheduler == "UniPCMultistepScheduler" and p.acceleration
            assert (res.model.model_id, res.model.preset, res.model.dtype) == (
                "videophy-bench/tiny",
                "tiny",
                "float32",
            )
            assert res.model.revision.startswith("local:")
            assert res.runtime.device == "cpu" and "diffusers" in res.runtime.library_versions
            assert {"text_encode", "denoise", "vae_decode", "mp4_encode", "total"} <= set(res.timings_s)

            frames, meta = decode_mp4(path)
            assert frames.shape == (9, 64, 64, 3)
            assert (meta.frames, meta.width, meta.height, meta.fps) == (9, 64, 64, 24.0)
            assert frames.std() > 1.0  # a real (noisy) video, not a blank one

            # Overrides reach the pipeline and the container.
            _, res2 = await generate(
                ch,
                request("r2", "p1", PROMPT, seed=11, steps=2, num_frames=13, height=96, width=64, fps=12),
            )
            frames2, meta2 = decode_mp4(tmp_path / res2.artifact.uri)
            assert frames2.shape == (13, 96, 64, 3) and meta2.fps == 12.0
            assert (res2.num_frames, res2.height, res2.width, res2.fps) == (13, 96, 64, 12)

    asyncio.run(main())


def test_same_seed_same_frames_other_seed_differs(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_generator(tiny_backend("tiny"), tmp_path) as run, run.channel() as ch:
            _, a = await generate(ch, request("a", seed=5))
            _, b = await generate(ch, request("b", seed=5))
            _, c = await generate(ch, request("c", seed=6))
        fa, fb, fc = (decode_mp4(tmp_path / r.artifact.uri)[0] for r in (a, b, c))
        assert np.array_equal(fa, fb)
        assert np.abs(fa.astype(int) - fc.astype(int)).mean() > 5

    asyncio.run(main())


@pytest.mark.parametrize("preset", ["tiny", "tiny-moe"])
def test_backend_equals_direct_wanpipeline(preset: str, tiny_models: dict[str, Path]) -> None:
    """Precomputed embeddings, scheduler swap and the explicit parameters change nothing vs diffusers."""
    backend = tiny_backend(preset)
    backend.load()
    params = resolve(PRESETS[preset], seed=123, num_inference_steps=4)
    ours = backend.generate(GenerationJob(PROMPT, params), lambda *_: None, lambda: False).frames
    theirs = _direct_wan(tiny_models[preset], params, PROMPT)
    assert ours.shape == theirs.shape == (params.num_frames, params.height, params.width, 3)
    # Our decode rounds to uint8 on the device with to_uint8's arithmetic; the shared timestep (TI2V)
    # only moves float rounding, so at most a rare pixel sits one level off.
    diff = np.abs(ours.astype(int) - to_uint8(theirs).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())
    # Guard that the comparison can fail: another seed is far away.
    other = _direct_wan(
        tiny_models[preset], resolve(PRESETS[preset], seed=124, num_inference_steps=4), PROMPT
    )
    assert np.abs(other - theirs).mean() > 1e-2


def test_plain_preset_frames_are_bit_identical_to_wanpipeline(tiny_models: dict[str, Path]) -> None:
    """Preset `none` + our own decode (device-side uint8 rounding) == WanPipeline + to_uint8, exactly."""
    backend = tiny_backend("tiny")
    backend.acceleration_preset = "none"
    backend.load()
    params = resolve(PRESETS["tiny"], seed=77, num_inference_steps=3)
    ours = backend.generate(GenerationJob(PROMPT, params), lambda *_: None, lambda: False).frames
    assert np.array_equal(ours, to_uint8(_direct_wan(tiny_models["tiny"], params, PROMPT)))


def test_mp4_matches_direct_wanpipeline_within_codec_tolerance(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    async def main() -> np.ndarray:
        async with running_generator(tiny_backend("tiny"), tmp_path) as run, run.channel() as ch:
            _, res = await generate(ch, request("r1", prompt=PROMPT, seed=9, steps=3))
        return decode_mp4(tmp_path / res.artifact.uri)[0]

    decoded = asyncio.run(main()).astype(np.float32)
    direct = _direct_wan(tiny_models["tiny"], resolve(PRESETS["tiny"], seed=9, num_inference_steps=3), PROMPT)
    # yuv420p keeps chroma at 2x2 resolution and random weights make pixel-level colour noise, so compare
    # luma (BT.601) per pixel and colour per 2x2 block; both errors are ~1.5 levels of 255 here.
    luma_err = np.abs(_luma(decoded) - _luma(direct * 255.0)).mean()
    block_err = np.abs(_blocks(decoded) - _blocks(direct * 255.0)).mean()
    assert luma_err < 4.0 and block_err < 6.0, (luma_err, block_err)
    # Guard: another seed is far further away than the codec error.
    other = _direct_wan(tiny_models["tiny"], resolve(PRESETS["tiny"], seed=10, num_inference_steps=3), PROMPT)
    assert np.abs(_luma(decoded) - _luma(other * 255.0)).mean() > 4 * luma_err


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _blocks(rgb: np.ndarray) -> np.ndarray:
    f, h, w, c = rgb.shape
    return rgb.reshape(f, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def test_warmup_compiles_both_experts_before_ready() -> None:
    """The warm-up runs enough steps for its schedule to reach the low-noise expert too, so no expert is
    compiled on the first real request."""
    backend = tiny_backend("tiny-moe")
    backend.load()
    calls = {"transformer": 0, "transformer_2": 0}
    hooks = [getattr(backend.pipe, name).register_forward_hook(
        lambda *_, name=name: calls.__setitem__(name, calls[name] + 1)) for name in calls]
    try:
        backend.warmup()
    finally:
        for h in hooks:
            h.remove()
    assert calls["transformer"] > 0 and calls["transformer_2"] > 0, calls


def test_moe_switches_experts_at_boundary() -> None:
    """High-noise expert while t >= 0.875*1000, low-noise after; the split follows flow shift 12."""
    from diffusers import UniPCMultistepScheduler

    backend = tiny_backend("tiny-moe")
    backend.load()
    pipe = backend.pipe
    seen: dict[str, list[float]] = {"transformer": [], "transformer_2": []}

    def hook(name: str):
        def pre(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            seen[name].append(float(kwargs["timestep"].flatten()[0]))

        return pre

    handles = [getattr(pipe, n).register_forward_pre_hook(hook(n), with_kwargs=True) for n in seen]
    steps = 8
    try:
        params = resolve(PRESETS["tiny-moe"], seed=1, num_inference_steps=steps)
        backend.generate(GenerationJob(PROMPT, params), lambda *_: None, lambda: False)
    finally:
        for h in handles:
            h.remove()

    def split(shift: float) -> int:
        sched = UniPCMultistepScheduler.from_config(backend._base_scheduler_config, flow_shift=shift)
        sched.set_timesteps(steps)
        return sum(float(t) >= 0.875 * 1000 for t in sched.timesteps)

    high = split(12.0)
    assert (high, split(3.0)) == (6, 3)  # the shift matters, so the counts below pin it to 12
    # CFG (guidance 4.0 > 1) runs each expert twice per step: cond and uncond.
    assert len(seen["transformer"]) == 2 * high
    assert len(seen["transformer_2"]) == 2 * (steps - high)
    assert min(seen["transformer"]) >= 875 > max(seen["transformer_2"])
    assert params.boundary_ratio == 0.875 and pipe.config.boundary_ratio == 0.875


def test_get_info_and_reflection(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_generator(tiny_backend("tiny-moe"), tmp_path) as run, run.channel() as ch:
            info = await generator_pb2_grpc.GeneratorServiceStub(ch).GetInfo(
                common_pb2.GetInfoRequest(), timeout=5
            )
            assert info.active_preset == "tiny-moe" and info.capacity == 2  # running + --queue-depth 1
            assert info.model.model_id == "videophy-bench/tiny-moe" and info.model.revision.startswith(
                "local:"
            )
            assert info.runtime.device == "cpu" and info.runtime.hostname
            presets = {p.name: p for p in info.presets}
            assert set(presets) == set(PRESETS)
            a14b = presets["wan2.2-t2v-a14b"]
            assert a14b.model_id == "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
            assert (
                a14b.defaults.flow_shift,
                a14b.defaults.boundary_ratio,
                a14b.defaults.guidance_scale_2,
            ) == (12.0, 0.875, 3.0)
            assert (a14b.defaults.num_frames, a14b.defaults.fps, a14b.defaults.num_inference_steps) == (
                81,
                16,
                40,
            )
            assert presets["wan2.2-ti2v-5b"].defaults.negative_prompt == WAN_NEGATIVE_PROMPT

            stub = reflection_pb2_grpc.ServerReflectionStub(ch)
            replies = [
                r
                async for r in stub.ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
                )
            ]
            names = {s.name for s in replies[0].list_services_response.service}
            assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names

    asyncio.run(main())
