"""The evaluator and generator replicas a run talks to: what each told GetInfo, and how the first
answers are awaited before a run starts (retrying with tenacity's backoff).

Discovery of addresses is `videophy_bench.orchestrator.discovery`; the engine that pulls work to the replicas
is `videophy_bench.orchestrator.dispatch`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
from tenacity import RetryCallState, wait_exponential, wait_random

from videophy_bench.common import judge_tasks
from videophy_bench.common.channel import ClientConfig
from videophy_bench.orchestrator.clients import EvaluatorClient, GeneratorClient
from videophy_bench.orchestrator.discovery import Target, resolve


class NoReplicas(RuntimeError):
    """No replica of a needed kind was ready for the stall timeout; the run stops (and can be resumed)."""


class TasksUnserved(RuntimeError):
    """Requested judge tasks that no evaluator replica serves (found before the run starts)."""



@dataclass
class ReplicaInfo:
    """What a replica told GetInfo (kept for the manifest)."""

    kind: str
    address: str
    model_id: str
    revision: str
    preset: str
    device: str
    device_name: str
    hostname: str
    capacity: int
    library_versions: dict[str, str] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)  # judge tasks an evaluator serves (GetInfo)

    def model_key(self) -> tuple[str, str, str]:
        return (self.preset, self.model_id, self.revision)


def replica_info(kind: str, address: str, info: Any) -> ReplicaInfo:
    rt = info.runtime
    return ReplicaInfo(
        kind,
        address,
        info.model.model_id,
        info.model.revision,
        info.model.preset,
        rt.device,
        rt.device_name,
        rt.hostname,
        max(1, int(info.capacity or 1)),
        dict(rt.library_versions),
        [t.name for t in map(judge_tasks.task_by_wire, getattr(info, "tasks", ())) if t is not None],
    )


def backoff_s(failures: int, initial: float, maximum: float) -> float:
    """Exponential backoff (tenacity) plus up to `initial` of jitter, for the n-th failure in a row."""
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = max(1, failures)
    return float((wait_exponential(multiplier=initial, max=maximum) + wait_random(0, initial))(state))


async def first_info(kind: str, targets: list[Target], config: ClientConfig, timeout_s: float) -> ReplicaInfo:
    """GetInfo of the first replica that answers (retrying with backoff until `timeout_s`)."""
    cls = GeneratorClient if kind == "generator" else EvaluatorClient
    deadline = time.monotonic() + timeout_s
    failures = 0
    last = "no address resolved"
    while True:
        for address in sorted(await resolve(targets)):
            client = cls(address, config)
            try:
                return replica_info(kind, address, await client.info())
            except grpc.aio.AioRpcError as exc:
                last = f"{address}: {exc.code().name}: {exc.details()}"
            finally:
                await client.close()
        failures += 1
        if time.monotonic() > deadline:
            raise NoReplicas(f"no {kind} answered within {timeout_s:.0f}s (last: {last})")
        await asyncio.sleep(backoff_s(failures, 0.2, 5.0))


def _unserved_message(missing: set[str], infos: dict[str, ReplicaInfo]) -> str:
    serving = "; ".join(
        f"{a} ({i.preset or i.model_id}) serves {', '.join(i.tasks) or 'nothing'}"
        for a, i in sorted(infos.items())
    )
    names = ", ".join(t for t in judge_tasks.task_names() if t in missing)
    return (
        f"judge task(s) {names} not served by any evaluator "
        f"({serving}); add evaluators that serve them (--evaluators, or --videocon-model with --local) "
        "or drop them from --judge-tasks"
    )


async def evaluator_infos(
    targets: list[Target], config: ClientConfig, tasks: frozenset[str], timeout_s: float
) -> dict[str, ReplicaInfo]:
    """GetInfo of the evaluator replicas until together they serve every task in `tasks`.

    Raises TasksUnserved at once when every listed (`host:port`) replica answered and some task is
    still missing; with `dns:///` targets (replicas may still be starting) it waits up to `timeout_s`.
    Raises NoReplicas when no replica answers at all.
    """
    deadline = time.monotonic() + timeout_s
    infos: dict[str, ReplicaInfo] = {}
    static = all(not t.dns for t in targets)
    failures = 0
    last = "no address resolved"
    while True:
        addresses = sorted(await resolve(targets))
        for address in addresses:
            if address in infos:
                continue
            client = EvaluatorClient(address, config)
            try:
                infos[address] = replica_info("evaluator", address, await client.info())
            except grpc.aio.AioRpcError as exc:
                last = f"{address}: {exc.code().name}: {exc.details()}"
            finally:
                await client.close()
        served = {t for i in infos.values() for t in i.tasks}
        missing = set(tasks) - served
        if infos and not missing:
            return infos
        answered_all = bool(addresses) and all(a in infos for a in addresses)
        failures += 1
        if infos and ((answered_all and static) or time.monotonic() > deadline):
            raise TasksUnserved(_unserved_message(missing, infos))
        if time.monotonic() > deadline:
            raise NoReplicas(f"no evaluator answered within {timeout_s:.0f}s (last: {last})")
        await asyncio.sleep(backoff_s(failures, 0.2, 5.0))


class Replica:
    """A replica the dispatcher works with: its client, its worker tasks and what it serves."""

    def __init__(self, kind: str, address: str, client: GeneratorClient | EvaluatorClient) -> None:
        self.kind = kind
        self.address = address
        self.client = client
        self.retired = False
        self.accepted = False  # answered GetInfo and serves this run's model (and tasks)
        self.serves: frozenset[str] = frozenset()  # evaluator: requested tasks it may answer
        self.tasks: list[asyncio.Task] = []
        self.idle: set[asyncio.Task] = set()
        self.info: ReplicaInfo | None = None
