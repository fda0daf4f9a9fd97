"""The evaluator's data plane: a loaded Judge with micro-batching, without any transport.

`EvaluationEngine` accepts up to `capacity` videos at once (`Busy` beyond); a batcher gathers what is
queued into one `judge_batch` forward, whose padding keeps each score equal to its batch-of-one score;
each batch runs inside the device watchdog (services/common/watchdog.py): one batch past
`stall_limit_s` fails liveness. Every request is checked before its video is hashed, decoded or queued
(sizes from `videophy_bench.common.limits`, then the judge's own `validate`: characters, NUL, tokens against
its context), so an oversized request costs no model work. One video's failure is its own: a bad
video is `FailedPrecondition`, bad text `InvalidRequest`, an endpoint that kept failing `Upstream`.
The gRPC servicer (services/evaluator/service.py) only converts protos.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from videophy_bench.common.errors import Busy, FailedPrecondition, InvalidRequest, NotReady, Upstream
from videophy_bench.common.limits import MAX_ID_CHARS, MAX_JUDGE_QUERIES, MAX_URI_CHARS, require_texts
from videophy_bench.common.runtime import runtime_info
from videophy_bench.common.storage import Storage, sha256_file
from videophy_bench.common.watchdog import DeviceWatchdog
from videophy_bench.evaluator.errors import (
    EmptyVideoError,
    JudgeEndpointError,
    JudgeError,
    JudgeInputError,
    VideoDecodeError,
    VideoNotFoundError,
)
from videophy_bench.evaluator.judge import Judge, JudgeOutcome, JudgeQuery
from videophy_bench.proto.v1 import common_pb2

log = logging.getLogger(__name__)

_MISSING_VIDEO = (VideoNotFoundError, VideoDecodeError, EmptyVideoError)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def to_service_error(exc: JudgeError) -> Exception:
    """A bad video is a precondition failure (the file may be fixed); bad text/tasks are invalid; an
    endpoint that kept failing is upstream trouble (retried by the caller), one that refused the request
    makes it invalid (recorded at once)."""
    if isinstance(exc, JudgeEndpointError):
        return Upstream(str(exc)) if exc.transient else InvalidRequest(str(exc))
    return FailedPrecondition(str(exc)) if isinstance(exc, _MISSING_VIDEO) else InvalidRequest(str(exc))


def _delivered(result: JudgeOutcome | BaseException) -> JudgeOutcome | BaseException:
    return to_service_error(result) if isinstance(result, JudgeError) else result


@dataclass
class _Pending:
    path: str
    queries: list[JudgeQuery]
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass(frozen=True)
class VideoJudgeRequest:
    """One video to judge, as the caller sent it (checked by `EvaluationEngine.evaluate`)."""

    request_id: str
    video_uri: str
    queries: list[JudgeQuery]  # task names (videophy_bench.common.judge_tasks) and their texts
    video_sha256: str = ""  # when set, the video must have this sha256


class EvaluationEngine:
    def __init__(self, judge_factory, storage: Storage, capacity: int = 4, batch_wait_s: float = 0.05,
                 stall_limit_s: float = 0.0):
        self._judge_factory = judge_factory
        self.judge: Judge | None = None
        self.storage = storage
        self.capacity = max(1, capacity)
        self.batch_wait_s = batch_wait_s
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpu")
        self._queue: asyncio.Queue[_Pending] | None = None
        self._inflight = 0
        self._batcher: asyncio.Task | None = None
        self.runtime: common_pb2.RuntimeInfo | None = None
        self.watchdog = DeviceWatchdog(stall_limit_s)

    async def load(self) -> None:
        loop = asyncio.get_running_loop()
        self.judge = await loop.run_in_executor(self.executor, self._judge_factory)
        self.runtime = runtime_info(self.judge.info.device)
        self._queue = asyncio.Queue()
        self._batcher = asyncio.ensure_future(self._batch_loop())

    @property
    def ready(self) -> bool:
        """The judge is loaded and the batcher runs (the last step of `load`)."""
        return self._batcher is not None

    # -- protos --------------------------------------------------------------------------------
    def model_proto(self) -> common_pb2.ModelInfo:
        info = self.judge.info
        return common_pb2.ModelInfo(model_id=info.model_id, revision=info.revision, preset=info.name,
                                    dtype=info.dtype)

    def _queries(self, request: VideoJudgeRequest) -> list[JudgeQuery]:
        """The request's queries, once every field is within its limit (see the module docstring)."""
        require_texts(("request_id", request.request_id, MAX_ID_CHARS),
                      ("video_uri", request.video_uri, MAX_URI_CHARS))
        if request.video_sha256 and not _SHA256.fullmatch(request.video_sha256):
            raise InvalidRequest("video_sha256 must be 64 lower-case hex digits")
        if not request.queries:
            raise InvalidRequest("no queries: name at least one task")
        if len(request.queries) > MAX_JUDGE_QUERIES:
            raise InvalidRequest(f"{len(request.queries)} queries; the limit is {MAX_JUDGE_QUERIES}")
        queries: list[JudgeQuery] = []
        for q in request.queries:
            name = q.task
            if name not in self.judge.info.tasks:
                raise InvalidRequest(f"task {name!r} is not served by {self.judge.info.model_id} "
                                     f"(serves {', '.join(self.judge.info.tasks)})")
            if any(seen.task == name for seen in queries):  # answers are told apart by task
                raise InvalidRequest(f"task {name!r} is asked twice; one query per task")
            queries.append(q)
        try:
            self.judge.validate(queries)  # text: characters, NUL, tokens against the context
        except JudgeInputError as exc:
            raise to_service_error(exc) from None
        return queries

    # -- judging --------------------------------------------------------------------------------
    async def evaluate(self, request: VideoJudgeRequest) -> AsyncIterator[str | JudgeOutcome]:
        """"queued" once the video is accepted, then its outcome (timings include "total")."""
        if not self.ready:
            raise NotReady("judge is still loading")
        queries = self._queries(request)
        path = self.storage.resolve(request.video_uri)
        if not path.is_file():
            raise FailedPrecondition(f"video {request.video_uri!r} does not exist under the storage root")
        # Hashing a large file must not stall the event loop (health checks, other calls).
        if request.video_sha256 and await asyncio.to_thread(sha256_file, path) != request.video_sha256:
            raise FailedPrecondition(f"video {request.video_uri!r} does not match the expected sha256")
        if self._inflight >= self.capacity:
            raise Busy(f"evaluator busy ({self._inflight}/{self.capacity} videos queued)")
        self._inflight += 1
        started = time.perf_counter()
        try:
            yield "queued"
            pending = _Pending(str(path), queries)
            await self._queue.put(pending)
            outcome: JudgeOutcome = await asyncio.shield(pending.done)
        finally:
            self._inflight -= 1
        total = time.perf_counter() - started
        yield dataclasses.replace(outcome, timings={**outcome.timings, "total": total})


    # -- batching ------------------------------------------------------------------------------
    async def _batch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.batch_wait_s
            while len(batch) < self.capacity:
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), max(0.0, deadline - loop.time())))
                except TimeoutError:
                    break
            judge = (self.watchdog.watched(f"judge batch of {len(batch)}", self._judge_items)
                     if getattr(self.judge, "device_work", True) else self._judge_items)
            results = await loop.run_in_executor(self.executor, judge, batch)
            for pending, result in zip(batch, results, strict=True):
                if pending.done.done():
                    continue
                if isinstance(result, BaseException):
                    pending.done.set_exception(result)
                else:
                    pending.done.set_result(result)

    def _judge_items(self, batch: list[_Pending]) -> list[JudgeOutcome | BaseException]:
        """Worker thread: one batched forward; on a bad input, fall back to one by one to isolate it."""
        try:  # an item's own failure may stand in its place (the Judge contract)
            return [_delivered(r) for r in self.judge.judge_batch([(p.path, p.queries) for p in batch])]
        except JudgeInputError as exc:
            if len(batch) == 1:
                return [to_service_error(exc)]
        except Exception as exc:  # delivered to each caller, mapped by the interceptor
            if len(batch) == 1:
                return [exc]
        out: list[JudgeOutcome | BaseException] = []
        for p in batch:
            try:
                out.append(self.judge.judge(p.path, p.queries))
            except JudgeError as exc:
                out.append(to_service_error(exc))
            except Exception as exc:
                out.append(exc)
        return out
