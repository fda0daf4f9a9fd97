"""One `videophy-bench run`: prompts -> run directory (lock, ledger, exports refreshed, config check)
-> services -> resume verification -> dispatch -> exports. Every exit path stops local children,
writes the exports and the manifest from the ledger, and releases the run-directory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from pathlib import Path
from typing import Any

from videophy_bench.common.errors import InvalidRequest
from videophy_bench.common.judge_tasks import applies, default_tasks, families, task_names, tasks_of
from videophy_bench.common.limits import MAX_PROMPT_CHARS, check_text
from videophy_bench.common.openai_chat import API_KEY_ENV, EndpointError
from videophy_bench.common.storage import Storage
from videophy_bench.evaluator.catalog import TINY as TINY_JUDGE
from videophy_bench.evaluator.catalog import endpoint_judge, unknown_judge
from videophy_bench.generator.presets import PRESETS, get_preset, resolve
from videophy_bench.orchestrator import artifacts, export, manifest, test_set_videos, tracking, video_source
from videophy_bench.orchestrator.discovery import Target, parse_targets
from videophy_bench.orchestrator.dispatch import Dispatcher
from videophy_bench.orchestrator.interrupt import Interrupted, SignalStop
from videophy_bench.orchestrator.items import RunConfig, WorkItem, derive_seed
from videophy_bench.orchestrator.ledger import Ledger, RunLock
from videophy_bench.orchestrator.local import LocalServices, visible_gpus
from videophy_bench.orchestrator.metrics import RunMetrics, run_metrics
from videophy_bench.orchestrator.progress import progress_info, run_progress
from videophy_bench.orchestrator.prompts import Prompt, PromptSet, load_prompt_set
from videophy_bench.orchestrator.replicas import ReplicaInfo, TasksUnserved, evaluator_infos, first_info
from videophy_bench.orchestrator.run_options import RunOptions
from videophy_bench.orchestrator.status import recent_rate

log = logging.getLogger(__name__)


DEFAULT_LOCAL_MODEL = "wan2.2-ti2v-5b"
DEFAULT_JUDGE = "videophy_2_auto"


class UsageError(RuntimeError):
    """Bad arguments or a run directory that cannot take this run (exit code 2)."""


def _output_prefix(run_dir: Path, storage_root: Path) -> str:
    try:
        rel = run_dir.resolve().relative_to(storage_root.resolve())
    except ValueError:
        raise UsageError(
            f"--out {run_dir} must be inside --storage-root {storage_root} (the services write "
            "videos under the storage root)"
        ) from None
    return "videos" if rel == Path(".") else f"{rel.as_posix()}/videos"


def default_judge_tasks(ps: PromptSet) -> tuple[str, ...]:
    return default_tasks(has_rules=any(p.rule for p in ps.prompts))


def _judge_tasks(opts: RunOptions, ps: PromptSet) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """(requested tasks, their configuration value: None when the default or not judging)."""
    if opts.no_judge:
        return (), None
    default = default_judge_tasks(ps)
    tasks = tuple(opts.judge_tasks) if opts.judge_tasks else default
    return tasks, (None if set(tasks) == set(default) else tasks)


def _requested_config(opts: RunOptions, ps: PromptSet) -> dict[str, Any]:
    """The configuration keys known before any replica answers (checked early: no model load wasted)."""
    tasks_cfg = _judge_tasks(opts, ps)[1]
    cfg = {
        "overrides": dict(opts.overrides),
        "negative_prompt": opts.negative_prompt,
        "upsampled": opts.upsampled,
        "run_seed": opts.run_seed,
        "prompt_set_sha256": ps.sha256,
        "judge_tasks": list(tasks_cfg) if tasks_cfg else None,
    }
    if opts.model:
        cfg["generator_model"] = opts.model
    if opts.videos:
        cfg["judge_only"] = True
    return cfg


def selected_keys(opts: Any, ps: PromptSet) -> list[tuple[Prompt, int]]:
    """(prompt, seed) of every item the selection (`--ids`, `--hard-only`, `--limit`, `--seeds`) names."""
    chosen = ps.select(ids=opts.ids, hard_only=opts.hard_only, limit=opts.limit)
    return [(p, derive_seed(opts.run_seed, p.prompt_id, k)) for p in chosen for k in range(opts.seeds)]


def _make_items(opts: RunOptions, ps: PromptSet, cfg_hash: str) -> list[WorkItem]:
    keys = selected_keys(opts, ps)
    if opts.upsampled:
        fallback = len({p.prompt_id for p, _ in keys if not p.upsampled_caption})
        if fallback:
            log.warning(
                "%d prompts have no upsampled caption; they are generated from the caption "
                "(recorded as gen_prompt)",
                fallback,
            )
    return [
        WorkItem(
            prompt_id=p.prompt_id,
            seed=seed,
            caption=p.caption,
            gen_prompt=p.gen_prompt(opts.upsampled),
            config_hash=cfg_hash,
            rule=p.rule,
        )
        for p, seed in keys
    ]


async def _plan(
    ledger: Ledger, storage: Storage, items: list[WorkItem], judging: bool
) -> tuple[list[WorkItem], list[WorkItem], int]:
    """Split items into (to generate, to judge, already done), verifying every recorded artifact.

    A finished item whose file is missing or whose sha256 changed is reset and made again; failed
    items get fresh attempts.
    """
    rows = {r["request_id"]: r for r in ledger.rows([it.request_id for it in items])}
    answered = ledger.answered(rows)
    to_gen, to_judge, done = [], [], 0
    for item in items:
        row = rows[item.request_id]
        if row["video_uri"] and row["sha256"]:
            try:
                await asyncio.to_thread(
                    artifacts.verify, storage, row["video_uri"], row["sha256"], decode=False
                )
            except artifacts.ArtifactError as exc:
                log.warning("%s (prompt %s): %s; making it again", item.request_id, item.prompt_id, exc)
                ledger.reset_to_pending(item.request_id, f"artifact invalid on resume: {exc}")
                to_gen.append(item)
                continue
            item.video_uri, item.sha256 = row["video_uri"], row["sha256"]
            item.answered = answered.get(item.request_id, frozenset())  # a partly judged video keeps them
            if row["state"] == "judged" or (row["state"] == "generated" and not judging):
                done += 1
            elif judging:
                ledger.update(item.request_id, state="generated")
                to_judge.append(item)
            else:
                ledger.update(item.request_id, state="generated", error=None)  # a judge failure; no judge now
                done += 1
            continue
        if row["state"] != "pending":
            ledger.update(item.request_id, state="pending")
        to_gen.append(item)
    return to_gen, to_judge, done


def _role_model(
    tasks: frozenset[str], role: frozenset[str], infos: dict[str, ReplicaInfo]
) -> ReplicaInfo | None:
    """The replica whose model answers `role`'s tasks in this run: one serving the first of them,
    preferring a replica dedicated to the role (so a VideoCon pool answers videocon tasks)."""
    wanted = [t for t in task_names() if t in tasks and t in role]
    if not wanted:
        return None
    serving = [i for i in infos.values() if wanted[0] in i.tasks]
    if not serving:
        return None
    return min(serving, key=lambda i: (not set(i.tasks) <= role, i.address))


def _expected_tasks(tasks: tuple[str, ...], infos: dict[str, ReplicaInfo]) -> dict[str, ReplicaInfo]:
    """Which replica's model answers each task (the run's configuration records those models)."""
    out: dict[str, ReplicaInfo] = {}
    for role in (frozenset(tasks_of(f.name)) for f in families()):
        chosen = _role_model(frozenset(tasks), role, infos)
        for task in tasks:
            if task in role and chosen is not None and task in chosen.tasks:
                out[task] = chosen
            elif task in role:
                serving = sorted((i for i in infos.values() if task in i.tasks), key=lambda i: i.address)
                if serving:
                    out[task] = serving[0]
    return out


def _planned_pending(ledger: Ledger, opts: RunOptions, ps: PromptSet, judging: bool) -> dict[str, int]:
    """Pending work of the selection before the dispatcher runs (replicas may not exist yet: an
    autoscaler must see the work to start them)."""
    keys = {(p.prompt_id, seed) for p, seed in selected_keys(opts, ps)}
    state = {(r["prompt_id"], r["seed"]): r["state"] for r in ledger.conn.execute(
        "SELECT prompt_id, seed, state FROM items")}
    made = sum(1 for k in keys if state.get(k) in ("generated", "judged"))
    unjudged = sum(1 for k in keys if state.get(k) == "generated")
    return {"generate": len(keys) - made, "evaluate": unjudged if judging else 0}


def _targets(spec: str | None, flag: str) -> list[Target]:
    try:
        return parse_targets(spec)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def is_tiny_preset(name: str) -> bool:
    """A preset built offline with random weights (no Hub repo): runs anywhere, proves nothing."""
    return name in PRESETS and not PRESETS[name].model_id


def local_judges(opts: RunOptions, tasks: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(judge model, VideoCon model) that --local starts for these tasks; None: not started."""
    if not tasks:
        return None, None
    videocon = set(tasks_of("videocon"))
    want_videocon = bool(opts.videocon_model) and bool(set(tasks) & videocon)
    want_judge = bool(set(tasks) - videocon) or (bool(set(tasks) & videocon) and not want_videocon)
    return (
        (opts.judge_model or DEFAULT_JUDGE) if want_judge else None,
        opts.videocon_model if want_videocon else None,
    )


