"""A non-Wan family behind the real GeneratorService (grpc.aio on loopback): the family's own
parameters over the wire, recorded in the result and the sidecar fingerprint, refused by its rules
before any model work, cancelled at the next step, and listed by GetInfo."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import grpc
from generator_harness import generate, generate_code, request, running_generator

from videophy_bench.generator.backend import GenerationJob, GenerationOutput, StepCallback, StopCheck
from videophy_bench.generator.families import get_backend
from videophy_bench.generator.pipeline_backend import DiffusersPipelineBackend
from videophy_bench.generator.presets import PRESETS, get_preset
from videophy_bench.proto.v1 import common_pb2, generator_pb2_grpc


class HeldBackend(DiffusersPipelineBackend):
    """The real pipeline backend; a prompt "hold" waits after step 1 until the call is stopped."""

    calls = 0

    def denoise(self, job: GenerationJob, on_step: StepCallback, should_stop: StopCheck) -> GenerationOutput:
        self.calls += 1

        def step(k: int, n: int) -> None:
            on_step(k, n)
            deadline = time.monotonic() + 120  # bounds a broken test; a pass ends at the cancel
            while job.prompt == "hold" and not should_stop() and time.monotonic() < deadline:
                time.sleep(0.01)

        return super().denoise(job, step, should_stop)


def _backend(preset: str, cls: type = HeldBackend) -> Any:
    plain = get_backend(get_preset(preset), device="cpu")  # builds the tiny pipeline (once)
    return cls(plain.preset, plain.model_dir, plain.revision, "cpu", model_id=plain.model_id)


def test_family_parameters_travel_are_recorded_and_refused_by_the_family_rules(tmp_path: Path) -> None:
    backend = _backend("tiny-cogvideox")

    async def main() -> None:
        async with running_generator(backend, tmp_path) as run, run.channel() as ch:
            _, res = await generate(ch, request("dyn", extra={"use_dynamic_cfg": 0.0}))
            assert dict(res.params.extra) == {"use_dynamic_cfg": 0.0}
            assert not res.params.HasField("flow_shift")  # CogVideoX's scheduler takes no shift
            assert res.params.scheduler == "CogVideoXDPMScheduler" and res.model.preset == "tiny-cogvideox"
            assert (res.num_frames, res.height, res.width) == (9, 32, 48)
            side = json.loads((tmp_path / "videos" / "p1" / "dyn.json").read_text())
            assert side["result"]["params"]["extra"] == {"use_dynamic_cfg": 0.0}
            _, again = await generate(ch, request("dyn", extra={"use_dynamic_cfg": 0.0}))
            assert again.cached and again.artifact.sha256 == res.artifact.sha256
            # The same request id with another value of the family's parameter is another video.
            code, details = await generate_code(ch, request("dyn", extra={"use_dynamic_cfg": 1.0}))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and "already used" in details
            calls = backend.calls
            for bad, words in (({"extra": {"true_cfg_scale": 2.0}}, "not a parameter of the cogvideox"),
                               ({"flow_shift": 3.0}, "flow_shift is not a parameter"),
                               ({"num_frames": 10}, "num_frames=10 must be 4k+1")):
                code, details = await generate_code(ch, request("bad", **bad))
                assert code == grpc.StatusCode.INVALID_ARGUMENT and words in details, details
            assert backend.calls == calls  # refused before the model ran
            info = await generator_pb2_grpc.GeneratorServiceStub(ch).GetInfo(common_pb2.GetInfoRequest())
            listed = {p.name: p for p in info.presets}
            assert set(listed) == set(PRESETS) and info.active_preset == "tiny-cogvideox"
            assert (listed["ltx-video"].family, listed["ltx-video"].pipeline) == ("ltx", "LTXPipeline")
            assert dict(listed["cogvideox-5b"].defaults.extra) == {"use_dynamic_cfg": 1.0}
            assert "THUDM/CogVideoX-5b" in listed["cogvideox-5b"].source

    asyncio.run(main())


def test_cancel_stops_a_family_pipeline_at_the_next_step(tmp_path: Path) -> None:
    backend = _backend("tiny-ltx")

    async def main() -> None:
        async with running_generator(backend, tmp_path) as run, run.channel() as ch:
            stub = generator_pb2_grpc.GeneratorServiceStub(ch)
            stream = stub.Generate(request("held", prompt="hold", steps=3))
            async for ev in stream:
                if ev.WhichOneof("event") == "progress" and ev.progress.phase == "denoise":
                    break
            stream.cancel()
            _, res = await generate(ch, request("next"))  # the device is free again
            assert res.num_frames == 9
        assert not (tmp_path / "videos" / "p1" / "held.mp4").exists()

    asyncio.run(main())
