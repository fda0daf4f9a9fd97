"""Startup probes sized from the measured throughput of the model cache (`videophy-bench cluster check`).

7-15 replicas each reading a 30-130 GB model from one shared volume can outlast their startup probe and
restart in a loop, each restart reading everything again. The preflight (volume_check) measures the
model-cache volume and lists the snapshots cached on it; for every service Deployment of the overlay
this compares the time its replicas need to read their model together,

    replicas x snapshot bytes / throughput x MARGIN,

with what its startup probe allows (periodSeconds x failureThreshold), and names the failureThreshold
that would cover it. The throughput is the lower of the volume's fsync'd write and cold read figures
(a shared volume's read rate under N readers is rarely better than one reader's), and the replicas are
the Deployment's count (an autoscaled one: its ScaledObject's maximum). A model not cached yet cannot be
sized: `cluster run` prefetches it, then `cluster check --no-deploy` sizes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from videophy_bench.orchestrator.pinning import (
    COMMIT_SHA,
    SERVICE_OF_CONTAINER,
    config_env,
    hub_repo,
    model_containers,
)

MARGIN = 1.5  # model loading does more than read the files (deserialise, move to the GPU, warm up)
MIB = 2**20


@dataclass(frozen=True)
class ProbeSizing:
    deployment: str
    repo: str
    replicas: int
    bytes: int | None  # None: not in the cache yet
    allowed_s: float
    needed_s: float | None
    period_s: int

    @property
    def ok(self) -> bool:
        return self.needed_s is None or self.needed_s <= self.allowed_s

    def line(self) -> str:
        head = f"deployment/{self.deployment} ({self.repo}, {self.replicas} replica(s))"
        if self.bytes is None:
            return (f"size  {head}: not in the model cache yet; `cluster run` prefetches it, then run "
                    "`cluster check --no-deploy` again to size its startup probe")
        need = f"{self.needed_s / 60:.0f} min to read {self.bytes / 2**30:.1f} GiB each together"
        allowed = f"its startup probe allows {self.allowed_s / 60:.0f} min"
        if self.ok:
            return f"ok    {head}: {need}; {allowed}"
        threshold = math.ceil(self.needed_s / self.period_s)
        return (f"FAIL  {head}: {need}, but {allowed}: set startupProbe.failureThreshold to at least "
                f"{threshold} (periodSeconds {self.period_s}), or start the replicas in steps")


def _replicas(docs: Sequence[dict[str, Any]], deployment: dict[str, Any]) -> int:
    name = deployment["metadata"]["name"]
    for d in docs:
        if d.get("kind") == "ScaledObject" and d["spec"]["scaleTargetRef"]["name"] == name:
            return int(d["spec"].get("maxReplicaCount", 100))
    return int(deployment["spec"].get("replicas", 1))


def size_startup_probes(docs: Sequence[dict[str, Any]], mib_s: float,
                        cached: dict[str, int]) -> list[ProbeSizing]:
    """One sizing per Deployment that loads a Hub model; `cached` is `repo@revision` -> bytes."""
    out = []
    for d, c in model_containers(docs):
        env = config_env(c, docs)
        repo = hub_repo(SERVICE_OF_CONTAINER[c["name"]], env)
        if repo is None:
            continue  # built locally (tiny) or a local directory: nothing shared to read
        revision = env.get("VIDEOPHY_REVISION") or ""
        pinned = revision if COMMIT_SHA.fullmatch(revision) else None
        sizes = [b for key, b in cached.items()
                 if key.rpartition("@")[0] == repo and (pinned is None or key == f"{repo}@{pinned}")]
        size = max(sizes) if sizes else None  # unpinned: the largest snapshot cached
        probe = c.get("startupProbe", {})
        period = int(probe.get("periodSeconds", 10))
        allowed = period * int(probe.get("failureThreshold", 3))
        replicas = _replicas(docs, d)
        needed = None if size is None else replicas * size / (max(mib_s, 1e-6) * MIB) * MARGIN
        out.append(ProbeSizing(d["metadata"]["name"], repo, replicas, size, allowed, needed, period))
    return out