def check_generation(opts: RunOptions, preset: str | None) -> None:
    """Refuse overrides and a negative prompt the generator would refuse for every item (checked with
    the generator's own rules; without a known preset only what holds for every preset)."""
    if opts.negative_prompt is not None:
        problem = check_text("--negative-prompt", opts.negative_prompt, MAX_PROMPT_CHARS)
        if problem:
            raise UsageError(problem)
    if preset is None or preset not in PRESETS:
        return
    try:
        resolve(get_preset(preset), seed=0, negative_prompt=opts.negative_prompt, **opts.overrides)
    except InvalidRequest as exc:
        raise UsageError(f"--model {preset}: {exc}") from None


def preflight(opts: RunOptions) -> None:
    """Refuse, before anything is created or started, what would fail later: unknown models, real
    models without a GPU, no services, a run directory outside the storage root, a tracker that cannot
    be used."""
    try:
        tracking.check(opts.tracking)
    except tracking.TrackingUnavailable as exc:
        raise UsageError(str(exc)) from None
    if opts.videos is not None:
        problem = video_source.conflicting_options(opts)
        if problem:
            raise UsageError(problem)
    elif opts.arms or opts.test_csv:
        raise UsageError(f"--arms and --test-csv apply only to --videos {test_set_videos.SOURCE_NAME}")
    problem = opts.download.problem()
    if problem:
        raise UsageError(problem)
    if opts.model is not None and opts.model not in PRESETS:
        raise UsageError(
            f"--model {opts.model}: unknown generator preset; choose one of {', '.join(PRESETS)}"
        )
    if not opts.local and not opts.generators and opts.videos is None:
        raise UsageError(
            "give --generators ADDRESSES (or dns:///name:port), or --local to start services here"
        )
    check_generation(opts, opts.model or (DEFAULT_LOCAL_MODEL if opts.local else None))
    for flag, path in (("--out", opts.out), ("--storage-root", opts.storage_root)):
        if path is not None and Path(path).exists() and not Path(path).is_dir():
            raise UsageError(f"{flag} {path} exists and is not a directory")
    _output_prefix(Path(opts.out), Path(opts.storage_root) if opts.storage_root else Path(opts.out))
    if not opts.local:
        return  # judge names and devices belong to the remote services
    # The prompt set may add "rule" to the default tasks; that starts no other model.
    tasks = () if opts.no_judge else tuple(opts.judge_tasks or default_tasks(has_rules=False))
    judge, videocon = local_judges(opts, tasks)
    model = opts.model or DEFAULT_LOCAL_MODEL
    started = [] if opts.videos is not None else [("--model", model, is_tiny_preset(model))]
    for flag, name in (("--judge-model", judge), ("--videocon-model", videocon)):
        if name is not None:
            problem = unknown_judge(name)
            if problem:
                raise UsageError(f"{flag}: {problem}")
            if endpoint_judge(name) and opts.judge_endpoint is None:
                raise UsageError(f"{flag} {name} needs --llm-endpoint URL and --llm-model NAME")
            started.append((flag, name, name == TINY_JUDGE or endpoint_judge(name)))  # no GPU of ours
    real = [f"{flag} {name}" for flag, name, tiny in started if not tiny]
    if real and not opts.allow_cpu and not visible_gpus():
        raise UsageError(
            f"{' and '.join(real)} {'needs' if len(real) == 1 else 'need'} a GPU and none is visible "
            "(nvidia-smi, CUDA_VISIBLE_DEVICES); pass --allow-cpu to run on the CPU anyway (hours per "
            "video), or use the tiny models"
        )


