"""What the generator and evaluator test harnesses share: a served host on loopback and health polling."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from videophy_bench.common.channel import ClientConfig
from videophy_bench.common.server import ServiceHost

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Running:
    host: ServiceHost
    task: asyncio.Task[None]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.host.port}"

    def channel(self, config: ClientConfig | None = None) -> aio.Channel:
        return (config or ClientConfig()).open(self.target)


async def health_status(target: str, service: str, config: ClientConfig | None = None) -> int:
    async with (config or ClientConfig()).open(target) as ch:
        resp = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
        return resp.status


async def wait_for_health(
    target: str, service: str, want: int, timeout_s: float = 30.0, config: ClientConfig | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = await health_status(target, service, config)
            if last == want:
                return
        except grpc.aio.AioRpcError as e:
            last = e.code()
        await asyncio.sleep(0.05)
    raise AssertionError(f"health {service!r} never became {want} (last: {last})")


class ManualClock:
    """A clock for the device watchdog that moves only when the test says so: a stall is made by
    advancing it while a device step is held on an event, never by waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def watch_with(run: Running, clock: ManualClock) -> None:
    """Give the served host's device watchdog the test's clock."""
    assert run.host.health.watchdog is not None, "the service runs no device watchdog"
    run.host.health.watchdog.clock = clock


async def assert_stall_fails_liveness(run: Running, clock: ManualClock, limit_s: float) -> None:
    """With a device step held (by the caller): alive at exactly `limit_s` of silence, NOT_SERVING past
    it, readiness untouched (the kubelet restarts on liveness alone; readiness is the drain's)."""
    clock.advance(limit_s)
    assert await health_status(run.target, "") == SERVING
    clock.advance(1)
    assert await health_status(run.target, "") == NOT_SERVING
    assert await health_status(run.target, "readiness") == SERVING
