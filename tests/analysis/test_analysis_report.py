"""The report command: every format from one document, self-contained, deterministic."""

from __future__ import annotations

import csv
import re
import shutil

import pytest
from analysis_ledgers import benchmark_rows, item, tables_of

from videophy_bench.orchestrator.analysis.cli import report_main
from videophy_bench.orchestrator.analysis.document import Column, format_cell, format_value
from videophy_bench.orchestrator.analysis.loading import load_results
from videophy_bench.orchestrator.analysis.metrics import summarize
from videophy_bench.orchestrator.analysis.render_latex import escape_latex


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
    page = (out / "report.html").read_text().replace("\u00a0", " ")  # the page wraps only before a CI
    assert shown in page and shown in (out / "report.md").read_text()
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
    # subsets, histograms, paired deltas; 80 prompts on 25 actions: no action has 10 items to plot
    assert html.count("<svg") == 3 and "No per-action plot: 0 of 25 actions" in html
    assert "garbage &lt;b&gt;answer&lt;/b&gt;" in html  # judge text is escaped
    # nothing is fetched from the network; the shown videos are placed in the report folder
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert not re.search(r"<(script|link)\b", html)
    srcs = re.findall(r'<video[^>]*src="([^"]+)"', html)
    assert srcs and all(s.startswith("videos/") for s in srcs)
    for name in ("report.md", "report.json", "tables/cmp1_metrics.csv", "tables/c1_subsets.csv"):
        assert (out / name).exists()
    # the folder moves as a whole: every video link still resolves with the runs gone
    moved = tmp_path / "elsewhere" / "report"
    shutil.move(out, moved)
    shutil.rmtree(base)
    shutil.rmtree(new)
    assert all((moved / s).is_file() for s in srcs)
    assert all(
        (moved / s).is_file() for s in re.findall(r"\[video\]\(([^)]+)\)", (moved / "report.md").read_text())
    )


