"""A ledger written by the previous release (one column per judge task on `items`) resumes without
re-judging anything it has an answer for, and its exports are byte for byte what they were. Real tiny
services on loopback, real MP4s; the old ledger is made from a real run's data with the previous
release's schema (copied below from services/orchestrator/ledger.py before issue 13)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from run_dirs import rows

from videophy_bench.orchestrator.cli import main
from videophy_bench.orchestrator.export import refresh
from videophy_bench.orchestrator.ledger import SCHEMA_VERSION, Ledger, read_answers

FAST = ["--refresh-s", "0.5", "--no-progress"]

# The previous release's schema, verbatim.
V1_SCHEMA = """
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
V1_ANSWER_COLUMNS = ("sa", "pc", "rule", "videocon_sa", "videocon_pc",
                     "sa_parse", "pc_parse", "rule_parse", "sa_raw", "pc_raw", "rule_raw")  # fmt: skip


def _rewrite_as_v1(run_dir: Path, drop: dict[str, str]) -> None:
    """Replace the run's ledger by the previous release's: the same items and answers, one column per
    task; `drop` (request_id -> task) leaves those answers out and the item `generated` (half judged)."""
    wide = rows(run_dir)
    src = sqlite3.connect(run_dir / "ledger.sqlite")
    meta = [(k, v) for k, v in src.execute("SELECT key, value FROM meta") if k != "ledger_schema"]
    src.close()
    for suffix in ("", "-wal", "-shm"):
        (run_dir / f"ledger.sqlite{suffix}").unlink(missing_ok=True)
    old = sqlite3.connect(run_dir / "ledger.sqlite")
    old.executescript(V1_SCHEMA)
    columns = [r[1] for r in old.execute("PRAGMA table_info(items)")]
    with old:
        old.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta)
        for row in wide:
            row = dict(row)
            task = drop.get(row["request_id"])
            if task:
                row.update({task: None, f"{task}_parse": None, f"{task}_raw": None}, state="generated",
                           judged_at=None)
            old.execute(f"INSERT INTO items({','.join(columns)}) VALUES ({','.join('?' * len(columns))})",
                        [row.get(c) for c in columns])
    old.close()


def _exports(run_dir: Path) -> tuple[bytes, bytes]:
    return (run_dir / "results.csv").read_bytes(), (run_dir / "summary.json").read_bytes()


def test_a_previous_release_ledger_resumes_without_rejudging_and_exports_the_same_bytes(shared_services):
    svc, gens, ev = shared_services
    run_dir = svc.root / "runs" / "v1-ledger"
    args = ["run", "--prompts", "sample", "--storage-root", str(svc.root), "--out", str(run_dir),
            "--generators", ",".join(g.address for g in gens), "--evaluators", ev.address,
            "--limit", "4", *FAST]  # fmt: skip
    assert main(args) == 0
    judged = _exports(run_dir)
    before = {r["request_id"]: r for r in rows(run_dir)}
    assert {r["state"] for r in before.values()} == {"judged"}
    half = sorted(before)[0]

    # Fully judged: the old ledger reads (read-only, not migrated) and exports exactly as before.
    _rewrite_as_v1(run_dir, {})
    (run_dir / "results.csv").unlink()
    refreshed = refresh(run_dir)
    assert refreshed.written and _exports(run_dir) == judged
    conn = sqlite3.connect(run_dir / "ledger.sqlite")
    assert "answers" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}  # untouched
    conn.close()
    # Resumed by this release: migrated, nothing to do, every export the same bytes.
    assert main(args) == 0
    assert _exports(run_dir) == judged
    assert all(r["judge_attempts"] == before[r["request_id"]]["judge_attempts"] for r in rows(run_dir))

    # One item half judged (pc lost): a resume judges that answer only, and nothing is made again.
    _rewrite_as_v1(run_dir, {half: "pc"})
    resumed_at = time.time()
    assert main(args) == 0
    after = {r["request_id"]: r for r in rows(run_dir)}
    assert {r["state"] for r in after.values()} == {"judged"}
    for rid, r in after.items():
        assert (r["sha256"], r["generated_at"], r["gen_attempts"]) == (
            before[rid]["sha256"], before[rid]["generated_at"], before[rid]["gen_attempts"])  # fmt: skip
        assert r["judge_attempts"] == before[rid]["judge_attempts"] + (rid == half)
        for col in V1_ANSWER_COLUMNS:  # the tiny judge is deterministic: the re-asked pc is the same
            assert r[col] == before[rid][col], (rid, col)
    led = Ledger(run_dir)
    try:
        assert led.get_meta("ledger_schema") == SCHEMA_VERSION
        old_columns = [r[1] for r in led.conn.execute("PRAGMA table_info(items)")]
        assert "sa" in old_columns  # kept, emptied: the answers live in `answers` only
        assert led.conn.execute("SELECT COUNT(*) FROM items WHERE sa IS NOT NULL OR sa_raw IS NOT NULL"
                                ).fetchone()[0] == 0  # fmt: skip
        answered = read_answers(led.conn)
        # Every answer was migrated, not asked again, but `half`'s pc.
        for rid, tasks in answered.items():
            for task in tasks:
                at = led.conn.execute("SELECT answered_at FROM answers WHERE request_id=? AND task=?",
                                      (rid, task)).fetchone()[0]  # fmt: skip
                assert (at > resumed_at) == (rid == half and task == "pc"), (rid, task)
    finally:
        led.close()
    new, old = (json.loads(text) for text in (_exports(run_dir)[1], judged[1]))
    assert {k: v for k, v in new.items() if "judge_seconds" not in k} == {
        k: v for k, v in old.items() if "judge_seconds" not in k}  # only the timing of the re-asked pc

    # Migrating again changes nothing (recorded in meta; a second open copies nothing).
    snapshot = sorted(tuple(r) for r in sqlite3.connect(run_dir / "ledger.sqlite").execute(
        "SELECT * FROM answers"))  # fmt: skip
    Ledger(run_dir).close()
    assert sorted(tuple(r) for r in sqlite3.connect(run_dir / "ledger.sqlite").execute(
        "SELECT * FROM answers")) == snapshot  # fmt: skip
