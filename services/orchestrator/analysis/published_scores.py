"""The authors' published per-video AutoEval scores of the leaderboard videos, and how closely a run of
our judge reproduces them.

Source: the Hugging Face dataset ``videophysics/videophy2_autoeval_scores`` (upstream issues #8, #9),
or a local copy (``leaderboard --published-scores PATH``). Its file names are not documented anywhere
this project could read; upstream issue #9 summarises it by ``model_name`` with the columns
``sa_pred_score`` and ``pc_pred_score``. So the reader takes every CSV file of the dataset snapshot and
accepts this documented format (docs/results-schema.md, "Published AutoEval scores"):

* a key: ``video_url``, or ``caption`` and ``model_name``;
* the scores: SA from the first of :data:`SA_COLUMNS` present, PC from the first of :data:`PC_COLUMNS`
  (``*_pred*`` names first, so a file that also carries the human ``sa``/``pc`` is read right);
  an optional ``rule`` column is kept.

Files without a key or without both scores are skipped and named in the report. Keys that occur
twice with different scores are ambiguous and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from videophy_bench.common import csvio
from videophy_bench.orchestrator.prompts import normalize_caption

from .loading import joint_outcome

HUB_REPO = "videophysics/videophy2_autoeval_scores"
SA_COLUMNS = ("sa_pred_score", "sa_pred", "pred_sa", "sa_autoeval", "autoeval_sa", "sa_score", "sa")
PC_COLUMNS = ("pc_pred_score", "pc_pred", "pred_pc", "pc_autoeval", "autoeval_pc", "pc_score", "pc")
RULE_COLUMNS = ("rule_pred_score", "rule_pred", "rule")
DIFF_RANGE = range(-4, 5)


@dataclass
class PublishedScores:
    """Per-video published scores: ``frame`` has ``key_url``, ``key_caption`` (normalised caption +
    NUL + model_name), ``sa_pub``, ``pc_pub``, ``rule_pub``; ``source`` says where they came from."""

    frame: pd.DataFrame
    source: str
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    n_ambiguous: int = 0


def _first(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.strip().lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def _normalise(raw: pd.DataFrame, name: str) -> pd.DataFrame | str:
    """The file in the common layout, or why it is skipped."""
    cols = list(raw.columns)
    sa, pc = _first(cols, SA_COLUMNS), _first(cols, PC_COLUMNS)
    url, caption, model = (_first(cols, (n,)) for n in ("video_url", "caption", "model_name"))
    if sa is None or pc is None:
        return f"{name}: no SA/PC score columns (one of {', '.join(SA_COLUMNS[:3])}, ...)"
    if url is None and (caption is None or model is None):
        return f"{name}: no video_url and no caption + model_name to match videos by"
    rule = _first(cols, RULE_COLUMNS)
    out = pd.DataFrame(
        {
            "key_url": raw[url].astype("string")
            if url
            else pd.Series(pd.NA, index=raw.index, dtype="string"),
            "key_caption": (
                raw[caption].astype(str).map(normalize_caption) + "\x00" + raw[model].astype(str)
                if caption and model
                else pd.Series(pd.NA, index=raw.index, dtype="string")
            ),
            "sa_pub": pd.to_numeric(raw[sa], errors="coerce"),
            "pc_pub": pd.to_numeric(raw[pc], errors="coerce"),
            "rule_pub": pd.to_numeric(raw[rule], errors="coerce") if rule else np.nan,
        }
    )
    return out[out["sa_pub"].notna() & out["pc_pub"].notna()]


def _drop_conflicts(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Exact duplicate rows collapse; a key with different scores is dropped (counted)."""
    frame = frame.drop_duplicates()
    bad = pd.Series(False, index=frame.index)
    for key in ("key_url", "key_caption"):
        present = frame[key].notna()
        bad |= present & frame[key].duplicated(keep=False)
    return frame[~bad].reset_index(drop=True), int(bad.sum())


def read_published(paths: list[Path], source: str) -> PublishedScores:
    """Read the published-score CSV files (see the module docstring); raises ValueError when none fits."""
    parts, skipped, used = [], [], []
    for path in paths:
        raw = csvio.read_frame(path)
        result = _normalise(raw, path.name)
        if isinstance(result, str):
            skipped.append(result)
            continue
        parts.append(result)
        used.append(path.name)
    if not parts:
        detail = "; ".join(skipped) if skipped else "no CSV file"
        raise ValueError(f"published AutoEval scores {source}: {detail}")
    frame, ambiguous = _drop_conflicts(pd.concat(parts, ignore_index=True))
    return PublishedScores(frame, source, used, skipped, ambiguous)


