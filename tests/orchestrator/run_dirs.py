"""Reading a run directory back in tests: the ledger rows and results.csv."""

from __future__ import annotations

import csv
import sqlite3
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
