"""Reading a run directory back in tests: the ledger rows and results.csv, and waiting on them."""

from __future__ import annotations

import csv
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path


def rows(run_dir: Path) -> list[dict]:
    conn = sqlite3.connect(run_dir / "ledger.sqlite")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM items ORDER BY prompt_id, seed")]
    finally:
        conn.close()


def results(run_dir: Path) -> list[dict]:
    with open(run_dir / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def wait_until(cond: Callable[[], bool], timeout_s: float = 60.0, what: str = "") -> None:
    """Poll `cond` until it holds (an event, not a guess at timing); TimeoutError(what) at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def ledger_has(run_dir: Path, pred: Callable[[dict], bool], at_least: int = 1) -> bool:
    """At least `at_least` ledger rows satisfy `pred` (False while the ledger is not written yet)."""
    try:
        return sum(1 for r in rows(run_dir) if pred(r)) >= at_least
    except sqlite3.Error:
        return False
