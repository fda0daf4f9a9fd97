"""Like for like in prompts: which captions each condition's videos came from (results.csv
`caption_source`, the leaderboard's URL folders), and the report's words on every comparison."""

from __future__ import annotations

import pytest
from analysis_ledgers import frame, item
from test_analysis_leaderboard import write_test_csv

from videophy_bench.orchestrator import caption_source
from videophy_bench.orchestrator.analysis.document import Table, Text
from videophy_bench.orchestrator.analysis.leaderboard import (
    build_leaderboard_report,
    labels_to_results,
    read_test_csv,
)
from videophy_bench.orchestrator.analysis.loading import Condition, prompt_choice
from videophy_bench.orchestrator.analysis.report import build_report

S3 = "https://videophysics2testvideos.s3.us-east-2.amazonaws.com"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"{S3}/wan_videophy2_test_hard_upsampled/A_horseshoe_is_tossed.mp4", "upsampled"),
        (f"{S3}/cogvideoX5b_hard_upsampled/A_hand_holds_a_bottle.mp4", "upsampled"),
        (f"{S3}/hunyuan_xdit/A_person_runs.mp4", "unknown"),
        (f"{S3}/sora_hard_videophy2/Flickering+Candle+Serenity.mp4", "unknown"),
        (f"{S3}/cosmos_videophy2_test_challenging/x.mp4", "unknown"),
        (f"{S3}/mymodel-original/x.mp4", "original"),
        (f"{S3}/x.mp4", "unknown"),  # no folder
        (f"{S3}/upsampled_and_original/x.mp4", "unknown"),  # says both: not guessed
    ],
)
def test_url_folders_say_what_they_say_and_nothing_more(url, expected):
    assert caption_source.of_url(url) == expected


def test_generated_items_and_groups():
    assert caption_source.of_generation("cap", "cap", "up") == "original"
    assert caption_source.of_generation("up", "cap", "up") == "upsampled"
    assert caption_source.of_generation("refined", "cap", "up") == "other"
    assert caption_source.of_generation("", "cap", "up") == "unknown"  # existing videos
    assert caption_source.of_group(["upsampled", "upsampled"]) == "upsampled"
    assert caption_source.of_group(["upsampled", "original"]) == "mixed"
    assert caption_source.of_group([]) == caption_source.of_group([None]) == "unknown"
    assert caption_source.like_for_like("original", "original")
    assert not caption_source.like_for_like("unknown", "unknown")


def _condition(label: str, source: str | None) -> Condition:
    rows = [item(f"p{i}", 5 if i % 2 else 2, 4, action=f"a{i % 3}", caption_source=source) for i in range(12)]
    return Condition(label, frame(rows))


def _texts(report, section: str) -> list[Text]:
    return [b for s in report.sections if s.id.startswith(section) for b in s.blocks if isinstance(b, Text)]


def test_every_comparison_says_whether_its_prompts_match():
    a, b, c, d = (_condition("A", "original"), _condition("B", "upsampled"), _condition("C", "original"),
                  _condition("D", None))
    assert prompt_choice(a.df) == "original" and prompt_choice(d.df) == "unknown"
    report = build_report([a, b, c, d], n_boot=0)
    overview = next(blk for s in report.sections for blk in s.blocks
                    if isinstance(blk, Table) and blk.id == "overview")
    assert [r["caption_source"] for r in overview.rows] == ["original", "upsampled", "original", "unknown"]
    differs = [t for t in _texts(report, "cmp1") if t.text.startswith("Prompt choice differs")]
    assert len(differs) == 1 and differs[0].kind == "warning"
    assert "A was generated from the original captions" in differs[0].text
    assert "B was generated from the upsampled captions" in differs[0].text
    same = [t.text for t in _texts(report, "cmp2")]
    assert "Like for like in prompts: both were generated from the original captions." in same
    assert not any(t.startswith("Prompt choice") for t in same)
    unknown = [t for t in _texts(report, "cmp3") if t.text.startswith("Prompt choice not confirmed")]
    assert len(unknown) == 1 and "nothing records which captions D was generated from" in unknown[0].text


def test_leaderboard_names_the_models_a_run_meets_like_for_like(tmp_path):
    test = labels_to_results(read_test_csv(write_test_csv(tmp_path / "t.csv")))  # wan, cogvideo: upsampled
    mine = _condition("mine (original)", "original")
    up = _condition("mine (upsampled)", "upsampled")
    report = build_leaderboard_report(test, [mine, up], n_boot=0)
    table = next(b for b in report.sections[0].blocks if isinstance(b, Table))
    by_model = {r["model"]: r["caption_source"] for r in table.rows}
    assert by_model["Wan2.1-T2V-14B"] == by_model["CogVideoX-5B"] == "upsampled"
    assert by_model["mine (original)"] == "original"
    notes = {t.text.split(" was ")[0]: t for t in report.sections[0].blocks
             if isinstance(t, Text) and " was generated from " in t.text}
    assert notes["mine (original)"].kind == "warning"
    assert "Not like for like" in notes["mine (original)"].text and "Wan2.1-T2V-14B (upsampled)" in (
        notes["mine (original)"].text)
    assert notes["mine (upsampled)"].kind == "info"
    assert "Like for like in prompts with: Wan2.1-T2V-14B, CogVideoX-5B" in notes["mine (upsampled)"].text


def test_a_run_of_the_leaderboard_videos_is_the_same_videos(tmp_path):
    raw = read_test_csv(write_test_csv(tmp_path / "t.csv"))
    wan = raw[raw["model_name"] == "wan"]
    rows = [item(f"p{k}", 4, 4, arm="wan", caption=c, video_url=u, caption_source="upsampled")
            for k, (c, u) in enumerate(zip(wan["caption"], wan["video_url"], strict=True))]
    report = build_leaderboard_report(labels_to_results(raw), [Condition("ours", frame(rows))], n_boot=0)
    texts = [b.text for b in report.sections[0].blocks if isinstance(b, Text)]
    assert "ours judges the leaderboard's own videos: the same videos, so the same prompts, as the human " \
           "rows of its models." in texts
