"""Thin clients over the generator and evaluator stubs: one channel per replica, explicit deadlines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from videophy_bench.common.channel import ClientConfig, is_ready
from videophy_bench.common.server import READINESS
from videophy_bench.proto.v1 import (
    common_pb2,
    evaluator_pb2,
    evaluator_pb2_grpc,
    generator_pb2,
    generator_pb2_grpc,
)

INFO_TIMEOUT_S = 10.0

ProgressFn = Callable[[object], None]


class ProtocolError(RuntimeError):
    """A stream ended without its result event."""


class _Client:
    def __init__(self, address: str, config: ClientConfig) -> None:
        self.address = address
        self.config = config
        self.channel: aio.Channel = config.open(address)
        self._serving = False  # the open health Watch stream last said SERVING
        self._watch: asyncio.Task[None] | None = None

    async def ready(self, timeout_s: float = 2.0) -> bool:
        """True when the replica's readiness is SERVING.

        After a Check says SERVING, a health Watch stream is kept open, so while the replica stays
        ready no round trip is needed per item; the first status other than SERVING (a drain, a
        reload) or a broken stream closes it (so it never holds up a draining server's stop) and the
        next call checks again.
        """
        if self._serving:
            return True
        ok = await is_ready(self.channel, timeout_s)
        if ok and self._watch is None:
            self._watch = asyncio.create_task(self._watch_readiness())
        return ok

    async def _watch_readiness(self) -> None:
        call = health_pb2_grpc.HealthStub(self.channel).Watch(
            health_pb2.HealthCheckRequest(service=READINESS)
        )
        try:
            async for resp in call:
                self._serving = resp.status == health_pb2.HealthCheckResponse.SERVING
                if not self._serving:
                    break
        except grpc.aio.AioRpcError:
            pass
        finally:
            self._serving = False
            self._watch = None
            call.cancel()

    async def close(self) -> None:
        watch = self._watch
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        await self.channel.close()


class GeneratorClient(_Client):
    def __init__(self, address: str, config: ClientConfig) -> None:
        super().__init__(address, config)
        self.stub = generator_pb2_grpc.GeneratorServiceStub(self.channel)

    async def info(self) -> generator_pb2.GetInfoResponse:
        return await self.stub.GetInfo(
            common_pb2.GetInfoRequest(), timeout=INFO_TIMEOUT_S, metadata=self.config.metadata
        )

    async def prepare(
        self, prompts: list[str], negative_prompt: str | None, timeout_s: float
    ) -> generator_pb2.PrepareResponse:
        """Have the replica encode these prompts now (its text encoder then leaves the per-video path)."""
        req = generator_pb2.PrepareRequest(prompts=prompts)
        if negative_prompt is not None:
            req.negative_prompt = negative_prompt
        return await self.stub.Prepare(req, timeout=timeout_s, metadata=self.config.metadata)

    async def generate(
        self, request: generator_pb2.GenerateRequest, timeout_s: float, on_progress: ProgressFn | None = None
    ) -> generator_pb2.GenerateResult:
        """Stream one generation; raises grpc.aio.AioRpcError as the server reports it."""
        call = self.stub.Generate(request, timeout=timeout_s, metadata=self.config.metadata)
        async for event in call:
            if event.HasField("result"):
                return event.result
            if on_progress is not None:
                on_progress(event.progress)
        raise ProtocolError(f"{self.address}: Generate stream ended without a result")


class EvaluatorClient(_Client):
    def __init__(self, address: str, config: ClientConfig) -> None:
        super().__init__(address, config)
        self.stub = evaluator_pb2_grpc.EvaluatorServiceStub(self.channel)

    async def info(self) -> evaluator_pb2.EvaluatorInfo:
        return await self.stub.GetInfo(
            common_pb2.GetInfoRequest(), timeout=INFO_TIMEOUT_S, metadata=self.config.metadata
        )

    async def evaluate(
        self, request: evaluator_pb2.EvaluateRequest, timeout_s: float
    ) -> evaluator_pb2.EvaluateResult:
        call = self.stub.Evaluate(request, timeout=timeout_s, metadata=self.config.metadata)
        async for event in call:
            if event.HasField("result"):
                return event.result
        raise ProtocolError(f"{self.address}: Evaluate stream ended without a result")
