"""Exports from the ledger: results.csv (docs/results-schema.md), official-format CSVs, summary.json.

The ledger stays the source of truth; every export is rewritten whole (atomically) from it, so an
export is never half old, half new. Everything an export needs is in the run directory (the ledger
and prompts.csv), so the same `export_run` serves every caller: `run` at its start (before any
replica is contacted) and its end, `recover`, and `refresh` for `status` and `report`, which rewrites
the files when it can take the run lock and otherwise returns the exports in memory, saying why.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from videophy_bench.common import csvio, judge_tasks
from videophy_bench.common.csvio import cell as _cell
from videophy_bench.orchestrator import caption_source, results_document
from videophy_bench.orchestrator.items import MAX_SEEDS, config_hash, seed_indices
from videophy_bench.orchestrator.ledger import (
    RunLock,
    RunLocked,
    connect,
    item_sources,
    lock_holder,
    rows_with_answers,
    state_counts,
)
from videophy_bench.orchestrator.results_schema import results_columns
from videophy_bench.orchestrator.status import completeness, judging_of

PROMPTS_NAME = "prompts.csv"


def write_atomic(path: Path, text: str) -> None:
    """A text export (JSON), written whole; CSVs go through `csvio.write_csv`."""
    csvio.write_atomic(path, text.encode("utf-8"))


def run_video_path(uri: str) -> str:
    """A video's path relative to its run directory. Videos are written at `<the run directory's path
    under the storage root>/videos/<prompt_id>/<request_id>.mp4` (the runner's output prefix), so the
    URI's last three parts are that path wherever the storage root is mounted or the run directory
    was copied to (`cluster fetch`)."""
    parts = PurePosixPath(uri).parts
    return "/".join(parts[-3:]) if len(parts) >= 3 and parts[-3] == "videos" else uri


def prompt_table(run_dir: Path) -> dict[str, dict[str, str]]:
    """prompt_id -> action, category, is_hard (and the caption and upsampled caption, for
    `caption_source`) from the run's copy of its prompt set (prompts.csv)."""
    from videophy_bench.orchestrator.prompts import load_csv

    path = Path(run_dir) / PROMPTS_NAME
    if not path.is_file():  # only before the first session got as far as writing it (no items yet)
        return {}
    return {
        p.prompt_id: {
            "action": p.action,
            "category": p.category,
            "is_hard": "" if p.is_hard is None else str(p.is_hard),
            "caption": p.caption,
            "upsampled_caption": p.upsampled_caption,
        }
        for p in load_csv(path).prompts
    }


def prompt_token_cells(gen_result: str | None) -> dict[str, str]:
    """`prompt_tokens` and `prompt_truncated` as the generator reported them in its result (the
    ledger's `gen_result` JSON); empty cells when unknown: not generated yet, or a result from a
    generator (or an older ledger) without the counts."""
    try:
        result = json.loads(gen_result) if gen_result else {}
    except ValueError:
        result = {}
    if not isinstance(result, dict):
        result = {}
    truncated = result.get("promptTruncated")
    return {
        "prompt_tokens": _cell(result.get("promptTokens")),
        "prompt_truncated": "" if truncated is None else str(bool(truncated)),
    }


def truncated_prompts(results: list[dict[str, str]]) -> int:
    """Items whose prompt the generator's text encoder cut at its token cap (summary and `status`)."""
    return sum(r["prompt_truncated"] == "True" for r in results)


def result_rows(
    rows: Iterable[Mapping[str, Any]],
    prompts: dict[str, dict[str, str]],
    sources: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, str]]:
    """Ledger rows with their answers (`ledger.rows_with_answers`) -> results.csv rows (prompt metadata
    from the prompt set, paths relative to the run; `sources`: `ledger.item_sources`, the URL and
    caption source of downloaded videos)."""
    sources = sources or {}
    sa_pass, pc_pass = (judge_tasks.task(t).pass_threshold for t in ("sa", "pc"))
    out = []
    for r in rows:
        meta = prompts.get(r["prompt_id"], {})
        video_path = run_video_path(r["video_uri"]) if r["video_uri"] else ""
        sa, pc = r["sa"], r["pc"]
        joint = "" if sa is None or pc is None else ("1.0" if sa >= sa_pass and pc >= pc_pass else "0.0")
        error = r["error"] or ""  # cleared on success, so only failures and unfinished retries show
        source = sources.get(r["request_id"], {})
        chosen = source.get("caption_source") or caption_source.of_generation(
            r["gen_prompt"], meta.get("caption", r["caption"]), meta.get("upsampled_caption", ""))
        out.append(
            {
                "prompt_id": r["prompt_id"],
                "seed": str(r["seed"]),
                "round": str(r["round"]),
                "arm": r["arm"],
                "caption": r["caption"],
                "gen_prompt": r["gen_prompt"],
                "caption_source": chosen,
                **prompt_token_cells(r["gen_result"]),
                "action": meta.get("action", ""),
                "is_hard": meta.get("is_hard", ""),
                "category": meta.get("category", ""),
                "state": r["state"],
                "error": error,
                "video_url": _cell(source.get("video_url")),
                "video_path": video_path,
                "sha256": _cell(r["sha256"]),
                **{col: _cell(r[col]) for col in judge_tasks.result_columns()},
                "joint": joint,
                "gen_seconds": _cell(r["gen_seconds"]),
                "judge_seconds": _cell(r["judge_seconds"]),
            }
        )
    return out


def write_official(run_dir: Path, results: list[dict[str, str]]) -> None:
    """official/: the inputs (`sa_pc.csv`, `rule.csv`) and outputs (`output_{sa,pc,rule}.csv`) of the
    official `VIDEOPHY2/inference.py`, with the same headers (outputs: unnamed index + inputs + float
    `score`). `videopath` is relative to the run directory, so run official tools from there."""
    out = Path(run_dir) / "official"
    made = [r for r in results if r["video_path"]]
    csvio.write_csv(
        out / "sa_pc.csv", ["caption", "videopath"], ([r["caption"], r["video_path"]] for r in made)
    )
    for task in ("sa", "pc"):
        scored = [r for r in made if r[task] != ""]
        csvio.write_csv(
            out / f"output_{task}.csv",
            ["", "caption", "videopath", "score"],
            ([k, r["caption"], r["video_path"], f"{float(r[task]):.1f}"] for k, r in enumerate(scored)),
        )
    ruled = [r for r in made if r.get("rule_text")]
    if ruled:
        csvio.write_csv(
            out / "rule.csv", ["videopath", "rule"], ([r["video_path"], r["rule_text"]] for r in ruled)
        )
        scored = [r for r in ruled if r["rule"] != ""]
        csvio.write_csv(
            out / "output_rule.csv",
            ["", "videopath", "rule", "score"],
            ([k, r["video_path"], r["rule_text"], f"{float(r['rule']):.1f}"] for k, r in enumerate(scored)),
        )


def summarize_rows(results: list[dict[str, str]]) -> dict[str, Any]:
    """summary.json numbers: the analysis package's `summarize` (one definition of every metric)."""
    try:
        import pandas as pd

        from videophy_bench.orchestrator.analysis import summarize
    except ImportError:  # TODO: drop once the analysis extra is always installed with the orchestrator
        return _minimal_summary(results)
    return summarize(pd.DataFrame(results, columns=list(results_columns())))


def _minimal_summary(results: list[dict[str, str]]) -> dict[str, Any]:
    def part(rows: list[dict[str, str]]) -> tuple[int, float | None]:
        scored = [
            r
            for r in rows
            if r["joint"] != "" and r["sa_parse"] != "unparseable" and r["pc_parse"] != "unparseable"
        ]
        return len(scored), (sum(float(r["joint"]) for r in scored) / len(scored)) if scored else None

    scored = [r for r in results if r["sa"] != "" and r["pc"] != ""]
    n, joint = part(results)
    return {
        "n": n,
        "joint": joint,
        "mean_sa": sum(float(r["sa"]) for r in scored) / len(scored) if scored else None,
        "mean_pc": sum(float(r["pc"]) for r in scored) / len(scored) if scored else None,
        "joint_hard": part([r for r in results if r["is_hard"] == "True"])[1],
        "joint_easy": part([r for r in results if r["is_hard"] == "False"])[1],
        "note": "minimal summary: videophy_bench.orchestrator.analysis is not installed",
    }


def _identity(conn: sqlite3.Connection) -> dict[str, Any]:
    """config_hash and prompt_set_sha256 of the run, from the ledger's meta (None before the first
    session recorded them)."""
    meta = run_meta(conn)
    config = meta.get("config")
    prompt_set = meta.get("prompt_set") or {}
    return {
        "config_hash": config_hash(config) if config else None,
        "prompt_set_sha256": prompt_set.get("sha256") or (config or {}).get("prompt_set_sha256"),
    }


def run_meta(conn: sqlite3.Connection) -> dict[str, Any]:
    """The ledger's meta table (the run's `config`, `prompt_set`, ...), decoded."""
    return {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}


def add_seed_index(results: list[dict[str, str]], meta: dict[str, Any]) -> None:
    """Each row's `seed_index`: the k of `--seeds` its seed was derived from (items.seed_indices, from
    the run seed in the ledger's config), so that tables group the k-th video of every prompt
    together; empty for a seed not derived from the run seed."""
    run_seed = int((meta.get("config") or {}).get("run_seed") or 0)
    index = seed_indices(run_seed, ((r["prompt_id"], int(r["seed"])) for r in results), MAX_SEEDS)
    for r in results:
        k = index.get((r["prompt_id"], int(r["seed"])))
        r["seed_index"] = "" if k is None else str(k)


def ledger_exports(run_dir: Path, conn: sqlite3.Connection) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """(results.csv rows, each with its `rule_text`; summary) computed from the ledger alone."""
    rows = rows_with_answers(conn, conn.execute("SELECT * FROM items ORDER BY prompt_id, seed, round, arm"))
    results = result_rows(rows, prompt_table(run_dir), item_sources(conn))
    add_seed_index(results, run_meta(conn))
    summary = {
        **summarize_rows(results),
        **completeness(state_counts(conn), judging_of(conn)),
        **_identity(conn),
        "n_prompt_truncated": truncated_prompts(results),
    }
    for res, row in zip(results, rows, strict=True):
        res["rule_text"] = row["rule_text"]
    return results, summary


def write_exports(
    run_dir: Path, results: list[dict[str, str]], summary: dict[str, Any], meta: dict[str, Any]
) -> None:
    """results.csv, official/*.csv, summary.json and results.json (`meta`: `run_meta`), each
    replaced atomically."""
    run_dir = Path(run_dir)
    columns = results_columns()
    csvio.write_csv(run_dir / "results.csv", columns, ([r[c] for c in columns] for r in results))
    write_official(run_dir, results)
    write_atomic(run_dir / "summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    results_document.write(run_dir, results, summary, meta)


def export_run(run_dir: Path, conn: sqlite3.Connection) -> dict[str, Any]:
    """Rewrite every export from the ledger (the caller holds the run lock); returns the summary."""
    results, summary = ledger_exports(run_dir, conn)
    write_exports(run_dir, results, summary, run_meta(conn))
    return summary


@dataclass
class Refreshed:
    """The exports of a run as the ledger has them now, and whether the files on disk were rewritten."""

    results: list[dict[str, str]]
    summary: dict[str, Any]
    holder: str | None  # who holds the run lock (a running orchestrator), or None
    written: bool
    note: str  # why the files were not rewritten ("" when they were)


def refresh(run_dir: Path) -> Refreshed:
    """Bring results.csv / summary.json / results.json / official/ up to date with the ledger, for
    `status` and `report`: rewritten under the run lock when the directory is writable and no
    orchestrator holds it; otherwise computed in memory only (a running orchestrator rewrites them
    itself when it ends).
    Raises FileNotFoundError (no ledger) and LedgerCorrupt."""
    run_dir = Path(run_dir)
    if not (run_dir / "ledger.sqlite").is_file():
        raise FileNotFoundError(f"{run_dir}: no ledger.sqlite (not a run directory?)")
    lock: RunLock | None = None
    holder: str | None = None
    note = ""
    try:
        lock = RunLock(run_dir, "refreshing exports").acquire()
    except RunLocked as exc:
        holder = exc.holder
        note = "a run is in progress: numbers read live from the ledger; it rewrites the exports itself"
    except OSError as exc:  # read-only directory or lock file
        holder = lock_holder(run_dir)
        note = f"run directory not writable ({exc.strerror}): exports computed from the ledger, not rewritten"
    try:
        conn = connect(run_dir, readonly=True)
        try:
            results, summary = ledger_exports(run_dir, conn)
            meta = run_meta(conn)
        finally:
            conn.close()
        written = False
        if lock is not None:
            try:
                write_exports(run_dir, results, summary, meta)
                written = True
            except OSError as exc:
                note = f"could not rewrite the exports ({exc}): computed from the ledger in memory"
        return Refreshed(results, summary, holder, written, note)
    finally:
        if lock is not None:
            lock.release()