def local_endpoint(opts: RunOptions) -> tuple[list[str], dict[str, str]]:
    """(flags, environment) that give a local endpoint judge its endpoint and frames (the API key
    through the environment only); checks that the endpoint answers and serves the model, so an
    unreachable one is one line before anything is created (blocking: run it in a thread)."""
    settings = opts.judge_endpoint
    if not opts.local or opts.no_judge or settings is None or not any(
            endpoint_judge(m) for m in (opts.judge_model, opts.videocon_model)):
        return [], {}
    from videophy_bench.common.openai_chat import ChatClient

    try:
        ChatClient.from_settings(settings).check()
    except EndpointError as exc:
        raise UsageError(f"--llm-endpoint: {exc}") from None
    return [*settings.argv(), *opts.judge_frames.argv()], (
        {API_KEY_ENV: settings.api_key} if settings.api_key else {})


def _video_source(opts: RunOptions) -> video_source.VideoSource | test_set_videos.TestSetSource | None:
    """`--videos SOURCE` read (its CSV only) before anything is created; judge tasks default to
    sa,pc plus rule when its CSV has a rule column with text."""
    if opts.videos is None:
        return None
    try:
        if opts.videos == test_set_videos.SOURCE_NAME:
            source: Any = test_set_videos.open_test_set(
                opts.test_csv, opts.arms, revision=opts.prompt_revision, cache_dir=opts.cache_dir)
        else:
            source = video_source.open_source(opts.videos, opts.arm)
    except video_source.VideoSourceError as exc:
        raise UsageError(str(exc)) from None
    if source.has_rules and not opts.judge_tasks and not opts.no_judge:
        opts.judge_tasks = ("sa", "pc", "rule")
    return source


