"""Scores of one condition: headline numbers, subsets, failure taxonomy, actions, seeds, worst videos.

All functions take a typed frame (:func:`loading.prepare_results`). Conventions:

* proportions are fractions in [0, 1]; means are on the judge's 1..5 scale;
* denominators are **scored** items only (failed, unparseable and not-judged items are excluded) and
  every table carries ``n_items`` and ``coverage`` = n / n_items so that exclusions are visible;
* ``joint_official`` follows the official script: unparseable answers count as score 0 (so joint 0) and
  stay in its denominator ``n_official``;
* a subset without scored items yields ``n = 0`` and NaN statistics, never an error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .intervals import DEFAULT_BOOTSTRAP, DEFAULT_SEED, cluster_bootstrap, wilson_ci
from .loading import PASS_THRESHOLD, UNPARSEABLE, prepare_results

TAXONOMY = ("pass", "sa_only", "pc_only", "both")
TAXONOMY_LABELS = {
    "pass": "joint pass (SA>=4, PC>=4)",
    "sa_only": "only SA below 4",
    "pc_only": "only PC below 4",
    "both": "SA and PC below 4",
}
#: the statistics the cluster bootstrap covers, with the item column each is the mean of
BOOTSTRAP_STATS = {"joint": "joint", "mean_sa": "sa", "mean_pc": "pc"}


def scored(df: pd.DataFrame) -> pd.DataFrame:
    """The items whose SA and PC were both judged and parsed."""
    return df[df["status"] == "scored"]


def taxonomy_of(sa: pd.Series, pc: pd.Series) -> pd.Series:
    """Failure class per item: ``pass``, ``sa_only`` (only SA < 4), ``pc_only`` (only PC < 4) or ``both``."""
    sa_ok = sa >= PASS_THRESHOLD
    pc_ok = pc >= PASS_THRESHOLD
    out = np.select([sa_ok & pc_ok, ~sa_ok & pc_ok, sa_ok & ~pc_ok], ["pass", "sa_only", "pc_only"], "both")
    return pd.Series(out, index=sa.index)


def _mean(series: pd.Series) -> float:
    return float(series.mean()) if len(series) else float("nan")


def score_stats(df: pd.DataFrame) -> dict[str, Any]:
    """Counts, coverage, joint (with Wilson CI), means and failure taxonomy of the items in ``df``."""
    ok = scored(df)
    n, n_items = len(ok), len(df)
    n_pass = int(ok["joint"].sum())
    low, high = wilson_ci(n_pass, n)
    official = df["joint_official"].dropna()
    taxonomy = taxonomy_of(ok["sa"], ok["pc"]).value_counts()
    out: dict[str, Any] = {
        "n": n,
        "n_items": n_items,
        "n_failed": int((df["status"] == "failed").sum()),
        "n_unparseable": int((df["status"] == UNPARSEABLE).sum()),
        "n_not_judged": int((df["status"] == "not_judged").sum()),
        "coverage": n / n_items if n_items else float("nan"),
        "n_prompts": int(ok["prompt_id"].nunique()),
        "n_pass": n_pass,
        "joint": n_pass / n if n else float("nan"),
        "joint_lo": low,
        "joint_hi": high,
        "mean_sa": _mean(ok["sa"]),
        "mean_pc": _mean(ok["pc"]),
        "share_sa_below_4": _mean(ok["sa"] < PASS_THRESHOLD),
        "share_pc_below_4": _mean(ok["pc"] < PASS_THRESHOLD),
        "joint_official": float(official.mean()) if len(official) else float("nan"),
        "n_official": len(official),
    }
    for name in TAXONOMY:
        count = int(taxonomy.get(name, 0))
        out[f"n_{name}"] = count
        out[f"share_{name}"] = count / n if n else float("nan")
    return out


#: VideoCon-Physics statistics (P(yes), 0..1) and the item column each is the mean of
VIDEOCON_STATS = {
    "videocon_sa": "videocon_sa",
    "videocon_pc": "videocon_pc",
    "videocon_combined": "videocon_combined",
}
VIDEOCON_LABELS = {
    "videocon_sa": "VideoCon SA",
    "videocon_pc": "VideoCon PC",
    "videocon_combined": "VideoCon combined (SA+PC)/2",
}


def has_videocon(df: pd.DataFrame) -> bool:
    """True when any item of ``df`` carries a VideoCon-Physics score (a run judged by the second judge)."""
    return any(col in df.columns and bool(df[col].notna().any()) for col in ("videocon_sa", "videocon_pc"))


def videocon_items(df: pd.DataFrame) -> pd.DataFrame:
    """The items whose VideoCon scores count: every item but failed ones, with ``videocon_combined`` =
    (videocon_sa + videocon_pc) / 2 where both are present (NaN otherwise).

    VideoCon scores do not depend on the AutoEval answers: an item whose AutoEval answer is unparseable
    or missing still counts here when VideoCon judged it; an item without a VideoCon score does not.
    """
    out = df[df["status"] != "failed"]
    return out.assign(videocon_combined=(out["videocon_sa"] + out["videocon_pc"]) / 2)


def _boot_keys(cis: dict[str, tuple[float, float]]) -> dict[str, float]:
    """``{name: (low, high)}`` as ``<name>_boot_lo`` / ``<name>_boot_hi`` keys."""
    out: dict[str, float] = {}
    for name, (low, high) in cis.items():
        out[f"{name}_boot_lo"] = low
        out[f"{name}_boot_hi"] = high
    return out


def videocon_stats(
    df: pd.DataFrame, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED
) -> dict[str, Any]:
    """VideoCon-Physics means of the items in ``df`` (``n_boot = 0`` skips the CIs).

    Keys: ``n_items``; ``n_videocon_sa``/``n_videocon_pc`` (items with that score),
    ``n_videocon`` (items with both, the denominator of ``videocon_combined``), ``videocon_coverage``
    = n_videocon / n_items; ``videocon_sa``, ``videocon_pc``, ``videocon_combined`` with
    ``*_boot_lo``/``*_boot_hi`` (seeded action-cluster bootstrap, shared resamples) and
    ``n_videocon_clusters``. Each mean uses only the items carrying its score.
    """
    items = videocon_items(df)
    n_items = len(df)
    out: dict[str, Any] = {"n_items": n_items}
    for name, col in VIDEOCON_STATS.items():
        values = items[col].dropna()
        key = "n_videocon" if name == "videocon_combined" else f"n_{name}"
        out[key] = len(values)
        out[name] = _mean(values)
    out["videocon_coverage"] = out["n_videocon"] / n_items if n_items else float("nan")
    judged = items[items["videocon_sa"].notna() | items["videocon_pc"].notna()]
    out["n_videocon_clusters"] = int(judged["cluster"].nunique())
    if n_boot:
        cis = cluster_bootstrap(
            {name: judged[col].to_numpy(float) for name, col in VIDEOCON_STATS.items()},
            judged["cluster"].tolist(),
            n_boot=n_boot,
            seed=seed,
        )
        out.update(_boot_keys(cis))
    return out


def bootstrap_stats(
    df: pd.DataFrame, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED
) -> dict[str, float]:
    """Cluster-bootstrap (over actions) percentile CIs of joint, mean SA and mean PC of the scored items."""
    ok = scored(df)
    cis = cluster_bootstrap(
        {name: ok[col].to_numpy(float) for name, col in BOOTSTRAP_STATS.items()},
        ok["cluster"].tolist(),
        n_boot=n_boot,
        seed=seed,
    )
    return {**_boot_keys(cis), "n_clusters": int(ok["cluster"].nunique())}


def subsets(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The standard subsets: all, hard, easy (empty when hard flags are unknown) and one per category."""
    out = [("all", df), ("hard", df[df["is_hard"].fillna(False)]), ("easy", df[~df["is_hard"].fillna(True)])]
    for category in sorted(df["category"].dropna().unique()):
        out.append((f"category: {category}", df[df["category"] == category]))
    return out


