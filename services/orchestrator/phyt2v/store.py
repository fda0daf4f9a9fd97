"""The refinement's exchanges: a side table `phyt2v_steps` in the run's ledger.sqlite.

One row per finished step, keyed `law|PROMPT_ID` (once per prompt) or `STEP|PROMPT_ID|SEED|ROUND`
(caption, mismatch, refine), with the request sent (image data replaced by sha256 and size), the raw
response body, the answer text and what was parsed from it. A step with a row is never asked again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from services.orchestrator.export import write_atomic
from services.orchestrator.ledger import LEDGER_NAME

_SCHEMA = """
CREATE TABLE IF NOT EXISTS phyt2v_steps (
  key TEXT PRIMARY KEY, step TEXT NOT NULL, prompt_id TEXT NOT NULL, seed INTEGER, round INTEGER,
  model TEXT NOT NULL, endpoint TEXT NOT NULL, request TEXT NOT NULL, response TEXT NOT NULL,
  answer TEXT NOT NULL, parsed TEXT NOT NULL, source_video_sha256 TEXT,
  seconds REAL, attempts INTEGER, created_at REAL NOT NULL
);
"""


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
        self.lock = threading.Lock()

    def close(self) -> None:
        self.conn.close()

    def get(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.conn.execute("SELECT parsed FROM phyt2v_steps WHERE key=?", (key,)).fetchone()
        return json.loads(row["parsed"]) if row else None

    def put(self, key: str, step: str, prompt_id: str, seed: int | None, round_: int | None, *,
            model: str, endpoint: str, request: dict[str, Any], response: str, answer: str,
            parsed: dict[str, Any], source_video_sha256: str | None = None, seconds: float = 0.0,
            attempts: int = 1) -> None:
        with self.lock, self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO phyt2v_steps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (key, step, prompt_id, seed, round_, model, endpoint, json.dumps(redact(request)),
                 response, answer, json.dumps(parsed), source_video_sha256, seconds, attempts, time.time()),
            )

    def count(self) -> int:
        with self.lock:
            return self.conn.execute("SELECT COUNT(*) FROM phyt2v_steps").fetchone()[0]

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
