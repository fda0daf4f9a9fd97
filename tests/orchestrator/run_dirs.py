"""Reading a run directory back in tests: the ledger rows, results.csv, and whether they agree."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from videophy_bench.common import csvio
from videophy_bench.orchestrator.ledger import rows_with_answers


def rows(run_dir: Path) -> list[dict]:
    """The ledger's items, each with its judge answers as per-task fields (sa, sa_parse, sa_raw, ...)."""
    conn = sqlite3.connect(run_dir / "ledger.sqlite")
    conn.row_factory = sqlite3.Row
    try:
        return rows_with_answers(conn, conn.execute("SELECT * FROM items ORDER BY prompt_id, seed"))
    finally:
        conn.close()


def results(run_dir: Path) -> list[dict]:
    header, data = csvio.read_rows(run_dir / "results.csv")
    return [dict(zip(header, row, strict=True)) for row in data]


def assert_exports_match_ledger(run_dir: Path) -> dict:
    """results.csv has exactly the ledger's items and states, and summary.json and results.json its
    counts; the summary."""
    led = rows(run_dir)
    res = results(run_dir)
    key = ("prompt_id", "seed", "state", "sha256")
    assert sorted(tuple(str(r[k] or "") for k in key) for r in res) == sorted(
        tuple(str(r[k] or "") for k in key) for r in led
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_items"] == summary["n_selected"] == len(led)
    document = json.loads((run_dir / "results.json").read_text())  # rebuilt with the others
    assert document["summary"] == summary
    assert sum(c["n_items"] for c in document["conditions"]) == len(led)
    return summary


def wait_for(cond: Callable[[], bool], timeout_s: float = 60.0, what: str = "") -> None:
    """Poll `cond` until it holds (an event, not a duration); TimeoutError after a generous deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def ledger_has(run_dir: Path, pred: Callable[[dict], bool], at_least: int = 1) -> bool:
    """At least `at_least` ledger rows satisfy `pred` (False while the ledger is still being created)."""
    try:
        return sum(1 for r in rows(run_dir) if pred(r)) >= at_least
    except sqlite3.Error:
        return False
