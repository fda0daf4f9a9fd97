"""The report command: every format from one document, self-contained, deterministic."""

from __future__ import annotations

import csv
import re

import pytest
from analysis_ledgers import benchmark_rows, item, tables_of

from services.orchestrator.analysis.cli import report_main
from services.orchestrator.analysis.document import Column, format_cell
from services.orchestrator.analysis.loading import load_results
from services.orchestrator.analysis.metrics import summarize


@pytest.fixture
def two_runs(run_factory):
    rows = benchmark_rows(80, 25, rng_seed=1)
    rows[0] = item(
        "p0000",
        0,
        4,
        sa_parse="unparseable",
        sa_raw="garbage <b>answer</b>",
        action="action 000",
        video_path="videos/p0000_s0.mp4",
    )
    rows[1] = {**rows[1], "state": "failed", "error": "CUDA out of memory", "sa": None, "pc": None}
    base = run_factory(rows, name="baseline", videos=True)
    new = run_factory(benchmark_rows(80, 25, rng_seed=2, pass_shift=0.3), name="phyt2v", videos=True)
    return base, new


def test_single_run_report_numbers_agree_across_formats(two_runs, tmp_path):
    base, _ = two_runs
    out = tmp_path / "single"
    assert report_main([str(base), "--out", str(out), "--bootstrap", "300", "--seed", "3"]) == 0
    data, tables = tables_of(out)
    summary = summarize(load_results(base / "results.csv"))
    overview = tables["overview"]["rows"][0]
    assert overview["joint"] == pytest.approx(summary["joint"]) and overview["n"] == summary["n"] == 78
    assert overview["n_unparseable"] == 1 and overview["n_failed"] == 1
    with (out / "tables" / "overview.csv").open() as fh:
        csv_row = next(csv.DictReader(fh))
    assert float(csv_row["joint"]) == pytest.approx(summary["joint"])
    assert float(csv_row["joint_boot_lo"]) == pytest.approx(overview["joint_boot_lo"])
    column = Column("joint", "", "pct", ("joint_lo", "joint_hi"))
    shown = format_cell(overview, column)
    assert shown in (out / "report.html").read_text() and shown in (out / "report.md").read_text()
    unparseable = tables["c0_unparseable"]["rows"]
    assert [(r["prompt_id"], r["field"], r["raw"]) for r in unparseable] == [
        ("p0000", "sa", "garbage <b>answer</b>")
    ]
    assert tables["c0_failed"]["rows"][0]["error"] == "CUDA out of memory"
    assert not any(s["id"].startswith("cmp") for s in data["sections"])  # one run: no comparison


def test_two_runs_give_a_paired_comparison_and_self_contained_html(two_runs, tmp_path):
    base, new = two_runs
    out = tmp_path / "pair"
    assert report_main([str(base), str(new), "--out", str(out), "--bootstrap", "300"]) == 0
    _, tables = tables_of(out)
    metrics = {r["metric"]: r for r in tables["cmp1_metrics"]["rows"]}
    assert metrics["joint"]["n"] == 78  # the failed and the unparseable prompt of the baseline are not paired
    assert metrics["joint"]["improved"] + metrics["joint"]["unchanged"] + metrics["joint"]["degraded"] == 78
    assert {r["subset"] for r in tables["cmp1_subsets"]["rows"]} >= {"all", "hard", "easy"}
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 5  # subsets, histograms, two action plots, paired deltas
    assert "garbage &lt;b&gt;answer&lt;/b&gt;" in html  # judge text is escaped
    # nothing is fetched from the network; videos are linked relative to the output directory
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert not re.search(r"<(script|link)\b", html)
    srcs = re.findall(r'<video[^>]*src="([^"]+)"', html)
    assert srcs and all(
        s.startswith("../baseline/videos/") or s.startswith("../phyt2v/videos/") for s in srcs
    )
    assert all((out / s).resolve().is_file() for s in srcs)
    for name in ("report.md", "report.json", "tables/cmp1_metrics.csv", "tables/c1_subsets.csv"):
        assert (out / name).exists()


