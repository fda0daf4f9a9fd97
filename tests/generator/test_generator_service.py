"""GeneratorService behaviour under load, failure and shutdown: health, drain, validation, cancel,
deadline, busy, idempotency and the OOM fallback, all over a real grpc.aio server."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest
from generator_harness import (
    NOT_SERVING,
    SERVICE_NAME,
    SERVING,
    InstrumentedBackend,
    generate,
    generate_code,
    health_status,
    request,
    running_generator,
    tiny_backend,
    wait_for_health,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from videophy_bench.common.limits import MAX_ID_CHARS, MAX_PREPARE_PROMPTS, MAX_PROMPT_CHARS, MAX_URI_CHARS
from videophy_bench.common.storage import sha256_file
from videophy_bench.common.video import decode_mp4
from videophy_bench.proto.v1 import common_pb2, generator_pb2, generator_pb2_grpc

INVALID = grpc.StatusCode.INVALID_ARGUMENT


async def _first_denoise_step(stream: object) -> None:
    async for ev in stream:  # type: ignore[attr-defined]
        if ev.WhichOneof("event") == "progress" and ev.progress.step >= 1:
            return
    raise AssertionError("stream ended before any denoising step")


async def _succeeds_within(
    ch: grpc.aio.Channel,
    req: generator_pb2.GenerateRequest,
    seconds: float,
) -> generator_pb2.GenerateResult:
    """The device is free again within `seconds`: a new request runs (RESOURCE_EXHAUSTED until then)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return (await generate(ch, req))[1]
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


def _slow(preset: str = "tiny", delay_s: float = 0.25) -> InstrumentedBackend:
    backend = tiny_backend(preset)
    backend.step_delay_s = delay_s
    return backend


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# -- health and drain ------------------------------------------------------------------------------------
def test_health_not_serving_while_loading_then_serving(tmp_path: Path) -> None:
    backend = tiny_backend("tiny")
    backend.load_gate = threading.Event()

    async def main() -> None:
        async with running_generator(backend, tmp_path, warmup=True, wait_ready=False) as run:
            for service in ("readiness", SERVICE_NAME):
                assert await health_status(run.target, service) == NOT_SERVING
            assert await health_status(run.target, "") == SERVING  # liveness while the model loads
            async with run.channel() as ch:
                watch = health_pb2_grpc.HealthStub(ch).Watch(
                    health_pb2.HealthCheckRequest(service="readiness")
                )
                assert (await watch.read()).status == NOT_SERVING
                code, details = await generate_code(ch, request())
                assert code == grpc.StatusCode.UNAVAILABLE and "loading" in details
                backend.load_gate.set()
                assert (await asyncio.wait_for(watch.read(), 30)).status == SERVING  # after load + warm-up
                watch.cancel()
                assert backend.generate_calls == 1  # the warm-up ran before ready
                _, res = await generate(ch, request())
                assert res.artifact.uri

    asyncio.run(main())


def test_sigterm_drains_readiness_off_liveness_on_item_finishes(tmp_path: Path) -> None:
    backend = _slow(delay_s=0.25)

    async def main() -> None:
        async with running_generator(backend, tmp_path, ["--grace-s", "30"]) as run:
            async with run.channel() as ch, run.channel() as ch2:
                stream = generator_pb2_grpc.GeneratorServiceStub(ch).Generate(request("inflight", steps=8))
                await _first_denoise_step(stream)
                os.kill(os.getpid(), signal.SIGTERM)  # cli.serve installed the handler
                await wait_for_health(run.target, "readiness", NOT_SERVING, timeout_s=2)
                assert backend.running.is_set(), "drain must not interrupt the item in flight"
                assert await health_status(run.target, SERVICE_NAME) == NOT_SERVING
                assert await health_status(run.target, "") == SERVING  # liveness answers during the drain
                code, details = await generate_code(ch2, request("late"))
                assert code == grpc.StatusCode.UNAVAILABLE and "draining" in details
                events = [ev async for ev in stream]
                assert events[-1].WhichOneof("event") == "result"
                res = events[-1].result
                assert res.artifact.sha256 == sha256_file(tmp_path / res.artifact.uri)
                await asyncio.wait_for(run.task, 60)  # serve() returns once the item is done
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await health_status(run.target, "")
            assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
        assert not (tmp_path / "videos" / "p1" / "late.mp4").exists()

    asyncio.run(main())


