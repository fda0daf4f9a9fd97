"""Thin clients over the generator and evaluator stubs: one channel per replica, explicit deadlines."""

from __future__ import annotations

from collections.abc import Callable

from grpc import aio
from videophy.v1 import (
    common_pb2,
    evaluator_pb2,
    evaluator_pb2_grpc,
    generator_pb2,
    generator_pb2_grpc,
)

from services.common.channel import ClientConfig, is_ready

INFO_TIMEOUT_S = 10.0

ProgressFn = Callable[[object], None]


class ProtocolError(RuntimeError):
    """A stream ended without its result event."""


class _Client:
    def __init__(self, address: str, config: ClientConfig) -> None:
        self.address = address
        self.config = config
        self.channel: aio.Channel = config.open(address)

    async def ready(self, timeout_s: float = 2.0) -> bool:
        return await is_ready(self.channel, timeout_s)

    async def close(self) -> None:
        await self.channel.close()


class GeneratorClient(_Client):
    def __init__(self, address: str, config: ClientConfig) -> None:
        super().__init__(address, config)
        self.stub = generator_pb2_grpc.GeneratorServiceStub(self.channel)

    async def info(self) -> generator_pb2.GetInfoResponse:
        return await self.stub.GetInfo(
            common_pb2.GetInfoRequest(), timeout=INFO_TIMEOUT_S, metadata=self.config.metadata
        )

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
