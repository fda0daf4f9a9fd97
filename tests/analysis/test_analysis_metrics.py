"""Known answers of the one-run statistics on small hand-built ledgers, including edge cases."""

from __future__ import annotations

import json
import math

import pytest
from analysis_ledgers import CATEGORIES, frame, item

from videophy_bench.orchestrator.analysis.metrics import (
    action_extremes,
    action_table,
    best_worst_actions,
    lowest_videos,
    problem_rows,
    rule_distribution,
    score_stats,
    seed_table,
    seed_variance,
    subset_table,
    summarize,
)


@pytest.fixture
def small():
    """10 items: 4 pass, 2 SA-only fail, 1 PC-only fail, 1 both fail, 1 unparseable, 1 failed."""
    return frame(
        [
            item("p1", 5, 5, action="run", is_hard=True, category=CATEGORIES[0], rule=1, rule_parse="parsed"),
            item(
                "p2", 4, 4, action="run", is_hard=False, category=CATEGORIES[0], rule=0, rule_parse="parsed"
            ),
            item(
                "p3", 4, 5, action="swim", is_hard=False, category=CATEGORIES[1], rule=2, rule_parse="parsed"
            ),
            item("p4", 5, 4, action="swim", is_hard=False, category=CATEGORIES[1]),
            item("p5", 3, 4, action="throw", is_hard=True, category=CATEGORIES[0]),
            item("p6", 1, 5, action="throw", is_hard=True, category=CATEGORIES[0]),
            item("p7", 4, 2, action="pour", is_hard=False, category=CATEGORIES[1]),
            item(
                "p8",
                2,
                3,
                action="pour",
                is_hard=False,
                category=CATEGORIES[1],
                rule_parse="unparseable",
                rule_raw="maybe",
            ),
            item(
                "p9",
                0,
                4,
                action="pour",
                is_hard=False,
                category=CATEGORIES[1],
                sa_parse="unparseable",
                sa_raw="I cannot answer",
            ),
            item("p10", None, None, action="run", is_hard=True, state="failed", error="OOM"),
        ]
    )


def test_headline_numbers_exclude_failed_and_unparseable(small):
    stats = score_stats(small)
    assert (stats["n"], stats["n_items"], stats["n_failed"], stats["n_unparseable"]) == (8, 10, 1, 1)
    assert stats["coverage"] == pytest.approx(0.8)
    assert stats["joint"] == pytest.approx(4 / 8)
    assert stats["mean_sa"] == pytest.approx((5 + 4 + 4 + 5 + 3 + 1 + 4 + 2) / 8)
    assert stats["mean_pc"] == pytest.approx((5 + 4 + 5 + 4 + 4 + 5 + 2 + 3) / 8)
    # official convention: the unparseable item stays in the denominator with joint 0
    assert stats["joint_official"] == pytest.approx(4 / 9) and stats["n_official"] == 9
    assert [stats[f"n_{k}"] for k in ("pass", "sa_only", "pc_only", "both")] == [4, 2, 1, 1]
    assert sum(stats[f"share_{k}"] for k in ("pass", "sa_only", "pc_only", "both")) == pytest.approx(1)


def test_summarize_contract_and_hard_easy(small):
    summary = summarize(small.drop(columns=["status"]))  # raw frames are typed on the way in
    for key in (
        "n",
        "n_items",
        "joint",
        "mean_sa",
        "mean_pc",
        "joint_hard",
        "joint_easy",
        "n_hard",
        "n_easy",
        "coverage",
        "joint_official",
        "n_unparseable",
        "n_failed",
        "joint_lo",
        "joint_hi",
    ):
        assert key in summary
    assert summary["n_hard"] == 3 and summary["joint_hard"] == pytest.approx(1 / 3)
    assert summary["n_easy"] == 5 and summary["joint_easy"] == pytest.approx(3 / 5)
    assert summary["joint_lo"] < summary["joint"] < summary["joint_hi"]


def test_subsets_with_zero_items_give_nan_not_errors():
    df = frame([item("a", 5, 5, is_hard=None), item("b", 1, 1, is_hard=None)])
    rows = {r["subset"]: r for r in subset_table(df, n_boot=200)}
    assert (
        rows["hard"]["n"] == 0 and math.isnan(rows["hard"]["joint"]) and math.isnan(rows["hard"]["joint_lo"])
    )
    assert math.isnan(rows["hard"]["joint_boot_lo"])
    assert summarize(df)["joint_hard"] is None
    assert rows["all"]["joint"] == 0.5


@pytest.mark.parametrize(("sa", "pc", "expected"), [(5, 4, 1.0), (3, 5, 0.0)])
def test_all_pass_and_all_fail(sa, pc, expected):
    df = frame([item(f"p{i}", sa, pc, action=f"a{i % 5}") for i in range(30)])
    row = subset_table(df, n_boot=500)[0]
    assert row["joint"] == expected
    assert row["joint_boot_lo"] == row["joint_boot_hi"] == expected  # no variation to resample
    assert row["joint_lo"] < row["joint_hi"]  # Wilson still gives an honest interval
    assert (row["joint_lo"] == 0.0) == (expected == 0.0) and (row["joint_hi"] == 1.0) == (expected == 1.0)


def test_missing_scores_never_count():
    df = frame([item("a", 4, 4), item("b", None, 5), item("c", 5, None, state="judged")])
    stats = score_stats(df)
    assert (stats["n"], stats["n_not_judged"], stats["joint"]) == (1, 2, 1.0)
    assert [r["prompt_id"] for r in problem_rows(df)["not_judged"]] == ["b", "c"]