def test_drain_past_grace_cancels_the_item_and_stops(tmp_path: Path) -> None:
    backend = _slow(delay_s=0.3)

    async def main() -> None:
        async with running_generator(backend, tmp_path, ["--grace-s", "0.6"]) as run, run.channel() as ch:
            stream = generator_pb2_grpc.GeneratorServiceStub(ch).Generate(request("long", steps=40))
            await _first_denoise_step(stream)
            await run.host.drain()  # returns at the grace, not after 40 steps: steps_history below
            with pytest.raises(grpc.aio.AioRpcError):
                async for _ in stream:
                    pass
            assert await asyncio.to_thread(_wait_idle, backend, 3), "worker kept running after the stop"
            assert backend.steps_done < 40

    asyncio.run(main())


def _wait_idle(backend: InstrumentedBackend, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while backend.running.is_set():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# -- validation ------------------------------------------------------------------------------------------
INVALID_REQUESTS: list[tuple[str, generator_pb2.GenerateRequest]] = [
    ("frames not 4k+1", request(num_frames=10)),
    ("zero frames", request(num_frames=0)),
    ("absurd frames", request(num_frames=100001)),
    ("height not a multiple of 32 (tiny = TI2V layout)", request(height=48)),
    ("absurd width", request(width=1 << 20)),
    ("negative height", request(height=-64)),
    ("zero steps", request(steps=0)),
    ("absurd steps", request(steps=100000)),
    ("empty prompt", request(prompt="")),
    ("blank prompt", request(prompt="  \n\t")),
    ("huge prompt", request(prompt="a" * 100_000)),
    ("guidance_scale_2 on a one-expert model", request(guidance_scale_2=3.0)),
    ("NaN guidance", request(guidance_scale=float("nan"))),
    ("zero fps", request(fps=0)),
    ("negative flow shift", request(flow_shift=-1.0)),
    ("seed beyond int63", request(seed=2**63)),
    ("empty request_id", request(request_id="")),
    ("request_id with ..", request(request_id="..")),
    ("request_id with /", request(request_id="../../etc/passwd")),
    ("request_id with a slash", request(request_id="a/b")),
    ("prompt_id with ..", request(prompt_id="..")),
    ("prompt_id with /", request(prompt_id="x/../../y")),
]
PATH_ESCAPES = ["..", "../outside", "videos/../../outside", "/abs", "/tmp/x", "a/../../b"]


def test_invalid_requests_refused_before_any_gpu_work(tmp_path: Path) -> None:
    backend = tiny_backend("tiny")
    storage = tmp_path / "storage"

    async def main() -> list[str]:
        wrong = []
        async with running_generator(backend, storage) as run, run.channel() as ch:
            cases = INVALID_REQUESTS + [(f"output_prefix {p!r}", _with_prefix(p)) for p in PATH_ESCAPES]
            for what, req in cases:
                t0 = time.monotonic()
                code, details = await generate_code(ch, req)
                if code != INVALID or not details or time.monotonic() - t0 > 2:
                    wrong.append(f"{what}: {code} {details!r}")
            # A nested relative prefix is fine and stays under the root.
            _, res = await generate(ch, _with_prefix("runs/a"))
            assert res.artifact.uri == "runs/a/p1/r1.mp4"
        return wrong

    assert asyncio.run(main()) == []
    assert backend.generate_calls == 1  # only the valid request reached the model
    assert _files(tmp_path) == ["storage/runs/a/p1/r1.json", "storage/runs/a/p1/r1.mp4"]


def _with_prefix(prefix: str) -> generator_pb2.GenerateRequest:
    req = request()
    req.output_prefix = prefix
    return req


def _with_negative(negative_prompt: str) -> generator_pb2.GenerateRequest:
    req = request()
    req.negative_prompt = negative_prompt
    return req


# Far over the limits (the cases): INVALID_ARGUMENT in one short line naming the limit.
OVERSIZED_GENERATE: dict[str, tuple[generator_pb2.GenerateRequest, str]] = {
    "100k prompt": (request(prompt="a" * 100_000), f"the limit is {MAX_PROMPT_CHARS}"),
    "NUL in prompt": (request(prompt="a ball\x00 rolls"), "NUL"),
    "1MB negative prompt": (_with_negative("blurry, " * 125_000), f"the limit is {MAX_PROMPT_CHARS}"),
    "NUL in negative prompt": (_with_negative("blurry\x00"), "NUL"),
    "1MB request_id": (request(request_id="r" * 1_000_000), f"the limit is {MAX_ID_CHARS}"),
    "1MB prompt_id": (request(prompt_id="p" * 1_000_000), f"the limit is {MAX_ID_CHARS}"),
    "1MB output_prefix": (_with_prefix("d/" * 500_000), f"the limit is {MAX_URI_CHARS}"),
}
OVERSIZED_PREPARE: dict[str, tuple[generator_pb2.PrepareRequest, str]] = {
    "3000 prompts": (generator_pb2.PrepareRequest(prompts=["a ball rolls"] * 3000),
                     f"the limit is {MAX_PREPARE_PROMPTS}"),
    "100k prompt": (generator_pb2.PrepareRequest(prompts=["a cat", "a" * 100_000]),
                    f"prompt 1 has 100000 characters; the limit is {MAX_PROMPT_CHARS}"),
    "NUL in a prompt": (generator_pb2.PrepareRequest(prompts=["a\x00"]), "prompt 0 contains a NUL"),
    "1MB negative prompt": (generator_pb2.PrepareRequest(prompts=["a cat"], negative_prompt="x" * 1_000_000),
                            f"the limit is {MAX_PROMPT_CHARS}"),
}


def test_oversized_text_is_refused_naming_the_limit_before_any_model_work(tmp_path: Path) -> None:
    backend = tiny_backend("tiny")

    async def main() -> dict[str, tuple[grpc.StatusCode, str]]:
        got: dict[str, tuple[grpc.StatusCode, str]] = {}
        async with running_generator(backend, tmp_path) as run, run.channel() as ch:
            for name, (req, _) in OVERSIZED_GENERATE.items():
                got[f"Generate {name}"] = await generate_code(ch, req)
            stub = generator_pb2_grpc.GeneratorServiceStub(ch)
            for name, (prep, _) in OVERSIZED_PREPARE.items():
                try:
                    await stub.Prepare(prep, timeout=30)
                    got[f"Prepare {name}"] = (grpc.StatusCode.OK, "")
                except grpc.aio.AioRpcError as e:
                    got[f"Prepare {name}"] = (e.code(), e.details() or "")
        return got

    got = asyncio.run(main())
    want = {**{f"Generate {k}": v[1] for k, v in OVERSIZED_GENERATE.items()},
            **{f"Prepare {k}": v[1] for k, v in OVERSIZED_PREPARE.items()}}
    wrong = {k: got[k] for k, fragment in want.items()
             if got[k][0] != INVALID or fragment not in got[k][1] or len(got[k][1]) > 200}
    assert wrong == {}
    assert (backend.encoded, backend.generate_calls) == ([], 0)  # not even the text encoder ran


def test_prompts_at_the_limit_are_accepted(tmp_path: Path) -> None:
    backend = tiny_backend("tiny")
    longest = "a ball rolls. " * (MAX_PROMPT_CHARS // 14) + "x" * (MAX_PROMPT_CHARS % 14)
    assert len(longest) == MAX_PROMPT_CHARS

    async def main() -> generator_pb2.PrepareResponse:
        async with running_generator(backend, tmp_path) as run, run.channel() as ch:
            req = generator_pb2.PrepareRequest(prompts=[longest] * MAX_PREPARE_PROMPTS,
                                               negative_prompt=longest)
            return await generator_pb2_grpc.GeneratorServiceStub(ch).Prepare(req, timeout=60)

    res = asyncio.run(main())
    assert (res.encoded, res.cached) == (MAX_PREPARE_PROMPTS + 1, 0)
    assert set(backend.encoded) == {longest}


# -- cancel, deadline, busy ------------------------------------------------------------------------------
def test_client_cancel_stops_at_next_step_and_frees_device(tmp_path: Path) -> None:
    backend = _slow(delay_s=0.3)

    async def main() -> None:
        async with running_generator(backend, tmp_path) as run, run.channel() as ch:
            stream = generator_pb2_grpc.GeneratorServiceStub(ch).Generate(request("cancelled", steps=20))
            await _first_denoise_step(stream)
            stream.cancel()
            # 18 steps x 0.3 s remain: freeing the device within 3 s means the worker stopped early.
            res = await _succeeds_within(ch, request("next", steps=2), 3.0)
            assert res.num_frames == 9
        assert backend.generate_calls == 2
        assert not (tmp_path / "videos" / "p1" / "cancelled.mp4").exists()
        assert not [f for f in _files(tmp_path) if ".tmp" in f]

    asyncio.run(main())
    # Cancelled after step 1 arrived: the worker may be a step or two further, never near 20.
    assert 1 <= backend.steps_history[0] <= 4 and backend.steps_history[1] == 2


def test_deadline_expiry_stops_the_worker(tmp_path: Path) -> None:
    backend = _slow(delay_s=0.3)

    async def main() -> None:
        async with running_generator(backend, tmp_path) as run, run.channel() as ch:
            code, _ = await generate_code(ch, request("slow", steps=20), timeout=1.0)
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED
            await _succeeds_within(ch, request("next", steps=2), 3.0)
        assert not (tmp_path / "videos" / "p1" / "slow.mp4").exists()

    asyncio.run(main())
    assert backend.steps_history[0] <= 6  # 1 s at 0.3 s per step, plus one step of lag


def test_second_concurrent_generate_is_refused_at_once(tmp_path: Path) -> None:
    backend = _slow(delay_s=0.2)

    async def main() -> None:
        async with running_generator(backend, tmp_path, ["--queue-depth", "0"]) as run, run.channel() as ch, \
                run.channel() as ch2:
            stream = generator_pb2_grpc.GeneratorServiceStub(ch).Generate(request("first", steps=6))
            await _first_denoise_step(stream)
            code, details = await generate_code(ch2, request("second", steps=2))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "busy" in details
            assert backend.running.is_set()  # refused while the first item still runs, not after it
            prepare = generator_pb2_grpc.GeneratorServiceStub(ch2).Prepare(
                generator_pb2.PrepareRequest(prompts=["x"]), timeout=2
            )
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await prepare
            assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            events = [ev async for ev in stream]  # the first one is unharmed
            assert events[-1].result.artifact.uri == "videos/p1/first.mp4"
            _, res = await generate(ch2, request("second", steps=2))
            assert not res.cached

    asyncio.run(main())


def test_queued_request_waits_for_the_device_and_the_next_one_is_refused(tmp_path: Path) -> None:
    """--queue-depth 1: one item runs, one waits (and starts as soon as the device frees), a third is busy."""
    backend = _slow(delay_s=0.2)

    async def main() -> None:
        async with running_generator(backend, tmp_path, ["--queue-depth", "1"]) as run, run.channel() as ch, \
                run.channel() as ch2, run.channel() as ch3:
            stub = generator_pb2_grpc.GeneratorServiceStub
            first = stub(ch).Generate(request("first", steps=4))
            await _first_denoise_step(first)
            queued = asyncio.ensure_future(generate(ch2, request("queued", steps=2)))
            await asyncio.sleep(0.3)
            assert not queued.done()  # waiting behind the running item, not refused
            code, details = await generate_code(ch3, request("third", steps=2))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "busy" in details
            events = [ev async for ev in first]
            assert events[-1].result.artifact.uri == "videos/p1/first.mp4"
            _, res = await queued
            assert res.artifact.uri == "videos/p1/queued.mp4" and not res.cached

    asyncio.run(main())
    assert backend.steps_history == [4, 2]  # never overlapped on the device: one after the other


# -- decode beside the next denoise ------------------------------------------------------------------------
def test_decode_overlap_gives_the_same_videos(tmp_path: Path) -> None:
    """--decode-overlap on: every item decodes on the decode thread (the side stream), beside the
    next item's denoise, and the bytes are those of the plain path."""
    reqs = [request(f"r{i}", seed=20 + i, steps=3) for i in range(3)]

    Results = list[generator_pb2.GenerateResult]

    async def run_all(mode: str, root: Path) -> tuple[Results, InstrumentedBackend]:
        backend = tiny_backend("tiny")
        flags = ["--decode-overlap", mode, "--queue-depth", "1"]
        async with running_generator(backend, root, flags) as run, run.channel() as ch1, run.channel() as ch2:
            results = []
            for i in range(0, len(reqs), 2):
                pair = [generate(ch, r) for ch, r in zip((ch1, ch2), reqs[i:i + 2], strict=False)]
                results += [res for _, res in await asyncio.gather(*pair)]
        return results, backend

    async def main() -> None:
        on, b_on = await run_all("on", tmp_path / "on")
        off, b_off = await run_all("off", tmp_path / "off")
        assert b_on.decode_sides == [True] * 3 and b_off.decode_sides == [False] * 3
        assert [r.artifact.sha256 for r in on] == [r.artifact.sha256 for r in off]
        assert len({r.artifact.sha256 for r in on}) == 3
        for r in on:
            assert r.timings_s["vae_decode"] > 0 and r.timings_s["total"] >= r.timings_s["denoise"]

    asyncio.run(main())


def test_oom_in_overlapped_decode_decodes_alone_and_stops_overlapping(tmp_path: Path) -> None:
    backend = tiny_backend("tiny")

    async def main() -> None:
        flags = ["--decode-overlap", "on"]
        async with running_generator(backend, tmp_path, flags) as run, run.channel() as ch:
            backend.decode_ooms_to_inject = 1
            _, first = await generate(ch, request("a", seed=4))
            _, second = await generate(ch, request("b", seed=4, prompt_id="p2"))
        assert first.attempts == 1 and "low-memory" not in first.params.acceleration
        assert backend.decode_sides == [True, False, False]  # failed beside, then alone; alone after
        assert first.artifact.sha256 == second.artifact.sha256  # same prompt and seed, same bytes

    asyncio.run(main())


def test_a_call_ended_at_its_queued_event_gives_its_slot_back(tmp_path: Path) -> None:
    """The client may go away right after the "queued" event, before the item asks for the device.
    The engine runs here without any gRPC (services/generator/engine.py)."""
    import threading

    from videophy_bench.common.storage import Storage
    from videophy_bench.generator.engine import GenerationEngine
    from videophy_bench.generator.service import video_request

    async def main() -> None:
        engine = GenerationEngine(tiny_backend("tiny"), Storage(tmp_path), queue_depth=0)
        engine.ready = True  # nothing reaches the device in this test: no load needed
        events = engine.generate(engine.plan(video_request(request("r1"))), threading.Event())
        first = await events.__anext__()
        assert first.phase == "queued" and engine._admitted == 1
        await events.aclose()  # what grpc does when the call is cancelled there
        assert engine._admitted == 0  # the generator is not left "busy" for ever

    asyncio.run(main())


# -- idempotency -----------------------------------------------------------------------------------------
def test_repeat_is_cached_corrupt_mp4_regenerated_and_reuse_with_other_prompt_refused(tmp_path: Path) -> None:
    backend = tiny_backend("tiny")

    async def main() -> None:
        async with running_generator(backend, tmp_path) as run, run.channel() as ch:
            _, first = await generate(ch, request("r1"))
            assert not first.cached and backend.generate_calls == 1
            events, again = await generate(ch, request("r1"))
            assert len(events) == 1 and again.cached and backend.generate_calls == 1
            assert again.artifact == first.artifact and again.params == first.params

            mp4 = tmp_path / first.artifact.uri
            mp4.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])  # truncated by a crash
            _, regen = await generate(ch, request("r1"))
            assert not regen.cached and backend.generate_calls == 2
            assert regen.artifact.sha256 == sha256_file(mp4)
            assert decode_mp4(mp4)[0].shape == (9, 64, 64, 3)

            for changed in (
                request("r1", prompt="another prompt"),
                request("r1", seed=8),
                request("r1", steps=3),
            ):
                code, details = await generate_code(ch, changed)
                assert code == INVALID and "already used" in details
            assert backend.generate_calls == 2

            _, other = await generate(ch, request("r2"))  # same prompt, new request id: a new video
            assert not other.cached and backend.generate_calls == 3

    asyncio.run(main())


