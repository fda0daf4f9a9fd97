"""The run ledger: SQLite (WAL) in the run directory, one row per item and one per judge answer, plus
the run directory lock.

Contract:
- `RunLock` holds an exclusive `fcntl.flock` on RUN_DIR/.lock for the whole run; a second
  orchestrator on the same directory gets `RunLocked`, at once or after waiting up to `wait_s` (a
  rescheduled pod whose predecessor is still draining). The kernel drops the lock when the
  process dies, so a killed run never leaves a stale lock behind.
- `meta` holds the run configuration; `check_config` refuses a different one (`ConfigMismatch`).
- `items` is keyed by request_id = hash(prompt_id, seed, round, arm, config hash) and is UNIQUE on
  those five fields. Every state change commits immediately, so a killed orchestrator loses at most
  the items in flight, which the next run redoes.
- `answers` holds one row per (item, task) (tasks: services/common/judge_tasks.py); a ledger of the
  previous release (one column per task on `items`) is migrated when it is opened for writing, and
  read as it is when opened read-only (`read_answers`).
- `connect` checks the file (`PRAGMA quick_check`) and raises `LedgerCorrupt`, one line naming the way
  back (`videophy-bench recover RUN_DIR`, services/orchestrator/recover.py), instead of failing later
  with a sqlite traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shlex
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videophy_bench.common import judge_tasks
from videophy_bench.orchestrator.items import STATES, WorkItem, config_diff

log = logging.getLogger(__name__)

LEDGER_NAME = "ledger.sqlite"
LOCK_NAME = ".lock"
LOCK_POLL_S = 1.0  # how often a waiting orchestrator tries the lock again

# Version 1 (releases up to issue 13) kept one column per judge task on `items` (sa, sa_parse, sa_raw,
# ..., videocon_pc); version 2 keeps one `answers` row per (item, task). `connect` moves a version-1
# ledger's answers into `answers` once (see `_migrate`).
SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
  request_id TEXT PRIMARY KEY,
  prompt_id TEXT NOT NULL, seed INTEGER NOT NULL, round INTEGER NOT NULL, arm TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  caption TEXT NOT NULL, gen_prompt TEXT NOT NULL, rule_text TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'pending',
  video_uri TEXT, sha256 TEXT,
  gen_seconds REAL, judge_seconds REAL,
  gen_attempts INTEGER NOT NULL DEFAULT 0, judge_attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT, errors TEXT NOT NULL DEFAULT '[]',
  gen_replica TEXT, judge_replica TEXT, gen_result TEXT,
  created_at REAL NOT NULL, updated_at REAL NOT NULL, generated_at REAL, judged_at REAL,
  UNIQUE (prompt_id, seed, round, arm, config_hash)
);
CREATE INDEX IF NOT EXISTS items_state ON items(state);
CREATE TABLE IF NOT EXISTS answers (
  request_id TEXT NOT NULL, task TEXT NOT NULL,
  score REAL, parse TEXT, raw TEXT,
  replica TEXT, seconds REAL, answered_at REAL NOT NULL,
  PRIMARY KEY (request_id, task)
);
CREATE TABLE IF NOT EXISTS item_sources (
  request_id TEXT PRIMARY KEY,
  video_url TEXT, caption_source TEXT,
  bytes INTEGER, seconds REAL, resumed_from INTEGER, attempts INTEGER, fetched_at REAL
);
"""
# What an item forgets of its judging when its video must be made again (its `answers` rows go too).
JUDGE_COLUMNS = ("judge_seconds", "judge_replica", "judged_at")
# What an item forgets when its video must be made again (with JUDGE_COLUMNS).
ARTIFACT_COLUMNS = ("video_uri", "sha256", "gen_result", "generated_at")
MAX_ERRORS_KEPT = 20


class RunLocked(RuntimeError):
    """Another orchestrator holds the run directory; `holder` is what it wrote into the lock file."""

    def __init__(self, message: str, holder: str = "") -> None:
        super().__init__(message)
        self.holder = holder


class ConfigMismatch(RuntimeError):
    """The run directory was made with a different configuration."""


