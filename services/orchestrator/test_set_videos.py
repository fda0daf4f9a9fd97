"""`videophy-bench run --videos videophy2-test`: the VideoPhy-2 test set's own leaderboard videos,
fetched by `video_url` and judged like any other existing videos (docs/orchestrator.md, "The
leaderboard's own videos").

The test set (`videophysics/videophy2_test` from the Hub, or a local copy with `--test-csv`) has one
row per (caption, model_name) with the human labels and the video's URL. Each row of the chosen
models (`--arms`, default every model in the file) becomes an item of arm = `model_name`, mapped onto
the prompt set by `normalize_caption(caption)` as the CSV source does (a caption outside the set is
judged under an `x-` id); its seed is derived from the URL, so the item survives reordering and new
rows. The human labels stay in the test CSV: the item records its `video_url` (ledger
`item_sources`, results.csv `video_url`) so the leaderboard joins them by URL, and the caption its
video was generated from as far as the URL's folder says (`caption_source`, services/orchestrator/
caption_source.py), per item and per arm (ledger meta `video_sources`).

Videos land at `<run's video prefix>/<model_name>/<request_id>.mp4` (no part of the URL names a
file); the downloads (services/orchestrator/download.py: bounded, resumable, retried, checksummed,
atomic) overlap with judging: each video is decoded and handed to the dispatcher as it lands. A
download that fails is a failed item (stage `download`, its reason), never an aborted run; a full
disk fails the item that hit it and every download not yet begun, with that reason. On rerun a
fetched video is verified (sha256) and kept, a judged one is not judged again, a failed one is
fetched again, and a part left by an interrupted session is continued.
"""

from __future__ import annotations

import asyncio
import collections
import csv
import hashlib
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videophy_bench.common import csvio
from videophy_bench.common.errors import PathEscape
from videophy_bench.common.storage import Storage, safe_component
from videophy_bench.orchestrator import artifacts, caption_source
from videophy_bench.orchestrator.download import DiskFull, Downloader, DownloadFailed
from videophy_bench.orchestrator.items import WorkItem
from videophy_bench.orchestrator.ledger import Ledger
from videophy_bench.orchestrator.prompts import Prompt, PromptSet, normalize_caption
from videophy_bench.orchestrator.run_options import TEST_SET_SOURCE, DownloadOptions
from videophy_bench.orchestrator.video_source import (
    META_KEY,
    OUTSIDE_PREFIX,
    Planned,
    VideoSourceError,
    outside_id,
    video_seed,
)
from videophy_bench.orchestrator.video_source import STAGE as INPUT_STAGE

log = logging.getLogger(__name__)

SOURCE_NAME = TEST_SET_SOURCE
STAGE = "download"  # the ledger's error stage of a video that could not be fetched
REQUIRED_COLUMNS = ("caption", "model_name", "video_url")
_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class TestRow:
    line: int  # the row's line in the CSV, the header being 1
    caption: str
    model: str
    video_url: str


@dataclass
class _Fetch:
    item: WorkItem
    url: str
    uri: str


