"""Load a run directory's ``results.csv`` (docs/results-schema.md) into one typed frame.

Contract of the typed frame returned by :func:`prepare_results` (and therefore by every loader):

* every column of the results schema exists (missing ones are added as all-missing);
* ``seed``/``seed_index``/``round``/``prompt_tokens`` are nullable ``Int64``; ``is_hard``/``prompt_truncated``
  are nullable ``boolean``; score columns are ``float64``; text columns are strings with missing values as NA;
* ``status`` is added: ``scored`` (SA and PC present and parsed), ``unparseable`` (the judge answer for
  SA or PC could not be parsed; the official convention scores it 0), ``failed`` (``state == failed``)
  or ``not_judged`` (anything else: pending, generating, generated, judged without both scores);
* ``joint`` is recomputed from ``sa``/``pc`` for scored items (NaN otherwise) so that there is exactly one
  definition of the joint outcome (:func:`joint_outcome`), and ``joint_official`` gives the official
  script's value (unparseable counted as 0) for scored and unparseable items;
* ``cluster`` is the bootstrap cluster: the action, or ``prompt:<id>`` when the action is unknown.

Extra columns found in the CSV are kept as text.

A run directory with a ledger is read through the ledger (:func:`load_run`), never through a
possibly stale ``results.csv``: the exports are rewritten from it first, or computed in memory when
the directory is read-only or a run holds it, and :class:`Run` says how finished the run is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from videophy_bench.common import csvio, judge_tasks
from videophy_bench.orchestrator import caption_source
from videophy_bench.orchestrator.results_schema import RESULTS_COLUMNS

#: Threshold of the VideoPhy-2 joint metric: an item passes when SA >= 4 and PC >= 4 (the registry
#: gives SA and PC the same one).
PASS_THRESHOLD = judge_tasks.task("sa").pass_threshold

INT_COLUMNS = ("seed", "seed_index", "round", "prompt_tokens")
BOOL_COLUMNS = ("is_hard", "prompt_truncated")
FLOAT_COLUMNS = (*judge_tasks.task_names(), "joint", "gen_seconds", "judge_seconds")
#: Every other schema column is text.
TEXT_COLUMNS = tuple(c for c in RESULTS_COLUMNS if c not in {*INT_COLUMNS, *BOOL_COLUMNS, *FLOAT_COLUMNS})
# Free text (captions, raw judge answers, errors): only an empty cell is missing.
VERBATIM_COLUMNS = ("caption", "gen_prompt", "error", *(f"{t}_raw" for t in judge_tasks.generative_tasks()))
STATUSES = ("scored", "unparseable", "failed", "not_judged")
UNPARSEABLE = "unparseable"

_TRUE = {"true", "1", "1.0", "yes", "y", "t"}
_FALSE = {"false", "0", "0.0", "no", "n", "f"}


@dataclass
class Run:
    """One run directory: its typed results frame, its manifest (``{}`` when absent) and a label."""

    path: Path
    label: str
    results: pd.DataFrame
    manifest: dict = field(default_factory=dict)
    #: e.g. ``interrupted: 5 of 8 done`` (``status.state_line``); empty without a ledger.
    state: str = ""
    complete: bool = True
    #: why the exports on disk were not rewritten (a run in progress, a read-only directory), or "".
    note: str = ""


@dataclass
class Condition:
    """One analysed arm: the items of a run that share (arm, round); ``df`` is a typed frame."""

    label: str
    df: pd.DataFrame
    run: Run | None = None
    judge: str = "AutoEval (this project)"

    @property
    def run_dir(self) -> Path | None:
        return self.run.path if self.run is not None else None


def prompt_choice(df: pd.DataFrame) -> str:
    """Which captions a condition's videos were generated from (``caption_source`` of its items, one
    value or ``mixed``; ``unknown`` when not recorded): services/orchestrator/caption_source.py."""
    values = df["caption_source"] if "caption_source" in df.columns else pd.Series(dtype="string")
    return caption_source.of_group(None if pd.isna(v) else str(v) for v in values)


def joint_outcome(sa: pd.Series, pc: pd.Series) -> pd.Series:
    """The joint outcome per item: 1.0 when SA >= 4 and PC >= 4, 0.0 otherwise, NaN if either is missing."""
    sa = pd.to_numeric(sa, errors="coerce")
    pc = pd.to_numeric(pc, errors="coerce")
    out = ((sa >= PASS_THRESHOLD) & (pc >= PASS_THRESHOLD)).astype(float)
    return out.where(sa.notna() & pc.notna())


def _to_bool(series: pd.Series) -> pd.Series:
    def conv(value: object) -> object:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            return pd.NA
        if isinstance(value, bool | np.bool_):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        return pd.NA

    return pd.Series([conv(v) for v in series], index=series.index, dtype="boolean")


def _to_text(series: pd.Series, verbatim: bool) -> pd.Series:
    """Text as ``string``; a label of only spaces counts as missing, free text is kept as written."""
    out = series.astype("string")
    empty = (out if verbatim else out.str.strip()).fillna("") == ""
    return out.where(~empty, pd.NA)


def prepare_results(df: pd.DataFrame) -> pd.DataFrame:
    """Return a typed copy of a results frame (see the module docstring). Idempotent."""
    out = df.copy()
    for col in RESULTS_COLUMNS:
        if col not in out.columns:
            out[col] = pd.NA
    for col in TEXT_COLUMNS:
        out[col] = _to_text(out[col], verbatim=col in VERBATIM_COLUMNS)
    for col in INT_COLUMNS:
        out[col] = pd.to_numeric(out[col], errors="coerce").round().astype("Int64")
    for col in BOOL_COLUMNS:
        out[col] = _to_bool(out[col])
    for col in FLOAT_COLUMNS:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    out["seed"] = out["seed"].fillna(0)
    out["round"] = out["round"].fillna(0)
    out["arm"] = out["arm"].fillna("base")
    if out["prompt_id"].isna().any():
        raise ValueError("results: every row needs a prompt_id")

    state = out["state"].fillna("").str.lower()
    failed = state == "failed"
    unparseable = (
        (out["sa_parse"].fillna("") == UNPARSEABLE) | (out["pc_parse"].fillna("") == UNPARSEABLE)
    ) & ~failed
    has_scores = out["sa"].notna() & out["pc"].notna()
    scored = has_scores & ~unparseable & ~failed
    status = np.select([failed, unparseable, scored], ["failed", UNPARSEABLE, "scored"], "not_judged")
    out["status"] = pd.Series(status, index=out.index, dtype="string")

    out["joint"] = joint_outcome(out["sa"], out["pc"]).where(scored)
    official = joint_outcome(out["sa"].fillna(0.0), out["pc"].fillna(0.0))
    out["joint_official"] = official.where(scored | unparseable)

    prompt_cluster = "prompt:" + out["prompt_id"].astype(str)
    out["cluster"] = out["action"].fillna(prompt_cluster).astype("string")
    return out


def load_results(path: str | Path) -> pd.DataFrame:
    """Read a ``results.csv`` and type it. Only empty cells are missing (raw judge text stays verbatim)."""
    return prepare_results(csvio.read_frame(path))


def _from_ledger(run_dir: Path) -> tuple[pd.DataFrame, str, bool, str]:
    """(typed results, state line, complete, note) from the run's ledger (exports refreshed)."""
    from videophy_bench.orchestrator.export import refresh
    from videophy_bench.orchestrator.ledger import LedgerCorrupt
    from videophy_bench.orchestrator.status import state_line

    try:
        exports = refresh(run_dir)
    except LedgerCorrupt as exc:
        raise ValueError(str(exc)) from None
    frame = pd.DataFrame(
        [[r[c] for c in RESULTS_COLUMNS] for r in exports.results], columns=list(RESULTS_COLUMNS), dtype=str
    )
    summary = exports.summary
    running = exports.holder is not None
    return (
        prepare_results(frame),
        state_line(summary, exports.holder),
        bool(summary["complete"]) and not running,
        exports.note,
    )


