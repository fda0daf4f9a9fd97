"""Judge videos that already exist (`videophy-bench run --videos SOURCE`): the source's rows become
ledger items of one arm, their videos land under the storage root, and the dispatcher judges them
(no generator). Layout and rules: docs/orchestrator.md, "Judging existing videos".

SOURCE is a CSV in the official `inference.py` input format (`videopath`, `caption`, optional `rule`;
paths relative to the CSV or absolute; a relative path not found beside the CSV is looked up from the
working directory, as the official script reads it), or a directory holding such a CSV (`videos.csv`,
or its only `*.csv`). Each row maps onto the prompt set by `normalize_caption(caption)`; a caption
outside the set is still judged, under the id `x-` + sha256(normalised caption)[:12] and with no
action, hard flag or category. The judge reads the CSV's caption and rule verbatim, as the official
script does.

Item identity: (prompt id, seed, round 0, arm, config hash) with the seed derived from the video's
path as the CSV writes it (normalised), so reordering or extending the CSV keeps every item; a video
whose file changed (sha256) is judged again. Videos outside the storage root are copied to
`<run's video prefix>/<arm>/<request_id>.mp4` (atomically, sha256 of the copy recorded); a video
already under the storage root is judged in place. Every bad row is a failed item with its reason
(stage `input`), never an aborted run: no path, missing or unreadable file, empty, not a video or
truncated (full decode, as generated videos), a path that escapes the storage root (`..`, symlink) or
its directory source, a second row naming the same file.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import logging
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videophy_bench.common import csvio
from videophy_bench.common.errors import PathEscape
from videophy_bench.common.storage import Storage, safe_component, sha256_file
from videophy_bench.orchestrator import artifacts
from videophy_bench.orchestrator.items import WorkItem
from videophy_bench.orchestrator.ledger import Ledger
from videophy_bench.orchestrator.prompts import Prompt, PromptSet, normalize_caption

log = logging.getLogger(__name__)

DIR_CSV_NAME = "videos.csv"  # the CSV of a directory source (else the directory's only *.csv)
REQUIRED_COLUMNS = ("videopath", "caption")
OUTSIDE_PREFIX = "x-"  # prompt ids of captions outside the prompt set
STAGE = "input"  # the ledger's error stage of a bad row
META_KEY = "video_sources"  # ledger meta: {arm: describe()} of every source judged into the run
_SEED_MASK = (1 << 63) - 1


class VideoSourceError(ValueError):
    """The source as a whole cannot be read (no CSV, no header, missing columns); one line."""


@dataclass(frozen=True)
class SourceRow:
    line: int  # the row's number in the CSV, the header being 1 (a spreadsheet's row number)
    videopath: str
    caption: str
    rule: str = ""


@dataclass
class Planned:
    """What the source gives the runner: every item, those to judge, and the tally; `fetching`: the
    videos still to download (test_set_videos.Fetching), judged as they land."""

    items: list[WorkItem]
    to_judge: list[WorkItem]
    added: int
    done: int
    failed: int
    outside: int
    fetching: Any = None

    def as_run_plan(self) -> tuple[list[WorkItem], int, list[WorkItem], list[WorkItem], int]:
        """(items, added, to generate: none, to judge, done), as the runner's plan."""
        return self.items, self.added, [], self.to_judge, self.done


@dataclass
class _Entry:
    """One row on its way to the ledger."""

    row: SourceRow
    item: WorkItem
    path: Path | None  # lexical absolute path (None: the row has no videopath)
    refusal: str = ""  # set: recorded as failed without touching the file
    duplicates: list[int] = field(default_factory=list)


def outside_id(caption: str) -> str:
    return OUTSIDE_PREFIX + hashlib.sha256(normalize_caption(caption).encode("utf-8")).hexdigest()[:12]


def video_seed(key: str) -> int:
    """The item's seed: 63 bits of sha256 of the video's key (its normalised path in the CSV)."""
    return int(hashlib.sha256(f"video:{key}".encode()).hexdigest()[:16], 16) & _SEED_MASK


