"""The device watchdog on a real evaluator server: a judge batch held on its gate (a wedged GPU)
fails liveness once the watchdog's clock passes --stall-limit-s; the batch finishing restores it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from service_harness import SERVING, ManualClock, assert_stall_fails_liveness, health_status, watch_with

# The session fixtures `tiny_judge` and `storage` come from test_service as well.
from test_service import (  # noqa: F401
    RecordingJudge,
    evaluate,
    request,
    running_evaluator,
    storage,
    tiny_judge,
)

from videophy_bench.evaluator.judge import MplugOwlJudge


def test_a_stalled_judge_batch_fails_liveness_until_it_finishes(
        tiny_judge: MplugOwlJudge, storage: Path) -> None:  # noqa: F811
    recorder = RecordingJudge(tiny_judge)
    recorder.gate = threading.Event()
    clock = ManualClock()

    async def main() -> None:
        async with (
            running_evaluator(lambda: recorder, storage, ["--stall-limit-s", "120"],
                              on_exit=recorder.gate.set) as run,
            run.channel() as ch,
        ):
            watch_with(run, clock)
            clock.advance(10_000)
            assert await health_status(run.target, "") == SERVING  # idle: nothing to stall
            call = asyncio.ensure_future(evaluate(ch, request()))
            try:
                assert await asyncio.to_thread(recorder.entered.wait, 30)  # the forward is held
                await assert_stall_fails_liveness(run, clock, 120)
            finally:
                recorder.gate.set()
            _, result = await call
            assert result.answers
            assert await health_status(run.target, "") == SERVING

    asyncio.run(main())


def test_a_judge_waiting_on_an_endpoint_is_not_watched(tiny_judge: MplugOwlJudge, storage: Path) -> None:  # noqa: F811
    """A judge that only waits on a remote endpoint (`device_work = False`, the openai-vlm judge) is
    bounded by its own timeouts: a long wait is a per-video error, never a failed liveness probe."""
    recorder = RecordingJudge(tiny_judge)
    recorder.device_work = False
    recorder.gate = threading.Event()
    clock = ManualClock()

    async def main() -> None:
        async with (
            running_evaluator(lambda: recorder, storage, ["--stall-limit-s", "120"],
                              on_exit=recorder.gate.set) as run,
            run.channel() as ch,
        ):
            watch_with(run, clock)
            call = asyncio.ensure_future(evaluate(ch, request()))
            try:
                assert await asyncio.to_thread(recorder.entered.wait, 30)  # the batch is held
                clock.advance(10_000)
                assert await health_status(run.target, "") == SERVING
            finally:
                recorder.gate.set()
            _, result = await call
            assert result.answers

    asyncio.run(main())
