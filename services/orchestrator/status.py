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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from videophy_bench.common.judge_tasks import families
from videophy_bench.orchestrator.items import MAX_SEEDS, STATES, seed_indices
from videophy_bench.orchestrator.ledger import LedgerCorrupt, connect, state_counts

RATE_WINDOW = 50  # throughput over the most recent videos, so a resumed run's pause does not skew it


def videos_per_hour(times: list[float]) -> float | None:
    """Rate over the last RATE_WINDOW completion times (seconds since epoch, any order)."""
    recent = sorted(times)[-RATE_WINDOW:]
    if len(recent) < 2 or recent[-1] <= recent[0]:
        return None
    return (len(recent) - 1) / (recent[-1] - recent[0]) * 3600.0


STAGE_TIMES = {"generate": "generated_at", "judge": "judged_at"}


def recent_rate(conn: sqlite3.Connection, stage: str = "generate") -> float | None:
    """`videos_per_hour` of the ledger's RATE_WINDOW most recent generations (or judgings)."""
    column = STAGE_TIMES[stage]  # a fixed column name, never user text
    times = [
        r[0]
        for r in conn.execute(
            f"SELECT {column} FROM items WHERE {column} IS NOT NULL ORDER BY {column} DESC LIMIT ?",
            (RATE_WINDOW,),
        )
    ]
    return videos_per_hour(times)


def eta_seconds(
    counts: dict[str, int], judging: bool, gen_rate: float | None, judge_rate: float | None
) -> float | None:
    """Seconds until every item is settled: generation and judging run side by side, so the later
    of the two stages ends the run (the judging tail after the last video included). None while a
    stage with work left has no rate yet."""
    to_make = counts["pending"] + counts["generating"]
    to_judge = to_make + counts["generated"] if judging else 0
    stages = [(to_make, gen_rate), (to_judge, judge_rate)]
    if any(left and not rate for left, rate in stages):
        return None
    return max((left / rate * 3600.0 for left, rate in stages if left and rate), default=0.0)


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
    judge_rate = recent_rate(conn, "judge") if judging else None
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
        "judging": judging,
        "videos_per_hour": rate,
        "judged_per_hour": judge_rate,
        "eta_s": eta_seconds(counts, judging, rate, judge_rate),
        "failures": failures,
        "updated": time.time(),
    }


def _item_label(run_seed: int, prompt_id: str, seed: int) -> str:
    """`vp2-0001 #1`: the prompt and the seed index (the raw seed when it is not a derived one)."""
    k = seed_indices(run_seed, [(prompt_id, seed)], MAX_SEEDS).get((prompt_id, seed))
    return f"{prompt_id} #{k}" if k is not None else f"{prompt_id} seed {seed}"


# Per kind: the ledger column naming the replica, the unfinished state it works on, its seconds column.
_REPLICA_WORK = {
    "generator": ("gen_replica", "generating", "gen_seconds", "generate"),
    "evaluator": ("judge_replica", "generated", "judge_seconds", "judge"),
}
SECONDS_WINDOW = 20  # seconds per video over a replica's most recent items


