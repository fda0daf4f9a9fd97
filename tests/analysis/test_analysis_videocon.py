"""VideoCon-Physics as a second judge: summary keys, the report table, coverage and paired differences."""

from __future__ import annotations

import csv
import json
import math

import pytest
from analysis_ledgers import CATEGORIES, benchmark_rows, frame, item, tables_of

from videophy_bench.orchestrator.analysis.cli import report_main
from videophy_bench.orchestrator.analysis.document import format_cell
from videophy_bench.orchestrator.analysis.metrics import has_videocon, summarize, videocon_subset_table
from videophy_bench.orchestrator.analysis.paired import compare
from videophy_bench.orchestrator.analysis.report import VIDEOCON_TABLE_COLUMNS


def four_items():
    """Hard: SA .2/.4, PC .1/.1; easy: SA .6/.8, PC .3/.5 - one action per item."""
    values = [
        ("p1", True, 0.2, 0.1),
        ("p2", True, 0.4, 0.1),
        ("p3", False, 0.6, 0.3),
        ("p4", False, 0.8, 0.5),
    ]
    return [
        item(
            p, 4, 4, is_hard=hard, action=f"a{p}", category=CATEGORIES[i % 2], videocon_sa=sa, videocon_pc=pc
        )
        for i, (p, hard, sa, pc) in enumerate(values)
    ]


def with_videocon(rows, shift=0.0):
    """Give benchmark rows deterministic VideoCon scores derived from their AutoEval scores."""
    return [
        {**r, "videocon_sa": min(1.0, r["sa"] / 5 - 0.1 + shift), "videocon_pc": max(0.0, r["pc"] / 5 - 0.3)}
        for r in rows
    ]


def test_summary_known_answers_all_hard_easy():
    summary = summarize(frame(four_items()), n_boot=500, seed=0)
    assert (summary["videocon_sa"], summary["videocon_pc"]) == pytest.approx((0.5, 0.25))
    assert summary["videocon_combined"] == pytest.approx(0.375)
    assert (summary["videocon_sa_hard"], summary["videocon_pc_hard"]) == pytest.approx((0.3, 0.1))
    assert summary["videocon_combined_hard"] == pytest.approx(0.2)
    assert (summary["videocon_sa_easy"], summary["videocon_pc_easy"]) == pytest.approx((0.7, 0.4))
    assert summary["videocon_combined_easy"] == pytest.approx(0.55)
    assert summary["n_videocon"] == summary["n_videocon_sa"] == summary["n_videocon_pc"] == 4
    assert (summary["n_videocon_hard"], summary["n_videocon_easy"], summary["videocon_coverage"]) == (
        2,
        2,
        1.0,
    )
    for stat in ("videocon_sa", "videocon_pc", "videocon_combined"):
        for suffix in ("", "_hard", "_easy"):
            low, high = summary[f"{stat}{suffix}_boot_lo"], summary[f"{stat}{suffix}_boot_hi"]
            assert low <= summary[f"{stat}{suffix}"] <= high
    json.dumps(summary, allow_nan=False)  # strict JSON for summary.json


def test_seed_report_table_is_reproduced():
    """The seed's Wan2.2-TI2V-5B table: 600 videos, 180 hard; Combined = (SA + PC) / 2 per subset."""
    rows = []
    for i in range(600):
        hard = i < 180
        sa, pc = (0.2817, 0.1406) if hard else (0.4347, 0.2026)
        rows.append(item(f"p{i}", 3, 3, is_hard=hard, action=f"a{i % 50}", videocon_sa=sa, videocon_pc=pc))
    summary = summarize(frame(rows), n_boot=200)
    assert round(summary["videocon_sa"], 4) == 0.3888 and round(summary["videocon_pc"], 4) == 0.1840
    assert round(summary["videocon_combined"], 4) == 0.2864
    assert summary["videocon_combined_hard"] == pytest.approx(0.2112, abs=6e-5)  # (0.2817 + 0.1406) / 2
    assert summary["videocon_combined_easy"] == pytest.approx(0.3187, abs=6e-5)
    assert (summary["n_videocon"], summary["n_videocon_hard"], summary["n_videocon_easy"]) == (600, 180, 420)