def load_published(spec: str, revision: str | None = None) -> PublishedScores:
    """``spec`` is a CSV file, a directory of CSV files, or ``hub`` (the dataset's CSV files from the Hub,
    or its cache when the Hub does not answer; raises ``hub.HubUnavailable`` in one line otherwise)."""
    if spec != "hub":
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(f"--published-scores {spec}: no such file or directory")
        files = sorted(path.rglob("*.csv")) if path.is_dir() else [path]
        return read_published(files, str(path))
    from huggingface_hub import snapshot_download

    from videophy_bench.common import hub

    try:
        local = hub.fetch(
            HUB_REPO,
            snapshot_download,
            repo_id=HUB_REPO,
            repo_type="dataset",
            revision=revision,
            allow_patterns=["*.csv"],
        )
    except hub.HubUnavailable as exc:
        raise hub.HubUnavailable(
            f"{exc}; give a local copy (leaderboard --published-scores PATH), {hub.WARM_CACHE_HINT}"
        ) from None
    root = Path(local)
    return read_published(sorted(root.rglob("*.csv")), f"{HUB_REPO} ({root.name[:12]})")


def attach(matched: pd.DataFrame, published: PublishedScores) -> pd.DataFrame:
    """The matched rows (:func:`leaderboard.match_human`) that have a published score, with ``sa_pub``,
    ``pc_pub``, ``joint_pub`` added; by ``video_url``, else by caption + model."""
    pub = published.frame
    by_url = pub[pub["key_url"].notna()].set_index("key_url")
    by_caption = pub[pub["key_caption"].notna()].set_index("key_caption")
    url = matched["video_url"].astype("string")
    caption_key = (
        matched["caption"].astype(str).map(normalize_caption) + "\x00" + matched["model"].astype(str)
    )
    out = matched.copy()
    for col in ("sa_pub", "pc_pub"):
        from_url = url.map(by_url[col]) if len(by_url) else pd.Series(np.nan, index=matched.index)
        from_caption = caption_key.map(by_caption[col]) if len(by_caption) else np.nan
        out[col] = pd.to_numeric(from_url, errors="coerce").fillna(
            pd.Series(from_caption, index=matched.index)
        )
    out = out[out["sa_pub"].notna() & out["pc_pub"].notna()].copy()
    out["joint_pub"] = joint_outcome(out["sa_pub"], out["pc_pub"])
    return out


def _distribution(diff: pd.Series) -> str:
    counts = diff.round().astype(int).value_counts()
    return ", ".join(f"{d:+d}: {int(counts[d])}" for d in DIFF_RANGE if d in counts.index)


def reproduction_row(part: pd.DataFrame) -> dict[str, Any]:
    """How one model's videos compare: exact SA/PC/both counts, the difference distributions (ours -
    published), mean absolute differences and both joints on the same videos."""
    n = len(part)
    d_sa, d_pc = part["sa"] - part["sa_pub"], part["pc"] - part["pc_pub"]
    nan = float("nan")
    return {
        "n": n,
        "sa_exact": int((d_sa == 0).sum()),
        "pc_exact": int((d_pc == 0).sum()),
        "both_exact": int(((d_sa == 0) & (d_pc == 0)).sum()),
        "share_both_exact": float(((d_sa == 0) & (d_pc == 0)).mean()) if n else nan,
        "sa_diffs": _distribution(d_sa),
        "pc_diffs": _distribution(d_pc),
        "sa_mad": float(d_sa.abs().mean()) if n else nan,
        "pc_mad": float(d_pc.abs().mean()) if n else nan,
        "joint_ours": float(part["joint"].mean()) if n else nan,
        "joint_pub": float(part["joint_pub"].mean()) if n else nan,
        "joint_diff": float((part["joint"] - part["joint_pub"]).mean()) if n else nan,
        "joint_disagree": int((part["joint"] != part["joint_pub"]).sum()),
    }


def mismatches(attached: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per video whose SA or PC differs from the published one."""
    bad = attached[(attached["sa"] != attached["sa_pub"]) | (attached["pc"] != attached["pc_pub"])]
    return [
        {
            "model_id": r.model,
            "video_url": r.video_url,
            "caption": r.caption,
            "sa": r.sa,
            "sa_pub": r.sa_pub,
            "pc": r.pc,
            "pc_pub": r.pc_pub,
            "joint": r.joint,
            "joint_pub": r.joint_pub,
        }
        for r in bad.sort_values(["model", "caption"]).itertuples(index=False)
    ]


__all__ = [
    "HUB_REPO",
    "PublishedScores",
    "attach",
    "load_published",
    "mismatches",
    "read_published",
    "reproduction_row",
]
