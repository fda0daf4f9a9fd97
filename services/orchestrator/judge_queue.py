"""Judge work split by task: a video's remaining tasks become jobs, each as large as one evaluator pool
covers (one call shares the decode), in a FIFO that hands a worker the first job its replica serves.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from videophy_bench.orchestrator.items import WorkItem


def partition_tasks(tasks: frozenset[str], pools: set[frozenset[str]]) -> list[frozenset[str]]:
    """Split `tasks` into as few jobs as the pools allow (greedy: the pool covering most first).

    Tasks that no pool serves form one last job, which waits for a replica that serves them all.
    """
    left = set(tasks)
    groups: list[frozenset[str]] = []
    ordered = sorted(pools, key=lambda p: tuple(sorted(p)))
    while left:
        best = max(ordered, key=lambda p: len(p & left), default=frozenset())
        cover = best & left
        if not cover:
            groups.append(frozenset(left))
            break
        groups.append(frozenset(cover))
        left -= cover
    return groups



@dataclass(eq=False)
class Judging:
    """One video being judged: the tasks it needs, and the answers so far (merged into one row)."""

    item: WorkItem
    required: frozenset[str]
    answered: set[str] = field(default_factory=set)
    active: bool = True  # False once the item failed or went back to generation: its jobs are dropped
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.required <= self.answered


@dataclass(eq=False)
class JudgeJob:
    """Some of one video's tasks, for a replica that serves all of them."""

    ctx: Judging
    tasks: frozenset[str]
    attempts: int = 0


class JobQueue:
    """FIFO of judge jobs; `get(served)` waits for the first job whose tasks `served` covers."""

    def __init__(self) -> None:
        self.jobs: list[JudgeJob] = []
        self._waiters: list[asyncio.Future[None]] = []

    def __len__(self) -> int:
        return len(self.jobs)

    def put(self, job: JudgeJob) -> None:
        self.jobs.append(job)
        self.wake()

    def wake(self) -> None:
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    def _take(self, served: frozenset[str]) -> JudgeJob | None:
        self.jobs = [j for j in self.jobs if j.ctx.active]
        for k, job in enumerate(self.jobs):
            if job.tasks <= served:
                return self.jobs.pop(k)
        return None

    async def get(self, served: frozenset[str]) -> JudgeJob:
        while True:
            job = self._take(served)
            if job is not None:
                return job
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self._waiters:
                    self._waiters.remove(fut)

    def replan(self, pools: set[frozenset[str]]) -> None:
        """Re-split the waiting jobs of each video for the current pools (order kept per video)."""
        by_ctx: dict[int, list[JudgeJob]] = {}
        for job in self.jobs:
            if job.ctx.active:
                by_ctx.setdefault(id(job.ctx), []).append(job)
        out: list[JudgeJob] = []
        for job in self.jobs:
            group = by_ctx.pop(id(job.ctx), None)
            if group is None:
                continue  # already re-split at this video's first job (or dropped)
            tasks = frozenset().union(*(j.tasks for j in group))
            attempts = max(j.attempts for j in group)
            out += [JudgeJob(job.ctx, g, attempts) for g in partition_tasks(tasks, pools)]
        self.jobs = out
        self.wake()
