"""The run ledger: SQLite (WAL) in the run directory, one row per item, plus the run directory lock.

Contract:
- `RunLock` holds an exclusive `fcntl.flock` on RUN_DIR/.lock for the whole run; a second
  orchestrator on the same directory gets `RunLocked`, at once or after waiting up to `wait_s` (a
  rescheduled pod whose predecessor is still draining). The kernel drops the lock when the
  process dies, so a killed run never leaves a stale lock behind.
- `meta` holds the run configuration; `check_config` refuses a different one (`ConfigMismatch`).
- `items` is keyed by request_id = hash(prompt_id, seed, round, arm, config hash) and is UNIQUE on
  those five fields. Every state change commits immediately, so a killed orchestrator loses at most
  the items in flight, which the next run redoes.
- `connect` checks the file (`PRAGMA quick_check`) and raises `LedgerCorrupt`, one line naming the way
  back (`videophy-bench recover RUN_DIR`, services/orchestrator/recover.py), instead of failing later
  with a sqlite traceback.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import shlex
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from services.orchestrator.items import STATES, WorkItem, config_diff

log = logging.getLogger(__name__)

LEDGER_NAME = "ledger.sqlite"
LOCK_NAME = ".lock"
LOCK_POLL_S = 1.0  # how often a waiting orchestrator tries the lock again

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
  request_id TEXT PRIMARY KEY,
  prompt_id TEXT NOT NULL, seed INTEGER NOT NULL, round INTEGER NOT NULL, arm TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  caption TEXT NOT NULL, gen_prompt TEXT NOT NULL, rule_text TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'pending',
  video_uri TEXT, sha256 TEXT,
  sa REAL, pc REAL, rule REAL, videocon_sa REAL, videocon_pc REAL,
  sa_parse TEXT, pc_parse TEXT, rule_parse TEXT, sa_raw TEXT, pc_raw TEXT, rule_raw TEXT,
  gen_seconds REAL, judge_seconds REAL,
  gen_attempts INTEGER NOT NULL DEFAULT 0, judge_attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT, errors TEXT NOT NULL DEFAULT '[]',
  gen_replica TEXT, judge_replica TEXT, gen_result TEXT,
  created_at REAL NOT NULL, updated_at REAL NOT NULL, generated_at REAL, judged_at REAL,
  UNIQUE (prompt_id, seed, round, arm, config_hash)
);
CREATE INDEX IF NOT EXISTS items_state ON items(state);
"""
SCORE_COLUMNS = (
    "sa",
    "pc",
    "rule",
    "videocon_sa",
    "videocon_pc",
    "sa_parse",
    "pc_parse",
    "rule_parse",
    "sa_raw",
    "pc_raw",
    "rule_raw",
    "judge_seconds",
    "judge_replica",
    "judged_at",
)
# What an item forgets when its video must be made again (with SCORE_COLUMNS).
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


def lock_holder(run_dir: Path) -> str | None:
    """Who holds RUN_DIR/.lock (None: nobody), without taking it: works in a read-only directory."""
    try:
        fd = os.open(Path(run_dir) / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd)
    finally:
        os.close(fd)  # also drops the shared lock, if taken
    return None


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

    def reset_to_pending(self, rid: str, reason: str) -> None:
        """Forget the artifact and scores (they must be made again) and record why."""
        self.add_error(rid, "resume", reason, state="pending")
        self.update(rid, **dict.fromkeys((*ARTIFACT_COLUMNS, *SCORE_COLUMNS)))

    def counts(self) -> dict[str, int]:
        return state_counts(self.conn)