def default_arm(name: str) -> str:
    """A safe folder name from the source's name (`my run.csv` -> `my-run`)."""
    arm = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-_")[:128]
    return arm or "videos"


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@dataclass
class VideoSource:
    spec: str
    csv_path: Path
    csv_sha256: str
    rows: list[SourceRow]
    arm: str
    directory: Path | None = None  # a directory source: its videos must stay inside it

    @property
    def base(self) -> Path:
        return self.csv_path.parent

    @property
    def has_rules(self) -> bool:
        return any(r.rule for r in self.rows)

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.spec,
            "kind": "directory" if self.directory else "csv",
            "csv": str(self.csv_path),
            "csv_sha256": self.csv_sha256,
            "rows": len(self.rows),
            "arm": self.arm,
            "generator": None,
        }

    # -- rows -> items ---------------------------------------------------------------------------
    def _entries(self, ps: PromptSet, cfg_hash: str, storage_root: Path) -> list[_Entry]:
        by_caption: dict[str, Prompt] = {normalize_caption(p.caption): p for p in ps.prompts}
        root = storage_root.resolve()
        first: dict[str, _Entry] = {}  # the file (real path) -> the row that names it first
        dup_count: dict[str, int] = {}
        entries: list[_Entry] = []
        for row in self.rows:
            prompt = by_caption.get(normalize_caption(row.caption))
            prompt_id = prompt.prompt_id if prompt else outside_id(row.caption)
            text = row.videopath.strip()
            refusal, path, key = "", None, f"line:{row.line}"
            if not text:
                refusal = "no videopath"
            elif not normalize_caption(row.caption):
                refusal = "no caption"
            if text:
                raw = Path(text) if os.path.isabs(text) else self._relative(text)
                path = Path(os.path.normpath(raw.absolute()))
                key = os.path.normpath(text)
                refusal = refusal or self._escape(text, path, root)
            if path is not None and not refusal:
                real = os.path.realpath(path)
                if real in first:
                    dup_count[real] = dup_count.get(real, 0) + 1
                    key = f"{key}#duplicate{dup_count[real]}"
                    refusal = f"duplicate: row {first[real].row.line} of the CSV names the same video file"
                    first[real].duplicates.append(row.line)
            item = WorkItem(
                prompt_id=prompt_id,
                seed=video_seed(key),
                caption=row.caption,
                gen_prompt="",
                config_hash=cfg_hash,
                arm=self.arm,
                rule=row.rule or (prompt.rule if prompt else ""),
            )
            entry = _Entry(row, item, path, refusal)
            if path is not None and not refusal:
                first[os.path.realpath(path)] = entry
            entries.append(entry)
        return entries

    def _relative(self, text: str) -> Path:
        """A relative videopath: beside the CSV; else, as the official script reads it, from the
        working directory (never for a directory source)."""
        beside = self.base / text
        if self.directory is None and not os.path.lexists(beside) and os.path.lexists(text):
            return Path(text)
        return beside

    def _escape(self, text: str, path: Path, root: Path) -> str:
        """Why `path` is refused for leaving where it must stay ("" when it may be used)."""
        if self.directory is not None:
            inside = self.directory
            if not _under(path, inside) or not _under(Path(os.path.realpath(path)), inside):
                return f"{text!r} escapes the source directory {self.directory}"
        if not os.path.isabs(text) and _under(self.base.resolve(), root) and not _under(path, root):
            return f"{text!r} escapes the storage root {root} ('..')"
        if _under(path, root) and not _under(Path(os.path.realpath(path)), root):
            return f"{text!r} escapes the storage root {root} (a symlink to {os.path.realpath(path)})"
        return ""

    # -- files -----------------------------------------------------------------------------------
    @staticmethod
    def _ingest(
        storage: Storage, entry: _Entry, dest_uri: str, recorded: tuple[str, str] | None
    ) -> tuple[str, str, bool] | str:
        """Worker thread: bring the row's video under the storage root. Returns (uri, sha256, changed)
        or the reason it cannot be judged. `recorded`: (uri, sha256) the ledger already holds."""
        path = entry.path
        assert path is not None
        if not path.exists():
            if recorded is not None:  # the source went away; the copy that was judged is kept
                try:
                    artifacts.verify(storage, recorded[0], recorded[1], decode=False)
                    return recorded[0], recorded[1], False
                except artifacts.ArtifactError:
                    pass
            return f"video file not found: {path}"
        if not path.is_file():
            return f"not a regular file: {path}"
        try:
            if path.stat().st_size == 0:
                return f"empty file (0 bytes): {path}"
            real = Path(os.path.realpath(path))
            if _under(real, storage.root):  # already where the evaluators read: judged in place
                uri, sha = storage.uri_of(real), sha256_file(real)
            else:
                sha = sha256_file(path)
                uri = dest_uri
                if recorded != (uri, sha) or not storage.intact(uri, sha):
                    with storage.atomic_path(uri, ".mp4") as tmp:
                        shutil.copyfile(path, tmp)
                    copied = sha256_file(storage.resolve(uri))
                    if copied != sha:
                        storage.resolve(uri).unlink(missing_ok=True)
                        return f"{path} changed while it was copied; rerun to judge it"
        except (OSError, PathEscape) as exc:
            return f"cannot read {path}: {exc}"
        if recorded == (uri, sha):
            return uri, sha, False  # verified when first taken in (sha256 unchanged)
        try:
            artifacts.verify(storage, uri, sha, decode=True)
        except artifacts.ArtifactError as exc:
            if uri == dest_uri:
                storage.resolve(uri).unlink(missing_ok=True)  # our copy of a file that is no video
            return f"not a decodable video: {exc}"
        return uri, sha, True

    async def plan(
        self,
        ledger: Ledger,
        storage: Storage,
        ps: PromptSet,
        cfg_hash: str,
        output_prefix: str,
        threads: int,
    ) -> Planned:
        """Record every row in the ledger (new items added), take each video in (copy or in place,
        sha256, full decode of a new or changed file) and split into (to judge, done, failed)."""
        entries = self._entries(ps, cfg_hash, storage.root)
        items = [e.item for e in entries]
        added = ledger.add_items(items)
        rows = {r["request_id"]: r for r in ledger.rows([it.request_id for it in items])}
        answered = ledger.answered(rows)
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max(1, threads), thread_name_prefix="ingest") as pool:

            async def take(entry: _Entry) -> tuple[str, str, bool] | str:
                if entry.refusal:
                    return entry.refusal
                row = rows[entry.item.request_id]
                recorded = (row["video_uri"], row["sha256"]) if row["video_uri"] and row["sha256"] else None
                dest = f"{output_prefix}/{safe_component(self.arm, 'arm')}/{entry.item.request_id}.mp4"
                return await loop.run_in_executor(pool, self._ingest, storage, entry, dest, recorded)

            outcomes = await asyncio.gather(*(take(e) for e in entries))
        to_judge: list[WorkItem] = []
        done = failed = 0
        for entry, outcome in zip(entries, outcomes, strict=True):
            item, row = entry.item, rows[entry.item.request_id]
            if isinstance(outcome, str):
                failed += 1
                if row["error"] != f"{STAGE}: {outcome}" or row["state"] != "failed":
                    ledger.add_error(item.request_id, STAGE, outcome, state="failed")
                if row["video_uri"]:  # an earlier video of this row is no longer what the row names
                    ledger.forget_answers(item.request_id, video_uri=None, sha256=None)
                continue
            uri, sha, changed = outcome
            item.video_uri, item.sha256 = uri, sha
            if changed and row["video_uri"]:
                note = f"the video changed (sha256 {sha[:12]}...); judged again"
                ledger.add_error(item.request_id, STAGE, note)
            if changed:
                ledger.forget_answers(item.request_id, state="generated", video_uri=uri, sha256=sha,
                                      error=None)  # generated_at: no generator
                item.answered = frozenset()
            else:
                item.answered = answered.get(item.request_id, frozenset())
            if not changed and row["state"] == "judged":
                done += 1
                continue
            if not changed and row["state"] != "generated":  # a judge failure of an earlier session
                ledger.update(item.request_id, state="generated", video_uri=uri, sha256=sha)
            to_judge.append(item)
        outside = sum(1 for it in items if it.prompt_id.startswith(OUTSIDE_PREFIX))
        duplicates = {e.row.line: e.duplicates for e in entries if e.duplicates}
        sources = dict(ledger.get_meta(META_KEY) or {})
        sources[self.arm] = {**self.describe(), "outside_prompt_set": outside, "duplicate_lines": duplicates}
        ledger.set_meta(META_KEY, sources)
        if failed or outside:
            log.warning("%s: %d rows failed as input (their reasons in results.csv `error`), %d "
                        "captions outside the prompt set (ids %s...)", self.spec, failed, outside,
                        OUTSIDE_PREFIX)
        return Planned(items, to_judge, added, done, failed, outside)