def test_summary_bootstrap_is_seeded():
    df = frame(with_videocon(benchmark_rows(100, 30, rng_seed=4)))
    first, again, other = summarize(df, seed=5), summarize(df, seed=5), summarize(df, seed=6)
    keys = ("videocon_sa_boot_lo", "videocon_pc_boot_hi", "videocon_combined_hard_boot_lo")
    assert [first[k] for k in keys] == [again[k] for k in keys]
    assert [first[k] for k in keys] != [other[k] for k in keys]
    assert first["n_videocon_clusters"] == 30


def test_run_without_videocon_has_no_videocon_keys():
    df = frame(benchmark_rows(40, 10))
    assert not has_videocon(df) and videocon_subset_table(df) == []
    summary = summarize(df)
    assert not [k for k in summary if "videocon" in k]
    assert not has_videocon(frame([item("p1", 4, 4)]).drop(columns=["videocon_sa", "videocon_pc"]))


def test_partial_coverage_excludes_unscored_items():
    rows = [
        item("p1", 4, 4, videocon_sa=0.9, videocon_pc=0.5, action="a1"),
        item("p2", 2, 2, videocon_sa=0.3, videocon_pc=0.1, action="a2"),
        item("p3", 4, 4, videocon_sa=0.6, action="a3"),  # PC not judged by VideoCon
        item("p4", 4, 4, action="a4"),  # not judged by VideoCon at all
        item("p5", 0, 4, sa_parse="unparseable", videocon_sa=0.0, videocon_pc=0.3, action="a5"),
        item("p6", None, None, state="failed", videocon_sa=1.0, videocon_pc=1.0, action="a6"),
    ]
    summary = summarize(frame(rows), n_boot=200)
    # SA over p1, p2, p3, p5; PC over p1, p2, p5; combined over p1, p2, p5; the failed p6 never counts
    assert summary["videocon_sa"] == pytest.approx((0.9 + 0.3 + 0.6 + 0.0) / 4)
    assert summary["videocon_pc"] == pytest.approx((0.5 + 0.1 + 0.3) / 3)
    assert summary["videocon_combined"] == pytest.approx((0.7 + 0.2 + 0.15) / 3)
    assert (summary["n_videocon_sa"], summary["n_videocon_pc"], summary["n_videocon"]) == (4, 3, 3)
    assert summary["videocon_coverage"] == pytest.approx(3 / 6)
    assert summary["n"] == 4  # the AutoEval numbers are unchanged: p4 counts there, p5 does not
    assert summary["n_videocon_hard"] == 0 and summary["videocon_sa_hard"] is None


def test_by_condition_carries_videocon():
    rows = [
        item(f"p{i}", 4, 4, round=r, videocon_sa=0.2 + 0.4 * r, videocon_pc=0.1)
        for r in (0, 1)
        for i in range(3)
    ]
    summary = summarize(frame(rows), n_boot=0)
    assert [c["videocon_sa"] for c in summary["by_condition"]] == pytest.approx([0.2, 0.6])
    assert [c["n_videocon"] for c in summary["by_condition"]] == [3, 3]
    assert "videocon_sa_boot_lo" not in summary  # n_boot = 0: no CI


def test_paired_videocon_known_differences():
    a_rows = [
        item(f"p{i}", 4, 4, action=f"a{i % 5}", videocon_sa=0.1 * (i % 4), videocon_pc=0.2) for i in range(20)
    ]
    b_rows = [
        {**r, "videocon_sa": r["videocon_sa"] + 0.1, "videocon_pc": None if i == 0 else 0.25}
        for i, r in enumerate(a_rows)
    ]
    result = compare(frame(a_rows), frame(b_rows), n_boot=500, seed=0)
    rows = {r["metric"]: r for r in result["videocon"]}
    assert list(rows) == ["videocon_sa", "videocon_pc"]
    sa, pc = rows["videocon_sa"], rows["videocon_pc"]
    assert (sa["n"], sa["diff"], sa["improved"], sa["degraded"]) == (20, pytest.approx(0.1), 20, 0)
    assert (sa["diff_lo"], sa["diff_hi"]) == pytest.approx((0.1, 0.1))
    assert sa["test"] == "Wilcoxon signed-rank" and sa["p"] < 0.001
    assert (pc["n"], pc["n_only_a"], pc["n_only_b"]) == (19, 1, 0)  # p0 has no PC in B: not paired
    assert pc["diff"] == pytest.approx(0.05) and pc["mean_a"] == pytest.approx(0.2)
    assert result["metrics"][0]["n"] == 20  # the AutoEval pairing is unaffected


