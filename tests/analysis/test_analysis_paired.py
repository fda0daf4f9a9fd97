"""Paired comparison: the seed's own McNemar example, counts, multi-seed, Holm and reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from analysis_ledgers import CATEGORIES, benchmark_rows, frame, item

from videophy_bench.orchestrator.analysis.paired import compare


def seed_example() -> tuple[pd.DataFrame, pd.DataFrame]:
    """360 prompts: 60 pass in both, 27 pass only in A (baseline), 22 only in B (PhyT2V), 251 in neither.
    Each prompt is its own action, so the bootstrap resamples prompts."""
    a_pass = [1] * 60 + [1] * 27 + [0] * 22 + [0] * 251
    b_pass = [1] * 60 + [0] * 27 + [1] * 22 + [0] * 251
    order = np.random.default_rng(3).permutation(360)  # the order of prompts must not matter

    def rows(passes):
        return [
            item(f"vp2-{i:04d}", 5 if passes[j] else 3, 4, action=f"action {i}") for i, j in enumerate(order)
        ]

    return frame(rows(a_pass)), frame(rows(b_pass))


def test_seed_mcnemar_example():
    a, b = seed_example()
    result = compare(a, b, n_boot=10_000, seed=0)
    joint = result["metrics"][0]
    assert joint["metric"] == "joint"
    assert (joint["n"], joint["sum_a"], joint["sum_b"]) == (360, 87, 82)
    assert (joint["improved"], joint["unchanged"], joint["degraded"]) == (22, 311, 27)
    assert joint["test"] == "exact McNemar"
    assert joint["p"] == pytest.approx(0.568, abs=0.001)
    assert 100 * joint["diff"] == pytest.approx(-1.39, abs=0.005)
    # normal-approximation CI [-5.20, +2.42]; the bootstrap gives about the same
    assert (100 * joint["normal_lo"], 100 * joint["normal_hi"]) == pytest.approx((-5.20, 2.42), abs=0.005)
    assert 100 * joint["diff_lo"] == pytest.approx(-5.2, abs=0.3)
    assert 100 * joint["diff_hi"] == pytest.approx(2.4, abs=0.3)
    assert 0.05 < joint["mde"] < 0.06  # 5 pp would be detected only 73% of the time
    power = {round(r["delta"], 2): r for r in result["power"]}
    assert power[0.05]["power"] == pytest.approx(0.73, abs=0.005)
    assert result["counts"] == {"n_shared": 360, "n_only_a": 0, "n_only_b": 0}


def test_direction_counts_for_scores_and_unshared_prompts():
    a = frame(
        [
            item("p1", 3, 4),
            item("p2", 4, 4),
            item("p3", 5, 2),
            item("p4", 2, 2),
            item("only-a", 5, 5),
            item("fail-b", 5, 5),
        ]
    )
    b = frame(
        [
            item("p1", 4, 4),
            item("p2", 4, 3),
            item("p3", 5, 2),
            item("p4", 1, 3),
            item("only-b", 5, 5),
            item("fail-b", None, None, state="failed"),
        ]
    )
    result = compare(a, b, n_boot=500, seed=0)
    metrics = {m["metric"]: m for m in result["metrics"]}
    assert result["counts"] == {"n_shared": 4, "n_only_a": 2, "n_only_b": 1}
    assert [metrics["sa"][k] for k in ("improved", "unchanged", "degraded")] == [1, 2, 1]
    assert [metrics["pc"][k] for k in ("improved", "unchanged", "degraded")] == [1, 2, 1]
    assert [metrics["joint"][k] for k in ("improved", "unchanged", "degraded")] == [1, 2, 1]
    assert metrics["sa"]["diff"] == pytest.approx((1 + 0 + 0 - 1) / 4)
    assert metrics["sa_pass"]["diff"] == pytest.approx(0.25)  # p1 crosses SA>=4
    assert metrics["pc_pass"]["diff"] == pytest.approx(-0.25)  # p2 drops below PC 4
    assert metrics["sa"]["test"] == "Wilcoxon signed-rank"


def test_identical_runs_have_no_difference():
    a = frame(benchmark_rows(60, 20))
    result = compare(a, a.copy(), n_boot=500, seed=0)
    for metric in result["metrics"]:
        assert metric["diff"] == 0 and metric["p"] == 1.0 and metric["improved"] == metric["degraded"] == 0
        assert metric["diff_lo"] == metric["diff_hi"] == 0


def test_multi_seed_pairs_prompt_means_with_a_sign_test():
    a = frame(
        [item(f"p{p}", 5 if s == 0 else 2, 5, seed=s, action=f"a{p}") for p in range(10) for s in (0, 1)]
    )
    b = frame([item(f"p{p}", 5, 5, seed=s, action=f"a{p}") for p in range(10) for s in (0, 1)])
    joint = compare(a, b, n_boot=500, seed=0)["metrics"][0]
    assert joint["test"].startswith("sign test")
    assert (joint["mean_a"], joint["mean_b"], joint["improved"]) == (0.5, 1.0, 10)
    assert joint["p"] == pytest.approx(2 * 0.5**10)


def test_subset_comparisons_are_holm_adjusted():
    rows_a, rows_b = [], []
    for i in range(200):
        hard = i < 80
        category = CATEGORIES[i % 2]
        rows_a.append(item(f"p{i}", 2, 5, is_hard=hard, category=category, action=f"a{i % 50}"))
        improve = (i % 3 == 0) if hard else (i % 5 == 0)
        rows_b.append(
            item(f"p{i}", 5 if improve else 2, 5, is_hard=hard, category=category, action=f"a{i % 50}")
        )
    result = compare(frame(rows_a), frame(rows_b), n_boot=1000, seed=0)
    subsets = {r["subset"]: r for r in result["subsets"]}
    assert set(subsets) == {"all", "hard", "easy", f"category: {CATEGORIES[0]}", f"category: {CATEGORIES[1]}"}
    family = [subsets[k] for k in subsets if k != "all"]
    ordered = sorted(family, key=lambda r: r["p"])
    m = len(family)
    expected, running = [], 0.0
    for rank, row in enumerate(ordered):
        running = max(running, min(1.0, (m - rank) * row["p"]))
        expected.append(running)
    assert [r["p_holm"] for r in ordered] == pytest.approx(expected)
    assert subsets["all"]["p_holm"] == subsets["all"]["p"]
    assert subsets["hard"]["n"] == 80 and subsets["hard"]["improved"] == 27
    assert all(r["p_holm"] >= r["p"] for r in family)


def test_empty_subset_in_comparison():
    a = frame([item(f"p{i}", 4, 4, is_hard=None) for i in range(5)])
    result = compare(a, a.copy(), n_boot=100, seed=0)
    hard = next(r for r in result["subsets"] if r["subset"] == "hard")
    assert hard["n"] == 0 and math.isnan(hard["diff"]) and math.isnan(hard["p_holm"])


def test_paired_bootstrap_is_reproducible():
    a, b = frame(benchmark_rows(100, 30, rng_seed=1)), frame(benchmark_rows(100, 30, rng_seed=2))
    first = compare(a, b, n_boot=1000, seed=11)["metrics"]
    again = compare(a, b, n_boot=1000, seed=11)["metrics"]
    other = compare(a, b, n_boot=1000, seed=12)["metrics"]
    assert [(m["diff_lo"], m["diff_hi"]) for m in first] == [(m["diff_lo"], m["diff_hi"]) for m in again]
    assert [(m["diff_lo"], m["diff_hi"]) for m in first] != [(m["diff_lo"], m["diff_hi"]) for m in other]