def _tally(ledger: Ledger, items: list[WorkItem], judged: bool) -> tuple[int, int]:
    """(finished, selected) items: judged, or generated when there is no judge."""
    final = {"judged"} if judged else {"judged", "generated"}
    return sum(r["state"] in final for r in ledger.rows([it.request_id for it in items])), len(items)


async def run(opts: RunOptions, stop: SignalStop | None = None) -> int:
    """Execute the run; returns the process exit code (0: every selected item settled).

    With `stop` (installed by run_sync), a signal drains the dispatch and records the tally."""
    stop = stop or SignalStop()
    session_start = time.time()
    preflight(opts)
    source = _video_source(opts)
    ps = await asyncio.to_thread(
        load_prompt_set, opts.prompts, revision=opts.prompt_revision, cache_dir=opts.cache_dir
    )
    run_dir = Path(opts.out)
    storage_root = Path(opts.storage_root) if opts.storage_root else run_dir
    prefix = _output_prefix(run_dir, storage_root)
    if opts.items_fn is None and source is None:
        selected_keys(opts, ps)  # unknown --ids: refused before anything starts
    endpoint_args, endpoint_env = await asyncio.to_thread(local_endpoint, opts)
    run_dir.mkdir(parents=True, exist_ok=True)  # only now: every check above creates nothing
    # Awaited, so a signal during the wait still stops the run (exit 130/143, nothing started).
    lock = await RunLock(run_dir).acquire_async(opts.lock_wait_s)
    try:
        ledger = Ledger(run_dir)  # LedgerCorrupt: one line naming `videophy-bench recover`
        # Exports match the ledger before any replica is contacted (a crashed session left them stale).
        export.export_run(run_dir, ledger.conn)
    except BaseException:
        lock.release()
        raise
    local: LocalServices | None = None
    dispatcher: Dispatcher | None = None
    config: RunConfig | None = None
    progress: asyncio.Task | None = None
    metrics: RunMetrics | None = None
    metrics_task: asyncio.Task | None = None
    storage = Storage(storage_root)

    def _write_manifest(finished: bool) -> None:
        assert config is not None
        manifest.write(
            run_dir,
            config=config.as_dict(),
            config_hash=config.hash,
            prompt_set=ps.describe(),
            argv=opts.argv,
            replicas=dispatcher.seen if dispatcher else {},
            counts=ledger.counts(),
            session_start=session_start,
            finished=finished,
            video_sources=ledger.get_meta(video_source.META_KEY),
        )

    try:
        requested = _requested_config(opts, ps)
        ledger.check_config(requested, keys=list(requested))
        ps.write(run_dir / "prompts.csv")
        judge_tasks, judge_tasks_cfg = _judge_tasks(opts, ps)
        judging = bool(judge_tasks) and (opts.local or bool(opts.evaluators))
        # Tasks some selected item needs (rule only where a prompt has one): checked before the run.
        needed = frozenset(t for t in judge_tasks if any(applies(t, p.rule) for p in ps.prompts))
        if opts.metrics_port is not None:
            planned = (_planned_pending(ledger, opts, ps, judging) if source is None
                       else {"generate": 0, "evaluate": len(source.rows) if judging else 0})

            def snapshot() -> dict[str, Any]:
                started = dispatcher is not None and dispatcher._started
                return {
                    "pending": dispatcher.pending() if started else planned,
                    "items": ledger.counts(),
                    "replicas": dispatcher.replica_counts() if dispatcher else {},
                    "task_replicas": dispatcher.task_replicas() if dispatcher else {},
                    "videos_per_hour": recent_rate(ledger.conn),
                }

            metrics = RunMetrics(opts.metrics_port, opts.metrics_addr)
            log.info("Prometheus metrics on http://%s:%d/metrics", opts.metrics_addr, metrics.port)
            metrics_task = asyncio.create_task(run_metrics(metrics, snapshot, opts.metrics_interval_s))
        if opts.local:
            judge_model, videocon_model = local_judges(opts, judge_tasks if judging else ())
            local = LocalServices(
                run_dir,
                storage_root,
                None if source else opts.model or DEFAULT_LOCAL_MODEL,
                judge_model,
                opts.local_generators,
                opts.local_evaluators,
                opts.local_generator_args,
                opts.local_evaluator_args,
                opts.startup_timeout_s,
                videocon_model=videocon_model,
                max_restarts=opts.local_restarts,
                endpoint_args=endpoint_args,
                endpoint_env=endpoint_env,
            )
            _, eval_addrs = await local.start(opts.client)
            # Supervised children may come back on new ports: the dispatcher asks for the live ones.
            gen_targets = [] if source else [
                Target.pool("local generators", functools.partial(local.addresses, "generator"))]
            judge_targets = (
                [Target.pool("local evaluators", functools.partial(local.addresses, "evaluator"))]
                if eval_addrs
                else []
            )
        else:
            gen_targets = _targets(opts.generators, "--generators")
            judge_targets = _targets(opts.evaluators, "--evaluators") if judging else []
        gen_info = (  # no generator when judging existing videos
            await first_info("generator", gen_targets, opts.client, opts.startup_timeout_s)
            if gen_targets else None
        )
        judge_infos: dict[str, ReplicaInfo] = {}
        if judge_targets:
            try:
                judge_infos = await evaluator_infos(
                    judge_targets, opts.client, needed, opts.startup_timeout_s
                )
            except TasksUnserved as exc:
                raise UsageError(str(exc)) from None
        expected = _expected_tasks(judge_tasks, judge_infos)
        judge_models: dict[str, Any] = {}  # each judge family's model, under its RunConfig keys
        for fam in families():
            info = next((expected[t] for t in judge_tasks if t in tasks_of(fam.name) and t in expected), None)
            judge_models[fam.model_key] = info.model_id if info else None
            judge_models[fam.revision_key] = info.revision if info else ""
        if opts.model and gen_info and gen_info.preset != opts.model:
            raise UsageError(
                f"--model {opts.model}: the generators serve {gen_info.preset!r} ({gen_info.model_id})"
            )
        check_generation(opts, gen_info.preset if gen_info else None)  # remote generators: their rules
        config = RunConfig(
            generator_model=gen_info.preset if gen_info else "",
            generator_model_id=gen_info.model_id if gen_info else "",
            generator_revision=gen_info.revision if gen_info else "",
            overrides=dict(opts.overrides),
            negative_prompt=opts.negative_prompt,
            upsampled=opts.upsampled,
            run_seed=opts.run_seed,
            prompt_set_sha256=ps.sha256,
            judge_tasks=judge_tasks_cfg if judge_targets else None,
            **judge_models,
            judge_only=source is not None,
        )
        ledger.check_config(config.as_dict())
        ledger.set_meta("prompt_set", ps.describe())
        fetching: test_set_videos.Fetching | None = None
        if isinstance(source, test_set_videos.TestSetSource):
            planned = await source.plan(ledger, storage, ps, config.hash, prefix,
                                        opts.dispatch.verify_threads, opts.download)
            items, added, to_gen, to_judge, done = planned.as_run_plan()
            fetching = planned.fetching
        elif source is not None:
            planned = await source.plan(ledger, storage, ps, config.hash, prefix,
                                        opts.dispatch.verify_threads)
            items, added, to_gen, to_judge, done = planned.as_run_plan()
        else:
            items = opts.items_fn(ps, config.hash) if opts.items_fn else _make_items(opts, ps, config.hash)
            added = ledger.add_items(items)
            to_gen, to_judge, done = await _plan(ledger, storage, items, bool(judge_targets))
        log.info(
            "run %s: %d items selected (%d new), %d done, %d to generate, %d to judge; config %s",
            run_dir,
            len(items),
            added,
            done,
            len(to_gen),
            len(to_judge),
            config.hash,
        )
        dispatch_opts = opts.dispatch.for_run(output_prefix=prefix, overrides=opts.overrides,
                                              negative_prompt=opts.negative_prompt, judge_tasks=judge_tasks)
        dispatcher = Dispatcher(
            ledger,
            storage,
            opts.client,
            gen_targets,
            judge_targets,
            dispatch_opts,
            expected_generator=gen_info.model_key() if gen_info else None,
            expected_tasks={t: info.model_key() for t, info in expected.items()},
        )
        if gen_info is not None:
            dispatcher.seen[gen_info.address] = gen_info
        for info in expected.values():
            dispatcher.seen[info.address] = info
        _write_manifest(finished=False)
        judged = bool(judge_targets)
        seen = dispatcher.seen  # replicas of the display's rows, as they join
        progress = asyncio.create_task(run_progress(
            lambda: progress_info(ledger.conn, judged, seen.values(), session_start), tty=opts.progress))

        def drain() -> None:
            assert dispatcher is not None
            dispatcher.drain()
            if fetching is not None:
                fetching.drain()

        with stop.draining(drain):
            try:
                work = (fetching.run(dispatcher, to_gen, to_judge) if fetching is not None
                        else dispatcher.run(to_gen, to_judge))
                await (local.supervise(work, opts.client) if local is not None else work)
            finally:
                stop.tally = _tally(ledger, items, judged)
        counts = ledger.counts()
        log.info("run %s: %s", "stopped" if stop.signum else "finished",
                 ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0
    finally:
        for task in (progress, metrics_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if metrics is not None:
            metrics.close()
        if local is not None:
            local.stop()
        try:
            if config is not None:
                summary = export.export_run(run_dir, ledger.conn)
                log.info("summary: %s", ", ".join(f"{k}={summary.get(k)}" for k in (
                    "n_items", "n", "joint", "mean_sa", "mean_pc", "n_unparseable", "n_failed",
                    "n_prompt_truncated")))
                _write_manifest(finished=True)
        finally:
            ledger.close()
            lock.release()


def run_sync(opts: RunOptions) -> int:
    """asyncio.run; SIGINT/SIGTERM drain the run (interrupt.py) and then raise Interrupted."""
    stop = SignalStop()

    async def main() -> int:
        stop.install()
        try:
            return await run(opts, stop)
        except asyncio.CancelledError:
            if stop.signum is None:
                raise
            return 1  # replaced by Interrupted below

    code = asyncio.run(main())
    if stop.signum is not None:
        raise Interrupted(stop.signum, stop.tally)
    tracking.log_run(Path(opts.out), opts.tracking)  # never fails the finished run
    return code