@dataclass
class TestSetSource:
    spec: str
    csv_path: Path
    csv_sha256: str
    revision: str
    rows: list[TestRow]  # the chosen models' rows
    arms: tuple[str, ...]
    models: dict[str, int]  # every model_name of the file -> rows

    has_rules = False  # the test set has no `rule` column: SA and PC are judged

    def describe(self, arm: str) -> dict[str, Any]:
        return {
            "source": self.spec,
            "kind": SOURCE_NAME,
            "csv": str(self.csv_path),
            "csv_sha256": self.csv_sha256,
            "revision": self.revision,
            "rows": sum(1 for r in self.rows if r.model == arm),
            "arm": arm,
            "generator": arm,
        }

    # -- rows -> items -----------------------------------------------------------------------------
    def _entries(self, ps: PromptSet, cfg_hash: str) -> tuple[list[tuple[TestRow, WorkItem, str]],
                                                                dict[int, list[int]]]:
        """(row, item, refusal) per distinct item, and the lines that repeat an earlier row's item."""
        by_caption: dict[str, Prompt] = {normalize_caption(p.caption): p for p in ps.prompts}
        first: dict[str, TestRow] = {}
        repeats: dict[int, list[int]] = {}
        out = []
        for row in self.rows:
            prompt = by_caption.get(normalize_caption(row.caption))
            url = row.video_url.strip()
            refusal = ""
            if not normalize_caption(row.caption):
                refusal = "no caption"
            elif not url:
                refusal = "no video_url"
            elif not url.lower().startswith(_SCHEMES):
                refusal = f"video_url {url[:200]!r} is not an http(s) URL"
            item = WorkItem(
                prompt_id=prompt.prompt_id if prompt else outside_id(row.caption),
                seed=video_seed(url if url else f"line:{row.line}"),
                caption=row.caption,
                gen_prompt="",
                config_hash=cfg_hash,
                arm=row.model,
                rule=prompt.rule if prompt else "",
            )
            if item.request_id in first:  # the same video for the same caption and model again
                repeats.setdefault(first[item.request_id].line, []).append(row.line)
                continue
            first[item.request_id] = row
            out.append((row, item, refusal))
        return out, repeats

    async def plan(
        self,
        ledger: Ledger,
        storage: Storage,
        ps: PromptSet,
        cfg_hash: str,
        output_prefix: str,
        threads: int,
        options: DownloadOptions | None = None,
    ) -> Planned:
        """Record every chosen row as an item (with its URL and caption source), keep what earlier
        sessions fetched (sha256 checked) or judged, and list the rest to fetch (`Planned.fetching`)."""
        entries, repeats = self._entries(ps, cfg_hash)
        items = [item for _, item, _ in entries]
        added = ledger.add_items(items)
        ledger.set_sources(
            (item.request_id, row.video_url.strip(), caption_source.of_url(row.video_url))
            for row, item, _ in entries
        )
        rows = {r["request_id"]: r for r in ledger.rows([it.request_id for it in items])}
        answered = ledger.answered(rows)
        loop = asyncio.get_running_loop()

        def kept(row: Any) -> str:
            """Worker thread: "" when the recorded video is intact, else why it is fetched again."""
            try:
                artifacts.verify(storage, row["video_uri"], row["sha256"], decode=False)
            except artifacts.ArtifactError as exc:
                return str(exc)
            return ""

        recorded = [rows[it.request_id] for it in items if rows[it.request_id]["video_uri"]
                    and rows[it.request_id]["sha256"]]
        with ThreadPoolExecutor(max(1, threads), thread_name_prefix="verify") as pool:
            checks = await asyncio.gather(*(loop.run_in_executor(pool, kept, r) for r in recorded))
        broken = {r["request_id"]: why for r, why in zip(recorded, checks, strict=True) if why}
        to_judge: list[WorkItem] = []
        fetch: list[_Fetch] = []
        done = failed = 0
        for row, item, refusal in entries:
            rid, led = item.request_id, rows[item.request_id]
            if refusal:
                failed += 1
                if led["error"] != f"{INPUT_STAGE}: {refusal}" or led["state"] != "failed":
                    ledger.add_error(rid, INPUT_STAGE, refusal, state="failed")
                continue
            if led["video_uri"] and led["sha256"] and rid not in broken:
                item.video_uri, item.sha256 = led["video_uri"], led["sha256"]
                item.answered = answered.get(rid, frozenset())
                if led["state"] == "judged":
                    done += 1
                    continue
                if led["state"] != "generated":  # a judge failure of an earlier session: judged again
                    ledger.update(rid, state="generated")
                to_judge.append(item)
                continue
            if rid in broken:
                ledger.reset_to_pending(rid, f"{broken[rid]}; fetching it again")
            elif led["state"] != "pending":
                ledger.update(rid, state="pending")
            dest = f"{output_prefix}/{item.arm}/{rid}.mp4"  # arm: checked safe at open
            fetch.append(_Fetch(item, row.video_url.strip(), dest))
        self._record_meta(ledger, entries, repeats)
        outside = sum(1 for it in items if it.prompt_id.startswith(OUTSIDE_PREFIX))
        if outside:
            log.warning("%s: %d rows have captions outside the prompt set (ids %s...)", self.spec, outside,
                        OUTSIDE_PREFIX)
        fetching = Fetching(ledger, storage, options or DownloadOptions(), fetch) if fetch else None
        log.info("%s: %d videos of %s (%d to fetch, %d fetched and waiting for the judge, %d judged, "
                 "%d refused)", self.spec, len(items), ", ".join(self.arms), len(fetch), len(to_judge),
                 done, failed)
        return Planned(items, to_judge, added, done, failed, outside, fetching=fetching)

    def _record_meta(self, ledger: Ledger, entries: list[tuple[TestRow, WorkItem, str]],
                     repeats: dict[int, list[int]]) -> None:
        """Per arm: the source, its caption source (with the URL folders that say so)."""
        sources = dict(ledger.get_meta(META_KEY) or {})
        for arm in self.arms:
            urls = [row.video_url.strip() for row, item, _ in entries if item.arm == arm]
            folders = collections.Counter(caption_source.url_folder(u) for u in urls)
            values = [caption_source.of_url(u) for u in urls]
            sources[arm] = {
                **self.describe(arm),
                "caption_source": caption_source.of_group(values),
                "caption_sources": caption_source.tally(values),
                "url_folders": dict(sorted(folders.items())),
                "outside_prompt_set": sum(1 for _, it, _ in entries
                                          if it.arm == arm and it.prompt_id.startswith(OUTSIDE_PREFIX)),
                "duplicate_lines": {str(k): v for k, v in repeats.items()
                                    if any(r.line == k and r.model == arm for r in self.rows)},
            }
        ledger.set_meta(META_KEY, sources)