def load_run(path: str | Path, label: str | None = None) -> Run:
    """Load a run directory (or a ``results.csv`` file directly) with its ``manifest.json`` when present.
    With a ``ledger.sqlite`` beside it, the results come from the ledger (see the module docstring)."""
    path = Path(path)
    csv_path = path if path.is_file() else path / "results.csv"
    run_dir = csv_path.parent
    has_ledger = csv_path.name == "results.csv" and (run_dir / "ledger.sqlite").is_file()
    if not has_ledger and not csv_path.exists():
        raise FileNotFoundError(f"no results.csv in {path}")
    manifest: dict = {}
    manifest_path = run_dir / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    name = label or manifest.get("name") or manifest.get("run_name") or run_dir.name
    if has_ledger:
        results, state, complete, note = _from_ledger(run_dir)
        return Run(run_dir, str(name), results, manifest, state=state, complete=complete, note=note)
    return Run(path=run_dir, label=str(name), results=load_results(csv_path), manifest=manifest)


def judge_label(manifest: dict[str, Any]) -> str:
    """Who scored sa/pc: the AutoEval, or a VLM over an endpoint (its model named) that answered the
    AutoEval's tasks with its rubric, so the two are never shown as the same judge."""
    from videophy_bench.evaluator.catalog import endpoint_judge  # torch-free

    if manifest.get("judge_label"):
        return str(manifest["judge_label"])
    vlm = [m for m in (manifest.get("models") or {}).get("evaluator", []) if endpoint_judge(m.get("preset"))]
    if vlm:
        return f"{vlm[0]['model_id']} ({vlm[0]['preset']}, AutoEval rubric)"
    return "AutoEval (this project)"


def split_conditions(run: Run, arm: str | None = None, round_: int | None = None) -> list[Condition]:
    """Split a run into conditions, one per (arm, round), optionally keeping a single arm and/or round.

    The label is the run label, suffixed with ``arm``/``round`` only when the run holds several.
    """
    df = run.results
    if arm is not None:
        df = df[df["arm"] == arm]
    if round_ is not None:
        df = df[df["round"] == round_]
    if df.empty:
        raise ValueError(f"{run.label}: no items for arm={arm!r} round={round_!r}")
    groups = sorted(df.groupby(["arm", "round"], sort=True), key=lambda g: (g[0][1], str(g[0][0])))
    several_arms = df["arm"].nunique() > 1
    several_rounds = df["round"].nunique() > 1
    conditions = []
    for (arm_value, round_value), part in groups:
        suffix = []
        if several_arms:
            suffix.append(str(arm_value))
        if several_rounds:
            suffix.append(f"round {round_value}")
        label = run.label + (f" [{', '.join(suffix)}]" if suffix else "")
        judge = judge_label(run.manifest)
        conditions.append(Condition(label=label, df=part.reset_index(drop=True), run=run, judge=judge))
    return conditions


def conditions_from_runs(
    runs: Iterable[Run], arm: str | None = None, round_: int | None = None
) -> list[Condition]:
    """All conditions of several runs, in order; labels are made unique."""
    out: list[Condition] = []
    for run in runs:
        out.extend(split_conditions(run, arm=arm, round_=round_))
    seen: dict[str, int] = {}
    for cond in out:
        count = seen.get(cond.label, 0)
        seen[cond.label] = count + 1
        if count:
            cond.label = f"{cond.label} ({count + 1})"
    return out
