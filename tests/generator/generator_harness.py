"""Test harness for the generator: real tiny backends, a real grpc.aio server on an ephemeral port.

The server is started through `videophy_bench.generator.cli.serve`, the production entry point, so flags,
interceptors, health, reflection and the drain are the ones a deployment runs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import torch
from grpc import aio
from service_harness import NOT_SERVING, SERVING, Running, health_status, wait_for_health  # noqa: F401

from videophy_bench.common.channel import ClientConfig
from videophy_bench.common.server import ServiceHost
from videophy_bench.generator.backend import GenerationJob, GenerationOutput, StepCallback, StopCheck
from videophy_bench.generator.cli import SERVICE_NAME, build_parser, serve
from videophy_bench.generator.diffusers_backend import (
    DiffusersWanBackend,
    default_tiny_dir,
    resolve_model_dir,
)
from videophy_bench.generator.presets import get_preset
from videophy_bench.proto.v1 import generator_pb2, generator_pb2_grpc


class InstrumentedBackend(DiffusersWanBackend):
    """The real diffusers backend plus test knobs: a delay per step, injected OOMs, a load gate, counters."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_delay_s = 0.0
        self.ooms_to_inject = 0  # raised at step 1 of the next N denoise() calls
        self.load_gate: threading.Event | None = None
        self.generate_calls = 0  # denoise() calls: generate() runs one too
        self.steps_done = 0  # of the latest denoise() call
        self.steps_history: list[int] = []  # steps each finished or stopped call completed
        self.running = threading.Event()
        self.decode_ooms_to_inject = 0  # raised by the next N decodes on the side stream (overlapped)
        self.decode_sides: list[bool] = []  # side_stream of every decode() call
        self.encoded: list[str] = []  # every text that reached the text encoder

    def _encode(self, text: str, max_len: int) -> Any:
        self.encoded.append(text)
        return super()._encode(text, max_len)

    def load(self) -> None:
        if self.load_gate is not None and not self.load_gate.wait(60):
            raise TimeoutError("load gate never opened")
        super().load()

    def denoise(self, job: GenerationJob, on_step: StepCallback, should_stop: StopCheck) -> GenerationOutput:
        self.generate_calls += 1
        self.steps_done = 0
        self.running.set()

        def step(k: int, n: int) -> None:
            if k == 1 and self.ooms_to_inject > 0:
                self.ooms_to_inject -= 1
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")
            self.steps_done = k
            time.sleep(self.step_delay_s)
            on_step(k, n)

        try:
            return super().denoise(job, step, should_stop)
        finally:
            self.steps_history.append(self.steps_done)
            self.running.clear()


    def decode(self, out: GenerationOutput, side_stream: bool = False) -> GenerationOutput:
        self.decode_sides.append(side_stream)
        if side_stream and self.decode_ooms_to_inject > 0:
            self.decode_ooms_to_inject -= 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 12.00 GiB (injected)")
        return super().decode(out, side_stream)


def tiny_backend(preset: str = "tiny", cls: type[DiffusersWanBackend] = InstrumentedBackend) -> Any:
    """A backend over the session's prebuilt tiny pipeline (the `tiny_models` fixture builds it)."""
    p = get_preset(preset)
    model_dir, revision = resolve_model_dir(p, str(default_tiny_dir(p.layout)), None, None)
    return cls(p, model_dir, revision, "cpu", model_id=f"videophy-bench/{p.name}")


@asynccontextmanager
async def running_generator(
    backend: Any,
    storage: Path,
    flags: Sequence[str] = (),
    *,
    warmup: bool = False,
    wait_ready: bool = True,
    client: ClientConfig | None = None,
) -> AsyncIterator[Running]:
    """Serve `backend` through `cli.serve` on 127.0.0.1:0; drains and stops on exit.

    `client` is how the harness itself reaches the server (TLS material) to wait for readiness.
    """
    args = build_parser().parse_args(
        [
            "--bind",
            "127.0.0.1:0",
            "--storage-root",
            str(storage),
            "--grace-s",
            "10",
            *([] if warmup else ["--no-warmup"]),
            *flags,
        ]
    )
    listening: asyncio.Future[ServiceHost] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(args, backend, on_listening=listening.set_result))
    await asyncio.wait({listening, task}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # startup failed: raise its error here
    host = listening.result()
    run = Running(host, task)
    try:
        if wait_ready:
            await wait_for_health(run.target, "readiness", SERVING, config=client)
        yield run
    finally:
        host.grace_s = min(host.grace_s, 10.0)
        await host.drain()
        await asyncio.wait_for(task, 30)


def request(
    request_id: str = "r1",
    prompt_id: str = "p1",
    prompt: str = "a ball rolls on the table",
    seed: int = 7,
    steps: int | None = 2,
    **overrides: Any,
) -> generator_pb2.GenerateRequest:
    if steps is not None:
        overrides["num_inference_steps"] = steps
    return generator_pb2.GenerateRequest(
        request_id=request_id,
        prompt_id=prompt_id,
        prompt=prompt,
        seed=seed,
        overrides=generator_pb2.GenerationOverrides(**overrides),
    )


async def generate(
    channel: aio.Channel,
    req: generator_pb2.GenerateRequest,
    **kwargs: Any,
) -> tuple[list[generator_pb2.GenerateEvent], generator_pb2.GenerateResult]:
    """All events of one Generate call and its result (asserts exactly one result, last)."""
    events = [ev async for ev in generator_pb2_grpc.GeneratorServiceStub(channel).Generate(req, **kwargs)]
    results = [ev for ev in events if ev.WhichOneof("event") == "result"]
    assert len(results) == 1 and events[-1] is results[0], events
    assert all(ev.request_id == req.request_id for ev in events)
    return events, results[0].result


async def generate_code(
    channel: aio.Channel,
    req: generator_pb2.GenerateRequest,
    **kwargs: Any,
) -> tuple[grpc.StatusCode, str]:
    """Status code and details of a Generate call expected to fail."""
    try:
        await generate(channel, req, **kwargs)
    except grpc.aio.AioRpcError as e:
        return e.code(), e.details() or ""
    return grpc.StatusCode.OK, ""


__all__ = [
    "SERVICE_NAME",
    "InstrumentedBackend",
    "Running",
    "generate",
    "generate_code",
    "health_status",
    "request",
    "running_generator",
    "tiny_backend",
    "wait_for_health",
]