class Fetching:
    """The downloads of one session, feeding the dispatcher as videos land (`run`)."""

    def __init__(
        self, ledger: Ledger, storage: Storage, options: DownloadOptions, jobs: list[_Fetch]
    ) -> None:
        self.ledger = ledger
        self.storage = storage
        self.opts = options
        self.jobs = collections.deque(jobs)
        self.arriving = len(jobs)
        self._draining = False
        self._disk_full = ""

    def drain(self) -> None:
        """Begin no further download (those in flight stop with the run; their parts are continued)."""
        self._draining = True

    async def run(self, dispatcher: Any, to_generate: list[WorkItem], to_judge: list[WorkItem]) -> None:
        """`dispatcher.run` with the downloads beside it: each video is judged as it lands."""
        work = asyncio.create_task(dispatcher.run(to_generate, to_judge, arriving=self.arriving))
        feed = asyncio.create_task(self.feed(dispatcher.arrive))
        try:
            done, _ = await asyncio.wait({work, feed}, return_when=asyncio.FIRST_COMPLETED)
            if feed in done:
                feed.result()  # a bug in the feed must not leave the dispatcher waiting for arrivals
            await work
        finally:
            for task in (feed, work):
                task.cancel()
            await asyncio.gather(feed, work, return_exceptions=True)

    async def feed(self, arrive: Callable[[WorkItem | None], None]) -> None:
        async with Downloader(self.storage, self.opts) as downloader:
            workers = min(max(1, self.opts.concurrency), len(self.jobs))
            await asyncio.gather(*(self._worker(downloader, arrive) for _ in range(workers)))

    def _fail(self, job: _Fetch, reason: str, arrive: Callable[[WorkItem | None], None]) -> None:
        log.warning("download failed for %s (%s, prompt %s): %s", job.item.request_id, job.item.arm,
                    job.item.prompt_id, reason)
        self.ledger.add_error(job.item.request_id, STAGE, reason, state="failed")
        arrive(None)

    async def _worker(self, downloader: Downloader, arrive: Callable[[WorkItem | None], None]) -> None:
        while self.jobs and not self._draining:
            job = self.jobs.popleft()
            if self._disk_full:
                self._fail(job, f"not fetched: {self._disk_full}", arrive)
                continue
            try:
                await self._one(downloader, job, arrive)
            except asyncio.CancelledError:
                raise  # the run stops: the item stays pending, its part is continued next time
            except Exception as exc:  # a bug must not lose the item or stall the run
                log.exception("download of %s: unexpected error", job.url)
                self._fail(job, f"{type(exc).__name__}: {exc}", arrive)

    async def _one(
        self, downloader: Downloader, job: _Fetch, arrive: Callable[[WorkItem | None], None]
    ) -> None:
        item = job.item
        self.ledger.begin_attempt(item.request_id, "gen_attempts")
        try:
            got = await downloader.fetch(job.url, job.uri)
        except DiskFull as exc:
            self._disk_full = str(exc)
            self._fail(job, str(exc), arrive)
            return
        except DownloadFailed as exc:
            self._fail(job, str(exc), arrive)
            return
        try:
            await asyncio.to_thread(artifacts.verify, self.storage, got.uri, got.sha256, decode=True)
        except artifacts.ArtifactError as exc:
            self.storage.resolve(got.uri).unlink(missing_ok=True)
            self._fail(job, f"not a decodable video: {exc}", arrive)
            return
        self.ledger.record_fetch(item.request_id, size=got.size, seconds=got.seconds,
                                 resumed_from=got.resumed_from, attempts=got.attempts,
                                 state="generated", video_uri=got.uri, sha256=got.sha256, error=None)
        item.video_uri, item.sha256, item.answered = got.uri, got.sha256, frozenset()
        arrive(item)