def _source_csv(spec: str) -> tuple[Path, Path | None]:
    """(the CSV, the directory of a directory source)."""
    path = Path(spec)
    if path.is_dir():
        named = path / DIR_CSV_NAME
        if named.is_file():
            return named, path
        found = sorted(p for p in path.glob("*.csv") if p.is_file())
        if len(found) == 1:
            return found[0], path
        if not found:
            raise VideoSourceError(
                f"--videos {spec}: the directory holds no CSV; put one named {DIR_CSV_NAME} beside the "
                "videos (columns videopath, caption, optional rule)"
            )
        raise VideoSourceError(
            f"--videos {spec}: {len(found)} CSVs in the directory ({', '.join(p.name for p in found[:5])}); "
            f"name the one to judge {DIR_CSV_NAME}, or give its path"
        )
    if not path.is_file():
        raise VideoSourceError(f"--videos {spec}: no such file or directory")
    return path, None


def open_source(spec: str, arm: str | None = None) -> VideoSource:
    """Read SOURCE's CSV (nothing else is touched); raises VideoSourceError with one line."""
    csv_path, directory = _source_csv(spec)
    if arm is not None:
        try:
            safe_component(arm, "--arm")
        except PathEscape as exc:
            raise VideoSourceError(str(exc)) from None
    try:
        data = csv_path.read_bytes()
        header, body = csvio.read_rows(csv_path)
    except (OSError, csv.Error) as exc:
        raise VideoSourceError(f"--videos {spec}: cannot read {csv_path}: {exc}") from None
    names = [h.strip() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise VideoSourceError(
            f"--videos {spec}: {csv_path} has no {', '.join(missing)} column (header: "
            f"{', '.join(names) or 'empty'}); the official inference.py format is videopath, caption[, rule]"
        )
    col = {name: names.index(name) for name in (*REQUIRED_COLUMNS, "rule") if name in names}

    def cell(fields: list[str], name: str) -> str:
        k = col.get(name)
        return fields[k] if k is not None and k < len(fields) else ""

    rows = [
        SourceRow(n, cell(fields, "videopath"), cell(fields, "caption"), cell(fields, "rule"))
        for n, fields in enumerate(body, start=2)
        if any(f.strip() for f in fields)  # a blank line is no row
    ]
    if not rows:
        raise VideoSourceError(f"--videos {spec}: {csv_path} has a header but no rows")
    name = directory.resolve().name if directory is not None else csv_path.stem
    return VideoSource(
        spec=spec,
        csv_path=csv_path.resolve(),
        csv_sha256=hashlib.sha256(data).hexdigest(),
        rows=rows,
        arm=arm or default_arm(name),
        directory=directory.resolve() if directory is not None else None,
    )


# RunOptions fields that shape generation or select prompts: meaningless for existing videos.
_GENERATION_FLAGS = (
    ("generators", "--generators"),
    ("model", "--model"),
    ("no_judge", "--no-judge"),
    ("upsampled", "--upsampled"),
    ("negative_prompt", "--negative-prompt"),
    ("overrides", "--height/--width/--num-frames/--steps/..."),
    ("ids", "--ids"),
    ("limit", "--limit"),
    ("hard_only", "--hard-only"),
    ("run_seed", "--seed"),
    ("items_fn", "refine"),
)


def conflicting_options(opts: Any) -> str:
    """Why `--videos` cannot run with these options ("" when it can): no generation, no selection,
    and a judge to run (`--evaluators` or `--local`); `--arms`/`--test-csv` only for the test set,
    `--arm` never with it."""
    from videophy_bench.orchestrator.test_set_videos import SOURCE_NAME

    test_set = getattr(opts, "videos", None) == SOURCE_NAME
    if not test_set and (getattr(opts, "arms", None) or getattr(opts, "test_csv", None)):
        return f"--arms and --test-csv apply only to --videos {SOURCE_NAME}"
    if test_set and getattr(opts, "arm", None):
        return (f"--arm does not apply to --videos {SOURCE_NAME}: its arms are the test set's models "
                "(choose them with --arms)")
    given = [flag for name, flag in _GENERATION_FLAGS if getattr(opts, name, None)]
    if getattr(opts, "seeds", 1) != 1:
        given.append("--seeds")
    if given:
        return (
            f"--videos judges existing videos: {', '.join(given)} "
            f"{'does' if len(given) == 1 else 'do'} not apply (no generator runs; every row of the "
            "source is judged)"
        )
    if not opts.local and not opts.evaluators:
        return "--videos needs a judge: give --evaluators ADDRESSES, or --local to start one here"
    return ""
