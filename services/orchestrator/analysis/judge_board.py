"""The leaderboard on one judge: the leaderboard's own videos scored by the judge a user runs, beside the
human labels of the same videos and beside the user's runs judged the same way.

Inputs are analysis conditions (:mod:`loading`). A condition whose items match test-set videos
(:func:`leaderboard.match_human`; ``run --videos videophy2-test`` makes such runs, arm = model_name) is a
*leaderboard condition*; one that matches none is a *user run*. Conditions are grouped by judge
(:func:`judge_key`: the run's judge label and, where the manifest records them, the evaluator model ids
and revisions), and every comparison below stays inside one judge:

* per leaderboard model: human joint and judge joint on the same videos, the paired difference
  (:func:`paired.metric_row`: exact McNemar, a seeded action-cluster bootstrap CI, :mod:`intervals`),
  and the agreement (:mod:`agreement`) beside the published AutoEval agreement;
* the judge's scale: leaderboard models and user runs by their judge joint;
* the human scale, for user runs: an *estimate* through a calibration fitted on the labelled videos
  (:mod:`calibration`), with its CI and its leave-one-model-out check;
* like for like, in words: same judge, shared prompts, same caption choice (original or upsampled);
* the published per-video AutoEval scores reproduced video by video (:mod:`published_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from videophy_bench.common.judge_tasks import tasks_of
from videophy_bench.evaluator.catalog import judge_spec
from videophy_bench.orchestrator import caption_source
from videophy_bench.orchestrator.prompts import normalize_caption

from . import calibration, plots
from .agreement import PUBLISHED_AGREEMENT, PUBLISHED_AGREEMENT_NOTE, agreement
from .document import Column, Figure, Section, Table, Text
from .intervals import DEFAULT_BOOTSTRAP, DEFAULT_CONFIDENCE, DEFAULT_SEED, cluster_bootstrap, wilson_ci
from .loading import Condition
from .paired import metric_row
from .power import DEFAULT_POWER
from .published_scores import PublishedScores, attach, mismatches, reproduction_row

PAIRED_METRICS = ("joint", "sa", "pc")


def _scores_sa_pc(preset: object) -> bool:
    """False only for a registered judge that answers no SA/PC task (VideoCon-Physics beside AutoEval)."""
    spec = judge_spec(str(preset))
    return spec is None or bool(set(spec.tasks) & set(tasks_of("autoeval")))


def judge_key(cond: Condition) -> str:
    """The judge of a condition: its label, plus the model ids and revisions of the evaluators that gave
    its SA/PC scores, when the manifest records them."""
    manifest = cond.run.manifest if cond.run is not None else {}
    models = [
        m for m in (manifest.get("models") or {}).get("evaluator") or [] if _scores_sa_pc(m.get("preset"))
    ]
    ids = sorted({f"{m.get('model_id', '?')}@{str(m.get('revision') or '?')[:12]}" for m in models})
    return f"{cond.judge} [{', '.join(ids)}]" if ids else cond.judge


def _recorded(df: pd.DataFrame) -> str | None:
    """The group choice of a results frame's ``caption_source`` column, None when it records nothing
    (results of a release without the column)."""
    if "caption_source" not in df.columns or not df["caption_source"].notna().any():
        return None
    return caption_source.of_group(df["caption_source"].dropna().astype(str))


def _choice_words(choice: str) -> str:
    words = {
        caption_source.ORIGINAL: "the original captions",
        caption_source.UPSAMPLED: "the upsampled captions",
        caption_source.OTHER: "other texts",
        caption_source.MIXED: "mixed captions",
    }
    return words.get(choice, "unrecorded captions")


def run_caption_choice(cond: Condition) -> str:
    """Which caption a run's videos were generated from (services/orchestrator/caption_source.py's
    values): the ``caption_source`` column where results carry one, else the manifest's ``upsampled``
    flag, else every item's ``gen_prompt`` equal to its caption (results of an earlier release)."""
    recorded = _recorded(cond.df)
    if recorded is not None:
        return recorded
    config = (cond.run.manifest.get("config") or {}) if cond.run is not None else {}
    if isinstance(config.get("upsampled"), bool):
        return caption_source.UPSAMPLED if config["upsampled"] else caption_source.ORIGINAL
    both = cond.df[cond.df["gen_prompt"].notna() & cond.df["caption"].notna()]
    if not both.empty and (both["gen_prompt"] == both["caption"]).all():
        return caption_source.ORIGINAL
    return caption_source.UNKNOWN