class LedgerCorrupt(RuntimeError):
    """ledger.sqlite cannot be read; the message names the way back (`videophy-bench recover`)."""

    def __init__(self, run_dir: Path, detail: str) -> None:
        self.run_dir = Path(run_dir)
        self.detail = detail
        super().__init__(
            f"{self.run_dir / LEDGER_NAME} is corrupt (sqlite: {detail}); run "
            f"`videophy-bench recover {shlex.quote(str(run_dir))}` to rebuild it from the videos and "
            "their sidecars"
        )


# sqlite's codes for a damaged file; other errors (busy, I/O, permissions) are not corruption.
_CORRUPT_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def is_corruption(exc: BaseException) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return isinstance(exc, sqlite3.DatabaseError) and name.startswith(_CORRUPT_CODES)


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 200).decode(errors="replace").strip() or "unknown process"


class RunLock:
    """Exclusive lock on RUN_DIR/.lock (released on close or process death).

    `purpose` goes into the lock file beside the pid, so whoever is refused knows what holds it.
    `acquire(wait_s)` (or `acquire_async` inside a running event loop, which stays responsive to
    signals) retries every LOCK_POLL_S until `wait_s` has passed, then raises `RunLocked`."""

    def __init__(self, run_dir: Path, purpose: str = "") -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self, wait_s: float = 0.0) -> RunLock:
        for delay in self._attempts(wait_s):
            time.sleep(delay)
        return self

    async def acquire_async(self, wait_s: float = 0.0) -> RunLock:
        for delay in self._attempts(wait_s):
            await asyncio.sleep(delay)
        return self

    def _attempts(self, wait_s: float) -> Iterator[float]:
        """Tries the lock until it is held; yields how long to sleep before the next try."""
        deadline = time.monotonic() + max(0.0, wait_s)
        logged = False
        while (holder := self._try()) is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                waited = f"; still held after {wait_s:g} s" if wait_s > 0 else ""
                raise RunLocked(
                    f"run directory {self.path.parent} is in use by another orchestrator ({holder})"
                    f"{waited}; wait for it to finish (--lock-wait-s), or use another --out",
                    holder,
                )
            if not logged:
                log.warning("run directory %s is in use by another orchestrator (%s); waiting up to "
                            "%g s for it", self.path.parent, holder, wait_s)
                logged = True
            yield min(LOCK_POLL_S, left)
        if logged:
            log.info("run directory %s is free: taking it over", self.path.parent)

    def _try(self) -> str | None:
        """Takes the lock (None) or names its holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            return holder
        os.ftruncate(fd, 0)
        what = f" ({self.purpose})" if self.purpose else ""
        since = time.strftime("%F %T")
        os.write(fd, f"pid {os.getpid()}{what} on {os.uname().nodename} since {since}".encode())
        self._fd = fd
        return None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def shared_lock(run_dir: Path) -> Iterator[str | None]:
    """Hold a shared flock on RUN_DIR/.lock (no orchestrator can take the run meanwhile) and yield None,
    or yield who holds the exclusive one. Opens the file read-only: works on a read-only mount. No lock
    file (no run ever started here) yields None without locking."""
    try:
        fd = os.open(Path(run_dir) / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            yield _holder(fd)
        else:
            yield None
    finally:
        os.close(fd)  # also drops the shared lock, if taken


def lock_holder(run_dir: Path) -> str | None:
    """Who holds RUN_DIR/.lock (None: nobody), without taking it: works in a read-only directory."""
    with shared_lock(run_dir) as holder:
        return holder


def _check(conn: sqlite3.Connection, run_dir: Path) -> None:
    """Raise LedgerCorrupt unless sqlite's quick_check (every page, b-tree structure) says ok."""
    try:
        conn.row_factory = None
        problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        if is_corruption(exc):
            raise LedgerCorrupt(run_dir, str(exc)) from None
        raise
    if problems != ["ok"]:
        lines = [ln for p in problems for ln in str(p).splitlines() if not ln.startswith("***")]
        raise LedgerCorrupt(run_dir, f"database disk image is malformed: {lines[0] if lines else '?'}")


