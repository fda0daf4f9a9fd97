"""What a tracker gets from a run directory, whatever the tracker: config, numbers, tables, samples.

Everything is read from the run's exports (results.json, summary.json, results.csv, manifest.json;
docs/results-schema.md), so a tracked run shows exactly the numbers of its results files, and the same
record goes to W&B and to MLflow (each backend only maps it onto its own API).
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videophy_bench.common.redact import redact_argv
from videophy_bench.orchestrator import manifest as run_manifest
from videophy_bench.orchestrator import results_document

# The run's files worth keeping beside the numbers (paths relative to the run directory); manifest.json
# goes as `manifest.public_bytes` (secrets redacted).
RESULT_FILES = ("results.csv", "results.json", "summary.json", "prompts.csv")
# Per subset (all, hard, easy, each category): the numbers with their CIs (results.json `subsets`).
SUBSET_STATS = (
    "joint", "joint_lo", "joint_hi", "joint_boot_lo", "joint_boot_hi", "mean_sa", "mean_sa_boot_lo",
    "mean_sa_boot_hi", "mean_pc", "mean_pc_boot_lo", "mean_pc_boot_hi", "n", "n_items", "n_failed",
    "n_unparseable", "coverage", "joint_official",
)
TABLES = ("subsets", "videocon_subsets", "actions", "seeds", "rules")
SAMPLE_COLUMNS = ("kind", "prompt_id", "seed", "arm", "round", "caption", "sa", "pc", "joint", "video_path")


class NotARun(ValueError):
    """The directory has no exported results to track."""


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Sample:
    kind: str  # "best", "worst" or "example" (nothing scored)
    path: Path  # the MP4
    row: dict[str, Any]

    @property
    def caption(self) -> str:
        scores = ", ".join(f"{k.upper()} {self.row[k]:g}" for k in ("sa", "pc") if is_number(self.row.get(k)))
        return f"{self.kind}: {self.row.get('caption', '')}" + (f" ({scores})" if scores else "")


@dataclass
class TrackedRun:
    run_dir: Path
    name: str
    config: dict[str, Any]  # nested: the run's configuration, prompt set, tool and completeness
    metrics: dict[str, float]  # flat: summary.json's numbers, then `[condition/]subset/stat`
    tags: dict[str, str]
    tables: dict[str, Table] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)  # name under the run directory -> local file

    @property
    def params(self) -> dict[str, str]:
        """The configuration flattened to dotted keys (MLflow params: fixed for a run directory, whose
        configuration cannot change)."""
        return {k: ("" if v is None else str(v)) for k, v in _flatten(self.config["run"]).items()}


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def commands(manifest: dict[str, Any]) -> list[str]:
    """Each session's command line from manifest.json, secrets masked (the run's files go public)."""
    return [shlex.join(redact_argv(s["argv"])) for s in manifest.get("sessions") or [] if s.get("argv")]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(value, list):
        value = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        value = "{}"
    return {prefix.rstrip("."): value}


def _condition_prefix(cond: dict[str, Any], conditions: list[dict[str, Any]]) -> str:
    """'' for a run of one condition (the usual one), else `arm/round_R/` (PhyT2V rounds, A/B arms)."""
    return "" if len(conditions) == 1 else f"{cond['arm']}/round_{cond['round']}/"


def _subset_key(subset: str) -> str:
    return subset.replace("category: ", "category/")


def _metrics(doc: dict[str, Any]) -> dict[str, float]:
    out = {k: float(v) for k, v in doc["summary"].items() if is_number(v)}
    conditions = doc.get("conditions", [])
    for cond in conditions:
        prefix = _condition_prefix(cond, conditions)
        for row in cond["subsets"]:
            for stat in SUBSET_STATS:
                if is_number(row.get(stat)):
                    out[f"{prefix}{_subset_key(row['subset'])}/{stat}"] = float(row[stat])
    return out


def _tables(doc: dict[str, Any]) -> dict[str, Table]:
    out = {}
    conditions = doc.get("conditions", [])
    for cond in conditions:
        prefix = _condition_prefix(cond, conditions)
        for name in TABLES:
            rows = cond.get(name) or []
            if not rows:
                continue
            columns = list(dict.fromkeys(k for r in rows for k in r))
            out[f"{prefix}{name}"] = Table(columns, [[r.get(c) for c in columns] for r in rows])
    return out


def _samples(run_dir: Path, n: int) -> list[Sample]:
    """The `n` best and `n` worst scored videos (by SA + PC, passing ones first among the best), or the
    first `n` videos when nothing is scored."""
    if n <= 0 or not (run_dir / "results.csv").is_file():
        return []
    from videophy_bench.orchestrator.analysis.loading import load_results

    df = load_results(run_dir / "results.csv")
    df = df[df["video_path"].notna()]
    df = df[[bool((run_dir / str(p)).is_file()) for p in df["video_path"]]]
    scored = df[df["sa"].notna() & df["pc"].notna() & (df["sa_parse"] != "unparseable")
                & (df["pc_parse"] != "unparseable")]
    order = ["prompt_id", "seed", "round", "arm"]
    if scored.empty:
        picks = [("example", df.sort_values(order).head(n))]
    else:
        ranked = scored.assign(_total=scored["sa"] + scored["pc"], _joint=scored["joint"].fillna(0))
        best = ranked.sort_values(["_joint", "_total", *order], ascending=[False, False, True, True, True,
                                                                              True]).head(n)
        rest = ranked.drop(best.index)
        worst = rest.sort_values(["_total", *order]).head(n)
        picks = [("best", best), ("worst", worst)]
    out = []
    for kind, part in picks:
        for _, row in part.iterrows():
            values = {"kind": kind, **{c: results_document._plain(row[c]) for c in SAMPLE_COLUMNS[1:]}}
            out.append(Sample(kind, run_dir / str(row["video_path"]), values))
    return out


def refresh_exports(run_dir: Path) -> str:
    """Rewrite the run's exports from its ledger first, as `status` and `report` do (a directory of
    exports without a ledger is taken as it is). Returns why they could not be rewritten ("" when
    they were): a run in progress, a read-only directory. Raises LedgerCorrupt."""
    if not (Path(run_dir) / "ledger.sqlite").is_file():
        return ""
    from videophy_bench.orchestrator.export import refresh

    done = refresh(Path(run_dir))
    return "" if done.written else f"{run_dir}: {done.note}; the files sent are those of its last export"


def result_files(run_dir: Path) -> dict[str, Path | bytes]:
    """The run's results files that leave the machine (trackers, Hub repos): path in the run directory
    -> the file, or the content of the manifest with its command lines redacted."""
    files: dict[str, Path | bytes] = {f: run_dir / f for f in RESULT_FILES if (run_dir / f).is_file()}
    public = run_manifest.public_bytes(run_dir)
    if public is not None:
        files[run_manifest.MANIFEST_NAME] = public
    files |= {f"official/{p.name}": p for p in sorted((run_dir / "official").glob("*.csv")) if p.is_file()}
    return files


def tracked_run(run_dir: Path, name: str | None = None, n_videos: int = 2,
                scratch: Path | None = None) -> TrackedRun:
    """The record of `run_dir` (its exports as they are now); the redacted manifest is written into
    `scratch` to be logged from there (without `scratch` it is not among the files). Raises NotARun."""
    run_dir = Path(run_dir)
    path = run_dir / results_document.FILE_NAME
    if not path.is_file():
        raise NotARun(f"{run_dir}: no {results_document.FILE_NAME} (not a run directory, or made before "
                      "results.json existed: `videophy-bench status RUN` rewrites the exports)")
    doc = json.loads(path.read_text(encoding="utf-8"))
    manifest = run_manifest.read(run_dir)
    config = {
        "run": {"config_hash": doc["run"].get("config_hash"), **(doc["run"].get("config") or {})},
        "prompt_set": {k: v for k, v in (doc["run"].get("prompt_set") or {}).items()
                       if k in ("source", "revision", "sha256", "n", "n_hard", "has_rules")},
        "tool": doc.get("tool"),
        "completeness": doc.get("completeness"),
        "methods": doc.get("methods"),
        "commands": commands(manifest),
        "run_dir": str(run_dir.resolve()),
        "results_schema": f"{doc['schema']}/{doc['schema_version']}",
    }
    tool = doc.get("tool") or {}
    complete = (doc.get("completeness") or {}).get("complete")
    tags = {
        "benchmark": "VideoPhy-2",
        "generator_model": str(config["run"].get("generator_model") or ""),
        "judge_model": str(config["run"].get("judge_model") or ""),
        "complete": str(bool(complete)).lower(),
        "tool_version": str(tool.get("version") or ""),
        "git_commit": str(tool.get("git_commit") or ""),
    }
    files: dict[str, Path] = {}
    for rel, local in result_files(run_dir).items():
        if isinstance(local, bytes):  # the redacted manifest: logged from a copy in `scratch`
            if scratch is None:
                continue
            (scratch / rel).write_bytes(local)
            files[rel] = scratch / rel
        else:
            files[rel] = local
    return TrackedRun(run_dir=run_dir, name=name or run_dir.resolve().name, config=config,
                      metrics=_metrics(doc), tags=tags, tables=_tables(doc),
                      samples=_samples(run_dir, n_videos), files=files)
