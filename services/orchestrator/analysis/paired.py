"""Paired comparison of two conditions over the prompts both have scored.

Pairing unit: the prompt. Each condition's scored items are averaged per prompt over seeds
(:func:`metrics.prompt_frame`); with one seed per prompt the binary metrics stay 0/1. For every metric
(joint, SA>=4, PC>=4, mean SA, mean PC) the comparison reports, per prompt, improved / unchanged /
degraded (B - A > 0, = 0, < 0), the mean difference B - A, its seeded cluster-bootstrap CI (resampling
actions, or prompts when the action is unknown) and a normal-approximation CI, and a p-value:

* binary metrics: exact McNemar (binomial test of improved vs degraded at 1/2); with several seeds per
  prompt the per-prompt values are not binary and the same binomial test is the sign test;
* SA and PC: Wilcoxon signed-rank test of the per-prompt differences.

The minimum detectable effect at 80% power uses the observed discordance (McNemar) or the observed
sd of the differences (means). Subset comparisons (hard, easy, categories) of the joint score get
Holm-adjusted p-values over that family; ``all`` is the primary comparison and is not adjusted.

When both conditions carry VideoCon-Physics scores, ``videocon`` adds the same row for mean VideoCon
SA and PC (P(yes), 0..1): each is paired over the prompts where both conditions have that score
(per-prompt means over seeds, failed items excluded), independently of the AutoEval pairing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .intervals import DEFAULT_BOOTSTRAP, DEFAULT_CONFIDENCE, DEFAULT_SEED, cluster_bootstrap, holm
from .metrics import VIDEOCON_LABELS, has_videocon, prompt_frame, subsets, videocon_items
from .power import DEFAULT_POWER, mcnemar_mde, mcnemar_power, mcnemar_sample_size, paired_mean_mde

METRICS = {
    "joint": "joint (SA>=4 and PC>=4)",
    "sa_pass": "SA>=4",
    "pc_pass": "PC>=4",
    "sa": "mean SA",
    "pc": "mean PC",
}
BINARY_METRICS = ("joint", "sa_pass", "pc_pass")
VIDEOCON_METRICS = ("videocon_sa", "videocon_pc")
POWER_DELTAS = (0.02, 0.03, 0.05, 0.10)
_EPS = 1e-9
_META = ("action", "is_hard", "category", "cluster", "caption")


def pair_prompts(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Per-prompt values of both conditions on shared prompts (columns ``<metric>_a``/``<metric>_b``).

    Returns the joined frame (index ``prompt_id``) and the counts of prompts scored in both, only in A,
    only in B.
    """
    pa, pb = prompt_frame(a), prompt_frame(b)
    shared = pa.index.intersection(pb.index).sort_values()
    joined = pd.DataFrame(index=shared)
    for col in _META:
        joined[col] = pa.loc[shared, col].where(pa.loc[shared, col].notna(), pb.loc[shared, col])
    for metric in METRICS:
        joined[f"{metric}_a"] = pa.loc[shared, metric].astype(float)
        joined[f"{metric}_b"] = pb.loc[shared, metric].astype(float)
        joined[f"{metric}_diff"] = joined[f"{metric}_b"] - joined[f"{metric}_a"]
    joined["n_seeds_a"] = pa.loc[shared, "n_seeds"]
    joined["n_seeds_b"] = pb.loc[shared, "n_seeds"]
    counts = {
        "n_shared": len(shared),
        "n_only_a": len(pa.index.difference(pb.index)),
        "n_only_b": len(pb.index.difference(pa.index)),
    }
    return joined, counts


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


def _direction_counts(diff: np.ndarray) -> tuple[int, int, int]:
    return int((diff > _EPS).sum()), int((np.abs(diff) <= _EPS).sum()), int((diff < -_EPS).sum())


def sign_test(improved: int, degraded: int) -> float:
    """Exact two-sided binomial test of improved vs degraded (= exact McNemar for binary outcomes)."""
    if improved + degraded == 0:
        return 1.0
    return float(stats.binomtest(improved, improved + degraded, 0.5).pvalue)


def _wilcoxon(diff: np.ndarray) -> float:
    if not np.any(np.abs(diff) > _EPS):
        return 1.0
    return float(stats.wilcoxon(diff).pvalue)


def metric_row(
    joined: pd.DataFrame, metric: str, ci: tuple[float, float], confidence: float, power: float
) -> dict[str, Any]:
    """The paired row of ``metric`` over ``joined`` (columns ``<metric>_a``/``<metric>_b``; B - A), with
    the given bootstrap ``ci``: means, difference with normal CI, directions, test and p, MDE."""
    a = joined[f"{metric}_a"].to_numpy(float)
    b = joined[f"{metric}_b"].to_numpy(float)
    diff = b - a
    n = len(diff)
    improved, unchanged, degraded = _direction_counts(diff)
    d = float(diff.mean()) if n else float("nan")
    sd = float(diff.std(ddof=0)) if n else float("nan")
    z = stats.norm.ppf(0.5 + confidence / 2)
    half = z * sd / math.sqrt(n) if n else float("nan")
    row: dict[str, Any] = {
        "metric": metric,
        "label": METRICS.get(metric) or VIDEOCON_LABELS[metric],
        "n": n,
        "mean_a": float(a.mean()) if n else float("nan"),
        "mean_b": float(b.mean()) if n else float("nan"),
        "diff": d,
        "diff_lo": ci[0],
        "diff_hi": ci[1],
        "normal_lo": d - half,
        "normal_hi": d + half,
        "improved": improved,
        "unchanged": unchanged,
        "degraded": degraded,
    }
    binary = metric in BINARY_METRICS
    if binary:
        exact = _is_binary(a) and _is_binary(b)
        row["test"] = "exact McNemar" if exact else "sign test (per-prompt means)"
        row["p"] = sign_test(improved, degraded)
        row["sum_a"] = float(a.sum())
        row["sum_b"] = float(b.sum())
        if exact:
            row["p_disc"] = (improved + degraded) / n if n else float("nan")
            row["mde"] = mcnemar_mde(n, row["p_disc"], power=power)
        else:
            row["p_disc"] = float("nan")
            row["mde"] = paired_mean_mde(n, sd, power=power)
    else:
        row["test"] = "Wilcoxon signed-rank"
        row["p"] = _wilcoxon(diff)
        row["mde"] = paired_mean_mde(n, sd, power=power)
    return row


