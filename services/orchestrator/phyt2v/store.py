"""The refinement's records in the run's ledger.sqlite: two side tables.

`phyt2v_steps`: one row per answer, keyed `law|PROMPT_ID` (once per prompt) or
`STEP|PROMPT_ID|SEED|ROUND` (caption, mismatch, refine), with the request sent (image data replaced by
sha256 and size), the raw response body, the answer text, its `finish_reason` and what was parsed from
it. A refused answer (answers.py) is stored too, under `KEY|refused|N` with `status = 'refused'` and
its reason; only an `ok` row counts as done, so a rerun asks a refused step again.

`phyt2v_prompts`: one row per (prompt, seed, round): the prompt generated from (round 0: the run's
own), its token count with the generator's tokenizer and whether the generator truncates it, or, for a
round whose refinement failed, `status = 'failed'` and the reason.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from videophy_bench.generator import prompt_tokens
from videophy_bench.orchestrator.export import write_atomic
from videophy_bench.orchestrator.ledger import LEDGER_NAME

_SCHEMA = """
CREATE TABLE IF NOT EXISTS phyt2v_steps (
  key TEXT PRIMARY KEY, step TEXT NOT NULL, prompt_id TEXT NOT NULL, seed INTEGER, round INTEGER,
  model TEXT NOT NULL, endpoint TEXT NOT NULL, request TEXT NOT NULL, response TEXT NOT NULL,
  answer TEXT NOT NULL, parsed TEXT NOT NULL, source_video_sha256 TEXT,
  seconds REAL, attempts INTEGER, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS phyt2v_prompts (
  prompt_id TEXT NOT NULL, seed INTEGER NOT NULL, round INTEGER NOT NULL, status TEXT NOT NULL,
  gen_prompt TEXT, tokens INTEGER, max_tokens INTEGER, truncated INTEGER, reason TEXT,
  updated_at REAL NOT NULL, PRIMARY KEY (prompt_id, seed, round)
);
"""
# Columns added after the first release; ledgers made before get them on open.
_ADDED_STEP_COLUMNS = {"status": "TEXT NOT NULL DEFAULT 'ok'", "reason": "TEXT", "finish_reason": "TEXT"}
PROMPT_COLUMNS = ("prompt_id", "seed", "round", "status", "gen_prompt", "tokens", "max_tokens", "truncated",
                  "reason")


def redact(body: dict[str, Any]) -> dict[str, Any]:
    """The request with each data: URL replaced by its sha256 and length (the ledger stays small)."""

    def walk(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, str) and x.startswith("data:"):
            return f"<{x[:x.find(',')]} sha256={hashlib.sha256(x.encode()).hexdigest()} chars={len(x)}>"
        return x

    return walk(body)


class StepStore:
    def __init__(self, run_dir: Path) -> None:
        self.conn = sqlite3.connect(Path(run_dir) / LEDGER_NAME, timeout=30, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.executescript(_SCHEMA)
        have = {r["name"] for r in self.conn.execute("PRAGMA table_info(phyt2v_steps)")}
        with self.conn:
            for col, decl in _ADDED_STEP_COLUMNS.items():
                if col not in have:
                    self.conn.execute(f"ALTER TABLE phyt2v_steps ADD COLUMN {col} {decl}")
        self.lock = threading.Lock()

    def close(self) -> None:
        self.conn.close()

    def get(self, key: str) -> dict[str, Any] | None:
        """What was parsed from the accepted answer of `key`; None when there is none (yet)."""
        with self.lock:
            row = self.conn.execute(
                "SELECT parsed FROM phyt2v_steps WHERE key=? AND status='ok'", (key,)
            ).fetchone()
        return json.loads(row["parsed"]) if row else None

    def put(self, key: str, step: str, prompt_id: str, seed: int | None, round_: int | None, *,
            model: str, endpoint: str, request: dict[str, Any], response: str, answer: str,
            parsed: dict[str, Any], source_video_sha256: str | None = None, seconds: float = 0.0,
            attempts: int = 1, finish_reason: str | None = None, refused: str | None = None) -> None:
        """Store one answer; with `refused` (the reason) under a fresh `KEY|refused|N` key."""
        with self.lock, self.conn:
            if refused is not None:
                n = self.conn.execute(
                    "SELECT COUNT(*) FROM phyt2v_steps WHERE key LIKE ? ESCAPE '\\'",
                    (key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "|refused|%",),
                ).fetchone()[0]
                key = f"{key}|refused|{n + 1}"
            self.conn.execute(
                "INSERT OR REPLACE INTO phyt2v_steps (key, step, prompt_id, seed, round, model, endpoint, "
                "request, response, answer, parsed, source_video_sha256, seconds, attempts, created_at, "
                "status, reason, finish_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (key, step, prompt_id, seed, round_, model, endpoint, json.dumps(redact(request)),
                 response, answer, json.dumps(parsed), source_video_sha256, seconds, attempts, time.time(),
                 "refused" if refused is not None else "ok", refused, finish_reason),
            )

    def count(self) -> int:
        with self.lock:
            return self.conn.execute("SELECT COUNT(*) FROM phyt2v_steps").fetchone()[0]

    def set_prompt(self, prompt_id: str, seed: int, round_: int, *, status: str, gen_prompt: str | None,
                   tokens: int | None = None, max_tokens: int | None = None, reason: str | None = None
                   ) -> None:
        """Record the prompt of (prompt, seed, round), or why it has none (`status = 'failed'`)."""
        truncated = (None if tokens is None or max_tokens is None
                     else int(prompt_tokens.truncated(tokens, max_tokens)))
        with self.lock, self.conn:
            self.conn.execute(
                f"INSERT OR REPLACE INTO phyt2v_prompts ({', '.join(PROMPT_COLUMNS)}, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (prompt_id, seed, round_, status, gen_prompt, tokens, max_tokens, truncated, reason,
                 time.time()),
            )

    def prompts(self, round_: int | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(PROMPT_COLUMNS)} FROM phyt2v_prompts"
        args: tuple[Any, ...] = ()
        if round_ is not None:
            sql, args = sql + " WHERE round=?", (round_,)
        with self.lock:
            return [dict(r) for r in self.conn.execute(sql + " ORDER BY round, prompt_id, seed", args)]

    def dump(self, path: Path) -> int:
        """Write every exchange as JSON lines (for auditing); returns the number written."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT * FROM phyt2v_steps ORDER BY prompt_id, seed, round, key"
            ).fetchall()
        lines = []
        for r in rows:
            rec = dict(r)
            for k in ("request", "parsed"):
                rec[k] = json.loads(rec[k])
            lines.append(json.dumps(rec, ensure_ascii=False) + "\n")
        write_atomic(path, "".join(lines))
        return len(rows)

    def dump_prompts(self, path: Path) -> int:
        """Write `phyt2v_prompts` as CSV (RUN_DIR/phyt2v/prompts.csv); returns the number of rows."""
        import csv
        import io

        rows = self.prompts()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=PROMPT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(path, buf.getvalue())
        return len(rows)