def subset_table(
    df: pd.DataFrame,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
) -> list[dict[str, Any]]:
    """One row per subset: :func:`score_stats` plus the cluster-bootstrap CIs (``n_boot = 0`` skips them)."""
    rows = []
    for name, part in subsets(df):
        row: dict[str, Any] = {"subset": name, **score_stats(part)}
        if n_boot:
            row.update(bootstrap_stats(part, n_boot=n_boot, seed=seed))
        rows.append(row)
    return rows


def videocon_subset_table(
    df: pd.DataFrame, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED
) -> list[dict[str, Any]]:
    """One row per subset (as :func:`subsets`): :func:`videocon_stats`. Empty when nothing has VideoCon."""
    if not has_videocon(df):
        return []
    return [{"subset": name, **videocon_stats(part, n_boot=n_boot, seed=seed)} for name, part in subsets(df)]


def rule_distribution(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Counts and shares of physical-rule outcomes (0 violated, 1 followed, 2 undeterminable) when judged."""
    judged = df[df["rule"].notna() | df["rule_parse"].notna()]
    unparseable = judged["rule_parse"].fillna("") == UNPARSEABLE
    valid = judged.loc[~unparseable, "rule"].dropna()
    total = len(judged)
    rows = []
    for value, meaning in ((0, "violated"), (1, "followed"), (2, "cannot be determined")):
        count = int((valid == value).sum())
        rows.append(
            {
                "rule": str(value),
                "meaning": meaning,
                "count": count,
                "share": count / total if total else float("nan"),
            }
        )
    other = int(len(valid) - sum(r["count"] for r in rows))
    for label, count in (("unparseable", int(unparseable.sum())), ("other value", other)):
        rows.append(
            {"rule": label, "meaning": "", "count": count, "share": count / total if total else float("nan")}
        )
    return rows


ACTION_FIELDS = (
    "n",
    "n_items",
    "n_pass",
    "joint",
    "joint_lo",
    "joint_hi",
    "mean_sa",
    "mean_pc",
    "share_sa_below_4",
    "share_pc_below_4",
)


def action_table(df: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per action (items without an action are grouped as ``(none)``), sorted by action name."""
    rows = []
    for action, part in df.groupby(df["action"].fillna("(none)"), sort=True):
        stats = score_stats(part)
        rows.append({"action": action, **{k: stats[k] for k in ACTION_FIELDS}})
    return rows


def _nan_last(value: float, descending: bool) -> float:
    if value is None or math.isnan(value):
        return math.inf
    return -value if descending else value


def rank_actions(rows: list[dict[str, Any]], by: str, descending: bool, k: int) -> list[dict[str, Any]]:
    """Top ``k`` action rows by ``by``; ties go to the action with more scored items, then by name.

    Rows without scored items never rank.
    """
    usable = [r for r in rows if r["n"] > 0]
    tie = "mean_pc" if by != "mean_pc" else "mean_sa"
    usable.sort(
        key=lambda r: (_nan_last(r[by], descending), -r["n"], _nan_last(r[tie], descending), str(r["action"]))
    )
    return usable[:k]


def best_worst_actions(rows: list[dict[str, Any]], k: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Best and worst actions by joint, and the lowest/highest actions by mean SA and mean PC."""
    return {
        "best_joint": rank_actions(rows, "joint", True, k),
        "worst_joint": rank_actions(rows, "joint", False, k),
        "lowest_sa": rank_actions(rows, "mean_sa", False, k),
        "lowest_pc": rank_actions(rows, "mean_pc", False, k),
        "highest_sa": rank_actions(rows, "mean_sa", True, k),
        "highest_pc": rank_actions(rows, "mean_pc", True, k),
    }


def action_extremes(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many actions (with scored items) have joint 0% and 100%."""
    usable = [r for r in rows if r["n"] > 0]
    return {
        "n_actions": len(usable),
        "n_actions_joint_0": sum(r["joint"] == 0 for r in usable),
        "n_actions_joint_1": sum(r["joint"] == 1 for r in usable),
    }


VIDEO_FIELDS = (
    "prompt_id",
    "seed",
    "action",
    "is_hard",
    "category",
    "sa",
    "pc",
    "rule",
    "caption",
    "gen_prompt",
    "video_path",
)


def lowest_videos(df: pd.DataFrame, by: str, k: int = 10) -> list[dict[str, Any]]:
    """The ``k`` scored items with the lowest ``by`` score (``sa`` or ``pc``); ties by the other score."""
    other = "pc" if by == "sa" else "sa"
    ok = scored(df).sort_values([by, other, "prompt_id", "seed"], kind="stable")
    return [_record(row, VIDEO_FIELDS) for _, row in ok.head(k).iterrows()]


def _value(row: pd.Series, name: str) -> Any:
    """``row[name]``, or None when it is absent or missing (NaN, NA)."""
    value = row.get(name)
    return None if pd.isna(value) else value


def _record(row: pd.Series, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: _value(row, name) for name in fields}


def problem_rows(df: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Items that are not scores: unparseable answers (one row per field), failed and not-judged items."""
    unparseable = []
    for field in ("sa", "pc", "rule"):
        hits = df[df[f"{field}_parse"].fillna("") == UNPARSEABLE]
        for _, row in hits.iterrows():
            rec = _record(row, ("prompt_id", "seed", "round", "arm", "video_path"))
            rec.update(field=field, official_value=_value(row, field), raw=_value(row, f"{field}_raw"))
            unparseable.append(rec)
    fields = ("prompt_id", "seed", "round", "arm", "state", "error")
    by_status = {
        status: [_record(r, fields) for _, r in df[df["status"] == status].iterrows()]
        for status in ("failed", "not_judged")
    }
    return {"unparseable": unparseable, **by_status}


def prompt_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Scored items aggregated per prompt: mean SA, PC, joint, SA>=4 and PC>=4 over seeds, and n_seeds."""
    ok = scored(df).assign(
        sa_pass=lambda d: (d["sa"] >= PASS_THRESHOLD).astype(float),
        pc_pass=lambda d: (d["pc"] >= PASS_THRESHOLD).astype(float),
    )
    grouped = ok.groupby("prompt_id", sort=True)
    out = grouped[["sa", "pc", "joint", "sa_pass", "pc_pass"]].mean()
    out["n_seeds"] = grouped.size()
    for col in ("action", "is_hard", "category", "cluster", "caption"):
        out[col] = grouped[col].first()
    return out


def seed_key(df: pd.DataFrame) -> str:
    """The column that says which of a prompt's videos an item is: ``seed_index`` (k of ``--seeds N``,
    the same k across prompts) when every item has one, else the raw ``seed`` (results.csv files
    written before ``seed_index`` existed; there the seed is per prompt, so groups may hold one item)."""
    if "seed_index" in df.columns and len(df) and bool(df["seed_index"].notna().all()):
        return "seed_index"
    return "seed"


def n_seeds(df: pd.DataFrame) -> int:
    """Videos per prompt: distinct seed indices; without them, the most distinct seeds of one prompt."""
    if not len(df):
        return 0
    if seed_key(df) == "seed_index":
        return int(df["seed_index"].nunique())
    return int(df.groupby("prompt_id")["seed"].nunique().max())


def seed_table(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Per seed index (:func:`seed_key`): the headline statistics; then one row averaging per prompt
    first (each prompt weighs 1). ``seed`` holds the group's label."""
    rows = []
    for seed_value, part in df.groupby(seed_key(df), sort=True):
        stats = score_stats(part)
        rows.append(
            {
                "seed": str(seed_value),
                **{
                    k: stats[k]
                    for k in (
                        "n",
                        "n_items",
                        "coverage",
                        "joint",
                        "joint_lo",
                        "joint_hi",
                        "mean_sa",
                        "mean_pc",
                    )
                },
            }
        )
    prompts = prompt_frame(df)
    n = len(prompts)
    rows.append(
        {
            "seed": "per-prompt mean over seeds",
            "n": n,
            "n_items": int(df["prompt_id"].nunique()),
            "coverage": n / df["prompt_id"].nunique() if len(df) else float("nan"),
            "joint": _mean(prompts["joint"]),
            "joint_lo": float("nan"),
            "joint_hi": float("nan"),
            "mean_sa": _mean(prompts["sa"]),
            "mean_pc": _mean(prompts["pc"]),
        }
    )
    return rows


def seed_variance(df: pd.DataFrame) -> dict[str, Any]:
    """How much of the joint outcome's variance is between prompts vs between seeds of one prompt.

    Uses prompts with at least two scored seeds: ``within`` is the mean within-prompt (population)
    variance, ``between`` the variance of prompt means; ``flip_share`` the share of those prompts whose
    joint outcome is not the same for all seeds.
    """
    ok = scored(df)
    counts = ok.groupby("prompt_id")["joint"].transform("size")
    multi = ok[counts >= 2]
    if multi.empty:
        return {
            "n_prompts_multi_seed": 0,
            "within": float("nan"),
            "between": float("nan"),
            "prompt_share": float("nan"),
            "flip_share": float("nan"),
        }
    grouped = multi.groupby("prompt_id")["joint"]
    within = float(grouped.var(ddof=0).mean())
    between = float(grouped.mean().var(ddof=0))
    total = within + between
    return {
        "n_prompts_multi_seed": int(grouped.ngroups),
        "within": within,
        "between": between,
        "prompt_share": between / total if total > 0 else float("nan"),
        "flip_share": float((grouped.nunique() > 1).mean()),
    }


def _json_number(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def summarize(df: pd.DataFrame, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Headline numbers of a run for ``summary.json`` (cheap: the only bootstrap is VideoCon's).

    Accepts a raw or typed results frame. Keys: ``n`` (scored items), ``n_items``, ``coverage``,
    ``n_failed``, ``n_unparseable``, ``n_not_judged``, ``n_prompts``, ``n_seeds`` (videos per prompt,
    :func:`n_seeds`), ``joint`` with ``joint_lo``/``joint_hi`` (95% Wilson), ``joint_official``/
    ``n_official``, ``mean_sa``, ``mean_pc``,
    ``share_sa_below_4``, ``share_pc_below_4``, ``n_pass``/``n_sa_only``/``n_pc_only``/``n_both`` and their
    ``share_*``, and for the hard and easy subsets ``joint_hard``, ``n_hard``, ``mean_sa_hard``,
    ``mean_pc_hard`` (same with ``_easy``). Proportions are fractions; undefined values are ``None``.

    Only when some item has a VideoCon-Physics score (:func:`has_videocon`): ``videocon_sa``,
    ``videocon_pc``, ``videocon_combined`` (means of P(yes) over the items carrying the score) with
    ``*_boot_lo``/``*_boot_hi`` (seeded action-cluster bootstrap, ``n_boot`` resamples, ``seed``),
    ``n_videocon_sa``, ``n_videocon_pc``, ``n_videocon`` (both scores), ``videocon_coverage`` and
    ``n_videocon_clusters``; and the same with ``_hard`` / ``_easy`` appended (``videocon_sa_hard``,
    ``videocon_sa_hard_boot_lo``, ``n_videocon_hard``, ...). A run without VideoCon gets none of them.

    The headline pools every item of ``df``; when ``df`` holds several (arm, round) conditions,
    ``by_condition`` adds one entry per condition (``arm``, ``round``, ``n``, ``n_items``, ``coverage``,
    ``joint``, ``mean_sa``, ``mean_pc``, and ``videocon_sa``/``videocon_pc``/``videocon_combined``/
    ``n_videocon`` when the run has VideoCon scores) so that arms are never silently mixed.
    """
    if "status" not in df.columns:
        df = prepare_results(df)
    out = dict(score_stats(df))
    out["n_seeds"] = n_seeds(df)
    all_hard_easy = subsets(df)[:3]
    for name, part in all_hard_easy[1:]:
        stats = score_stats(part)
        out[f"joint_{name}"] = stats["joint"]
        out[f"n_{name}"] = stats["n"]
        out[f"mean_sa_{name}"] = stats["mean_sa"]
        out[f"mean_pc_{name}"] = stats["mean_pc"]
    videocon = has_videocon(df)
    if videocon:
        for name, part in all_hard_easy:
            stats = videocon_stats(part, n_boot=n_boot, seed=seed)
            del stats["n_items"]
            suffix = "" if name == "all" else f"_{name}"
            for key, value in stats.items():
                if key.endswith(("_boot_lo", "_boot_hi")):
                    key = key[: -len("_boot_lo")] + suffix + key[-len("_boot_lo") :]
                else:
                    key += suffix
                out[key] = value
    summary = {key: _json_number(value) for key, value in out.items()}
    groups = df.groupby(["arm", "round"], sort=True)
    if groups.ngroups > 1:
        summary["by_condition"] = []
        for (arm, round_), part in groups:
            stats = score_stats(part)
            if videocon:
                stats.update(videocon_stats(part, n_boot=0))
            entry = {"arm": str(arm), "round": int(round_)}
            keys = ["n", "n_items", "coverage", "joint", "mean_sa", "mean_pc"]
            if videocon:
                keys += ["videocon_sa", "videocon_pc", "videocon_combined", "n_videocon"]
            entry.update({k: _json_number(stats[k]) for k in keys})
            summary["by_condition"].append(entry)
    return summary
