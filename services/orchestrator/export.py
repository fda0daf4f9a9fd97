"""Exports from the ledger: results.csv (docs/results-schema.md), official-format CSVs, summary.json.

The ledger stays the source of truth; every export is rewritten whole (atomically) from it, so an
export is never half old, half new.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from services.common import csvio
from services.common.csvio import cell as _cell
from services.common.storage import Storage
from services.orchestrator.results_schema import RESULTS_COLUMNS


def write_atomic(path: Path, text: str) -> None:
    """A text export (JSON), written whole; CSVs go through `csvio.write_csv`."""
    csvio.write_atomic(path, text.encode("utf-8"))


def result_rows(
    rows: Iterable[sqlite3.Row], prompts: dict[str, dict[str, str]], run_dir: Path, storage: Storage
) -> list[dict[str, str]]:
    """Ledger rows -> results.csv rows (prompt metadata from the prompt set, paths relative to run_dir)."""
    out = []
    run_dir = Path(run_dir).resolve()
    for r in rows:
        meta = prompts.get(r["prompt_id"], {})
        video_path = ""
        if r["video_uri"]:
            path = storage.resolve(r["video_uri"])
            try:
                video_path = path.relative_to(run_dir).as_posix()
            except ValueError:
                video_path = str(path)
        sa, pc = r["sa"], r["pc"]
        joint = "" if sa is None or pc is None else ("1.0" if sa >= 4 and pc >= 4 else "0.0")
        error = r["error"] or ""  # cleared on success, so only failures and unfinished retries show
        out.append(
            {
                "prompt_id": r["prompt_id"],
                "seed": str(r["seed"]),
                "round": str(r["round"]),
                "arm": r["arm"],
                "caption": r["caption"],
                "gen_prompt": r["gen_prompt"],
                "action": meta.get("action", ""),
                "is_hard": meta.get("is_hard", ""),
                "category": meta.get("category", ""),
                "state": r["state"],
                "error": error,
                "video_path": video_path,
                "sha256": _cell(r["sha256"]),
                "sa": _cell(sa),
                "pc": _cell(pc),
                "rule": _cell(r["rule"]),
                "sa_parse": _cell(r["sa_parse"]),
                "pc_parse": _cell(r["pc_parse"]),
                "rule_parse": _cell(r["rule_parse"]),
                "sa_raw": _cell(r["sa_raw"]),
                "pc_raw": _cell(r["pc_raw"]),
                "rule_raw": _cell(r["rule_raw"]),
                "videocon_sa": _cell(r["videocon_sa"]),
                "videocon_pc": _cell(r["videocon_pc"]),
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

        from services.orchestrator.analysis import summarize
    except ImportError:  # TODO: drop once the analysis extra is always installed with the orchestrator
        return _minimal_summary(results)
    return summarize(pd.DataFrame(results, columns=list(RESULTS_COLUMNS)))


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
        "note": "minimal summary: services.orchestrator.analysis is not installed",
    }


def export_run(
    run_dir: Path,
    rows: list[sqlite3.Row],
    prompts: dict[str, dict[str, str]],
    storage: Storage,
    extra_summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write results.csv, official/*.csv and summary.json; returns the summary."""
    run_dir = Path(run_dir)
    results = result_rows(rows, prompts, run_dir, storage)
    csvio.write_csv(
        run_dir / "results.csv", RESULTS_COLUMNS, ([r[c] for c in RESULTS_COLUMNS] for r in results)
    )
    for res, row in zip(results, rows, strict=True):
        res["rule_text"] = row["rule_text"]
    write_official(run_dir, results)
    summary = {**summarize_rows(results), **(extra_summary or {})}
    write_atomic(run_dir / "summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    return summary