def _read_test_csv(path: Path, spec: str) -> tuple[list[str], list[list[str]], bytes]:
    try:
        data = path.read_bytes()
        header, body = csvio.read_rows(path)
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise VideoSourceError(f"--videos {spec}: cannot read {path}: {exc}") from None
    names = [h.strip() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise VideoSourceError(
            f"--videos {spec}: {path} is not the VideoPhy-2 test set (no {', '.join(missing)} column; "
            f"it needs {', '.join(REQUIRED_COLUMNS)})"
        )
    return names, body, data


def open_test_set(
    test_csv: str | os.PathLike[str] | None,
    arms: list[str] | None,
    *,
    revision: str | None = None,
    cache_dir: str | None = None,
) -> TestSetSource:
    """Read the test set (a local copy, or the Hub's) and choose its models; one line on bad input."""
    spec = SOURCE_NAME
    if test_csv is not None:
        path = Path(test_csv)
        if not path.is_file():
            raise VideoSourceError(f"--test-csv {test_csv}: no such file")
        pinned = ""
    else:
        from videophy_bench.common.hub import HubUnavailable
        from videophy_bench.orchestrator.prompts import download_videophy2

        try:
            path, pinned = download_videophy2(revision, cache_dir)
        except HubUnavailable as exc:
            raise VideoSourceError(f"--videos {spec}: {exc}") from None
    names, body, data = _read_test_csv(path, spec)
    col = {name: names.index(name) for name in REQUIRED_COLUMNS}

    def cell(fields: list[str], name: str) -> str:
        k = col[name]
        return fields[k] if k < len(fields) else ""

    rows = [
        TestRow(n, cell(f, "caption"), cell(f, "model_name").strip(), cell(f, "video_url"))
        for n, f in enumerate(body, start=2)
        if any(x.strip() for x in f)
    ]
    models = dict(sorted(collections.Counter(r.model for r in rows).items()))
    if not rows:
        raise VideoSourceError(f"--videos {spec}: {path} has a header but no rows")
    chosen = list(dict.fromkeys(a.strip() for a in arms if a.strip())) if arms else list(models)
    unknown = [a for a in chosen if a not in models]
    if unknown or not chosen:
        raise VideoSourceError(
            f"--arms {','.join(unknown) or '(empty)'}: not a model of the test set {path} (its models: "
            f"{', '.join(m or '(empty)' for m in models)})"
        )
    for arm in chosen:
        try:
            safe_component(arm, "model_name")
        except PathEscape as exc:
            raise VideoSourceError(f"--videos {spec}: {exc} (it names the arm's video folder)") from None
    return TestSetSource(
        spec=spec,
        csv_path=path.resolve(),
        csv_sha256=hashlib.sha256(data).hexdigest(),
        revision=pinned,
        rows=[r for r in rows if r.model in chosen],
        arms=tuple(chosen),
        models=models,
    )


__all__ = ["SOURCE_NAME", "STAGE", "Fetching", "TestSetSource", "open_test_set"]
