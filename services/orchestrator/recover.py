"""`videophy-bench recover RUN_DIR`: rebuild a corrupt ledger.sqlite from what the run directory holds.

Nothing is deleted: the damaged ledger (and its -wal/-shm) is renamed `ledger.sqlite.corrupt-<time>`.
The new ledger gets
- meta: the configuration and prompt set, from the old ledger when sqlite can still read them, else
  from manifest.json;
- every item row sqlite can still read from the old file (a scan in rowid order up to the first
  damaged page, then lookups by rowid and by request id, which route around a damaged leaf). A row is
  kept only when its request id recomputes from its own fields, and a row with a video only when the
  MP4 on disk still has its sha256: such rows keep their judge answers;
- one row per video the old ledger lost, from the generator's sidecar (`<request_id>.json` beside
  `<request_id>.mp4`: prompt, seed, artifact sha256), when the MP4's sha256 matches the sidecar and
  the request id is this run's for that prompt and seed. These rows are `generated`: judge answers
  live only in the ledger, so the next run judges them again (and makes none of them again).
Then the exports are rewritten from the new ledger.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videophy_bench.common.judge_tasks import applies, default_tasks
from videophy_bench.common.storage import sha256_file
from videophy_bench.orchestrator import export, manifest
from videophy_bench.orchestrator.items import BASE_ARM, config_hash, request_id
from videophy_bench.orchestrator.ledger import (
    ARTIFACT_COLUMNS,
    JUDGE_COLUMNS,
    LEDGER_NAME,
    Ledger,
    LedgerCorrupt,
    RunLock,
    RunLocked,
    StoredAnswer,
    answer_fields,
    connect,
    stored_answers,
)
from videophy_bench.orchestrator.prompts import Prompt, PromptSetError, load_csv
from videophy_bench.orchestrator.status import names_a_judge

# Refinement rounds tried when matching a sidecar's request id (PhyT2V runs use a handful).
MAX_ROUNDS = 64
_SIDE_FILES = ("", "-wal", "-shm")


@dataclass
class Recovery:
    """What `recover` did, for its report."""

    moved_to: Path | None = None
    salvaged: int = 0  # rows read back from the damaged file and kept
    recovered_videos: int = 0  # rows with a verified video in the new ledger
    judged: int = 0  # of those, with judge answers kept from the old ledger
    to_judge: int = 0  # of those, to be judged on the next run
    without_video: int = 0  # pending/failed rows kept (with their error history)
    reset: int = 0  # salvaged rows whose video is gone or changed: made again on the next run
    skipped: Counter[str] = field(default_factory=Counter)  # sidecars without a valid video, by reason


def move_aside(run_dir: Path) -> Path | None:
    """Rename ledger.sqlite (and its -wal/-shm, which belong to it) to ledger.sqlite.corrupt-<time>."""
    base = run_dir / LEDGER_NAME
    if not any((run_dir / (LEDGER_NAME + s)).exists() for s in _SIDE_FILES):
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target, k = run_dir / f"{LEDGER_NAME}.corrupt-{stamp}", 1
    while any(Path(f"{target}{s}").exists() for s in _SIDE_FILES):
        k += 1
        target = run_dir / f"{LEDGER_NAME}.corrupt-{stamp}-{k}"
    for suffix in _SIDE_FILES:  # sqlite finds "<name>-wal" beside "<name>": the set stays readable
        src = Path(f"{base}{suffix}")
        if src.exists():
            os.replace(src, f"{target}{suffix}")
    return target


def _consistent(row: dict[str, Any]) -> bool:
    """A row read from a damaged file is trusted only when its request id recomputes from its fields."""
    try:
        return row["request_id"] == request_id(
            row["prompt_id"], int(row["seed"]), int(row["round"]), row["arm"], row["config_hash"]
        )
    except (KeyError, TypeError, ValueError):
        return False


def _readable_rows(conn: sqlite3.Connection, table: str) -> Iterator[sqlite3.Row]:
    """The rows of `table` sqlite can read: a scan in rowid order up to the first damaged page, then one
    seek per rowid past it (which routes around a damaged leaf)."""
    last = 0
    with contextlib.suppress(sqlite3.Error):
        for row in conn.execute(f"SELECT rowid AS _rowid, * FROM {table} ORDER BY rowid"):
            yield row
            last = row["_rowid"]
    top = last
    with contextlib.suppress(sqlite3.Error, TypeError):
        top = int(conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0])
    for rowid in range(last + 1, top + 1):
        with contextlib.suppress(sqlite3.Error):
            row = conn.execute(f"SELECT rowid AS _rowid, * FROM {table} WHERE rowid=?", (rowid,)).fetchone()
            if row is not None:
                yield row


def salvage(path: Path, request_ids: set[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(meta, rows by request id, each with its answers as per-task fields) that sqlite can still read
    from the damaged ledger at `path`. Read-only: the file is never changed."""
    meta: dict[str, Any] = {}
    rows: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return meta, rows
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row

    def keep(row: sqlite3.Row | None) -> None:
        if row is not None:
            item = dict(row)
            item.pop("_rowid", None)
            if _consistent(item):
                rows[item["request_id"]] = item

    answers: dict[str, dict[str, StoredAnswer]] = {}  # a version-2 ledger's `answers` rows
    with contextlib.closing(conn):
        with contextlib.suppress(sqlite3.Error, ValueError):
            for key, value in conn.execute("SELECT key, value FROM meta"):
                meta[key] = json.loads(value)
        for row in _readable_rows(conn, "items"):
            keep(row)
        for rid in request_ids - set(rows):  # through the primary-key index
            with contextlib.suppress(sqlite3.Error):
                keep(conn.execute("SELECT * FROM items WHERE request_id=?", (rid,)).fetchone())
        def keep_answer(a: sqlite3.Row) -> None:
            answers.setdefault(a["request_id"], {})[a["task"]] = StoredAnswer(
                a["task"], a["score"], a["parse"], a["raw"])

        with contextlib.suppress(sqlite3.Error):  # up to the first damaged page
            for a in conn.execute("SELECT * FROM answers ORDER BY rowid"):
                keep_answer(a)
        for rid in set(rows) - set(answers):  # through the primary-key index (request_id, task)
            with contextlib.suppress(sqlite3.Error):
                for a in conn.execute("SELECT * FROM answers WHERE request_id=?", (rid,)).fetchall():
                    keep_answer(a)
    for rid, row in rows.items():  # a version-1 row has them in its own columns: one shape for both
        rows[rid] = {**row, **answer_fields({**stored_answers(row), **answers.get(rid, {})})}
    return meta, rows