def test_output_is_deterministic_and_videos_can_be_embedded(two_runs, tmp_path):
    base, new = two_runs
    args = [str(base), str(new), "--bootstrap", "200", "--seed", "9"]
    assert report_main([*args, "--out", str(tmp_path / "a")]) == 0
    assert report_main([*args, "--out", str(tmp_path / "b")]) == 0
    for name in ("report.json", "report.md", "tables/cmp1_metrics.csv", "latex/cmp1_metrics.tex"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    for name in ("figures/joint_by_subset.png", "figures/cmp1_deltas.pdf"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
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
    assert "Nothing scored in down: left out of the plots." in texts

    alone = tmp_path / "alone"
    assert report_main([str(failed), "--out", str(alone), "--bootstrap", "100"]) == 0
    data, _ = tables_of(alone)
    blocks = [b for s in data["sections"] for b in s["blocks"]]
    assert not [b for b in blocks if b["type"] == "figure"] and not list((alone / "figures").iterdir())
    assert "Nothing scored in down: no plots." in [b["text"] for b in blocks if b["type"] == "text"]
    assert "<svg" not in (alone / "report.html").read_text()


def _figures(data: dict) -> dict[str, dict]:
    return {b["id"]: b for s in data["sections"] for b in s["blocks"] if b["type"] == "figure"}


def test_one_number_convention_and_the_methods_are_named(two_runs, tmp_path):
    base, new = two_runs
    out = tmp_path / "conv"
    assert report_main([str(base), str(new), "--out", str(out), "--bootstrap", "200"]) == 0
    _, tables = tables_of(out)
    metrics = {r["metric"]: r for r in tables["cmp1_metrics"]["rows"]}
    assert 0 < metrics["joint"]["mean_a"] < 1  # raw data stays a fraction
    page = (out / "report.html").read_text().replace("\u00a0", " ")
    md = (out / "report.md").read_text()
    joint, sa = metrics["joint"], metrics["sa"]
    # a share is a percentage and its difference pp on every row, whatever table it sits in
    for text in (page, md):
        assert (
            f"| {format_value(joint['mean_a'], 'pct')} | {format_value(joint['mean_b'], 'pct')} |" in text
            or (
                f">{format_value(joint['mean_a'], 'pct')}</td>"
                f'<td class="num">{format_value(joint["mean_b"], "pct")}<' in text
            )
        )
        assert format_value(joint["diff"], "pp") in text and format_value(sa["mean_a"], "num2") in text
        assert f"{joint['mean_a']:.3f}" not in text
    notes = {t: tables[t]["note"] for t in ("cmp1_metrics", "cmp1_subsets")}
    for note in notes.values():
        assert "bootstrap" in note and "exact McNemar" in note and "CI crossing zero" in note
    assert format_value(0.2071, "pct") == "20.7%" and format_value(0.0333, "pp") == "+3.3 pp"


def test_per_action_plot_shows_only_actions_with_enough_items(run_factory, tmp_path):
    run = run_factory(benchmark_rows(120, 8, rng_seed=4))  # 15 prompts per action
    out = tmp_path / "actions"
    assert report_main([str(run), "--out", str(out), "--bootstrap", "50"]) == 0
    data, tables = tables_of(out)
    figure = _figures(data)["c0_actions_plot"]
    assert "the 8 actions with at least 10 scored items" in figure["title"]
    assert len(tables["c0_actions"]["rows"]) == 8  # the full table stays
    html = (out / "report.html").read_text()
    svg = html[html.index('data-figure="c0_actions_plot"') :]
    svg = svg[: svg.index("</figure>")]
    assert svg.count("(n=15)") == 8  # each action's label carries its n


def test_limit_subset_is_named_where_the_numbers_are(run_factory, tmp_path):
    rows = [item(f"p{i}", 5, 4 + i % 2, action=f"a{i}") for i in range(4)]
    run = run_factory(rows, name="quick", manifest={"prompt_set": {"n": 590}})
    out = tmp_path / "limit"
    assert report_main([str(run), "--out", str(out), "--bootstrap", "50"]) == 0
    data, tables = tables_of(out)
    overview = tables["overview"]
    assert overview["title"] == "Headline numbers (4 of 590 prompts)"
    assert overview["rows"][0]["prompts"] == "4 of 590" and overview["rows"][0]["n_prompts_set"] == 590
    assert tables["c0_subsets"]["title"].endswith("(4 of 590 prompts)")
    texts = [b["text"] for s in data["sections"] for b in s["blocks"] if b["type"] == "text"]
    assert any("quick holds 4 of 590 prompts" in t for t in texts)
    assert "\\caption{Headline numbers (4 of 590 prompts)}" in (out / "latex" / "overview.tex").read_text()
    whole = run_factory(rows, name="whole", manifest={"prompt_set": {"n": 4}})
    assert report_main([str(whole), "--out", str(tmp_path / "whole"), "--bootstrap", "0"]) == 0
    _, tables = tables_of(tmp_path / "whole")
    assert (
        tables["overview"]["title"] == "Headline numbers"
        and tables["overview"]["rows"][0]["prompts"] == "4 of 4"
    )


def _unescaped(tex: str, char: str) -> int:
    return len(re.findall(r"(?<!\\)" + re.escape(char), tex))


def test_figures_and_latex_tables_are_files(two_runs, tmp_path):
    base, new = two_runs
    out = tmp_path / "paper"
    label = "base_1 & 50% #x {y} ~^\\"
    assert (
        report_main(
            [str(base), str(new), "--out", str(out), "--bootstrap", "100", "--label", label, "--label", "new"]
        )
        == 0
    )
    data, tables = tables_of(out)
    figures = _figures(data)
    assert set(figures) == {"joint_by_subset", "score_histograms", "cmp1_deltas"}
    for figure in figures.values():
        png, pdf = (out / f for f in figure["files"])
        assert png.read_bytes().startswith(b"\x89PNG") and pdf.read_bytes().startswith(b"%PDF")
    html = (out / "report.html").read_text()
    assert (
        'href="figures/cmp1_deltas.pdf"' in html
        and "![Paired changes per prompt](figures/cmp1_deltas.png)" in (out / "report.md").read_text()
    )
    assert sorted(p.name for p in (out / "latex").iterdir()) == [
        "cmp1_metrics.tex",
        "cmp1_subsets.tex",
        "overview.tex",
    ]
    tex = (out / "latex" / "overview.tex").read_text()
    assert (
        "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "\\label{tab:overview}" in tex
    )
    assert escape_latex(label) in tex and escape_latex(label) == (
        "base\\_1 \\& 50\\% \\#x \\{y\\} \\textasciitilde{}\\textasciicircum{}\\textbackslash{}"
    )
    body = tex[tex.index("\\midrule") : tex.index("\\bottomrule")]
    n_columns = len(tables["overview"]["columns"])
    for line in body.splitlines()[1:]:
        assert _unescaped(line, "&") == n_columns - 1  # the label's & does not split a cell
    for char in "%#_":
        # (a % ending a line is LaTeX's own: it joins the lines around \resizebox)
        assert _unescaped("\n".join(x.removesuffix("%") for x in tex.splitlines()[1:]), char) == 0
    assert tex.count("{") - tex.count("\\{") == tex.count("}") - tex.count("\\}")


def test_comparison_shows_a_b_video_pairs(two_runs, tmp_path):
    base, new = two_runs
    out = tmp_path / "pairs"
    assert report_main([str(base), str(new), "--out", str(out), "--bootstrap", "100"]) == 0
    data, tables = tables_of(out)
    block = next(b for s in data["sections"] for b in s["blocks"] if b["type"] == "video_pairs")
    assert (block["label_a"], block["label_b"]) == ("baseline", "phyt2v")
    prompts = {r["prompt_id"]: r for r in tables["cmp1_prompts"]["rows"]}
    improved = [p for p in block["pairs"] if "(improved" in p["title"]]
    degraded = [p for p in block["pairs"] if "(degraded" in p["title"]]
    assert len(improved) == len(degraded) == 4
    for pair in block["pairs"]:
        pid = pair["title"].split()[0]
        assert pair["a"]["path"].endswith(f"baseline/videos/{pid}_s0.mp4")
        assert pair["b"]["path"].endswith(f"phyt2v/videos/{pid}_s0.mp4")
        change = prompts[pid]["joint_b"] - prompts[pid]["joint_a"]
        assert change >= 0 if pair in improved else change <= 0
    html = (out / "report.html").read_text()
    first = html[html.index('data-pairs="cmp1_pairs"') :].split('<div class="pair">')[1]
    assert first.count("<video") == 2 and "A: baseline" in first and "B: phyt2v" in first
