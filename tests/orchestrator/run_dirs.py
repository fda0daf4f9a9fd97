"""Reading a run directory back in tests: the ledger rows and results.csv."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from services.common import csvio


def rows(run_dir: Path) -> list[dict]:
    conn = sqlite3.connect(run_dir / "ledger.sqlite")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM items ORDER BY prompt_id, seed")]
    finally:
        conn.close()


def results(run_dir: Path) -> list[dict]:
    header, rows = csvio.read_rows(run_dir / "results.csv")
    return [dict(zip(header, row, strict=True)) for row in rows]