def _video_ok(run_dir: Path, uri: str | None, sha256: str | None) -> bool:
    if not uri or not sha256:
        return False
    path = run_dir / export.run_video_path(uri)
    return path.is_file() and path.stat().st_size > 0 and sha256_file(path) == sha256


def _arms(rows: dict[str, dict[str, Any]]) -> list[tuple[int, str]]:
    """(round, arm) pairs a sidecar's request id may have been made with."""
    from videophy_bench.orchestrator.phyt2v.loop import ARM as PHYT2V_ARM

    seen = {(int(r["round"]), str(r["arm"])) for r in rows.values()}
    return sorted(seen | {(0, BASE_ARM)} | {(k, PHYT2V_ARM) for k in range(1, MAX_ROUNDS + 1)})


def _sidecar_row(
    run_dir: Path,
    side_path: Path,
    prompts: dict[str, Prompt],
    cfg_hash: str | None,
    arms: list[tuple[int, str]],
) -> dict[str, Any] | str:
    """The ledger row for one sidecar, or the reason it has none."""
    rid, prompt_id = side_path.stem, side_path.parent.name
    try:
        side = json.loads(side_path.read_text(encoding="utf-8"))
        result = side["result"]
        artifact = result["artifact"]
        uri, sha = str(artifact["uri"]), str(artifact["sha256"])
        seed = int(result.get("params", {}).get("seed", 0))  # protobuf JSON leaves out a zero
        gen_prompt = str(side["prompt"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable sidecar ({type(exc).__name__})"
    if export.run_video_path(uri) != f"videos/{prompt_id}/{rid}.mp4":
        return "sidecar names another video"
    mp4 = side_path.with_suffix(".mp4")
    if not mp4.is_file() or mp4.stat().st_size == 0:
        return "video missing or empty"
    if sha256_file(mp4) != sha:
        return "video sha256 differs from its sidecar"
    if cfg_hash is None:
        return "no configuration to check it against (no manifest.json)"
    prompt = prompts.get(prompt_id)
    if prompt is None:
        return "prompt id not in prompts.csv"
    match = [(r, a) for r, a in arms if request_id(prompt_id, seed, r, a, cfg_hash) == rid]
    if not match:
        return "request id is not this run's (another configuration?)"
    round_, arm = match[0]
    now = time.time()
    return {
        "request_id": rid,
        "prompt_id": prompt_id,
        "seed": seed,
        "round": round_,
        "arm": arm,
        "config_hash": cfg_hash,
        "caption": prompt.caption,
        "gen_prompt": gen_prompt,
        "rule_text": prompt.rule,
        "state": "generated",
        "video_uri": uri,
        "sha256": sha,
        "gen_seconds": result.get("timingsS", {}).get("total"),  # the generator's own time
        "gen_attempts": 1,
        "gen_result": json.dumps(result),
        "errors": json.dumps([{"t": round(now, 3), "stage": "recover", "error": "rebuilt from its sidecar"}]),
        "created_at": now,
        "updated_at": now,
        "generated_at": mp4.stat().st_mtime,  # when the video was written
    }


def _reset(row: dict[str, Any], reason: str) -> dict[str, Any]:
    """A salvaged row whose video is gone: made again (Ledger.reset_to_pending's fields)."""
    errors = json.loads(row.get("errors") or "[]")
    errors.append({"t": round(time.time(), 3), "stage": "recover", "error": reason})
    return {
        **row,
        **dict.fromkeys((*ARTIFACT_COLUMNS, *JUDGE_COLUMNS)),
        **answer_fields({}),
        "state": "pending",
        "error": f"recover: {reason}",
        "errors": json.dumps(errors),
    }


def _fully_answered(row: dict[str, Any], config: dict[str, Any] | None) -> bool:
    """Whether a salvaged row has an answer for every task its run judges it on."""
    asked = (config or {}).get("judge_tasks") or default_tasks(has_rules=True)
    found = stored_answers(row)
    return all(t in found for t in asked if applies(t, row.get("rule_text") or ""))


def recover(run_dir: Path) -> Recovery:
    """Move the damaged ledger aside and rebuild it (the caller holds the run lock)."""
    out = Recovery()
    sidecars = sorted(p for p in (run_dir / "videos").glob("*/*.json") if not p.name.startswith("."))
    out.moved_to = move_aside(run_dir)
    meta, old_rows = salvage(out.moved_to, {p.stem for p in sidecars}) if out.moved_to else ({}, {})
    man = manifest.read(run_dir)
    config = meta.get("config") or man.get("config")
    prompt_set = meta.get("prompt_set") or man.get("prompt_set")
    cfg_hash = config_hash(config) if config else None
    try:
        prompts = {p.prompt_id: p for p in load_csv(run_dir / export.PROMPTS_NAME).prompts}
    except (OSError, PromptSetError):
        prompts = {}
    arms = _arms(old_rows)

    new_rows: dict[str, dict[str, Any]] = {}
    for rid, row in old_rows.items():
        if row["config_hash"] != cfg_hash:
            continue
        out.salvaged += 1
        if not row["video_uri"]:
            new_rows[rid] = {**row, "state": "pending" if row["state"] == "generating" else row["state"]}
        elif _video_ok(run_dir, row["video_uri"], row["sha256"]):
            new_rows[rid] = row
        else:
            new_rows[rid] = _reset(row, "video missing or changed since the ledger recorded it")
    for side in sidecars:
        rid = side.stem
        if rid in new_rows and new_rows[rid]["video_uri"]:
            continue  # the old ledger's row, with its judge answers
        made = _sidecar_row(run_dir, side, prompts, cfg_hash, arms)
        if isinstance(made, str):
            out.skipped[made] += 1
            continue
        if rid in new_rows:  # a salvaged row whose recorded video was replaced: keep its history
            old = new_rows[rid]
            made = {**old, **answer_fields({}), **made, "errors": old["errors"],
                    "gen_attempts": old["gen_attempts"] or 1}  # the old video's answers are not its
        new_rows[rid] = made

    ledger = Ledger(run_dir)
    try:
        columns = [r[1] for r in ledger.conn.execute("PRAGMA table_info(items)")]
        if config:
            ledger.set_meta("config", config)
        if prompt_set:
            ledger.set_meta("prompt_set", prompt_set)
        with ledger.conn:
            for row in new_rows.values():
                if row["state"] == "judged" and not _fully_answered(row, config):
                    row["state"] = "generated"  # some answers were on a damaged page: judged again
                cols = [c for c in columns if c in row]
                ledger.conn.execute(
                    f"INSERT INTO items({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                    [row[c] for c in cols],
                )
        for row in new_rows.values():
            found = stored_answers(row)
            if found:
                replica = row.get("judge_replica") or ""
                ledger.record_answers(row["request_id"], found.values(), replica=replica, seconds=None)
        for row in new_rows.values():
            if row["video_uri"]:
                out.recovered_videos += 1
                if row["state"] == "judged":
                    out.judged += 1
                elif config and names_a_judge(config):
                    out.to_judge += 1
            elif row["state"] == "pending" and str(row.get("error") or "").startswith("recover:"):
                out.reset += 1
            else:
                out.without_video += 1
        export.export_run(run_dir, ledger.conn)
    finally:
        ledger.close()
    return out


def report_lines(run_dir: Path, rec: Recovery) -> list[str]:
    lines = []
    if rec.moved_to:
        lines.append(f"kept the damaged ledger as {rec.moved_to.name} (with its -wal/-shm if any)")
    lines.append(
        f"recovered {rec.recovered_videos} videos ({rec.salvaged} rows read back from the old ledger): "
        f"{rec.judged} judged, {rec.to_judge} to be judged again on the next run (judge answers are "
        "kept only in the ledger, not in the sidecars)"
    )
    if rec.without_video:
        lines.append(f"kept {rec.without_video} rows without a video (pending or failed, with their errors)")
    if rec.reset:
        lines.append(f"{rec.reset} recorded videos are missing or changed: they will be made again")
    n_skipped = sum(rec.skipped.values())
    reasons = "; ".join(f"{n} {why}" for why, n in rec.skipped.most_common())
    lines.append(f"skipped {n_skipped} sidecars without a valid video" + (f": {reasons}" if reasons else ""))
    lines.append(f"results.csv and summary.json rewritten; rerun the same `run` command to finish {run_dir}")
    return lines


def _lost(run_dir: Path) -> str | None:
    """Why a ledger that sqlite reads fine still lost the run (emptied while videos exist), or None."""
    conn = connect(run_dir, readonly=True)
    try:
        has_items = (
            conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='items'").fetchone()
            and conn.execute("SELECT 1 FROM items LIMIT 1").fetchone()
        )
    finally:
        conn.close()
    if has_items or not any((run_dir / "videos").glob("*/*.json")):
        return None
    return "ledger.sqlite holds no items but the run has videos"


def recover_main(run_dir: str) -> int:
    """Exit 0 when rebuilt or nothing to do; 2 when RUN_DIR is not a run directory or is in use."""
    path = Path(run_dir)
    if not (path / "manifest.json").is_file() and not (path / LEDGER_NAME).exists():
        print(
            f"videophy-bench recover: {path} is not a run directory (no ledger.sqlite, no manifest.json)",
            file=sys.stderr,
        )
        return 2
    try:
        lock = RunLock(path, "recover").acquire()
    except (RunLocked, OSError) as exc:
        print(f"videophy-bench recover: {exc}", file=sys.stderr)
        return 2
    try:
        if (path / LEDGER_NAME).is_file():
            try:
                problem = _lost(path)
            except LedgerCorrupt as exc:
                problem = exc.detail
            if problem is None:
                print(f"videophy-bench recover: {path / LEDGER_NAME} is intact; nothing to recover")
                return 0
            print(f"videophy-bench recover: {problem}; rebuilding")
        for line in report_lines(path, recover(path)):
            print(f"videophy-bench recover: {line}")
        return 0
    finally:
        lock.release()
