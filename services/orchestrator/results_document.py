"""results.json: one versioned, self-describing file of a run's numbers for other tools.

Documented in docs/results-schema.md (bump SCHEMA_VERSION on any change a reader could notice:
a key removed, renamed or given another meaning; added keys do not bump it). Written by
`export.write_exports` beside results.csv and summary.json, from the same rows, so it is rebuilt
from the ledger whenever they are and is never stale. Every statistic comes from the analysis
package (`analysis.metrics`, `analysis.intervals`): this module only arranges them.
"""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path
from typing import Any

from videophy_bench.common import csvio
from videophy_bench.common.version import tool_info
from videophy_bench.orchestrator.results_schema import RESULTS_COLUMNS

SCHEMA = "videophy-bench/results"
SCHEMA_VERSION = 1
FILE_NAME = "results.json"
COMPLETENESS_KEYS = ("n_selected", "n_done", "n_failed", "n_remaining", "complete")
PARSED_FIELDS = ("sa", "pc", "rule")


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/NA to None, recursively."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is not None and type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value


def _unparseable(df: Any) -> dict[str, int]:
    """Judge answers that could not be parsed, per task (an item can count for sa and pc)."""
    return {f: int((df[f"{f}_parse"].fillna("") == "unparseable").sum()) for f in PARSED_FIELDS}


def condition_numbers(df: Any, n_boot: int, seed: int) -> dict[str, Any]:
    """Every table of one (arm, round) condition: subsets (all, hard, easy, per category) with Wilson
    and cluster-bootstrap CIs, VideoCon subsets, per action, per seed index, rule outcomes and the
    judge's unparseable answers."""
    from videophy_bench.orchestrator.analysis import metrics

    return {
        "n_items": len(df),
        "n_seeds": metrics.n_seeds(df),
        "seed_grouping": metrics.seed_key(df),
        "unparseable": _unparseable(df),
        "subsets": metrics.subset_table(df, n_boot=n_boot, seed=seed),
        "videocon_subsets": metrics.videocon_subset_table(df, n_boot=n_boot, seed=seed),
        "actions": metrics.action_table(df),
        "seeds": metrics.seed_table(df),
        "rules": metrics.rule_distribution(df),
    }


def statistics(results: list[dict[str, str]], n_boot: int, seed: int) -> dict[str, Any]:
    """{"conditions": [...]} of the rows, one per (arm, round), or a note when pandas/scipy (the
    analysis extra) are not installed."""
    try:
        import pandas as pd

        from videophy_bench.orchestrator.analysis.loading import prepare_results
    except ImportError as exc:
        return {"conditions": [], "note": f"statistics need the analysis extra ({exc})"}
    df = prepare_results(pd.DataFrame(results, columns=list(RESULTS_COLUMNS)))
    conditions = []
    for (arm, round_), part in df.groupby(["arm", "round"], sort=True):
        conditions.append({"arm": str(arm), "round": int(round_), **condition_numbers(part, n_boot, seed)})
    return {"conditions": conditions}


def build(
    run_name: str,
    results: list[dict[str, str]],
    summary: dict[str, Any],
    meta: dict[str, Any],
    n_boot: int | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """The document (see docs/results-schema.md). `summary` is summary.json's dict, `meta` the
    ledger's meta (`export.run_meta`)."""
    from videophy_bench.orchestrator.analysis.intervals import (
        DEFAULT_BOOTSTRAP,
        DEFAULT_CONFIDENCE,
        DEFAULT_SEED,
    )

    n_boot = DEFAULT_BOOTSTRAP if n_boot is None else n_boot
    seed = DEFAULT_SEED if seed is None else seed
    doc = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "tool": tool_info(),
        "run": {
            "name": run_name,
            "config_hash": summary.get("config_hash"),
            "config": meta.get("config"),
            "prompt_set": meta.get("prompt_set"),
        },
        "completeness": {k: summary.get(k) for k in COMPLETENESS_KEYS},
        "methods": {
            "confidence": DEFAULT_CONFIDENCE,
            "joint_lo/joint_hi": "Wilson score interval (items independent)",
            "*_boot_lo/*_boot_hi": "percentile bootstrap resampling whole actions (clusters)",
            "bootstrap_resamples": n_boot,
            "bootstrap_seed": seed,
            "denominator": "scored items: failed, unparseable and not-judged items are excluded "
            "(see n_items, coverage, n_unparseable); joint_official counts unparseable as 0",
        },
        "summary": summary,
        **statistics(results, n_boot, seed),
    }
    return _plain(doc)


def write(
    run_dir: Path, results: list[dict[str, str]], summary: dict[str, Any], meta: dict[str, Any]
) -> None:
    """results.json, replaced atomically."""
    doc = build(Path(run_dir).name, results, summary, meta)
    text = json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n"
    csvio.write_atomic(Path(run_dir) / FILE_NAME, text.encode("utf-8", "surrogateescape"))