# -- out of memory ---------------------------------------------------------------------------------------
def test_oom_once_retries_in_low_memory_mode(tmp_path: Path) -> None:
    backend = tiny_backend("tiny")

    async def main() -> None:
        async with running_generator(backend, tmp_path) as run, run.channel() as ch:
            _, baseline = await generate(ch, request("base", seed=3))
            backend.ooms_to_inject = 1
            _, res = await generate(ch, request("oom-once", seed=3))
            assert res.attempts == 2 and "low-memory" in res.params.acceleration
            assert backend._low_memory and backend.generate_calls == 3
            # Low-memory mode is slower, not different: the same frames come out.
            assert (
                decode_mp4(tmp_path / res.artifact.uri)[0] == decode_mp4(tmp_path / baseline.artifact.uri)[0]
            ).all()

    asyncio.run(main())


def test_oom_always_is_resource_exhausted_and_server_keeps_serving(tmp_path: Path) -> None:
    backend = tiny_backend("tiny")

    async def main() -> None:
        async with running_generator(backend, tmp_path) as run, run.channel() as ch:
            backend.ooms_to_inject = 2
            code, details = await generate_code(ch, request("oom"))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "memory" in details
            assert backend.generate_calls == 2 and backend.ooms_to_inject == 0
            assert not (tmp_path / "videos" / "p1" / "oom.mp4").exists()
            assert await health_status(run.target, "readiness") == SERVING
            info = await generator_pb2_grpc.GeneratorServiceStub(ch).GetInfo(common_pb2.GetInfoRequest())
            assert info.active_preset == "tiny"
            _, res = await generate(ch, request("after"))
            assert res.attempts == 1

    asyncio.run(main())


def test_prepare_encodes_then_reports_cached(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_generator(tiny_backend("tiny"), tmp_path) as run, run.channel() as ch:
            stub = generator_pb2_grpc.GeneratorServiceStub(ch)
            first = await stub.Prepare(generator_pb2.PrepareRequest(prompts=["a cat", "a dog"]), timeout=30)
            assert (first.encoded, first.cached) == (3, 0)  # two prompts plus the negative prompt
            second = await stub.Prepare(generator_pb2.PrepareRequest(prompts=["a cat", "a cow"]), timeout=30)
            assert (second.encoded, second.cached) == (1, 2)

    asyncio.run(main())