def board_caption_choice(cond: Condition | None, videos: pd.DataFrame) -> str:
    """Which caption a leaderboard model's videos came from: the judged run's ``caption_source`` where
    recorded, else what the videos' folder names say (``..._upsampled/``), else unknown."""
    recorded = _recorded(cond.df) if cond is not None else None
    if recorded is not None:
        return recorded
    return caption_source.of_group(caption_source.of_url(u) for u in videos["video_url"].dropna().astype(str))


@dataclass
class BoardEntry:
    """One leaderboard model as judged in one condition: its matched videos."""

    model_id: str
    cond: Condition
    key: str
    matched: pd.DataFrame


@dataclass
class JudgeGroup:
    judge: str
    entries: list[BoardEntry] = field(default_factory=list)
    runs: list[Condition] = field(default_factory=list)
    calibration: calibration.Calibration | None = None

    @property
    def labelled(self) -> pd.DataFrame:
        """Every labelled video this judge scored, once (a video judged in two runs counts once)."""
        frames = [e.matched for e in self.entries]
        if not frames:
            return pd.DataFrame()
        both = pd.concat(frames, ignore_index=True)
        return both[~(both["video_url"].notna() & both["video_url"].duplicated())].reset_index(drop=True)


def group_by_judge(test: pd.DataFrame, conditions: list[Condition]) -> list[JudgeGroup]:
    """Split conditions into leaderboard entries (per human model) and user runs, per judge."""
    from .leaderboard import match_human

    groups: dict[str, JudgeGroup] = {}
    for cond in conditions:
        key = judge_key(cond)
        group = groups.setdefault(key, JudgeGroup(key))
        matched, key = match_human(cond.df, test)
        if matched.empty:
            group.runs.append(cond)
            continue
        for model_id, part in matched.groupby("model", sort=True):
            group.entries.append(BoardEntry(str(model_id), cond, key, part.reset_index(drop=True)))
    return list(groups.values())


