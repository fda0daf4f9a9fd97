"""Pull-based work stealing over generator and evaluator replicas.

Shape (docs/orchestrator.md): one shared queue per stage; one worker per replica *slot* (GetInfo's
`capacity`) takes the next item only when its replica reports ready, so a fast replica simply takes
more items than a slow one. Errors:

- UNAVAILABLE, RESOURCE_EXHAUSTED (busy, OOM), DEADLINE_EXCEEDED and other transient codes put the
  item back on the queue at once, where any free replica can take it; the worker that failed backs
  off (tenacity's exponential jitter) before pulling again. After `max_attempts` the item is failed
  with its last reason and the run goes on.
- INVALID_ARGUMENT, FAILED_PRECONDITION and other permanent codes fail the item at once, except that
  an evaluator's FAILED_PRECONDITION (video missing or not matching its sha256) sends the item back
  to generation.

Each video is verified (sha256 + full decode) and then judged as soon as it exists. Verification and
the ledger write run in a task beside the worker's next call (at most one per worker), so a replica
is never idle while the orchestrator checks its last video.

Judging is split by task: every evaluator replica serves some judge tasks (GetInfo `tasks`, e.g. an
AutoEval pool serves sa/pc/rule, a VideoCon-Physics pool videocon_sa/videocon_pc). A video's remaining
tasks are split into jobs, each as large as one pool covers (one call shares the decode); a worker
takes the first job whose tasks its replica serves. Jobs are re-split whenever pools change. Answers
are written to the item's ledger row as they come; the item is `judged` when every task has one. A
job that no live replica serves waits (and counts towards the stall timeout). Replicas are
re-resolved every `refresh_s`: new addresses get workers, vanished ones finish their current item
and stop (a replica that really died fails its call with UNAVAILABLE, and the item is redone).

`drain()` (the first SIGINT/SIGTERM) stops every worker from taking another item; `run` returns once
the calls and checks in flight are done, or after `drain_grace_s`. What is cancelled then keeps its
unfinished ledger state (generating, or generated without all answers), so a rerun redoes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf import json_format

from videophy_bench.common import judge_tasks
from videophy_bench.common.channel import ClientConfig
from videophy_bench.common.storage import Storage
from videophy_bench.orchestrator import artifacts
from videophy_bench.orchestrator.clients import EvaluatorClient, GeneratorClient, ProtocolError
from videophy_bench.orchestrator.discovery import Target, resolve
from videophy_bench.orchestrator.items import WorkItem
from videophy_bench.orchestrator.judge_queue import JobQueue, JudgeJob, Judging, partition_tasks
from videophy_bench.orchestrator.ledger import Ledger, StoredAnswer
from videophy_bench.orchestrator.replicas import NoReplicas, Replica, ReplicaInfo, backoff_s, replica_info
from videophy_bench.orchestrator.run_options import DispatchOptions
from videophy_bench.proto.v1 import evaluator_pb2, generator_pb2

log = logging.getLogger(__name__)

PERMANENT = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
    }
)



class Dispatcher:
    """Runs items through generation (and judging when evaluators are given) until all are settled."""

    def __init__(
        self,
        ledger: Ledger,
        storage: Storage,
        client_config: ClientConfig,
        gen_targets: list[Target],
        judge_targets: list[Target],
        options: DispatchOptions,
        *,
        expected_generator: tuple[str, str, str] | None = None,
        expected_tasks: dict[str, tuple[str, str, str]] | None = None,
    ) -> None:
        self.ledger = ledger
        self.storage = storage
        self.client_config = client_config
        self.targets = {"generator": gen_targets, "evaluator": judge_targets}
        self.opts = options
        self.expected_generator = expected_generator
        # The model (preset, id, revision) each judge task must come from; others are not used for it.
        self.expected_tasks = dict(expected_tasks or {})
        self.judging = bool(judge_targets) and bool(options.judge_tasks)
        self.queues: dict[str, asyncio.Queue[WorkItem]] = {"generator": asyncio.Queue()}
        self.jobs = JobQueue()
        self._busy_tasks: Counter[str] = Counter()  # judge tasks being answered right now
        self._last_ready_task = dict.fromkeys(options.judge_tasks, time.monotonic())
        self._started = False
        self.replicas: dict[str, dict[str, Replica]] = {"generator": {}, "evaluator": {}}
        self.seen: dict[str, ReplicaInfo] = {}
        self.in_flight: Counter[str] = Counter()
        self._remaining = 0
        self._finished = asyncio.Event()
        self._last_ready = {"generator": time.monotonic(), "evaluator": time.monotonic()}
        self._fatal: BaseException | None = None
        self._checks: set[asyncio.Task] = set()  # generated videos being verified and recorded
        self._last_check: dict[asyncio.Task, asyncio.Task] = {}  # worker -> its latest such task
        self._verifier = ThreadPoolExecutor(options.verify_threads, thread_name_prefix="verify")
        self._gen_prompts: list[str] = []  # unique prompts of the generation stage, for Prepare
        self._draining = False
        self._drain_requested = asyncio.Event()

    # -- public ----------------------------------------------------------------------------------
    async def run(self, to_generate: list[WorkItem], to_judge: list[WorkItem], arriving: int = 0) -> None:
        """Process the items; returns when every one is judged (or generated, without judge) or failed.

        `arriving`: items whose videos are still on their way (downloads); each is handed over with
        `arrive` once, and `run` waits for them too."""
        self._started = True
        now = time.monotonic()
        self._last_ready = {"generator": now, "evaluator": now}
        self._last_ready_task = dict.fromkeys(self.opts.judge_tasks, now)
        self._remaining = len(to_generate) + len(to_judge) + arriving
        self._gen_prompts = list(dict.fromkeys(item.gen_prompt for item in to_generate))
        for item in to_generate:
            self.queues["generator"].put_nowait(item)
        for item in to_judge:
            self._enqueue_judging(item)
        if self._remaining <= 0:
            return
        monitor = asyncio.create_task(self._monitor())
        waits = [asyncio.create_task(self._finished.wait()), asyncio.create_task(self._drained())]
        try:
            done, _ = await asyncio.wait({monitor, *waits}, return_when=asyncio.FIRST_COMPLETED)
            if monitor in done:
                monitor.result()  # raises NoReplicas
        finally:
            for task in (monitor, *waits):
                task.cancel()
            await self._stop_all()
            self._verifier.shutdown(wait=False, cancel_futures=True)

    def arrive(self, item: WorkItem | None) -> None:
        """One of `run`'s arriving items: its video is in place (judge it), or None: it failed on the
        way (already recorded in the ledger)."""
        if item is None:
            self._settle(None)
        else:
            self._enqueue_judging(item)

    def drain(self) -> None:
        """Take no more items; `run` returns when the work in flight is done or the grace is over."""
        if self._draining:
            return
        self._draining = True
        for pool in self.replicas.values():
            for rep in pool.values():
                for task in rep.idle:  # waiting for an item: holds none
                    task.cancel()
        self._drain_requested.set()

    async def _drained(self) -> None:
        await self._drain_requested.wait()
        grace = self.opts.drain_grace_s
        deadline = time.monotonic() + grace
        log.warning("draining: no new items; waiting up to %.0fs for %d calls in flight",
                    grace, sum(self.in_flight.values()))
        while sum(self.in_flight.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if sum(self.in_flight.values()):
            log.warning("drain grace of %.0fs over: %d calls in flight are stopped (left unfinished "
                        "in the ledger, redone on resume)", grace, sum(self.in_flight.values()))

    def pending(self) -> dict[str, int]:
        """Items waiting for (or in) each stage: what the autoscaler scales on."""
        generate = self.queues["generator"].qsize() + self.in_flight["generator"]
        evaluate = max(0, self._remaining - generate) if self.judging else 0
        return {"generate": generate, "evaluate": evaluate}

    def replica_counts(self) -> dict[str, int]:
        """Replicas in use per kind (answered GetInfo, serve this run's model, not retired)."""
        return {
            kind: sum(1 for r in pool.values() if r.accepted and not r.retired)
            for kind, pool in self.replicas.items()
        }

    def task_replicas(self) -> dict[str, int]:
        """Evaluator replicas in use per requested judge task."""
        reps = [r for r in self.replicas["evaluator"].values() if r.accepted and not r.retired]
        return {t: sum(1 for r in reps if t in r.serves) for t in self.opts.judge_tasks}

    # -- membership ------------------------------------------------------------------------------
    async def _monitor(self) -> None:
        while True:
            for kind in ("generator", "evaluator"):
                if self.targets[kind]:
                    await self._refresh(kind)
            self._check_stall()
            await asyncio.sleep(self.opts.refresh_s)

    def _check_stall(self) -> None:
        if self._draining:
            return  # nothing is taken any more: waiting items are not a stall
        now = time.monotonic()
        for kind in ("generator", "evaluator"):
            queued = self.queues[kind].qsize() if kind == "generator" else len(self.jobs)
            waiting = queued + self.in_flight[kind]
            if self.in_flight[kind]:
                self._last_ready[kind] = now  # someone is working
            if waiting and now - self._last_ready[kind] > self.opts.stall_timeout_s:
                raise NoReplicas(
                    f"no {kind} replica has been ready for {self.opts.stall_timeout_s:.0f}s "
                    f"with {waiting} items waiting; rerun the same command to resume"
                )
        # A task only some replicas serve can stall while others are busy: check each waiting task.
        for task, busy in self._busy_tasks.items():
            if busy:
                self._last_ready_task[task] = now
        waiting_tasks = {t for job in self.jobs.jobs if job.ctx.active for t in job.tasks}
        for task in sorted(waiting_tasks):
            if now - self._last_ready_task.get(task, now) > self.opts.stall_timeout_s:
                raise NoReplicas(
                    f"no evaluator replica serving {task} has been ready for "
                    f"{self.opts.stall_timeout_s:.0f}s "
                    f"with {len(self.jobs)} judge jobs waiting; rerun the same command to resume"
                )

    def _pools(self) -> set[frozenset[str]]:
        return {
            r.serves for r in self.replicas["evaluator"].values() if r.accepted and not r.retired and r.serves
        }

    def _useful_tasks(self, info: ReplicaInfo) -> frozenset[str]:
        """The requested tasks this replica serves with the model the run expects for each."""
        out = set()
        for task in set(info.tasks) & set(self.opts.judge_tasks):
            expected = self.expected_tasks.get(task)
            if expected is None or info.model_key() == expected:
                out.add(task)
        return frozenset(out)

    async def _refresh(self, kind: str) -> None:
        current = await resolve(self.targets[kind])
        pool = self.replicas[kind]
        for address in current - set(pool):
            client = (GeneratorClient if kind == "generator" else EvaluatorClient)(
                address, self.client_config
            )
            rep = Replica(kind, address, client)
            pool[address] = rep
            rep.tasks.append(asyncio.create_task(self._start_replica(rep)))
            log.info("%s replica joined: %s", kind, address)
        for address in set(pool) - current:
            rep = pool.pop(address)
            rep.retired = True
            for task in rep.idle:  # idle workers hold no item; busy ones stop after their item
                task.cancel()
            log.info("%s replica left: %s", kind, address)
            if kind == "evaluator" and rep.accepted:
                self.jobs.replan(self._pools())

    async def _start_replica(self, rep: Replica) -> None:
        failures = 0
        while not rep.retired:
            try:
                rep.info = replica_info(rep.kind, rep.address, await rep.client.info())
                break
            except grpc.aio.AioRpcError:
                failures += 1
                await asyncio.sleep(backoff_s(failures, 0.2, self.opts.backoff_max_s))
        if rep.retired or rep.info is None or self._draining:
            return
        if rep.kind == "evaluator":
            rep.serves = self._useful_tasks(rep.info)
            if not rep.serves:
                log.error(
                    "evaluator %s serves %s with %s, none of this run's tasks %s with the run's models; "
                    "not using it",
                    rep.address,
                    ",".join(rep.info.tasks),
                    rep.info.model_key(),
                    ",".join(self.opts.judge_tasks),
                )
                return
        else:
            expected = self.expected_generator
            if expected is not None and rep.info.model_key() != expected:
                log.error(
                    "%s %s serves %s, not this run's %s; not using it",
                    rep.kind,
                    rep.address,
                    rep.info.model_key(),
                    expected,
                )
                return
        rep.accepted = True
        self.seen[rep.address] = rep.info
        if rep.kind == "evaluator":
            log.info("evaluator %s answers %s", rep.address, ",".join(sorted(rep.serves)))
            self.jobs.replan(self._pools())
        if rep.kind == "generator":
            await self._prepare(rep)
        worker = self._gen_worker if rep.kind == "generator" else self._judge_worker
        for _ in range(rep.info.capacity):
            rep.tasks.append(asyncio.create_task(worker(rep)))

    async def _prepare(self, rep: Replica) -> None:
        """Encode the run's prompts on a joining generator, in batches; failures only cost speed."""
        if not self.opts.prepare_prompts or not self._gen_prompts:
            return
        assert isinstance(rep.client, GeneratorClient)
        t0, encoded = time.monotonic(), 0
        for i in range(0, len(self._gen_prompts), self.opts.prepare_batch):
            chunk = self._gen_prompts[i : i + self.opts.prepare_batch]
            try:
                resp = await rep.client.prepare(
                    chunk, self.opts.negative_prompt, self.opts.prepare_deadline_s
                )
            except grpc.aio.AioRpcError as exc:
                log.warning("generator %s: Prepare failed (%s: %s); it encodes prompts on demand",
                            rep.address, exc.code().name, exc.details())
                return
            encoded += resp.encoded
        log.info("generator %s: %d prompts prepared (%d newly encoded) in %.1fs", rep.address,
                 len(self._gen_prompts), encoded, time.monotonic() - t0)

    async def _stop_all(self) -> None:
        tasks = [t for pool in self.replicas.values() for r in pool.values() for t in r.tasks]
        tasks += self._checks
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for pool in self.replicas.values():
            for rep in pool.values():
                await rep.client.close()

    # -- worker loop -----------------------------------------------------------------------------
    async def _wait_ready(self, rep: Replica) -> bool:
        failures = 0
        while not rep.retired and not self._draining:
            if await rep.client.ready():
                now = time.monotonic()
                self._last_ready[rep.kind] = now
                for task in rep.serves:
                    self._last_ready_task[task] = now
                return True
            failures += 1
            await asyncio.sleep(backoff_s(failures, self.opts.backoff_initial_s, self.opts.backoff_max_s))
        return False

    async def _pull(self, rep: Replica, handle: Callable[[Replica, Any], Awaitable[bool]]) -> None:
        me = asyncio.current_task()
        assert me is not None
        failures = 0
        while not rep.retired and await self._wait_ready(rep):
            if self._draining:
                return  # drain() came while readiness was asked: take nothing new
            rep.idle.add(me)
            try:
                if rep.kind == "generator":
                    item: Any = await self.queues["generator"].get()
                else:
                    item = await self.jobs.get(rep.serves)
            finally:
                rep.idle.discard(
                    me
                )  # from here on the worker holds an item and is never cancelled by discovery
            self.in_flight[rep.kind] += 1
            try:
                ok = await handle(rep, item)
            except asyncio.CancelledError:
                raise  # shutdown: the ledger still says generating/generated; resume redoes it
            except Exception as exc:  # a bug must not kill the worker and lose the item
                log.exception("%s worker %s: unexpected error", rep.kind, rep.address)
                ok = False
                if isinstance(item, JudgeJob):
                    self._retry_job(item, f"{type(exc).__name__}: {exc}")
                else:
                    self._retry(item, f"{type(exc).__name__}: {exc}")
            finally:
                self.in_flight[rep.kind] -= 1
            failures = 0 if ok else failures + 1
            if failures:
                await asyncio.sleep(backoff_s(failures, self.opts.backoff_initial_s, self.opts.backoff_max_s))

    async def _gen_worker(self, rep: Replica) -> None:
        await self._pull(rep, self._generate)

    async def _judge_worker(self, rep: Replica) -> None:
        await self._pull(rep, self._judge)

    # -- settling items --------------------------------------------------------------------------
    def _settle(self, item: WorkItem | None) -> None:
        self._remaining -= 1
        if self._remaining <= 0:
            self._finished.set()

    def _fail(self, stage: str, item: WorkItem, reason: str) -> None:
        log.warning("%s failed for %s (prompt %s): %s", stage, item.request_id, item.prompt_id, reason)
        self.ledger.add_error(item.request_id, stage, reason, state="failed")
        self._settle(item)

    def _retry_job(self, job: JudgeJob, reason: str) -> None:
        """Put a judge job back for any replica that serves its tasks, or fail the item."""
        ctx = job.ctx
        if not ctx.active:
            return
        if job.attempts >= self.opts.max_attempts:
            ctx.active = False
            self._fail("judge", ctx.item, f"{reason} (after {job.attempts} attempts)")
            return
        log.info(
            "judge (%s) of %s will be retried (attempt %d): %s",
            ",".join(sorted(job.tasks)),
            ctx.item.request_id,
            job.attempts,
            reason,
        )
        self.ledger.add_error(ctx.item.request_id, "judge", reason, state="generated")
        self.jobs.put(job)

    def _retry(self, item: WorkItem, reason: str) -> None:
        """Put the item back for any generator, or fail it once it has used its attempts.

        (Judge retries are per job: `_retry_job`.)"""
        if item.gen_attempts >= self.opts.max_attempts:
            self._fail("generate", item, f"{reason} (after {item.gen_attempts} attempts)")
            return
        log.info(
            "generate of %s will be retried (attempt %d): %s", item.request_id, item.gen_attempts, reason
        )
        self.ledger.add_error(item.request_id, "generate", reason, state="pending")
        self.queues["generator"].put_nowait(item)

    # -- generation ------------------------------------------------------------------------------
    def _gen_request(self, item: WorkItem) -> generator_pb2.GenerateRequest:
        req = generator_pb2.GenerateRequest(
            request_id=item.request_id,
            prompt_id=item.prompt_id,
            prompt=item.gen_prompt,
            seed=item.seed,
            overrides=generator_pb2.GenerationOverrides(**self.opts.overrides),
            output_prefix=self.opts.output_prefix,
        )
        if self.opts.negative_prompt is not None:
            req.negative_prompt = self.opts.negative_prompt
        return req

    async def _generate(self, rep: Replica, item: WorkItem) -> bool:
        item.gen_attempts += 1
        self.ledger.begin_attempt(
            item.request_id, "gen_attempts", state="generating", gen_replica=rep.address
        )
        t0 = time.monotonic()
        assert isinstance(rep.client, GeneratorClient)
        try:
            result = await rep.client.generate(self._gen_request(item), self.opts.gen_deadline_s)
        except grpc.aio.AioRpcError as exc:
            reason = f"{exc.code().name}: {exc.details()} [{rep.address}]"
            if exc.code() in PERMANENT:
                self._fail("generate", item, reason)
                return True  # the replica is fine; the request is not
            self._retry(item, reason)
            return False
        except ProtocolError as exc:
            self._retry(item, str(exc))
            return False
        seconds = time.monotonic() - t0
        # The replica is free: its next item goes out while this video is checked and recorded. A
        # worker waits for its previous check first, so checks never pile up behind fast replicas.
        me = asyncio.current_task()
        assert me is not None
        previous = self._last_check.get(me)
        if previous is not None and not previous.done():
            await asyncio.wait({previous})
        self.in_flight["generator"] += 1
        check = asyncio.create_task(self._check_generated(rep, item, result, seconds))
        self._checks.add(check)
        check.add_done_callback(self._checks.discard)
        self._last_check[me] = check
        return True

    def _verified_result(self, uri: str, sha: str, result: generator_pb2.GenerateResult) -> str:
        """Worker thread: verify the artifact (sha256, full decode); the result as the ledger's JSON."""
        artifacts.verify(self.storage, uri, sha, decode=self.opts.verify_decode)
        return json.dumps(json_format.MessageToDict(result))

    async def _check_generated(
        self, rep: Replica, item: WorkItem, result: generator_pb2.GenerateResult, seconds: float
    ) -> None:
        try:
            uri, sha = result.artifact.uri, result.artifact.sha256
            try:
                gen_result = await asyncio.get_running_loop().run_in_executor(
                    self._verifier, self._verified_result, uri, sha, result
                )
            except artifacts.ArtifactError as exc:
                self._retry(item, f"artifact check failed: {exc} [{rep.address}]")
                return
            item.video_uri, item.sha256 = uri, sha
            self.ledger.update(
                item.request_id,
                state="generated",
                video_uri=uri,
                sha256=sha,
                gen_seconds=seconds,
                gen_result=gen_result,
                generated_at=time.time(),
                error=None,
            )
            if result.prompt_truncated:  # the generator logged it too; here it reaches the run's log
                log.warning("%s (prompt %s): the generator's text encoder read only %d of the prompt's %d "
                            "tokens (results.csv prompt_truncated)", item.request_id, item.prompt_id,
                            result.params.max_sequence_length, result.prompt_tokens)
            if self.judging:
                item.answered = frozenset()  # a new video: every task is judged afresh
                self._enqueue_judging(item)  # judged as soon as it exists
            else:
                self._settle(item)
        except asyncio.CancelledError:
            raise  # shutdown: the ledger still says generating; resume redoes it
        except Exception as exc:  # a bug must not lose the item
            log.exception("generator %s: unexpected error checking %s", rep.address, item.request_id)
            self._retry(item, f"{type(exc).__name__}: {exc}")
        finally:
            self.in_flight["generator"] -= 1

    # -- judging ---------------------------------------------------------------------------------
    def _required(self, item: WorkItem) -> frozenset[str]:
        return frozenset(t for t in self.opts.judge_tasks if judge_tasks.applies(t, item.rule))

    def _enqueue_judging(self, item: WorkItem) -> None:
        """Split the video's unanswered tasks into jobs for the current pools."""
        ctx = Judging(item, self._required(item), set(item.answered))
        if ctx.complete:  # answered in an earlier session (all but the state change)
            self._complete(ctx)
            return
        for tasks in partition_tasks(ctx.required - ctx.answered, self._pools()):
            self.jobs.put(JudgeJob(ctx, tasks))

    def _complete(self, ctx: Judging) -> None:
        """Mark an item judged whose answers were all recorded in an earlier session."""
        ctx.active = False
        self.ledger.update(ctx.item.request_id, state="judged", judged_at=time.time(), error=None)
        self._settle(ctx.item)

    def _judge_request(self, item: WorkItem, tasks: frozenset[str]) -> evaluator_pb2.EvaluateRequest:
        texts = {"caption": item.caption, "rule": item.rule}  # the original caption, not gen_prompt
        queries = [
            evaluator_pb2.JudgeQuery(task=t.wire, text=texts.get(t.text_field or "", ""))
            for t in judge_tasks.tasks()
            if t.name in tasks
        ]
        return evaluator_pb2.EvaluateRequest(
            request_id=item.request_id, video_uri=item.video_uri, queries=queries, video_sha256=item.sha256
        )

    async def _judge(self, rep: Replica, job: JudgeJob) -> bool:
        ctx, item = job.ctx, job.ctx.item
        if not ctx.active:
            return True
        job.attempts += 1
        item.judge_attempts += 1
        self.ledger.begin_attempt(item.request_id, "judge_attempts", judge_replica=rep.address)
        t0 = time.monotonic()
        assert isinstance(rep.client, EvaluatorClient)
        for task in job.tasks:
            self._busy_tasks[task] += 1
        try:
            request = self._judge_request(item, job.tasks)
            result = await rep.client.evaluate(request, self.opts.judge_deadline_s)
        except grpc.aio.AioRpcError as exc:
            reason = f"{exc.code().name}: {exc.details()} [{rep.address}]"
            if not ctx.active:
                return True  # the item already failed or went back to generation
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                # The judge cannot read the video we verified: it is gone or changed. Make it again.
                ctx.active = False
                self.ledger.reset_to_pending(item.request_id, f"judge: {reason}")
                item.video_uri = item.sha256 = ""
                item.answered = frozenset()
                if item.gen_attempts >= self.opts.max_attempts or not self.targets["generator"]:
                    # (without generators, existing videos: rerunning takes the video in again)
                    self._fail("generate", item, f"video unusable by the judge: {reason}")
                else:
                    self.queues["generator"].put_nowait(item)
                return True
            if exc.code() in PERMANENT:
                ctx.active = False
                self._fail("judge", item, reason)
                return True
            self._retry_job(job, reason)
            return False
        except ProtocolError as exc:
            self._retry_job(job, str(exc))
            return False
        finally:
            for task in job.tasks:
                self._busy_tasks[task] -= 1
        if not ctx.active:
            return True
        answers: dict[str, StoredAnswer] = {}
        for answer in result.answers:
            spec = judge_tasks.task_by_wire(answer.task)
            if spec is None or spec.name not in job.tasks:
                continue
            score = answer.score if answer.HasField("score") else None
            parse = judge_tasks.PARSE_NAMES.get(answer.parse_status, "")
            answers[spec.name] = StoredAnswer(spec.name, score, parse, answer.raw_text)
        got = set(answers)
        if got != job.tasks:
            missing = ",".join(sorted(job.tasks - got))
            self._retry_job(job, f"{rep.address} answered without {missing}")
            return False
        seconds = time.monotonic() - t0
        ctx.answered |= got
        ctx.seconds += seconds
        item.answered = frozenset(ctx.answered)
        fields: dict[str, Any] = {"judge_seconds": ctx.seconds}
        if ctx.complete:  # the last answers and the state change in one transaction
            ctx.active = False
            fields.update(state="judged", judged_at=time.time(), error=None)
        self.ledger.record_answers(item.request_id, answers.values(), replica=rep.address, seconds=seconds,
                                   **fields)
        if ctx.complete:
            self._settle(item)
        return True