def test_output_is_deterministic_and_videos_can_be_embedded(two_runs, tmp_path):
    base, new = two_runs
    args = [str(base), str(new), "--bootstrap", "200", "--seed", "9"]
    assert report_main([*args, "--out", str(tmp_path / "a")]) == 0
    assert report_main([*args, "--out", str(tmp_path / "b")]) == 0
    for name in ("report.json", "report.md", "tables/cmp1_metrics.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    assert report_main([str(base), "--bootstrap", "0", "--embed-videos", "--out", str(tmp_path / "e")]) == 0
    html = (tmp_path / "e" / "report.html").read_text()
    assert 'src="data:video/mp4;base64,' in html


def test_arms_and_rounds_of_one_run_are_compared(run_factory, tmp_path):
    rows = [item(f"p{i}", 2, 5, round=0, action=f"a{i % 4}") for i in range(12)]
    rows += [item(f"p{i}", 5 if i < 6 else 2, 5, round=1, action=f"a{i % 4}") for i in range(12)]
    run = run_factory(rows, name="refine")
    out = tmp_path / "rounds"
    assert report_main([str(run), "--out", str(out), "--bootstrap", "200"]) == 0
    _, tables = tables_of(out)
    assert [r["condition"] for r in tables["overview"]["rows"]] == ["refine [round 0]", "refine [round 1]"]
    joint = tables["cmp1_metrics"]["rows"][0]
    assert (joint["improved"], joint["degraded"], joint["diff"]) == (6, 0, 0.5)


def test_rounds_report_names_the_primary_round_and_holm_adjusts(run_factory, tmp_path):
    # round 1: 6 of 20 prompts gain; round 2: 12 gain; round 3: 9 gain (and none degrades).
    gains = {1: 6, 2: 12, 3: 9}
    rows = [item(f"p{i}", 2, 5, round=0, action=f"a{i % 5}") for i in range(20)]
    for r, k in gains.items():
        rows += [item(f"p{i}", 5 if i < k else 2, 5, round=r, action=f"a{i % 5}") for i in range(20)]
    run = run_factory(rows, name="refine")
    out = tmp_path / "rounds"
    assert report_main([str(run), "--out", str(out), "--bootstrap", "50"]) == 0
    data, tables = tables_of(out)
    table = tables["rounds"]["rows"]
    assert [r["round"] for r in table] == [1, 2, 3]
    p = [2 * 0.5**k for k in gains.values()]  # exact McNemar with k improved, 0 degraded
    assert [r["p"] for r in table] == pytest.approx(p)
    # Holm: sorted 2^-11, 2^-8, 2^-5 times 3, 2, 1, made monotone, in the input order.
    assert [r["p_holm"] for r in table] == pytest.approx([p[0], 3 * p[1], 2 * p[2]])
    assert [r["primary"] for r in table] == ["", "", "primary"]
    texts = [b["text"] for s in data["sections"] for b in s["blocks"] if b["type"] == "text"]
    assert any(t.startswith("Primary result: round 3 (refine [round 3]), the last round") for t in texts)

    best = tmp_path / "best"
    assert report_main([str(run), "--out", str(best), "--bootstrap", "50", "--primary-round", "best"]) == 0
    data, tables = tables_of(best)
    assert [r["primary"] for r in tables["rounds"]["rows"]] == ["", "primary (selected after the fact)", ""]
    texts = [b["text"] for s in data["sections"] for b in s["blocks"] if b["type"] == "text"]
    assert any("round 2" in t and "SELECTED AFTER THE FACT" in t for t in texts)


def test_bad_input_exits_2(tmp_path, capsys):
    assert report_main([str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "no results.csv" in capsys.readouterr().err


def test_report_survives_a_run_without_scores(run_factory, tmp_path):
    failed = run_factory(
        [item(f"p{i}", None, None, state="failed", error="oom") for i in range(3)], name="down"
    )
    bare = run_factory(
        [item(f"p{i}", 4, 4, action=None, is_hard=None, category=None) for i in range(3)], name="bare"
    )
    out = tmp_path / "edge"
    assert report_main([str(failed), str(bare), "--out", str(out), "--bootstrap", "100"]) == 0
    data, tables = tables_of(out)
    assert [r["n"] for r in tables["overview"]["rows"]] == [0, 3]
    assert tables["overview"]["rows"][0]["joint"] is None  # undefined, not 0
    assert len(tables["c0_failed"]["rows"]) == 3
    texts = [b["text"] for s in data["sections"] for b in s["blocks"] if b["type"] == "text"]
    assert "No prompt is scored in both conditions: nothing to compare." in texts