def connect(run_dir: Path, readonly: bool = False) -> sqlite3.Connection:
    """Open the ledger (read-only: never writes, works beside a running orchestrator); a damaged file
    raises LedgerCorrupt."""
    path = Path(run_dir) / LEDGER_NAME
    if readonly and not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {LEDGER_NAME} (not a run directory?)")
    conn: sqlite3.Connection | None = None
    try:
        if readonly:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        else:
            conn = sqlite3.connect(path, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        _check(conn, run_dir)
        if not readonly:
            conn.executescript(_SCHEMA)
            _migrate(conn)
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        if is_corruption(exc):
            raise LedgerCorrupt(run_dir, str(exc)) from None
        raise
    except LedgerCorrupt:
        if conn is not None:
            conn.close()
        raise
    conn.row_factory = sqlite3.Row
    return conn


@dataclass(frozen=True)
class StoredAnswer:
    """One judge answer of one item (`answers` row; parse and raw are kept for generative tasks)."""

    task: str
    score: float | None
    parse: str | None = None
    raw: str | None = None


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _legacy_tasks(columns: list[str]) -> list[str]:
    """Tasks with a version-1 score column on `items`."""
    return [t for t in judge_tasks.task_names() if t in columns]


def stored_answers(fields: Mapping[str, Any]) -> dict[str, StoredAnswer]:
    """The answers in per-task fields (`answer_fields`' shape, or a version-1 `items` row): a task
    has one when it has a score or a parse status (a parser error has no score)."""
    return _legacy_answers(fields, list(fields))


def _legacy_answers(row: Any, columns: list[str]) -> dict[str, StoredAnswer]:
    """A version-1 row's answers: a score, or a parse status (a parser error has no score)."""
    out = {}
    for name in _legacy_tasks(columns):
        parse = row[f"{name}_parse"] if f"{name}_parse" in columns else None
        if row[name] is not None or parse:
            raw = row[f"{name}_raw"] if f"{name}_raw" in columns else None
            out[name] = StoredAnswer(name, row[name], parse, raw)
    return out


def _migrate(conn: sqlite3.Connection) -> None:
    """Move a version-1 ledger's per-task columns into `answers`, once: copied and cleared in one
    transaction, then the version recorded in meta `ledger_schema`; a second open finds it done."""
    row = conn.execute("SELECT value FROM meta WHERE key='ledger_schema'").fetchone()
    if row is not None and json.loads(row[0]) >= SCHEMA_VERSION:
        return
    columns = _columns(conn, "items")
    with conn:
        for name in _legacy_tasks(columns):
            parse = f"{name}_parse" if f"{name}_parse" in columns else "NULL"
            raw = f"{name}_raw" if f"{name}_raw" in columns else "NULL"
            conn.execute(
                "INSERT OR IGNORE INTO answers(request_id, task, score, parse, raw, replica, seconds, "
                f"answered_at) SELECT request_id, ?, {name}, {parse}, {raw}, judge_replica, NULL, "
                f"COALESCE(judged_at, updated_at) FROM items WHERE {name} IS NOT NULL "
                f"OR COALESCE({parse}, '') != ''",
                (name,),
            )
            cleared = [c for c in (name, f"{name}_parse", f"{name}_raw") if c in columns]
            conn.execute(f"UPDATE items SET {', '.join(f'{c}=NULL' for c in cleared)}")
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('ledger_schema', ?)",
                     (json.dumps(SCHEMA_VERSION),))


def read_answers(
    conn: sqlite3.Connection, request_ids: Iterable[str] | None = None
) -> dict[str, dict[str, StoredAnswer]]:
    """request_id -> task -> answer. Also reads a version-1 ledger opened read-only (not migrated:
    `status`, `report` and exports beside a run of the previous release)."""
    ids = None if request_ids is None else set(request_ids)
    out: dict[str, dict[str, StoredAnswer]] = {}
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "answers" in tables:
        for rid, task, score, parse, raw in conn.execute(
            "SELECT request_id, task, score, parse, raw FROM answers ORDER BY request_id, task"
        ):
            if ids is None or rid in ids:
                out.setdefault(rid, {})[task] = StoredAnswer(task, score, parse, raw)
    columns = _columns(conn, "items")
    if _legacy_tasks(columns):
        for row in conn.execute("SELECT * FROM items"):
            rid = row[columns.index("request_id")]
            if ids is not None and rid not in ids:
                continue
            legacy = _legacy_answers(dict(zip(columns, row, strict=True)), columns)
            for name, answer in legacy.items():
                out.setdefault(rid, {}).setdefault(name, answer)
    return out


