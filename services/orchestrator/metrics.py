"""Prometheus metrics of a run (`--metrics-port`, env VIDEOPHY_METRICS_PORT), for dashboards and the
generator autoscaler (k8s/components/generator-autoscaler: KEDA scales generators on
`sum(videophy_pending_items{stage="generate"})`).

The gauges live in a registry of their own and are set from the event loop every `interval_s`
(the ledger is only touched from the loop's thread); the HTTP server thread only reads them.

| metric | labels | meaning |
| --- | --- | --- |
| `videophy_pending_items` | `stage` = `generate` / `evaluate` | items waiting for or in that stage |
| `videophy_items` | `state` = pending / generating / generated / judged / failed | ledger rows |
| `videophy_replicas` | `kind` = generator / evaluator | replicas in use |
| `videophy_judge_replicas` | `task` = sa / pc / rule / videocon_sa / videocon_pc | evaluators per task |
| `videophy_videos_per_hour` | | recent generation throughput (0 until known) |
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from videophy_bench.orchestrator.items import STATES

log = logging.getLogger(__name__)

STAGES = ("generate", "evaluate")
KINDS = ("generator", "evaluator")


class RunMetrics:
    """The gauges and their HTTP server (started at construction; `close()` stops it)."""

    def __init__(self, port: int, addr: str = "0.0.0.0") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.pending = Gauge(
            "videophy_pending_items", "Items waiting for or in a stage of this run", ["stage"], registry=r
        )
        self.items = Gauge("videophy_items", "Ledger items per state", ["state"], registry=r)
        self.replicas = Gauge("videophy_replicas", "Replicas in use per kind", ["kind"], registry=r)
        self.task_replicas = Gauge(
            "videophy_judge_replicas", "Evaluator replicas in use per judge task", ["task"], registry=r
        )
        self.rate = Gauge("videophy_videos_per_hour", "Recent generation throughput", registry=r)
        for stage in STAGES:
            self.pending.labels(stage=stage).set(0)
        for state in STATES:
            self.items.labels(state=state).set(0)
        for kind in KINDS:
            self.replicas.labels(kind=kind).set(0)
        self.server, self.thread = start_http_server(port, addr=addr, registry=r)

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def update(self, snap: dict[str, Any]) -> None:
        for stage in STAGES:
            self.pending.labels(stage=stage).set(snap.get("pending", {}).get(stage, 0))
        for state in STATES:
            self.items.labels(state=state).set(snap.get("items", {}).get(state, 0))
        for kind in KINDS:
            self.replicas.labels(kind=kind).set(snap.get("replicas", {}).get(kind, 0))
        for task, n in snap.get("task_replicas", {}).items():
            self.task_replicas.labels(task=task).set(n)
        self.rate.set(snap.get("videos_per_hour") or 0.0)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def run_metrics(
    metrics: RunMetrics, snapshot: Callable[[], dict[str, Any]], interval_s: float = 1.0
) -> None:
    """Refresh the gauges from `snapshot()` until cancelled (and once more on cancel: final numbers)."""
    try:
        while True:
            try:
                metrics.update(snapshot())
            except Exception:  # metrics must never stop a run
                log.exception("metrics update failed")
            await asyncio.sleep(interval_s)
    finally:
        with contextlib.suppress(Exception):
            metrics.update(snapshot())