def _videocon_prompt_frame(df: pd.DataFrame) -> pd.DataFrame:
    items = videocon_items(df)
    grouped = items.groupby("prompt_id", sort=True)
    out = grouped[list(VIDEOCON_METRICS)].mean()
    out["cluster"] = grouped["cluster"].first()
    return out


def compare_videocon(
    a: pd.DataFrame,
    b: pd.DataFrame,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
    power: float = DEFAULT_POWER,
) -> list[dict[str, Any]]:
    """Paired rows (as in :func:`compare`) of mean VideoCon SA and PC; ``[]`` unless both have VideoCon.

    Each metric is paired over the prompts where both A and B have it; its ``n`` is that count.
    """
    if not (has_videocon(a) and has_videocon(b)):
        return []
    pa, pb = _videocon_prompt_frame(a), _videocon_prompt_frame(b)
    rows = []
    for metric in VIDEOCON_METRICS:
        shared = pa.index[pa[metric].notna()].intersection(pb.index[pb[metric].notna()]).sort_values()
        joined = pd.DataFrame(
            {
                f"{metric}_a": pa.loc[shared, metric].astype(float),
                f"{metric}_b": pb.loc[shared, metric].astype(float),
            },
            index=shared,
        )
        diff = (joined[f"{metric}_b"] - joined[f"{metric}_a"]).to_numpy(float)
        clusters = pa.loc[shared, "cluster"].astype(str).tolist()
        ci = cluster_bootstrap({metric: diff}, clusters, n_boot=n_boot, seed=seed, confidence=confidence)
        row = metric_row(joined, metric, ci[metric], confidence, power)
        row["n_only_a"] = int(pa[metric].notna().sum()) - len(shared)
        row["n_only_b"] = int(pb[metric].notna().sum()) - len(shared)
        rows.append(row)
    return rows


def compare(
    a: pd.DataFrame,
    b: pd.DataFrame,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
    power: float = DEFAULT_POWER,
) -> dict[str, Any]:
    """Compare condition B against baseline A (typed frames). Differences are B - A.

    Returns ``counts`` (shared / only-A / only-B prompts), ``metrics`` (one row per metric),
    ``subsets`` (joint per subset with Holm-adjusted p), ``power`` (power and prompts needed for fixed
    true gains at the observed discordance), ``prompts`` (the per-prompt frame, for plots and CSV) and
    ``videocon`` (:func:`compare_videocon`: VideoCon SA/PC rows, ``[]`` unless both have VideoCon).
    """
    joined, counts = pair_prompts(a, b)
    clusters = joined["cluster"].astype(str).tolist()
    cis = cluster_bootstrap(
        {m: joined[f"{m}_diff"].to_numpy(float) for m in METRICS},
        clusters,
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
    )
    metric_rows = [metric_row(joined, m, cis[m], confidence, power) for m in METRICS]
    joint = metric_rows[0]

    subset_rows = []
    for name, part in subsets(joined):
        if name == "all":
            # the whole frame: same data, seed and resamples as the joint metric row above
            ci, row = cis["joint"], (joint if len(part) else None)
        else:
            ci = cluster_bootstrap(
                {"joint": part["joint_diff"].to_numpy(float)},
                part["cluster"].astype(str).tolist(),
                n_boot=n_boot,
                seed=seed,
                confidence=confidence,
            )["joint"]
            row = metric_row(part, "joint", ci, confidence, power) if len(part) else None
        subset_rows.append(
            {
                "subset": name,
                "n": len(part),
                "joint_a": row["mean_a"] if row else float("nan"),
                "joint_b": row["mean_b"] if row else float("nan"),
                "diff": row["diff"] if row else float("nan"),
                "diff_lo": ci[0],
                "diff_hi": ci[1],
                "improved": row["improved"] if row else 0,
                "degraded": row["degraded"] if row else 0,
                "p": row["p"] if row else float("nan"),
            }
        )
    family = [r["p"] if r["subset"] != "all" and r["n"] > 0 else float("nan") for r in subset_rows]
    for row, adjusted in zip(subset_rows, holm(family), strict=True):
        row["p_holm"] = row["p"] if row["subset"] == "all" else adjusted

    p_disc = joint.get("p_disc", float("nan"))
    n = joint["n"]
    power_rows = [
        {
            "delta": delta,
            "power": mcnemar_power(n, p_disc, delta),
            "n_needed": mcnemar_sample_size(p_disc, delta, power=power),
        }
        for delta in POWER_DELTAS
    ]
    return {
        "counts": counts,
        "metrics": metric_rows,
        "subsets": subset_rows,
        "power": power_rows,
        "p_disc": p_disc,
        "mde_joint": joint["mde"],
        "prompts": joined,
        "videocon": compare_videocon(a, b, n_boot=n_boot, seed=seed, confidence=confidence, power=power),
    }
