"""`videophy-bench status RUN`: counts per state, failures with reasons, throughput and ETA.

Reads the ledger read-only, so it works while a run is going on (SQLite WAL lets readers in).
The same numbers feed the live progress display. `completeness` and `state_line` are the one
definition of "how finished is this run" that summary.json, `status` and `report` share. `status`
also brings results.csv / summary.json up to date with the ledger (export.refresh).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from services.common.judge_tasks import families
from services.orchestrator.items import STATES
from services.orchestrator.ledger import LedgerCorrupt, connect, state_counts

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


def names_a_judge(config: dict[str, Any]) -> bool:
    """Whether a run configuration records a judge model (of any judge family)."""
    return any(config.get(f.model_key) for f in families())


def judging_of(conn: sqlite3.Connection) -> bool:
    """Whether the run judges its videos: its recorded configuration names a judge model (an older
    ledger without one: whether anything was judged)."""
    row = conn.execute("SELECT value FROM meta WHERE key='config'").fetchone()
    if row is not None:
        config = json.loads(row[0])
        return names_a_judge(config)
    return bool(conn.execute("SELECT 1 FROM items WHERE judged_at IS NOT NULL LIMIT 1").fetchone())


def completeness(counts: dict[str, int], judging: bool) -> dict[str, Any]:
    """`n_selected` (ledger items: every item any session selected), `n_done` (judged, or generated in
    a run without a judge), `n_failed` (failed with a reason), `n_remaining` (still to make or judge)
    and `complete` (nothing remaining)."""
    total = sum(counts.values())
    done = counts["judged"] + (0 if judging else counts["generated"])
    remaining = total - done - counts["failed"]
    return {
        "n_selected": total,
        "n_done": done,
        "n_failed": counts["failed"],
        "n_remaining": remaining,
        "complete": remaining == 0,
    }


def run_state(info: dict[str, Any], holder: str | None) -> str:
    """`running` (an orchestrator holds the lock), `complete`, or `interrupted` (work left, nobody on it)."""
    if holder is not None:
        return "running"
    return "complete" if info["complete"] else "interrupted"


def state_line(info: dict[str, Any], holder: str | None) -> str:
    """e.g. `interrupted: 5 of 8 done (1 failed)`, `running (pid 7 on host since ...): 3 of 8 done`."""
    state = run_state(info, holder)
    who = f" ({holder})" if holder else ""
    failed = f" ({info['n_failed']} failed)" if info["n_failed"] else ""
    return f"{state}{who}: {info['n_done']} of {info['n_selected']} done{failed}"


def collect(conn: sqlite3.Connection, judging: bool | None = None) -> dict[str, Any]:
    counts = state_counts(conn)
    total = sum(counts.values())
    if judging is None:
        judging = judging_of(conn)
    rate = recent_rate(conn)
    to_make = counts["pending"] + counts["generating"]
    remaining = to_make + (counts["generated"] if judging else 0)
    progress = completeness(counts, judging)
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
        **progress,
        "done": progress["n_done"],
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
        f"run {run_dir}: {info['total']} items; {state_line(info, info.get('holder'))}",
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
    """Exit 0; 1 when RUN_DIR has no ledger or sqlite fails; 2 when the ledger is corrupt (one line
    naming `videophy-bench recover`)."""
    from services.orchestrator.export import refresh

    path = Path(run_dir)
    try:
        exports = refresh(path)  # also makes results.csv/summary.json match the ledger
        conn = connect(path, readonly=True)
    except LedgerCorrupt as exc:
        print(f"videophy-bench status: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, sqlite3.Error) as exc:
        print(f"videophy-bench status: {exc}", file=sys.stderr)
        return 1
    try:
        info = collect(conn)
    finally:
        conn.close()
    info["state"] = run_state(info, exports.holder)
    info["holder"] = exports.holder
    info["exports"] = "rewritten from the ledger" if exports.written else exports.note
    if as_json:
        print(json.dumps(info, indent=1))
    else:
        print(format_status(path, info) + f"\n  exports (results.csv, summary.json): {info['exports']}")
    return 0
