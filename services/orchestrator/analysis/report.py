"""Build the report document of one or more conditions (runs, or arms/rounds of a run).

One condition: overview, subsets, failure taxonomy, rules, seeds, actions, worst videos, problems.
Two or more: the same for each, plus a paired comparison of every later condition against the first
(the baseline). The document is rendered to HTML/Markdown/CSV/JSON by :mod:`export`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videophy_bench.orchestrator import caption_source

from . import plots
from .document import (
    Column,
    Figure,
    Report,
    Section,
    Table,
    Text,
    Video,
    VideoGallery,
    VideoPair,
    VideoPairs,
    format_value,
)
from .intervals import DEFAULT_BOOTSTRAP, DEFAULT_SEED
from .loading import Condition, prompt_choice
from .metrics import (
    TAXONOMY,
    TAXONOMY_LABELS,
    action_extremes,
    action_table,
    best_worst_actions,
    has_videocon,
    lowest_videos,
    n_seeds,
    problem_rows,
    rule_distribution,
    scored,
    seed_key,
    seed_table,
    seed_variance,
    subset_table,
    videocon_subset_table,
)
from .paired import BINARY_METRICS, compare
from .rounds import is_rounds_report, rounds_section

JOINT_BOOT = Column("joint", "joint [95% bootstrap CI]", "pct", ("joint_boot_lo", "joint_boot_hi"))
JOINT_WILSON = Column("joint", "joint [95% Wilson CI]", "pct", ("joint_lo", "joint_hi"))
SA_BOOT = Column("mean_sa", "mean SA [95% CI]", "num2", ("mean_sa_boot_lo", "mean_sa_boot_hi"))
PC_BOOT = Column("mean_pc", "mean PC [95% CI]", "num2", ("mean_pc_boot_lo", "mean_pc_boot_hi"))
COVERAGE = [
    Column("n", "n scored", "int"),
    Column("n_items", "n items", "int"),
    Column("coverage", "coverage", "pct"),
]

CONVENTIONS = (
    "Joint = share of scored items with SA>=4 and PC>=4. Scores, means and shares use scored items only: "
    "failed items, items not yet judged and unparseable judge answers are excluded from the denominators "
    "and listed under 'Problems'; 'coverage' = scored / all items. 'official joint' follows the official "
    "script, which scores unparseable answers as 0 and keeps them in the denominator. Wilson CIs treat "
    "items as independent; bootstrap CIs resample whole actions (seeded), which accounts for prompts of "
    "one action (and seeds of one prompt) being correlated. Numbers: shares of items are percentages, "
    "differences of shares percentage points (pp); SA and PC keep their 1-5 scale."
)
VIDEOCON_CONVENTION = " VideoCon-Physics means keep their P(yes) 0-1 scale, as published."
#: Per-action plot: only actions with at least this many scored items (fewer give 95% CIs spanning
#: most of 0-100%: 3 items with 2 passes give 21-94%); every action stays in the 'All actions' table.
ACTION_PLOT_MIN_N = 10
ACTION_PLOT_MAX_ROWS = 40
#: A/B video pairs per direction (most improved, most degraded prompts) in a comparison section.
PAIRS_PER_DIRECTION = 4


def prompt_scope(cond: Condition) -> tuple[int, int | None]:
    """(prompts in the condition, prompts in its run's prompt set or None when unknown)."""
    n = int(cond.df["prompt_id"].nunique())
    manifest = cond.run.manifest if cond.run is not None else {}
    total = (manifest.get("prompt_set") or {}).get("n")
    return n, (int(total) if isinstance(total, int | float) and total else None)


def scope_text(cond: Condition) -> str:
    """``4 of 590 prompts`` for a subset of the prompt set (``--limit``/``--ids``/``--hard-only``),
    else ""."""
    n, total = prompt_scope(cond)
    return f"{n} of {total} prompts" if total is not None and n < total else ""


def _scope_suffix(conds: list[Condition]) -> str:
    """A caption suffix naming the subset the numbers cover, "" when every condition has its full set."""
    texts = {c.label: scope_text(c) for c in conds}
    if not any(texts.values()):
        return ""
    if len(set(texts.values())) == 1:
        return f" ({next(iter(texts.values()))})"
    return " (" + "; ".join(f"{label}: {t or 'all prompts'}" for label, t in texts.items()) + ")"


def _with_scope(blocks: list[Any], suffix: str) -> list[Any]:
    """Append ``suffix`` to the title of every table among ``blocks``."""
    if suffix:
        for block in blocks:
            if isinstance(block, Table):
                block.title += suffix
    return blocks


def _video(row: dict[str, Any], run_dir: Path | None, reason: str) -> Video:
    rel = row.get("video_path")
    path = (run_dir / rel) if (run_dir is not None and rel) else None
    details = {
        "SA": format_value(row.get("sa"), "num2"),
        "PC": format_value(row.get("pc"), "num2"),
        "rule": format_value(row.get("rule"), "int"),
        "action": row.get("action") or "",
        "hard": format_value(row.get("is_hard"), "text"),
        "seed": row.get("seed"),
    }
    return Video(
        path=path,
        title=f"{row['prompt_id']} ({reason})",
        caption=str(row.get("caption") or ""),
        details=details,
    )


def _overview_row(cond: Condition, rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_name = {r["subset"]: r for r in rows}
    out = {"condition": cond.label, "judge": cond.judge, **by_name["all"]}
    for name in ("hard", "easy"):
        part = by_name[name]
        out.update(
            {
                f"joint_{name}": part["joint"],
                f"joint_{name}_lo": part["joint_lo"],
                f"joint_{name}_hi": part["joint_hi"],
                f"n_{name}": part["n"],
            }
        )
    return out


def overview_table(conds: list[Condition], subset_rows: list[list[dict[str, Any]]]) -> Table:
    rows = [_overview_row(c, r) for c, r in zip(conds, subset_rows, strict=True)]
    for cond, row in zip(conds, rows, strict=True):
        n, total = prompt_scope(cond)
        row["n_prompts"], row["n_prompts_set"] = n, total
        row["prompts"] = f"{n} of {total}" if total is not None else str(n)
        row["caption_source"] = prompt_choice(cond.df)
    columns = [
        Column("condition", "condition"),
        Column("judge", "judge"),
        Column("prompts", "prompts (of the set)"),
        Column("caption_source", "generated from"),
        *COVERAGE,
        Column("n_failed", "failed", "int"),
        Column("n_unparseable", "unparseable", "int"),
        Column("n_not_judged", "not judged", "int"),
        JOINT_WILSON,
        JOINT_BOOT,
        Column("joint_official", "official joint (unparseable = 0)", "pct"),
        SA_BOOT,
        PC_BOOT,
        Column("joint_hard", "joint hard [Wilson]", "pct", ("joint_hard_lo", "joint_hard_hi")),
        Column("n_hard", "n hard", "int"),
        Column("joint_easy", "joint easy [Wilson]", "pct", ("joint_easy_lo", "joint_easy_hi")),
        Column("n_easy", "n easy", "int"),
    ]
    return Table(
        "overview",
        "Headline numbers" + _scope_suffix(conds),
        columns,
        rows,
        hidden=("n_prompts", "n_prompts_set"),
        note="Wilson CIs treat items as independent; bootstrap CIs resample whole actions, so they are "
        "wider when prompts of one action agree. 'prompts (of the set)': prompts in the condition, of "
        "the prompt set's total (manifest.json). 'generated from': the captions the videos were "
        "generated from (original, upsampled, other, unknown or mixed; results.csv caption_source).",
        latex=True,
    )


SUBSET_COLUMNS = [
    Column("subset", "subset"),
    *COVERAGE,
    JOINT_BOOT,
    Column("joint_lo", "Wilson low", "pct"),
    Column("joint_hi", "Wilson high", "pct"),
    SA_BOOT,
    PC_BOOT,
    Column("share_sa_below_4", "SA<4", "pct"),
    Column("share_pc_below_4", "PC<4", "pct"),
    Column("joint_official", "official joint", "pct"),
    Column("n_clusters", "actions", "int"),
]


VIDEOCON_TABLE_COLUMNS = [
    Column("subset", "subset"),
    Column("n_items", "n items", "int"),
    Column("n_videocon_sa", "n SA", "int"),
    Column("n_videocon_pc", "n PC", "int"),
    Column("n_videocon", "n both", "int"),
    Column("videocon_coverage", "coverage (both)", "pct"),
    Column("videocon_sa", "SA [95% CI]", "num3", ("videocon_sa_boot_lo", "videocon_sa_boot_hi")),
    Column("videocon_pc", "PC [95% CI]", "num3", ("videocon_pc_boot_lo", "videocon_pc_boot_hi")),
    Column(
        "videocon_combined",
        "combined (SA+PC)/2 [95% CI]",
        "num3",
        ("videocon_combined_boot_lo", "videocon_combined_boot_hi"),
    ),
    Column("n_videocon_clusters", "actions", "int"),
]
VIDEOCON_NOTE = (
    "VideoCon-Physics (the VideoPhy-1 auto-rater) answers P(yes) in 0..1 for 'does the video entail the "
    "caption' (SA) and 'does it follow the physical laws' (PC); the columns are means of P(yes), not "
    "pass rates, and are not on the AutoEval 1-5 scale. Each mean uses the items carrying that score "
    "(failed items excluded; an unparseable AutoEval answer does not exclude an item here); combined is "
    "the mean of (SA + PC) / 2 over items with both. CIs: seeded action-cluster bootstrap."
)
#: VideoCon-Physics SA / PC published in the PhyT2V paper (round 1 = the model alone, round 4 = after
#: PhyT2V's prompt refinement), as quoted in the project's seed report
PUBLISHED_VIDEOCON = (
    ("CogVideoX-5B", "round 1", 0.48, 0.26),
    ("CogVideoX-5B + PhyT2V", "round 4", 0.59, 0.42),
    ("VideoCrafter", "round 1", 0.24, 0.15),
    ("VideoCrafter + PhyT2V", "round 4", 0.49, 0.33),
    ("OpenSora", "round 1", 0.29, 0.17),
    ("OpenSora + PhyT2V", "round 4", 0.47, 0.31),
    ("CogVideoX-2B", "round 1", 0.22, 0.13),
    ("CogVideoX-2B + PhyT2V", "round 4", 0.42, 0.29),
)


def videocon_reference_table(conds: list[Condition], rows: list[list[dict[str, Any]]]) -> Table:
    """This project's conditions (all items) beside the published PhyT2V-paper VideoCon numbers."""
    out = []
    for cond, cond_rows in zip(conds, rows, strict=True):
        if cond_rows:
            whole = cond_rows[0]
            out.append(
                {
                    "model": cond.label,
                    "source": f"this project ({whole['n_videocon']} items with both scores)",
                    "videocon_sa": whole["videocon_sa"],
                    "videocon_pc": whole["videocon_pc"],
                    "videocon_combined": whole["videocon_combined"],
                }
            )
    for model, source, sa, pc in PUBLISHED_VIDEOCON:
        out.append(
            {
                "model": model,
                "source": f"PhyT2V paper, {source}",
                "videocon_sa": sa,
                "videocon_pc": pc,
                "videocon_combined": (sa + pc) / 2,
            }
        )
    return Table(
        "videocon_reference",
        "VideoCon-Physics (second judge): this project vs published",
        [
            Column("model", "model"),
            Column("source", "source"),
            Column("videocon_sa", "SA", "num3"),
            Column("videocon_pc", "PC", "num3"),
            Column("videocon_combined", "combined", "num3"),
        ],
        out,
        note="Published rows are the PhyT2V paper's VideoCon-Physics scores (round 1 = the model alone, "
        "round 4 = after PhyT2V refinement). They were measured on that paper's prompt set, not on these "
        "prompts, so they are a reference point of scale, not a paired or significance-tested comparison.",
    )


def _taxonomy_table(prefix: str, rows: list[dict[str, Any]]) -> Table:
    columns = [Column("subset", "subset"), Column("n", "n scored", "int")]
    for name in TAXONOMY:
        columns += [
            Column(f"n_{name}", TAXONOMY_LABELS[name], "int"),
            Column(f"share_{name}", "share", "pct"),
        ]
    return Table(
        f"{prefix}_taxonomy",
        "Failure taxonomy",
        columns,
        rows,
        note="Shares of scored items; the four classes add up to n.",
    )


ACTION_COLUMNS = [
    Column("action", "action"),
    Column("n", "n", "int"),
    Column("n_pass", "passes", "int"),
    JOINT_WILSON,
    Column("mean_sa", "mean SA", "num2"),
    Column("mean_pc", "mean PC", "num2"),
    Column("share_sa_below_4", "SA<4", "pct"),
    Column("share_pc_below_4", "PC<4", "pct"),
]
VIDEO_COLUMNS = [
    Column("prompt_id", "prompt"),
    Column("seed", "seed"),
    Column("action", "action"),
    Column("is_hard", "hard"),
    Column("sa", "SA", "num2"),
    Column("pc", "PC", "num2"),
    Column("rule", "rule", "int"),
    Column("caption", "caption"),
    Column("video_path", "video"),
]
RANKINGS = {
    "best_joint": "Best actions by joint",
    "worst_joint": "Worst actions by joint",
    "lowest_sa": "Actions with the lowest mean SA",
    "lowest_pc": "Actions with the lowest mean PC",
    "highest_sa": "Actions with the highest mean SA",
    "highest_pc": "Actions with the highest mean PC",
}


def _action_plot_rows(
    rows: list[dict[str, Any]], min_n: int = ACTION_PLOT_MIN_N, limit: int = ACTION_PLOT_MAX_ROWS
) -> list[dict[str, Any]]:
    """Actions with at least ``min_n`` scored items, best joint first, labelled with their n; with more
    than ``limit``, the best and the worst halves around a gap row."""
    usable = sorted((r for r in rows if r["n"] >= min_n), key=lambda r: (-r["joint"], -r["n"], r["action"]))
    usable = [{**r, "label": f"{r['action']} (n={r['n']})"} for r in usable]
    if len(usable) <= limit:
        return usable
    half = limit // 2
    gap = {"label": "…", "joint": float("nan"), "joint_lo": float("nan"), "joint_hi": float("nan")}
    return [*usable[:half], gap, *usable[-half:]]


def action_plot_blocks(prefix: str, cond: Condition, actions: list[dict[str, Any]]) -> list[Any]:
    """The per-action dot plot, or the sentence saying why there is none."""
    with_items = [r for r in actions if r["n"] > 0]
    if not with_items:
        return []
    plotted = _action_plot_rows(actions)
    n_plotted = sum(1 for r in plotted if r["label"] != "…")
    widths = sorted(r["joint_hi"] - r["joint_lo"] for r in with_items)
    median_n = sorted(r["n"] for r in with_items)[len(with_items) // 2]
    spread = (
        f"{len(with_items)} actions have a median of {median_n} scored items; their 95% Wilson CIs "
        f"have a median width of {format_value(widths[len(widths) // 2], 'ppabs')}"
    )
    if n_plotted < 2:
        return [
            Text(
                f"No per-action plot: {n_plotted} of {len(with_items)} actions have at least "
                f"{ACTION_PLOT_MIN_N} scored items ({spread}), too few to tell actions apart; every action "
                "is in the 'All actions' table and the rankings above."
            )
        ]
    shown = "" if n_plotted <= ACTION_PLOT_MAX_ROWS else f", the best and worst {ACTION_PLOT_MAX_ROWS // 2}"
    return [
        Figure(
            f"{prefix}_actions_plot",
            f"Joint by action with 95% Wilson CI ({cond.label}): the {n_plotted} actions with at least "
            f"{ACTION_PLOT_MIN_N} scored items{shown}, sorted; {spread}.",
            plots.dot_plot(plotted, "label", "joint", "joint_lo", "joint_hi", "joint (%)"),
            data_table=f"{prefix}_actions",
        )
    ]


def videocon_blocks(prefix: str, rows: list[dict[str, Any]]) -> list[Any]:
    """The VideoCon-Physics table of a condition (``[]`` when it has no VideoCon score)."""
    if not rows:
        return []
    blocks: list[Any] = []
    whole = rows[0]
    if whole["videocon_coverage"] < 1:
        blocks.append(
            Text(
                f"VideoCon-Physics coverage: {whole['n_videocon_sa']} of {whole['n_items']} items have a "
                f"VideoCon SA score, {whole['n_videocon_pc']} a PC score and {whole['n_videocon']} both "
                f"({format_value(whole['videocon_coverage'], 'pct')}); items without a score are excluded "
                "from its mean.",
                "warning",
            )
        )
    blocks.append(
        Table(
            f"{prefix}_videocon",
            "VideoCon-Physics (second judge)",
            VIDEOCON_TABLE_COLUMNS,
            rows,
            note=VIDEOCON_NOTE,
        )
    )
    return blocks


def condition_section(
    index: int,
    cond: Condition,
    subset_rows: list[dict[str, Any]],
    top_k: int,
    videocon_rows: list[dict[str, Any]],
) -> Section:
    """Everything about one condition."""
    prefix = f"c{index}"
    df = cond.df
    blocks: list[Any] = []
    problems = problem_rows(df)
    n_problems = {k: len(v) for k, v in problems.items()}
    if any(n_problems.values()):
        blocks.append(
            Text(
                f"{n_problems['failed']} failed, {n_problems['not_judged']} not judged and "
                f"{len({(r['prompt_id'], r['seed']) for r in problems['unparseable']})} items "
                "with unparseable judge answers are excluded from the scores; see 'Problems'.",
                "warning",
            )
        )
    blocks.append(Table(f"{prefix}_subsets", "Scores by subset", SUBSET_COLUMNS, subset_rows))
    blocks += videocon_blocks(prefix, videocon_rows)
    blocks.append(_taxonomy_table(prefix, subset_rows))
    rules = rule_distribution(df)
    if sum(r["count"] for r in rules):
        blocks.append(
            Table(
                f"{prefix}_rules",
                "Physical-rule outcomes",
                [
                    Column("rule", "rule"),
                    Column("meaning", "meaning"),
                    Column("count", "count", "int"),
                    Column("share", "share", "pct"),
                ],
                rules,
            )
        )
    by_index = seed_key(df) == "seed_index"
    if n_seeds(df) > 1:  # several videos per prompt
        seed_rows = seed_table(df)
        blocks.append(
            Table(
                f"{prefix}_seeds",
                "Per seed index (k of --seeds), and per prompt averaged over seeds"
                if by_index
                else "Per seed, and per prompt averaged over seeds",
                [
                    Column("seed", "seed index" if by_index else "seed"),
                    *COVERAGE,
                    JOINT_WILSON,
                    Column("mean_sa", "mean SA", "num2"),
                    Column("mean_pc", "mean PC", "num2"),
                ],
                seed_rows,
            )
        )
        var = seed_variance(df)
        blocks.append(
            Text(
                f"Seed variation: over {var['n_prompts_multi_seed']} prompts with several seeds, "
                f"{format_value(var['flip_share'], 'pct')} change their joint outcome between seeds; "
                f"{format_value(var['prompt_share'], 'pct')} of the joint outcome's variance is between "
                "prompts "
                f"(within-prompt variance {format_value(var['within'], 'num3')}, between-prompt "
                f"{format_value(var['between'], 'num3')})."
            )
        )

    actions = action_table(df)
    extremes = action_extremes(actions)
    blocks.append(
        Text(
            f"{extremes['n_actions']} actions with scored items: {extremes['n_actions_joint_0']} "
            f"at joint 0% and {extremes['n_actions_joint_1']} at joint 100%. Rankings break ties "
            "by the number of scored items (more evidence first)."
        )
    )
    for key, ranked in best_worst_actions(actions, top_k).items():
        blocks.append(Table(f"{prefix}_actions_{key}", RANKINGS[key], ACTION_COLUMNS, ranked))
    blocks += action_plot_blocks(prefix, cond, actions)
    blocks.append(Table(f"{prefix}_actions", "All actions", ACTION_COLUMNS, actions, collapsed=True))

    low_sa, low_pc = lowest_videos(df, "sa", top_k), lowest_videos(df, "pc", top_k)
    blocks.append(Table(f"{prefix}_lowest_sa", "Lowest-SA videos", VIDEO_COLUMNS, low_sa))
    blocks.append(Table(f"{prefix}_lowest_pc", "Lowest-PC videos", VIDEO_COLUMNS, low_pc))
    seen: set[tuple[str, Any]] = set()
    videos = []
    for reason, rows in (("lowest SA", low_sa), ("lowest PC", low_pc)):
        for row in rows:
            key = (row["prompt_id"], row["seed"])
            if key not in seen:
                seen.add(key)
                videos.append(_video(row, cond.run_dir, reason))
    blocks.append(VideoGallery(f"{prefix}_worst_videos", "Worst videos", videos))

    blocks.append(
        Table(
            f"{prefix}_unparseable",
            "Problems: unparseable judge answers",
            [
                Column("prompt_id", "prompt"),
                Column("seed", "seed"),
                Column("field", "field"),
                Column("official_value", "official score", "num2"),
                Column("raw", "raw answer"),
            ],
            problems["unparseable"],
            note="Excluded from the scores above; the official script would score them 0.",
        )
    )
    problem_columns = [
        Column("prompt_id", "prompt"),
        Column("seed", "seed"),
        Column("state", "state"),
        Column("error", "error"),
    ]
    blocks.append(Table(f"{prefix}_failed", "Problems: failed items", problem_columns, problems["failed"]))
    blocks.append(
        Table(
            f"{prefix}_not_judged",
            "Problems: items not judged",
            problem_columns,
            problems["not_judged"],
            collapsed=True,
        )
    )
    scope = scope_text(cond)
    if scope:
        blocks.insert(
            0,
            Text(
                f"Subset: {cond.label} holds {scope} of its prompt set; the numbers below describe these "
                "prompts only.",
                "warning",
            ),
        )
    return Section(prefix, f"Condition: {cond.label}", _with_scope(blocks, f" ({scope})" if scope else ""))


METRIC_COLUMNS = [
    Column("label", "metric"),
    Column("n", "paired prompts", "int"),
    Column("mean_a", "A", "num2", row_fmt="fmt"),
    Column("mean_b", "B", "num2", row_fmt="fmt"),
    Column("diff", "B - A [95% bootstrap CI]", "signed2", ("diff_lo", "diff_hi"), row_fmt="fmt_diff"),
    Column("normal_lo", "normal CI low", "signed2", row_fmt="fmt_diff"),
    Column("normal_hi", "normal CI high", "signed2", row_fmt="fmt_diff"),
    Column("improved", "improved", "int"),
    Column("unchanged", "unchanged", "int"),
    Column("degraded", "degraded", "int"),
    Column("test", "test"),
    Column("p", "p", "pvalue"),
    Column("mde", "MDE (80% power)", "num2", row_fmt="fmt_mde"),
]
#: (value, difference, MDE) formats by kind of metric: shares, 1-5 means, VideoCon 0-1 means
_METRIC_FORMATS = {
    "share": ("pct", "pp", "ppabs"),
    "score": ("num2", "signed2", "num2"),
    "videocon": ("num3", "signed3", "num3"),
}
METHODS_NOTE = (
    "The CI and the p-value come from different methods and can disagree near alpha = 0.05: the CI is a "
    "paired bootstrap that resamples whole actions (prompts of one action are correlated), the p-value "
    "a test that treats prompts as independent ({tests}). So a CI crossing zero can sit beside p < 0.05; "
    "the sentence above the table says when they disagree."
)


def _formatted_metrics(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Metric rows with their display formats (``fmt``, ``fmt_diff``, ``fmt_mde``) by kind of metric."""
    out = []
    for row in rows:
        metric = row["metric"]
        kind = (
            "share" if metric in BINARY_METRICS else "videocon" if metric.startswith("videocon") else "score"
        )
        out.append({**row, **dict(zip(("fmt", "fmt_diff", "fmt_mde"), _METRIC_FORMATS[kind], strict=True))})
    return out


def _first_video(cond: Condition, prompt_id: str, reason: str) -> Video:
    """The video of ``prompt_id``'s first seed in ``cond`` (pairs show one video per side)."""
    rows = cond.df[cond.df["prompt_id"] == prompt_id]
    order = rows.sort_values(["seed_index", "seed"], na_position="last")
    return _video(order.iloc[0].to_dict(), cond.run_dir, reason)


def video_pairs(
    prefix: str, base: Condition, other: Condition, prompts: Any, k: int = PAIRS_PER_DIRECTION
) -> VideoPairs:
    """The ``k`` most improved and ``k`` most degraded prompts (by joint, then SA + PC), A beside B."""
    frame = prompts.assign(score_diff=prompts["sa_diff"] + prompts["pc_diff"]).reset_index()
    frame = frame.rename(columns={"index": "prompt_id"})
    pairs = []
    for direction, sign in (("improved", 1), ("degraded", -1)):
        moved = frame[
            (sign * frame["joint_diff"] > 0) | ((frame["joint_diff"] == 0) & (sign * frame["score_diff"] > 0))
        ]
        moved = moved.assign(j=-sign * moved["joint_diff"], s=-sign * moved["score_diff"])
        for row in moved.sort_values(["j", "s", "prompt_id"]).head(k).itertuples():
            pairs.append(
                VideoPair(
                    title=f"{row.prompt_id} ({direction}: joint {format_value(row.joint_diff, 'pp')}, "
                    f"SA {format_value(row.sa_diff, 'signed2')}, PC {format_value(row.pc_diff, 'signed2')})",
                    caption=str(row.caption if isinstance(row.caption, str) else ""),
                    a=_first_video(base, row.prompt_id, "A"),
                    b=_first_video(other, row.prompt_id, "B"),
                )
            )
    return VideoPairs(
        f"{prefix}_pairs",
        f"A/B videos of the {k} most improved and {k} most degraded prompts (first seed each)",
        base.label,
        other.label,
        pairs,
    )


def verdict(label_a: str, label_b: str, joint: dict[str, Any]) -> str:
    """One sentence stating the joint comparison with its uncertainty, robust to action clustering."""
    test_significant = joint["p"] < 0.05
    ci_excludes_zero = joint["diff_lo"] > 0 or joint["diff_hi"] < 0
    if test_significant and ci_excludes_zero:
        conclusion = "a significant difference at alpha = 0.05."
    elif test_significant or ci_excludes_zero:
        conclusion = (
            "inconclusive: the test (which treats prompts as independent) and the action-clustered "
            "bootstrap CI disagree at alpha = 0.05."
        )
    else:
        conclusion = "no significant difference at alpha = 0.05."
    mde = joint["mde"]
    power = (
        ""
        if mde != mde
        else f" With this many prompts, only differences of about {100 * abs(mde):.1f} pp or more would be "
        "detected with 80% power."
    )
    return (
        f"{label_b} vs {label_a}: joint {format_value(joint['mean_b'], 'pct')} vs "
        f"{format_value(joint['mean_a'], 'pct')} on {joint['n']} paired prompts, difference "
        f"{format_value(joint['diff'], 'pp')} (95% bootstrap CI {format_value(joint['diff_lo'], 'pp')} to "
        f"{format_value(joint['diff_hi'], 'pp')}); {joint['improved']} prompts improved and "
        f"{joint['degraded']} degraded, {joint['test']} p = {format_value(joint['p'], 'pvalue')}: "
        f"{conclusion}{power}"
    )


def _videocon_comparison_blocks(
    prefix: str, base: Condition, other: Condition, rows: list[dict[str, Any]]
) -> list[Any]:
    if rows:
        return [
            Table(
                f"{prefix}_videocon",
                "VideoCon-Physics (second judge): paired differences",
                [*METRIC_COLUMNS[:5], *METRIC_COLUMNS[7:]],
                _formatted_metrics(rows),
                hidden=("metric", "n_only_a", "n_only_b"),
                note="Mean P(yes) (0..1), paired over the prompts where both conditions have that VideoCon "
                "score (per-prompt means over seeds); B - A with the action-cluster paired bootstrap CI, "
                "p from the Wilcoxon signed-rank test (prompts independent): the two can disagree.",
                latex=True,
            )
        ]
    with_videocon = [c.label for c in (base, other) if has_videocon(c.df)]
    if len(with_videocon) == 1:
        return [Text(f"Only {with_videocon[0]} has VideoCon-Physics scores: no paired VideoCon comparison.")]
    return []


def comparison_section(
    index: int,
    base: Condition,
    other: Condition,
    n_boot: int,
    seed: int,
    result: dict[str, Any] | None = None,
) -> Section:
    """Paired comparison of ``other`` (B) against ``base`` (A); ``result``: its :func:`compare`, if done."""
    prefix = f"cmp{index}"
    result = result or compare(base.df, other.df, n_boot=n_boot, seed=seed)
    counts = result["counts"]
    joint = result["metrics"][0]
    blocks: list[Any] = [
        Text(
            f"A = {base.label}, B = {other.label}. Paired over the {counts['n_shared']} prompts scored in "
            "both "
            f"({counts['n_only_a']} scored only in A and {counts['n_only_b']} only in B are left out). "
            "Per-prompt values average the seeds of a prompt. Differences are B - A."
        )
    ]
    if joint["n"] == 0:
        blocks.append(Text("No prompt is scored in both conditions: nothing to compare.", "warning"))
        return Section(prefix, f"Comparison: {other.label} vs {base.label}", blocks)
    if base.judge != other.judge:
        blocks.append(
            Text(
                f"The two conditions were scored by different judges ({base.judge} vs "
                f"{other.judge}); differences mix model and judge effects.",
                "warning",
            )
        )
    prompts_note = caption_source.mismatch(base.label, prompt_choice(base.df), other.label,
                                           prompt_choice(other.df))
    blocks.append(Text(prompts_note, "warning") if prompts_note else Text(
        f"Like for like in prompts: both were generated from the {prompt_choice(base.df)} captions."))
    blocks.append(Text(verdict(base.label, other.label, joint)))
    tests = ", ".join(sorted({r["test"] for r in result["metrics"]}))
    blocks.append(
        Table(
            f"{prefix}_metrics",
            "Paired differences",
            METRIC_COLUMNS,
            _formatted_metrics(result["metrics"]),
            hidden=("metric",),
            note="Shares (joint, SA>=4, PC>=4) in %, their differences and MDE in percentage points; mean SA "
            "and PC on the 1-5 scale. " + METHODS_NOTE.format(tests=tests) + " The normal CI is the "
            "textbook interval of the mean difference (prompts independent). MDE for shares uses "
            "McNemar's normal approximation at the observed discordance; for means, the observed sd of "
            "the per-prompt differences.",
            latex=True,
        )
    )
    blocks.append(
        Table(
            f"{prefix}_subsets",
            "Joint by subset (Holm-adjusted over hard/easy/categories)",
            [
                Column("subset", "subset"),
                Column("n", "paired prompts", "int"),
                Column("joint_a", "A", "pct"),
                Column("joint_b", "B", "pct"),
                Column("diff", "B - A [95% CI]", "pp", ("diff_lo", "diff_hi")),
                Column("improved", "improved", "int"),
                Column("degraded", "degraded", "int"),
                Column("p", "p", "pvalue"),
                Column("p_holm", "p (Holm)", "pvalue"),
            ],
            result["subsets"],
            note="B - A with the action-cluster paired bootstrap CI; p: "
            f"{joint['test']} (prompts independent), so a CI crossing zero can sit beside p < 0.05. "
            "p (Holm): adjusted over the hard/easy/category subsets ('all' is not adjusted).",
            latex=True,
        )
    )
    blocks += _videocon_comparison_blocks(prefix, base, other, result["videocon"])
    blocks.append(
        Table(
            f"{prefix}_power",
            "Power of this design for the joint score",
            [
                Column("delta", "true difference", "pp"),
                Column("power", "power at this n", "pct"),
                Column("n_needed", "prompts for 80% power", "int"),
            ],
            result["power"],
            note=f"At the observed discordance {format_value(result['p_disc'], 'pct')} "
            "(share of prompts whose joint outcome differs).",
        )
    )
    blocks.append(
        Figure(
            f"{prefix}_deltas",
            "Paired changes per prompt",
            plots.paired_deltas(result["metrics"], result["prompts"]),
            data_table=f"{prefix}_prompts",
        )
    )
    blocks.append(video_pairs(prefix, base, other, result["prompts"]))
    prompt_rows = result["prompts"].reset_index().rename(columns={"index": "prompt_id"})
    blocks.append(
        Table(
            f"{prefix}_prompts",
            "Per-prompt values",
            [
                Column("prompt_id", "prompt"),
                Column("action", "action"),
                Column("is_hard", "hard"),
                Column("joint_a", "joint A", "pct"),
                Column("joint_b", "joint B", "pct"),
                Column("sa_a", "SA A", "num2"),
                Column("sa_b", "SA B", "num2"),
                Column("pc_a", "PC A", "num2"),
                Column("pc_b", "PC B", "num2"),
            ],
            prompt_rows.to_dict("records"),
            collapsed=True,
            note="joint A/B: share of a prompt's seeds that pass (0% or 100% with one seed).",
        )
    )
    suffix = _scope_suffix([base, other])
    return Section(prefix, f"Comparison: {other.label} vs {base.label}", _with_scope(blocks, suffix))


def build_report(
    conditions: list[Condition],
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    top_k: int = 10,
    title: str | None = None,
    primary_round: str = "last",
) -> Report:
    """The report of ``conditions``; with several, each later one is compared with the first. For the
    rounds of one refined run, a section names the primary round (``primary_round``: last or best)."""
    if not conditions:
        raise ValueError("no conditions to report")
    subset_rows = [subset_table(c.df, n_boot=n_boot, seed=seed) for c in conditions]
    overview = overview_table(conditions, subset_rows)
    subset_names = [r["subset"] for r in subset_rows[0]]
    series = {}
    for cond, rows in zip(conditions, subset_rows, strict=True):
        by_name = {r["subset"]: r for r in rows}
        series[cond.label] = [by_name.get(name, {}) for name in subset_names]
    videocon_rows = [videocon_subset_table(c.df, n_boot=n_boot, seed=seed) for c in conditions]
    conventions = CONVENTIONS + (VIDEOCON_CONVENTION if any(videocon_rows) else "")
    blocks: list[Any] = [Text(conventions), overview]
    with_scores = {c.label: scored(c.df) for c in conditions if len(scored(c.df))}
    if with_scores:
        blocks.append(
            Figure(
                "joint_by_subset",
                "Joint score by subset with 95% cluster-bootstrap CI",
                plots.grouped_bars(
                    subset_names,
                    {label: rows for label, rows in series.items() if label in with_scores},
                    "joint",
                    "joint_boot_lo",
                    "joint_boot_hi",
                    "joint (%)",
                ),
                data_table="c0_subsets",
            )
        )
        blocks.append(
            Figure(
                "score_histograms",
                "SA and PC score distributions (scored items)",
                plots.score_histograms(with_scores),
            )
        )
    if len(with_scores) < len(conditions):
        unscored = [c.label for c in conditions if c.label not in with_scores]
        blocks.append(
            Text(
                f"Nothing scored in {', '.join(unscored)}: "
                + ("no plots." if not with_scores else "left out of the plots.")
            )
        )
    scopes = [f"{c.label} holds {scope_text(c)}" for c in conditions if scope_text(c)]
    if scopes:
        blocks.insert(
            1,
            Text(
                "Subset of the prompt set (--limit, --ids or --hard-only): "
                + "; ".join(scopes)
                + ". The numbers describe these prompts only, not the whole benchmark.",
                "warning",
            ),
        )
    low_coverage = [r for r in overview.rows if r["coverage"] < 1]
    if low_coverage:
        blocks.insert(
            1,
            Text(
                "Incomplete coverage: "
                + ", ".join(f"{r['condition']} scored {r['n']} of {r['n_items']} items" for r in low_coverage)
                + ". Scores describe the scored items only.",
                "warning",
            ),
        )
    if any(videocon_rows):
        blocks.append(videocon_reference_table(conditions, videocon_rows))
    sections = [Section("overview", "Overview", blocks)]
    sections += [
        condition_section(i, c, rows, top_k, vrows)
        for i, (c, rows, vrows) in enumerate(zip(conditions, subset_rows, videocon_rows, strict=True))
    ]
    results = [compare(conditions[0].df, other.df, n_boot=n_boot, seed=seed) for other in conditions[1:]]
    if is_rounds_report(conditions):
        sections.insert(1, rounds_section(conditions, results, primary_round))
    sections += [
        comparison_section(i, conditions[0], other, n_boot, seed, result)
        for i, (other, result) in enumerate(zip(conditions[1:], results, strict=True), start=1)
    ]
    runs = list({id(c.run): c.run for c in conditions if c.run is not None}.values())
    banner = [Text(f"{r.label}: {r.state}", "warning") for r in runs if r.state and not r.complete]
    banner += [Text(f"{r.label}: {r.note}") for r in runs if r.note]
    meta = {
        "conditions": ", ".join(c.label for c in conditions),
        "bootstrap resamples": n_boot,
        "bootstrap seed": seed,
        "runs": ", ".join(sorted({str(c.run_dir) for c in conditions if c.run_dir is not None})),
    }
    title = title or "VideoPhy-2 report: " + " vs ".join(c.label for c in conditions)
    return Report(title, sections, meta, banner)
