"""One `videophy-bench run`: prompts -> run directory (lock, ledger, config check) -> services ->
resume verification -> dispatch -> exports. Every exit path stops local children, writes the exports
and the manifest from the ledger, and releases the run-directory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.channel import ClientConfig
from services.common.storage import Storage
from services.orchestrator import artifacts, export, manifest
from services.orchestrator.discovery import Target, parse_targets
from services.orchestrator.dispatch import Dispatcher, DispatchOptions, ReplicaInfo, first_info
from services.orchestrator.items import RunConfig, WorkItem, derive_seed
from services.orchestrator.ledger import Ledger, RunLock
from services.orchestrator.local import LocalServices
from services.orchestrator.progress import run_progress
from services.orchestrator.prompts import PromptSet, load_prompt_set
from services.orchestrator.status import collect

log = logging.getLogger(__name__)


class UsageError(RuntimeError):
    """Bad arguments or a run directory that cannot take this run (exit code 2)."""


@dataclass
class RunOptions:
    prompts: str
    out: Path
    storage_root: Path | None = None
    limit: int | None = None
    ids: list[str] | None = None
    hard_only: bool = False
    seeds: int = 1
    run_seed: int = 0
    upsampled: bool = False
    generators: str | None = None
    evaluators: str | None = None
    local: bool = False
    model: str | None = None
    judge_model: str | None = None
    no_judge: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    negative_prompt: str | None = None
    local_generators: int | None = None
    local_evaluators: int | None = None
    local_generator_args: list[str] = field(default_factory=list)
    local_evaluator_args: list[str] = field(default_factory=list)
    startup_timeout_s: float = 1800.0
    prompt_revision: str | None = None
    cache_dir: str | None = None
    progress: bool | None = None  # None: rich on a TTY, log lines otherwise
    client: ClientConfig = field(default_factory=ClientConfig)
    dispatch: DispatchOptions = field(default_factory=DispatchOptions)
    argv: list[str] = field(default_factory=list)


def _prompt_table(ps: PromptSet) -> dict[str, dict[str, str]]:
    return {
        p.prompt_id: {
            "action": p.action,
            "category": p.category,
            "is_hard": "" if p.is_hard is None else str(p.is_hard),
        }
        for p in ps.prompts
    }


def _output_prefix(run_dir: Path, storage_root: Path) -> str:
    try:
        rel = run_dir.resolve().relative_to(storage_root.resolve())
    except ValueError:
        raise UsageError(
            f"--out {run_dir} must be inside --storage-root {storage_root} (the services write "
            "videos under the storage root)"
        ) from None
    return "videos" if rel == Path(".") else f"{rel.as_posix()}/videos"


def _requested_config(opts: RunOptions, ps: PromptSet) -> dict[str, Any]:
    """The configuration keys known before any replica answers (checked early: no model load wasted)."""
    cfg = {
        "overrides": dict(opts.overrides),
        "negative_prompt": opts.negative_prompt,
        "upsampled": opts.upsampled,
        "run_seed": opts.run_seed,
        "prompt_set_sha256": ps.sha256,
    }
    if opts.model:
        cfg["generator_model"] = opts.model
    return cfg


def _make_items(opts: RunOptions, ps: PromptSet, cfg_hash: str) -> list[WorkItem]:
    chosen = ps.select(ids=opts.ids, hard_only=opts.hard_only, limit=opts.limit)
    if opts.upsampled:
        fallback = sum(1 for p in chosen if not p.upsampled_caption)
        if fallback:
            log.warning(
                "%d prompts have no upsampled caption; they are generated from the caption "
                "(recorded as gen_prompt)",
                fallback,
            )
    return [
        WorkItem(
            prompt_id=p.prompt_id,
            seed=derive_seed(opts.run_seed, p.prompt_id, k),
            caption=p.caption,
            gen_prompt=p.gen_prompt(opts.upsampled),
            config_hash=cfg_hash,
            rule=p.rule,
        )
        for p in chosen
        for k in range(opts.seeds)
    ]


async def _plan(
    ledger: Ledger, storage: Storage, items: list[WorkItem], judging: bool
) -> tuple[list[WorkItem], list[WorkItem], int]:
    """Split items into (to generate, to judge, already done), verifying every recorded artifact.

    A finished item whose file is missing or whose sha256 changed is reset and made again; failed
    items get fresh attempts.
    """
    rows = {r["request_id"]: r for r in ledger.rows([it.request_id for it in items])}
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


def _targets(spec: str | None, flag: str) -> list[Target]:
    try:
        return parse_targets(spec)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


async def run(opts: RunOptions) -> int:
    """Execute the run; returns the process exit code (0: every selected item settled)."""
    session_start = time.time()
    ps = await asyncio.to_thread(
        load_prompt_set, opts.prompts, revision=opts.prompt_revision, cache_dir=opts.cache_dir
    )
    run_dir = Path(opts.out)
    storage_root = Path(opts.storage_root) if opts.storage_root else run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    prefix = _output_prefix(run_dir, storage_root)
    if not opts.local and not opts.generators:
        raise UsageError(
            "give --generators ADDRESSES (or dns:///name:port), or --local to start services here"
        )
    lock = RunLock(run_dir).acquire()
    ledger = Ledger(run_dir)
    local: LocalServices | None = None
    dispatcher: Dispatcher | None = None
    config: RunConfig | None = None
    progress: asyncio.Task | None = None
    storage = Storage(storage_root)
    try:
        ledger.check_config(_requested_config(opts, ps), keys=list(_requested_config(opts, ps)))
        ps.write(run_dir / "prompts.csv")
        judging = not opts.no_judge and (opts.local or bool(opts.evaluators))
        if opts.local:
            local = LocalServices(
                run_dir,
                storage_root,
                opts.model or "wan2.2-ti2v-5b",
                (opts.judge_model or "videophy_2_auto") if judging else None,
                opts.local_generators,
                opts.local_evaluators,
                opts.local_generator_args,
                opts.local_evaluator_args,
                opts.startup_timeout_s,
            )
            gen_addrs, eval_addrs = await local.start(opts.client)
            gen_targets, judge_targets = (
                parse_targets(",".join(gen_addrs)),
                parse_targets(",".join(eval_addrs)),
            )
        else:
            gen_targets = _targets(opts.generators, "--generators")
            judge_targets = _targets(opts.evaluators, "--evaluators") if judging else []
        gen_info = await first_info("generator", gen_targets, opts.client, opts.startup_timeout_s)
        judge_info: ReplicaInfo | None = None
        if judge_targets:
            judge_info = await first_info("evaluator", judge_targets, opts.client, opts.startup_timeout_s)
        if opts.model and gen_info.preset != opts.model:
            raise UsageError(
                f"--model {opts.model}: the generators serve {gen_info.preset!r} ({gen_info.model_id})"
            )
        config = RunConfig(
            generator_model=gen_info.preset,
            generator_model_id=gen_info.model_id,
            generator_revision=gen_info.revision,
            overrides=dict(opts.overrides),
            negative_prompt=opts.negative_prompt,
            upsampled=opts.upsampled,
            judge_model=judge_info.model_id if judge_info else None,
            judge_revision=judge_info.revision if judge_info else "",
            run_seed=opts.run_seed,
            prompt_set_sha256=ps.sha256,
        )
        ledger.check_config(config.as_dict())
        ledger.set_meta("prompt_set", ps.describe())
        items = _make_items(opts, ps, config.hash)
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
        dispatch_opts = opts.dispatch
        dispatch_opts.output_prefix = prefix
        dispatch_opts.overrides = dict(opts.overrides)
        dispatch_opts.negative_prompt = opts.negative_prompt
        dispatcher = Dispatcher(
            ledger,
            storage,
            opts.client,
            gen_targets,
            judge_targets,
            dispatch_opts,
            expected_generator=gen_info.model_key(),
            expected_judge=judge_info.model_key() if judge_info else None,
        )
        dispatcher.seen[gen_info.address] = gen_info
        if judge_info:
            dispatcher.seen[judge_info.address] = judge_info
        manifest.write(
            run_dir,
            config=config.as_dict(),
            config_hash=config.hash,
            prompt_set=ps.describe(),
            argv=opts.argv,
            replicas=dispatcher.seen,
            counts=ledger.counts(),
            session_start=session_start,
        )
        judged = bool(judge_targets)
        progress = asyncio.create_task(run_progress(lambda: collect(ledger.conn, judged), tty=opts.progress))
        await dispatcher.run(to_gen, to_judge)
        counts = ledger.counts()
        log.info("run finished: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0
    finally:
        if progress is not None:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await progress
        if local is not None:
            local.stop()
        try:
            if config is not None:
                summary = export.export_run(
                    run_dir,
                    ledger.rows(),
                    _prompt_table(ps),
                    storage,
                    {"config_hash": config.hash, "prompt_set_sha256": ps.sha256},
                )
                log.info("summary: %s", ", ".join(f"{k}={summary.get(k)}" for k in (
                    "n_items", "n", "joint", "mean_sa", "mean_pc", "n_unparseable", "n_failed")))
                manifest.write(
                    run_dir,
                    config=config.as_dict(),
                    config_hash=config.hash,
                    prompt_set=ps.describe(),
                    argv=opts.argv,
                    replicas=dispatcher.seen if dispatcher else {},
                    counts=ledger.counts(),
                    session_start=session_start,
                    finished=True,
                )
        finally:
            ledger.close()
            lock.release()


def run_sync(opts: RunOptions) -> int:
    """asyncio.run with SIGTERM treated like Ctrl-C (Kubernetes stops pods with SIGTERM)."""

    async def main() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await run(opts)

    return asyncio.run(main())