def test_paired_videocon_needs_both_runs():
    a = frame(with_videocon(benchmark_rows(30, 10)))
    assert compare(a, frame(benchmark_rows(30, 10)), n_boot=100)["videocon"] == []
    assert compare(frame(benchmark_rows(30, 10)), a, n_boot=100)["videocon"] == []


def test_report_videocon_table_reference_and_comparison(run_factory, tmp_path):
    base_rows = with_videocon(benchmark_rows(60, 20, rng_seed=1))
    base_rows[3] = {**base_rows[3], "videocon_sa": None, "videocon_pc": None}  # partial coverage
    base = run_factory(base_rows, name="base")
    new = run_factory(with_videocon(benchmark_rows(60, 20, rng_seed=2), shift=0.1), name="new")
    out = tmp_path / "out"
    assert report_main([str(base), str(new), "--out", str(out), "--bootstrap", "200", "--seed", "1"]) == 0
    data, tables = tables_of(out)
    table = tables["c0_videocon"]
    assert table["title"] == "VideoCon-Physics (second judge)"
    subsets = [r["subset"] for r in table["rows"]]
    assert subsets == ["all", "hard", "easy", *(f"category: {c}" for c in sorted(CATEGORIES))]
    whole = table["rows"][0]
    summary = summarize(frame(base_rows), n_boot=200, seed=1)
    for key in ("videocon_sa", "videocon_pc", "videocon_combined", "videocon_sa_boot_lo", "n_videocon"):
        assert whole[key] == pytest.approx(summary[key])
    assert (whole["n_items"], whole["n_videocon"]) == (60, 59)
    texts = [b["text"] for s in data["sections"] for b in s["blocks"] if b["type"] == "text"]
    assert any("VideoCon-Physics coverage: 59 of 60 items" in t for t in texts)
    with (out / "tables" / "c0_videocon.csv").open() as fh:
        assert float(next(csv.DictReader(fh))["videocon_sa"]) == pytest.approx(whole["videocon_sa"])
    shown = format_cell(whole, VIDEOCON_TABLE_COLUMNS[6])
    page = (out / "report.html").read_text().replace("\u00a0", " ")  # the page wraps only before a CI
    assert shown in (out / "report.md").read_text() and shown in page
    reference = tables["videocon_reference"]["rows"]
    assert [r["model"] for r in reference[:2]] == ["base", "new"]
    cog = next(r for r in reference if r["model"] == "CogVideoX-5B")
    assert (cog["videocon_sa"], cog["videocon_pc"]) == (0.48, 0.26)
    paired = {r["metric"]: r for r in tables["cmp1_videocon"]["rows"]}
    assert paired["videocon_sa"]["n"] == 59 and paired["videocon_pc"]["n"] == 59
    assert paired["videocon_sa"]["diff"] > 0


def test_plain_report_has_no_second_judge_section(run_factory, tmp_path):
    plain = run_factory(benchmark_rows(40, 10, rng_seed=1), name="plain")
    judged = run_factory(with_videocon(benchmark_rows(40, 10, rng_seed=2)), name="judged")
    out = tmp_path / "plain"
    assert report_main([str(plain), "--out", str(out), "--bootstrap", "100"]) == 0
    _, tables = tables_of(out)
    assert not [t for t in tables if "videocon" in t]
    for name in ("report.html", "report.md", "report.json"):
        text = (out / name).read_text()
        assert "VideoCon" not in text and "videocon_" not in text
    mixed = tmp_path / "mixed"
    assert report_main([str(plain), str(judged), "--out", str(mixed), "--bootstrap", "100"]) == 0
    data, tables = tables_of(mixed)
    assert "c1_videocon" in tables and "c0_videocon" not in tables and "cmp1_videocon" not in tables
    assert tables["videocon_reference"]["rows"][0]["model"] == "judged"
    texts = [b["text"] for s in data["sections"] for b in s["blocks"] if b["type"] == "text"]
    assert "Only judged has VideoCon-Physics scores: no paired VideoCon comparison." in texts
    assert not math.isnan(tables["c1_videocon"]["rows"][0]["videocon_sa"])