def replica_rows(conn: sqlite3.Connection, replicas: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per replica that served the run (`replicas`: ReplicaInfo dicts, from the dispatcher
    or manifest.json, plus every address the ledger names), from the ledger alone: `current` item
    (an unfinished one it took last), `seconds_per_video` (mean of its recent items), `errors`
    (error entries naming it) and `last_seen` (epoch of its last ledger update)."""
    known = {(r["kind"], r["address"]): dict(r) for r in replicas}
    for kind, (col, *_rest) in _REPLICA_WORK.items():
        for (address,) in conn.execute(f"SELECT DISTINCT {col} FROM items WHERE {col} IS NOT NULL"):
            known.setdefault((kind, address), {"kind": kind, "address": address})
    errors = [json.loads(e) for (e,) in conn.execute("SELECT errors FROM items WHERE errors != '[]'")]
    config = conn.execute("SELECT value FROM meta WHERE key='config'").fetchone()
    run_seed = int(json.loads(config[0]).get("run_seed") or 0) if config else 0
    rows = []
    for (kind, address), info in sorted(known.items(), key=lambda kv: (kv[0][0] != "generator", kv[0])):
        col, unfinished, seconds, stage = _REPLICA_WORK[kind]
        current = conn.execute(
            f"SELECT prompt_id, seed FROM items WHERE {col}=? AND state=? ORDER BY updated_at DESC LIMIT 1",
            (address, unfinished),
        ).fetchone()
        recent = [
            r[0]
            for r in conn.execute(
                f"SELECT {seconds} FROM items WHERE {col}=? AND {seconds} IS NOT NULL "
                "ORDER BY updated_at DESC LIMIT ?",
                (address, SECONDS_WINDOW),
            )
        ]
        (last_seen,) = conn.execute(
            f"SELECT MAX(updated_at) FROM items WHERE {col}=?", (address,)
        ).fetchone()
        tag = f"[{address}]"  # dispatch appends the replica's address to an RPC error's reason
        rows.append(
            {
                "kind": kind,
                "address": address,
                "device": info.get("device_name") or info.get("device") or "",
                "hostname": info.get("hostname", ""),
                "current": _item_label(run_seed, *current) if current else "",
                "seconds_per_video": sum(recent) / len(recent) if recent else None,
                "errors": sum(
                    1
                    for item in errors
                    for e in item
                    if e.get("stage") == stage and tag in e.get("error", "")
                ),
                "last_seen": last_seen,
            }
        )
    return rows


def format_status(run_dir: Path, info: dict[str, Any], max_failures: int = 20) -> str:
    c = info["counts"]
    rate = info["videos_per_hour"]
    lines = [
        f"run {run_dir}: {info['total']} items; {state_line(info, info.get('holder'))}",
        "  " + "  ".join(f"{s} {c[s]}" for s in STATES),
        f"  throughput {rate:.1f} videos/h" if rate else "  throughput ?",
        f"  ETA {format_duration(info['eta_s'])} ({info['remaining']} items left)",
    ]
    if info.get("n_prompt_truncated"):
        lines.append(f"  {info['n_prompt_truncated']} prompts cut at the text encoder's token cap "
                     "(results.csv prompt_truncated)")
    if info["failures"]:
        lines.append(f"  failures ({len(info['failures'])}):")
        for f in info["failures"][:max_failures]:
            lines.append(f"    {f['prompt_id']} seed {f['seed']}: {f['error']}")
        if len(info["failures"]) > max_failures:
            lines.append(f"    ... {len(info['failures']) - max_failures} more (--json for all)")
    return "\n".join(lines)


def status_main(run_dir: str, as_json: bool = False, watch_s: float | None = None) -> int:
    """Exit 0; 1 when RUN_DIR has no ledger or sqlite fails; 2 when the ledger is corrupt (one line
    naming `videophy-bench recover`). `watch_s`: the live display (progress.watch), redrawn every
    `watch_s` seconds while the run is going on; it only reads the run directory."""
    from videophy_bench.orchestrator.export import refresh

    path = Path(run_dir)
    if watch_s is not None and not watch_s > 0:
        print(f"videophy-bench status: --watch {watch_s}: seconds must be > 0", file=sys.stderr)
        return 2
    if watch_s is not None and not (path / "ledger.sqlite").is_file():
        print(f"videophy-bench status: {path}: no ledger.sqlite (not a run directory?)", file=sys.stderr)
        return 1
    try:
        if watch_s is not None:
            from videophy_bench.orchestrator.progress import watch

            watch(path, interval_s=watch_s)
            return 0
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
    info["n_prompt_truncated"] = exports.summary.get("n_prompt_truncated", 0)
    if as_json:
        print(json.dumps(info, indent=1))
    else:
        print(format_status(path, info) + f"\n  exports (results.csv, summary.json): {info['exports']}")
    return 0