def test_problem_rows_list_every_unparseable_field_with_raw_text(small):
    problems = problem_rows(small)
    fields = sorted((r["prompt_id"], r["field"], r["raw"]) for r in problems["unparseable"])
    assert fields == [("p8", "rule", "maybe"), ("p9", "sa", "I cannot answer")]
    assert [(r["prompt_id"], r["error"]) for r in problems["failed"]] == [("p10", "OOM")]


def test_rule_distribution(small):
    rows = {r["rule"]: r for r in rule_distribution(small)}
    assert [rows[k]["count"] for k in ("0", "1", "2", "unparseable")] == [1, 1, 1, 1]
    assert rows["0"]["share"] == pytest.approx(0.25)


def test_actions_best_worst_with_ties_broken_by_evidence():
    rows = [item(f"r{i}", 5, 5, action="run") for i in range(3)]  # 3/3
    rows += [item("s0", 5, 5, action="swim")]  # 1/1: ties with run on joint, less evidence
    rows += [item(f"t{i}", 1, 5, action="throw") for i in range(2)]  # 0/2, SA 1
    rows += [item(f"p{i}", 5, 2, action="pour") for i in range(2)]  # 0/2, PC 2
    rows += [item("x", None, None, action="empty", state="failed")]  # no scored item: never ranked
    table = action_table(frame(rows))
    ranked = best_worst_actions(table, k=2)
    assert [r["action"] for r in ranked["best_joint"]] == ["run", "swim"]
    # tie on joint and n: the lower mean PC ranks worse
    assert [r["action"] for r in ranked["worst_joint"]] == ["pour", "throw"]
    assert ranked["lowest_sa"][0]["action"] == "throw"
    assert ranked["lowest_pc"][0]["action"] == "pour"
    assert action_extremes(table) == {"n_actions": 4, "n_actions_joint_0": 2, "n_actions_joint_1": 2}
    by_action = {r["action"]: r for r in table}
    assert by_action["run"]["n"] == 3 and by_action["empty"]["n"] == 0


def test_lowest_videos_order(small):
    assert [r["prompt_id"] for r in lowest_videos(small, "sa", k=3)] == ["p6", "p8", "p5"]
    assert [r["prompt_id"] for r in lowest_videos(small, "pc", k=2)] == ["p7", "p8"]


def test_multi_seed_aggregation_and_variance():
    rows = []
    for p in range(4):
        for seed in (0, 1):
            passes = (p == 0) or (p == 1 and seed == 0)  # p0 always, p1 once, p2/p3 never
            rows.append(item(f"p{p}", 5 if passes else 2, 5, seed=seed, action=f"a{p}"))
    rows.append(item("p3", None, None, seed=2, state="failed", action="a3"))  # p3 has a failed third seed
    df = frame(rows)
    table = {r["seed"]: r for r in seed_table(df)}
    assert table["0"]["joint"] == 0.5 and table["1"]["joint"] == 0.25
    assert table["2"]["n"] == 0 and table["2"]["n_items"] == 1
    assert table["per-prompt mean over seeds"]["joint"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    var = seed_variance(df)
    assert var["n_prompts_multi_seed"] == 4
    assert var["flip_share"] == pytest.approx(0.25)
    assert var["within"] == pytest.approx(0.25 / 4)  # only p1 varies: population variance 0.25
    assert summarize(df)["n_seeds"] == 3


def test_seed_baseline_failure_split():
    """The seed's Wan2.2-TI2V-5B baseline: 600 prompts, 158 pass, 181 SA-only, 32 PC-only, 229 both;
    15 of 180 hard prompts pass (8.3%) and 143 of 420 easy ones (34.0%)."""
    rows = []
    classes = [("pass", 5, 4)] * 158 + [("sa", 3, 4)] * 181 + [("pc", 4, 3)] * 32 + [("both", 2, 2)] * 229
    hard_pass = 0
    for i, (name, sa, pc) in enumerate(classes):
        hard = (name == "pass" and hard_pass < 15) or (name != "pass" and i % 442 < 165 and i >= 158)
        hard_pass += name == "pass" and hard
        rows.append(item(f"vp2-{i:04d}", sa, pc, is_hard=hard, action=f"a{i % 197}"))
    df = frame(rows)
    summary = summarize(df)
    assert (summary["n"], summary["n_hard"], summary["n_easy"]) == (600, 180, 420)
    assert round(100 * summary["joint"], 1) == 26.3
    assert round(100 * summary["joint_hard"], 1) == 8.3 and round(100 * summary["joint_easy"], 1) == 34.0
    shares = [round(100 * summary[f"share_{k}"], 1) for k in ("both", "sa_only", "pc_only", "pass")]
    assert shares == [38.2, 30.2, 5.3, 26.3]
    assert round(100 * summary["share_sa_below_4"], 1) == 68.3
    assert round(100 * summary["share_pc_below_4"], 1) == 43.5
    json.dumps(summary, allow_nan=False)  # summary.json must be strict JSON


def test_summarize_reports_each_condition_when_arms_are_mixed():
    df = frame(
        [item("a", 5, 5, arm="base"), item("b", 1, 1, arm="base"), item("a", 5, 5, arm="refined", round=1)]
    )
    summary = summarize(df)
    assert summary["joint"] == pytest.approx(2 / 3)
    assert [(c["arm"], c["round"], c["n"], c["joint"]) for c in summary["by_condition"]] == [
        ("base", 0, 2, 0.5),
        ("refined", 1, 1, 1.0),
    ]
    assert "by_condition" not in summarize(df[df["arm"] == "base"])
