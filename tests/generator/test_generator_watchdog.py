"""The device watchdog on a real generator server: a denoising step held on an event (a wedged GPU)
turns liveness NOT_SERVING once the watchdog's clock passes --stall-limit-s, readiness untouched; the
step moving again turns it back. The clock is advanced by the test (service_harness.ManualClock)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from generator_harness import (
    SERVING,
    InstrumentedBackend,
    generate,
    health_status,
    request,
    running_generator,
    tiny_backend,
)
from service_harness import ManualClock, assert_stall_fails_liveness, watch_with

from videophy_bench.generator.backend import GenerationJob, GenerationOutput, StepCallback, StopCheck


class WedgedBackend(InstrumentedBackend):
    """The real tiny backend whose denoising blocks after step 1 until `release` is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wedged = threading.Event()
        self.release = threading.Event()

    def denoise(self, job: GenerationJob, on_step: StepCallback, should_stop: StopCheck) -> GenerationOutput:
        def step(k: int, n: int) -> None:
            on_step(k, n)
            if k == 1:
                self.wedged.set()
                if not self.release.wait(60):
                    raise TimeoutError("test never released the step")

        return super().denoise(job, step, should_stop)


def test_a_stalled_denoising_step_fails_liveness_until_it_moves(tmp_path: Path) -> None:
    backend = tiny_backend(cls=WedgedBackend)
    clock = ManualClock()

    async def main() -> None:
        async with running_generator(backend, tmp_path, ["--stall-limit-s", "30"]) as run:
            watch_with(run, clock)
            clock.advance(1000)
            assert await health_status(run.target, "") == SERVING  # an idle device never stalls
            async with run.channel() as ch:
                call = asyncio.ensure_future(generate(ch, request(steps=3)))
                try:
                    assert await asyncio.to_thread(backend.wedged.wait, 30)  # step 1 reported, then held
                    await assert_stall_fails_liveness(run, clock, 30)
                finally:
                    backend.release.set()
                _, result = await call
            assert result.artifact.uri and backend.steps_history[-1] == 3
            assert await health_status(run.target, "") == SERVING

    asyncio.run(main())


def test_no_limit_never_fails_liveness(tmp_path: Path) -> None:
    backend = tiny_backend(cls=WedgedBackend)
    clock = ManualClock()

    async def main() -> None:
        async with running_generator(backend, tmp_path, ["--stall-limit-s", "0"]) as run:
            watch_with(run, clock)
            async with run.channel() as ch:
                call = asyncio.ensure_future(generate(ch, request(steps=2)))
                try:
                    assert await asyncio.to_thread(backend.wedged.wait, 30)
                    clock.advance(10**6)
                    assert await health_status(run.target, "") == SERVING
                finally:
                    backend.release.set()
                await call

    asyncio.run(main())
