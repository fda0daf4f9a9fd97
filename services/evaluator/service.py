"""EvaluatorService: a thin gRPC servicer over a Judge, with micro-batching of queued videos.

Up to `capacity` calls are accepted at once (GetInfo tells the orchestrator how many worker slots
to open); a batcher gathers what is queued into one `judge_batch` forward, whose padding keeps each
score equal to its batch-of-one score. More calls than capacity get RESOURCE_EXHAUSTED at once.
Each batch runs inside the device watchdog (services/common/watchdog.py): one batch past
`stall_limit_s` fails liveness.

Every request is checked before its video is hashed, decoded or queued (sizes from
`services.common.limits`, then the judge's own `validate`: characters, NUL, tokens against its
context), so an oversized request costs no model work and is answered INVALID_ARGUMENT at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from videophy.v1 import common_pb2, evaluator_pb2, evaluator_pb2_grpc

from services.common import judge_tasks
from services.common.errors import Busy, FailedPrecondition, InvalidRequest, NotReady
from services.common.limits import MAX_ID_CHARS, MAX_JUDGE_QUERIES, MAX_URI_CHARS, require_texts
from services.common.runtime import runtime_info
from services.common.storage import Storage, sha256_file
from services.common.watchdog import DeviceWatchdog
from services.evaluator.errors import (
    EmptyVideoError,
    JudgeInputError,
    VideoDecodeError,
    VideoNotFoundError,
)
from services.evaluator.judge import Judge, JudgeOutcome, JudgeQuery

log = logging.getLogger(__name__)

_MISSING_VIDEO = (VideoNotFoundError, VideoDecodeError, EmptyVideoError)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def to_service_error(exc: JudgeInputError) -> Exception:
    """A bad video is a precondition failure (the file may be fixed); bad text/tasks are invalid."""
    return FailedPrecondition(str(exc)) if isinstance(exc, _MISSING_VIDEO) else InvalidRequest(str(exc))


@dataclass
class _Pending:
    path: str
    queries: list[JudgeQuery]
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class EvaluatorServicer(evaluator_pb2_grpc.EvaluatorServiceServicer):
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
        self._runtime: common_pb2.RuntimeInfo | None = None
        self.watchdog = DeviceWatchdog(stall_limit_s)

    async def load(self) -> None:
        loop = asyncio.get_running_loop()
        self.judge = await loop.run_in_executor(self.executor, self._judge_factory)
        self._runtime = runtime_info(self.judge.info.device)
        self._queue = asyncio.Queue()
        self._batcher = asyncio.ensure_future(self._batch_loop())

    @property
    def ready(self) -> bool:
        """The judge is loaded and the batcher runs (the last step of `load`)."""
        return self._batcher is not None

    # -- protos --------------------------------------------------------------------------------
    def _model_proto(self) -> common_pb2.ModelInfo:
        info = self.judge.info
        return common_pb2.ModelInfo(model_id=info.model_id, revision=info.revision, preset=info.name,
                                    dtype=info.dtype)

    def _queries(self, request: evaluator_pb2.EvaluateRequest) -> list[JudgeQuery]:
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
            known = judge_tasks.task_by_wire(q.task)
            if known is None:
                raise InvalidRequest(f"unknown task {q.task}")
            name = known.name
            if name not in self.judge.info.tasks:
                raise InvalidRequest(f"task {name!r} is not served by {self.judge.info.model_id} "
                                     f"(serves {', '.join(self.judge.info.tasks)})")
            if any(seen.task == name for seen in queries):  # answers are told apart by task
                raise InvalidRequest(f"task {name!r} is asked twice; one query per task")
            queries.append(JudgeQuery(task=name, text=q.text))
        try:
            self.judge.validate(queries)  # text: characters, NUL, tokens against the context
        except JudgeInputError as exc:
            raise to_service_error(exc) from None
        return queries

    # -- RPCs ----------------------------------------------------------------------------------
    async def Evaluate(self, request, context):  # gRPC method name
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
            yield evaluator_pb2.EvaluateEvent(request_id=request.request_id,
                                              progress=evaluator_pb2.EvaluateProgress(phase="queued"))
            pending = _Pending(str(path), queries)
            await self._queue.put(pending)
            outcome: JudgeOutcome = await asyncio.shield(pending.done)
        finally:
            self._inflight -= 1
        timings = dict(outcome.timings)
        timings["total"] = time.perf_counter() - started
        answers = [
            evaluator_pb2.JudgeAnswer(
                task=judge_tasks.task(a.task).wire,
                score=None if a.score is None else float(a.score),  # unset: no score (parser_error)
                raw_text=a.raw_text,
                parse_status=judge_tasks.PARSE_STATUSES[a.parse_status],
            )
            for a in outcome.answers
        ]
        yield evaluator_pb2.EvaluateEvent(request_id=request.request_id, result=evaluator_pb2.EvaluateResult(
            answers=answers, model=self._model_proto(), runtime=self._runtime,
            frame_indices=list(outcome.frame_indices), timings_s=timings))

    async def GetInfo(self, request, context):
        if self.judge is None:
            raise NotReady("judge is still loading")
        return evaluator_pb2.EvaluatorInfo(model=self._model_proto(), runtime=self._runtime,
                                           tasks=[judge_tasks.task(t).wire for t in self.judge.info.tasks],
                                           capacity=self.capacity)

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
            judge = self.watchdog.watched(f"judge batch of {len(batch)}", self._judge_items)
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
        try:
            return list(self.judge.judge_batch([(p.path, p.queries) for p in batch]))
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
            except JudgeInputError as exc:
                out.append(to_service_error(exc))
            except Exception as exc:
                out.append(exc)
        return out