def answer_fields(answers: dict[str, StoredAnswer]) -> dict[str, Any]:
    """One item's answers as the per-task fields results.csv has (`sa`, `sa_parse`, `sa_raw`, ...,
    `videocon_pc`), None where a task has no answer."""
    out: dict[str, Any] = {}
    for spec in judge_tasks.tasks():
        answer = answers.get(spec.name)
        out[spec.name] = answer.score if answer else None
        if spec.generative:
            out[f"{spec.name}_parse"] = answer.parse if answer else None
            out[f"{spec.name}_raw"] = answer.raw if answer else None
    return out


def rows_with_answers(conn: sqlite3.Connection, rows: Iterable[sqlite3.Row]) -> list[dict[str, Any]]:
    """Item rows as dicts, each with its answers' per-task fields (`answer_fields`)."""
    rows = list(rows)
    answers = read_answers(conn, [r["request_id"] for r in rows])
    return [{**dict(r), **answer_fields(answers.get(r["request_id"], {}))} for r in rows]


def item_sources(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """request_id -> where its video came from (`item_sources`: downloaded videos); {} in a ledger
    without the table (read-only, made before it)."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='item_sources'").fetchone():
        return {}
    cur = conn.execute("SELECT * FROM item_sources")
    names = [d[0] for d in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur}


def state_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Items per state (every state present, zero when none)."""
    out = dict.fromkeys(STATES, 0)
    for state, n in conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state"):
        out[state] = n
    return out


class Ledger:
    """Item states and results; all calls from one thread (the orchestrator's event loop)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.conn = connect(self.run_dir)

    def close(self) -> None:
        self.conn.close()

    # -- meta ------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row["value"]) if row else None

    def set_meta(self, key: str, value: Any) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value))
            )

    def check_config(self, config: dict[str, Any], keys: Iterable[str] | None = None) -> None:
        """Record `config` on first use; afterwards refuse a different one (only `keys` when given)."""
        old = self.get_meta("config")
        if old is None:
            if keys is None:
                self.set_meta("config", config)
            return
        if keys is not None:
            old = {k: old.get(k) for k in keys}
            config = {k: config.get(k) for k in keys}
        diff = config_diff(old, config)
        if diff:
            raise ConfigMismatch(
                f"run directory {self.run_dir} was made with a different configuration:\n  "
                + "\n  ".join(diff)
                + "\nresults would be mixed; use a new --out for this configuration"
            )

    # -- items -----------------------------------------------------------------------------------
    def add_items(self, items: Iterable[WorkItem]) -> int:
        now = time.time()
        rows = [
            (
                it.request_id,
                it.prompt_id,
                it.seed,
                it.round,
                it.arm,
                it.config_hash,
                it.caption,
                it.gen_prompt,
                it.rule,
                now,
                now,
            )
            for it in items
        ]
        with self.conn:
            before = self.conn.total_changes
            self.conn.executemany(
                "INSERT OR IGNORE INTO items(request_id, prompt_id, seed, round, arm, config_hash, caption, "
                "gen_prompt, rule_text, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            return self.conn.total_changes - before

    def rows(self, request_ids: Iterable[str] | None = None) -> list[sqlite3.Row]:
        if request_ids is None:
            return self.conn.execute("SELECT * FROM items ORDER BY prompt_id, seed, round, arm").fetchall()
        ids = list(request_ids)
        out: list[sqlite3.Row] = []
        for k in range(0, len(ids), 500):
            chunk = ids[k : k + 500]
            out += self.conn.execute(
                f"SELECT * FROM items WHERE request_id IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
        return out

    def get(self, rid: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM items WHERE request_id=?", (rid,)).fetchone()

    def update(self, rid: str, **fields: Any) -> None:
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"unknown state {fields['state']!r}")
        fields["updated_at"] = time.time()
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.conn:
            self.conn.execute(f"UPDATE items SET {cols} WHERE request_id=?", (*fields.values(), rid))

    def begin_attempt(self, rid: str, column: str, **fields: Any) -> None:
        """Count one more attempt in `column` (gen_attempts / judge_attempts, totals over all sessions)."""
        if column not in ("gen_attempts", "judge_attempts"):
            raise ValueError(column)
        fields["updated_at"] = time.time()
        cols = "".join(f", {k}=?" for k in fields)
        with self.conn:
            self.conn.execute(
                f"UPDATE items SET {column}={column}+1{cols} WHERE request_id=?", (*fields.values(), rid)
            )

    def add_error(self, rid: str, stage: str, message: str, *, state: str | None = None) -> None:
        """Append to the item's error history (bounded) and set `error`; optionally change state."""
        row = self.get(rid)
        errors = json.loads(row["errors"]) if row else []
        errors.append({"t": round(time.time(), 3), "stage": stage, "error": message})
        fields: dict[str, Any] = {
            "error": f"{stage}: {message}",
            "errors": json.dumps(errors[-MAX_ERRORS_KEPT:]),
        }
        if state:
            fields["state"] = state
        self.update(rid, **fields)

    def record_answers(self, rid: str, answers: Iterable[StoredAnswer], *, replica: str,
                       seconds: float | None, **fields: Any) -> None:
        """Store answers (replacing earlier ones of the same tasks) and update the item's `fields`, in
        one transaction."""
        now = time.time()
        fields["updated_at"] = now
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO answers(request_id, task, score, parse, raw, replica, seconds, "
                "answered_at) VALUES (?,?,?,?,?,?,?,?)",
                [(rid, a.task, a.score, a.parse, a.raw, replica, seconds, now) for a in answers],
            )
            self.conn.execute(f"UPDATE items SET {cols} WHERE request_id=?", (*fields.values(), rid))

    def answered(self, request_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        """The tasks each item already has an answer for (a parser error counts: it has a status)."""
        return {rid: frozenset(a) for rid, a in read_answers(self.conn, request_ids).items()}

    def forget_answers(self, rid: str, **fields: Any) -> None:
        """Drop the item's answers (its video changed: they no longer describe it) and set `fields`."""
        with self.conn:
            self.conn.execute("DELETE FROM answers WHERE request_id=?", (rid,))
        self.update(rid, **dict.fromkeys(JUDGE_COLUMNS), **fields)

    def reset_to_pending(self, rid: str, reason: str) -> None:
        """Forget the artifact and answers (they must be made again) and record why."""
        self.add_error(rid, "resume", reason, state="pending")
        self.forget_answers(rid, **dict.fromkeys(ARTIFACT_COLUMNS))

    def counts(self) -> dict[str, int]:
        return state_counts(self.conn)

    def set_sources(self, sources: Iterable[tuple[str, str, str]]) -> None:
        """Record (request_id, video_url, caption_source) of items whose video is fetched."""
        with self.conn:
            self.conn.executemany(
                "INSERT INTO item_sources(request_id, video_url, caption_source) VALUES (?,?,?) "
                "ON CONFLICT(request_id) DO UPDATE SET video_url=excluded.video_url, "
                "caption_source=excluded.caption_source",
                list(sources),
            )

    def record_fetch(self, rid: str, *, size: int, seconds: float, resumed_from: int, attempts: int,
                     **fields: Any) -> None:
        """A finished download: its numbers in `item_sources` and the item's `fields`, in one transaction."""
        now = time.time()
        fields["updated_at"] = now
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.conn:
            self.conn.execute(
                "UPDATE item_sources SET bytes=?, seconds=?, resumed_from=?, attempts=?, fetched_at=? "
                "WHERE request_id=?", (size, seconds, resumed_from, attempts, now, rid))
            self.conn.execute(f"UPDATE items SET {cols} WHERE request_id=?", (*fields.values(), rid))