def _paired(matched: pd.DataFrame, n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    """Judge (B) against human (A) on the same videos, clustered by action."""
    joined = pd.DataFrame(
        {
            f"{m}_{side}": matched[m if side == "b" else f"{m}_h"].to_numpy(float)
            for m in PAIRED_METRICS
            for side in ("a", "b")
        }
    )
    cis = cluster_bootstrap(
        {m: joined[f"{m}_b"] - joined[f"{m}_a"] for m in PAIRED_METRICS},
        matched["cluster"].astype(str).tolist(),
        n_boot=n_boot,
        seed=seed,
    )
    return {m: metric_row(joined, m, cis[m], DEFAULT_CONFIDENCE, DEFAULT_POWER) for m in PAIRED_METRICS}


def board_rows(
    test: pd.DataFrame,
    group: JudgeGroup,
    names: dict[str, str],
    published_joint: dict[str, float],
    n_boot: int,
    seed: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(joint rows, agreement rows) of one judge's leaderboard entries, plus a pooled agreement row."""
    labelled_n = test[test["status"] == "scored"].groupby("arm").size()
    joints, agreements = [], []
    for e in group.entries:
        paired = _paired(e.matched, n_boot, seed)
        joint = paired["joint"]
        joints.append(
            {
                "model_id": e.model_id,
                "model": names.get(e.model_id, e.model_id),
                "run": e.cond.label,
                "judge": group.judge,
                "n": len(e.matched),
                "n_labelled": int(labelled_n.get(e.model_id, 0)),
                "human": joint["mean_a"],
                "judge_joint": joint["mean_b"],
                "diff": joint["diff"],
                "diff_lo": joint["diff_lo"],
                "diff_hi": joint["diff_hi"],
                "p": joint["p"],
                "judge_only": joint["improved"],
                "human_only": joint["degraded"],
                "sa_diff": paired["sa"]["diff"],
                "pc_diff": paired["pc"]["diff"],
                "published_autoeval": published_joint.get(e.model_id, float("nan")),
                "matched_by": e.key,
            }
        )
        agreements.append(
            {"model": names.get(e.model_id, e.model_id), "run": e.cond.label, **agreement(e.matched)}
        )
    if len(group.entries) > 1:
        agreements.append({"model": "all leaderboard videos", "run": "pooled", **agreement(group.labelled)})
    agreements.append(
        {"model": "published AutoEval (paper)", "run": "paper, unseen prompts", **PUBLISHED_AGREEMENT}
    )
    joints.sort(key=lambda r: -np.nan_to_num(r["human"], nan=-1.0))
    return joints, agreements


JOINT_COLUMNS = [
    Column("model", "leaderboard model"),
    Column("run", "judged in"),
    Column("n", "videos", "int"),
    Column("n_labelled", "labelled", "int"),
    Column("human", "human joint", "pct"),
    Column("judge_joint", "judge joint", "pct"),
    Column("diff", "judge - human [95% CI]", "pp", ("diff_lo", "diff_hi")),
    Column("p", "McNemar p", "pvalue"),
    Column("judge_only", "judge-only passes", "int"),
    Column("human_only", "human-only passes", "int"),
    Column("sa_diff", "mean SA judge - human", "signed2"),
    Column("pc_diff", "mean PC judge - human", "signed2"),
    Column("published_autoeval", "published AutoEval joint", "pct"),
]
AGREEMENT_COLUMNS = [
    Column("model", "model"),
    Column("run", "judged in"),
    Column("n", "videos", "int"),
    Column("r_sa", "Pearson r SA [95% CI]", "num3", ("r_sa_lo", "r_sa_hi")),
    Column("rho_sa", "Spearman SA", "num3"),
    Column("r_pc", "Pearson r PC [95% CI]", "num3", ("r_pc_lo", "r_pc_hi")),
    Column("rho_pc", "Spearman PC", "num3"),
    Column("accuracy", "joint accuracy", "pct"),
    Column("kappa", "Cohen's kappa", "num3"),
    Column("f1", "joint F1", "pct"),
    Column("precision", "precision", "pct"),
    Column("recall", "recall", "pct"),
    Column("tp", "both pass", "int"),
    Column("fp", "judge only", "int"),
    Column("fn", "human only", "int"),
    Column("tn", "both fail", "int"),
]


def _joint_with_ci(df: pd.DataFrame) -> tuple[float, float, float, int]:
    scored = df[df["status"] == "scored"]
    k, n = int(scored["joint"].sum()), len(scored)
    lo, hi = wilson_ci(k, n)
    return (k / n if n else float("nan")), lo, hi, n


def scale_rows(group: JudgeGroup, names: dict[str, str]) -> list[dict[str, Any]]:
    """The judge's scale: leaderboard models (with their human joint) and user runs (with the calibrated
    estimate), by judge joint."""
    rows = []
    for e in group.entries:
        joint = float(e.matched["joint"].mean())
        lo, hi = wilson_ci(int(e.matched["joint"].sum()), len(e.matched))
        rows.append(
            {
                "name": names.get(e.model_id, e.model_id),
                "kind": "leaderboard model",
                "n": len(e.matched),
                "judge_joint": joint,
                "judge_lo": lo,
                "judge_hi": hi,
                "human": float(e.matched["joint_h"].mean()),
                "human_kind": "human labels",
                "human_lo": float("nan"),
                "human_hi": float("nan"),
            }
        )
    for cond in group.runs:
        joint, lo, hi, n = _joint_with_ci(cond.df)
        est = calibration.estimate(group.calibration, cond.df) if group.calibration else {}
        rows.append(
            {
                "name": cond.label,
                "kind": "your run",
                "n": n,
                "judge_joint": joint,
                "judge_lo": lo,
                "judge_hi": hi,
                "human": est.get("human_est", float("nan")),
                "human_kind": "estimate (calibrated)"
                if est and not est["refused"]
                else f"no estimate: {est.get('refused') or 'no labelled videos for this judge'}",
                "human_lo": est.get("human_est_lo", float("nan")),
                "human_hi": est.get("human_est_hi", float("nan")),
                "share_unseen": est.get("share_unseen", float("nan")),
            }
        )
    rows.sort(key=lambda r: -np.nan_to_num(r["judge_joint"], nan=-1.0))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


SCALE_COLUMNS = [
    Column("rank", "rank (judge)", "int"),
    Column("name", "model / run"),
    Column("kind", "what"),
    Column("n", "videos", "int"),
    Column("judge_joint", "judge joint [95% Wilson CI]", "pct", ("judge_lo", "judge_hi")),
    Column("human", "human joint [95% CI]", "pct", ("human_lo", "human_hi")),
    Column("human_kind", "human joint is"),
]


def _prompts(df: pd.DataFrame) -> set[str]:
    return set(df["caption"].dropna().astype(str).map(normalize_caption))


def comparability(
    test: pd.DataFrame, group: JudgeGroup, groups: list[JudgeGroup], names: dict[str, str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per user run and leaderboard model: same judge, shared prompts, same caption choice; and the
    sentence per run that says it in words."""
    rows, sentences = [], []
    entries = {e.model_id: e for g in groups for e in g.entries if g.judge == group.judge}
    for cond in group.runs:
        mine, choice = _prompts(cond.df), run_caption_choice(cond)
        like, unlike = [], []
        for model_id in sorted(test["arm"].dropna().unique()):
            videos = test[test["arm"] == model_id]
            entry = entries.get(str(model_id))
            theirs = _prompts(videos)
            shared = len(mine & theirs)
            board_choice = board_caption_choice(entry.cond if entry else None, videos)
            same_judge = entry is not None
            same_caption = caption_source.like_for_like(choice, board_choice)
            reasons = []
            if not same_judge:
                reasons.append("not judged by this judge (only human labels)")
            if shared < len(mine) or shared < len(theirs):
                reasons.append(f"{shared} shared prompts of {len(mine)} / {len(theirs)}")
            if not same_caption:
                reasons.append(
                    f"captions: yours {_choice_words(choice)}, theirs {_choice_words(board_choice)}"
                )
            name = names.get(str(model_id), str(model_id))
            (unlike if reasons else like).append(name if not reasons else f"{name} ({'; '.join(reasons)})")
            rows.append(
                {
                    "run": cond.label,
                    "model": name,
                    "same_judge": same_judge,
                    "shared_prompts": shared,
                    "run_prompts": len(mine),
                    "model_prompts": len(theirs),
                    "run_caption": choice,
                    "model_caption": board_choice,
                    "like_for_like": not reasons,
                    "differs": "; ".join(reasons),
                }
            )
        sentences.append(
            f"{cond.label} (judge {group.judge}, generated from {_choice_words(choice)}): like for like with "
            + (", ".join(like) if like else "no leaderboard model")
            + ". Not like for like: "
            + (", ".join(unlike) if unlike else "none")
            + ". Its estimated human "
            "joint is never like for like with a human row: it goes through the calibration, which assumes "
            "the judge errs on your videos as it errs on the leaderboard's."
        )
    return rows, sentences


COMPARABILITY_COLUMNS = [
    Column("run", "your run"),
    Column("model", "leaderboard model"),
    Column("same_judge", "same judge"),
    Column("shared_prompts", "shared prompts", "int"),
    Column("run_prompts", "your prompts", "int"),
    Column("model_prompts", "its prompts", "int"),
    Column("run_caption", "your caption"),
    Column("model_caption", "its caption"),
    Column("like_for_like", "like for like"),
    Column("differs", "what differs"),
]


def _calibration_blocks(group: JudgeGroup, names: dict[str, str], suffix: str) -> list[Any]:
    cal = group.calibration
    if cal is None:
        return []
    if not cal.ok:
        return [
            Text(
                f"No calibration to the human scale for judge {group.judge}: {cal.refused}. "
                "Judge more leaderboard videos (run --videos videophy2-test) with this judge.",
                "warning",
            )
        ]
    coef = ", ".join(f"{k} {v:+.3f}" for k, v in cal.coefficients().items())
    check = calibration.leave_one_model_out(group.labelled, group.judge)
    for row in check:
        row["model"] = names.get(row["model_id"], row["model_id"])
    blocks: list[Any] = [
        Text(
            f"Calibration of judge {group.judge} to the human scale, an estimate: {calibration.METHOD}. "
            f"Fitted on {cal.n_labelled} labelled videos of {len(cal.models)} leaderboard models "
            f"({cal.n_passes} human passes); coefficients {coef}; "
            f"{int((~np.isnan(cal.boot_beta).any(axis=1)).sum())} bootstrap refits."
        )
    ]
    if cal.separated:
        blocks.append(
            Text(
                "The judge's scores (nearly) separate the human passes from the fails on the labelled videos "
                "(a coefficient above "
                f"{calibration.SEPARATION} in size): some cells get fitted probabilities of 0 or 1, and an "
                "estimate resting on them is only as good as those few videos.",
                "warning",
            )
        )
    if len(check) > 1:
        errors = np.array([r["error"] for r in check], float)
        blocks += [
            Table(
                f"calibration_check{suffix}",
                "Calibration check: each model's human joint estimated by a fit without that model",
                [
                    Column("model", "left-out model"),
                    Column("n", "videos", "int"),
                    Column("human", "human joint", "pct"),
                    Column("judge", "judge joint", "pct"),
                    Column("human_est", "estimate (fit without it)", "pct"),
                    Column("error", "estimate - human", "pp"),
                    Column("refused", "refused"),
                ],
                check,
                hidden=("model_id",),
                note="The spread of these errors is the honest size of the estimate's bias for a model the "
                "fit never saw; the bootstrap CI does not include it.",
            ),
            Text(
                f"Leave-one-model-out error: mean {100 * np.nanmean(errors):+.1f} pp, largest "
                f"{100 * np.nanmax(np.abs(errors)):.1f} pp.",
                "warning" if np.nanmax(np.abs(errors)) > 0.05 else "info",
            ),
        ]
    return blocks


def _published_blocks(
    groups: list[JudgeGroup], published: PublishedScores | None, names: dict[str, str], published_note: str
) -> list[Any]:
    entries = [e for g in groups for e in g.entries]
    if not entries:
        return []
    if published is None:
        return [
            Text(
                published_note
                or "The published per-video AutoEval scores were not read (leaderboard "
                "--published-scores hub or PATH).",
                "warning" if published_note else "info",
            )
        ]
    rows, bad = [], []
    for e in entries:
        attached = attach(e.matched, published)
        rows.append(
            {
                "model_id": e.model_id,
                "model": names.get(e.model_id, e.model_id),
                "run": e.cond.label,
                "n_matched": len(e.matched),
                **reproduction_row(attached),
            }
        )
        bad += [
            {"run": e.cond.label, "model": names.get(r["model_id"], r["model_id"]), **r}
            for r in mismatches(attached)
        ]
    files = ", ".join(published.files)
    text = (
        f"Published per-video AutoEval scores from {published.source} ({files}; {len(published.frame)} "
        f"videos). Our judge reproduces {sum(r['both_exact'] for r in rows)} of {sum(r['n'] for r in rows)} "
        f"videos exactly (SA and PC); {len(bad)} differ, listed below and in tables/published_mismatches.csv."
    )
    if published.skipped:
        text += " Skipped: " + "; ".join(published.skipped) + "."
    if published.n_ambiguous:
        text += f" {published.n_ambiguous} published rows with conflicting duplicate keys were dropped."
    return [
        Text(text, "warning" if bad else "info"),
        Table(
            "published_reproduction",
            "Our judge against the published AutoEval scores, per model",
            [
                Column("model", "model"),
                Column("run", "judged in"),
                Column("n_matched", "judged videos", "int"),
                Column("n", "with a published score", "int"),
                Column("sa_exact", "SA exact", "int"),
                Column("pc_exact", "PC exact", "int"),
                Column("both_exact", "both exact", "int"),
                Column("share_both_exact", "share both exact", "pct"),
                Column("sa_diffs", "SA ours - published: count"),
                Column("pc_diffs", "PC ours - published: count"),
                Column("sa_mad", "mean abs. SA diff", "num2"),
                Column("pc_mad", "mean abs. PC diff", "num2"),
                Column("joint_ours", "joint (ours)", "pct"),
                Column("joint_pub", "joint (published)", "pct"),
                Column("joint_diff", "ours - published", "pp"),
                Column("joint_disagree", "joint differs", "int"),
            ],
            rows,
            hidden=("model_id",),
            latex=True,
        ),
        Table(
            "published_mismatches",
            "Videos scored differently from the published AutoEval",
            [
                Column("model", "model"),
                Column("run", "judged in"),
                Column("caption", "caption"),
                Column("sa", "SA ours", "int"),
                Column("sa_pub", "SA published", "int"),
                Column("pc", "PC ours", "int"),
                Column("pc_pub", "PC published", "int"),
                Column("joint", "joint ours", "int"),
                Column("joint_pub", "joint published", "int"),
                Column("video_url", "video"),
            ],
            bad,
            collapsed=True,
            hidden=("model_id",),
        ),
    ]


def judge_board_sections(
    test: pd.DataFrame,
    conditions: list[Condition],
    names: dict[str, str],
    published_joint: dict[str, float],
    published: PublishedScores | None = None,
    published_note: str = "",
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
) -> list[Section]:
    """The report sections of the leaderboard on one judge (empty when no run judged test videos and no
    run can be placed)."""
    groups = group_by_judge(test, conditions)
    sections: list[Section] = []
    for i, group in enumerate(groups):
        suffix = "" if i == 0 else f"_{i + 1}"
        blocks: list[Any] = []
        if not group.entries:
            blocks.append(
                Text(
                    f"No run judged by {group.judge} scored leaderboard videos, so the leaderboard cannot be "
                    "put on this judge and agreement with the human labels cannot be measured. Judge the "
                    "test set's own videos with the same judge: videophy-bench run --videos videophy2-test "
                    "(docs/analysis.md)."
                )
            )
            sections.append(
                Section(f"one_judge{suffix}", f"The leaderboard on one judge: {group.judge}", blocks)
            )
            continue
        group.calibration = calibration.fit_calibration(group.labelled, group.judge, n_boot=n_boot, seed=seed)
        joints, agreements = board_rows(test, group, names, published_joint, n_boot, seed)
        blocks += [
            Text(
                f"Judge {group.judge} on the leaderboard's own videos: each model's human joint and this "
                "judge's joint on the same videos (like for like: same videos, same judge for every row). "
                "The difference is paired by video; its CI resamples actions."
            ),
            Table(
                f"one_judge{suffix}",
                "Human vs judge joint on the same videos",
                JOINT_COLUMNS,
                joints,
                hidden=("model_id", "judge", "matched_by"),
                latex=True,
            ),
            Table(
                f"judge_agreement{suffix}",
                "Agreement with the human labels",
                AGREEMENT_COLUMNS,
                agreements,
                note=PUBLISHED_AGREEMENT_NOTE,
                latex=True,
            ),
        ]
        scale = scale_rows(group, names)
        colors = [plots.PALETTE[0] if r["kind"] == "leaderboard model" else plots.PALETTE[1] for r in scale]
        blocks += [
            Table(
                f"judge_scale{suffix}",
                f"Leaderboard models and your runs on the judge's scale ({group.judge})",
                SCALE_COLUMNS,
                scale,
                hidden=("kind", "share_unseen"),
                note="The human column of a run is an estimate through the calibration below, not a human "
                "judgement; the CI holds the fit's and the run's sampling error, not the transfer bias.",
            ),
            Figure(
                f"judge_scale_plot{suffix}",
                "Judge joint with 95% Wilson CI; blue = leaderboard models, orange = your runs",
                plots.horizontal_bars(
                    scale, "name", "judge_joint", "judge_lo", "judge_hi", "judge joint (%)", colors=colors
                ),
                data_table=f"judge_scale{suffix}",
            ),
        ]
        blocks += _calibration_blocks(group, names, suffix)
        rows, sentences = comparability(test, group, groups, names)
        if rows:
            blocks += [Text(s) for s in sentences]
            blocks.append(
                Table(
                    f"like_for_like{suffix}",
                    "Which comparisons are like for like",
                    COMPARABILITY_COLUMNS,
                    rows,
                    collapsed=True,
                )
            )
        sections.append(Section(f"one_judge{suffix}", f"The leaderboard on one judge: {group.judge}", blocks))
    reproduced = _published_blocks(groups, published, names, published_note)
    if reproduced:
        sections.append(Section("published", "Reproducing the published AutoEval scores", reproduced))
    return sections


__all__ = ["board_rows", "group_by_judge", "judge_board_sections", "judge_key", "run_caption_choice"]
