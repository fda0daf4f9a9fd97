"""`videophy-bench status RUN`: counts per state, failures with reasons, throughput and ETA.

Reads the ledger read-only, so it works while a run is going on (SQLite WAL lets readers in).
The same numbers feed the live progress display.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from services.orchestrator.items import STATES
from services.orchestrator.ledger import connect, state_counts

RATE_WINDOW = 50  # throughput over the most recent videos, so a resumed run's pause does not skew it


def videos_per_hour(times: list[float]) -> float | None:
    """Rate over the last RATE_WINDOW completion times (seconds since epoch, any order)."""
    recent = sorted(times)[-RATE_WINDOW:]
    if len(recent) < 2 or recent[-1] <= recent[0]:
        return None
    return (len(recent) - 1) / (recent[-1] - recent[0]) * 3600.0


def recent_rate(conn: sqlite3.Connection) -> float | None:
    """`videos_per_hour` of the ledger's RATE_WINDOW most recent generations."""
    times = [
        r[0]
        for r in conn.execute(
            "SELECT generated_at FROM items WHERE generated_at IS NOT NULL "
            "ORDER BY generated_at DESC LIMIT ?",
            (RATE_WINDOW,),
        )
    ]
    return videos_per_hour(times)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def collect(conn: sqlite3.Connection, judging: bool | None = None) -> dict[str, Any]:
    counts = state_counts(conn)
    total = sum(counts.values())
    if judging is None:
        judging = bool(conn.execute("SELECT 1 FROM items WHERE judged_at IS NOT NULL LIMIT 1").fetchone())
    rate = recent_rate(conn)
    to_make = counts["pending"] + counts["generating"]
    remaining = to_make + (counts["generated"] if judging else 0)
    failures = [
        dict(r)
        for r in conn.execute(
            "SELECT prompt_id, seed, round, arm, gen_attempts, judge_attempts, error FROM items "
            "WHERE state='failed' ORDER BY prompt_id, seed"
        )
    ]
    return {
        "counts": counts,
        "total": total,
        "done": counts["judged"] + (0 if judging else counts["generated"]),
        "failed": counts["failed"],
        "remaining": remaining,
        "videos_per_hour": rate,
        "eta_s": (to_make / rate * 3600.0) if rate and to_make else (0.0 if not remaining else None),
        "failures": failures,
        "updated": time.time(),
    }


def format_status(run_dir: Path, info: dict[str, Any], max_failures: int = 20) -> str:
    c = info["counts"]
    rate = info["videos_per_hour"]
    lines = [
        f"run {run_dir}: {info['total']} items",
        "  " + "  ".join(f"{s} {c[s]}" for s in STATES),
        f"  throughput {rate:.1f} videos/h" if rate else "  throughput ?",
        f"  ETA {format_duration(info['eta_s'])} ({info['remaining']} items left)",
    ]
    if info["failures"]:
        lines.append(f"  failures ({len(info['failures'])}):")
        for f in info["failures"][:max_failures]:
            lines.append(f"    {f['prompt_id']} seed {f['seed']}: {f['error']}")
        if len(info["failures"]) > max_failures:
            lines.append(f"    ... {len(info['failures']) - max_failures} more (--json for all)")
    return "\n".join(lines)


def status_main(run_dir: str, as_json: bool = False) -> int:
    path = Path(run_dir)
    try:
        conn = connect(path, readonly=True)
    except (FileNotFoundError, sqlite3.Error) as exc:
        print(f"videophy-bench status: {exc}")
        return 1
    try:
        info = collect(conn)
    finally:
        conn.close()
    print(json.dumps(info, indent=1) if as_json else format_status(path, info))
    return 0
