"""The whole "leaderboard on one judge" path in one go, every part real: the test set's own videos
(21 real rows, video_url rewritten to a loopback HTTP server serving real benchmark MP4s) fetched by
`run --videos videophy2-test`, judged through the real evaluator service by the `openai-vlm` judge
against a loopback server speaking the OpenAI protocol (which checks every frame it receives), then
`videophy-bench leaderboard` over the run with published per-video scores: the report pairs each video
with its human label and its published score by URL, and lists exactly the videos that differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI
from run_dirs import results
from scipy import stats
from test_leaderboard_videos import fixture_rows, write_test_csv
from video_server import VideoServer

from videophy_bench.common import csvio
from videophy_bench.orchestrator.analysis.cli import leaderboard_main
from videophy_bench.orchestrator.analysis.leaderboard import MODEL_NAMES
from videophy_bench.orchestrator.cli import main

FAST = ["--refresh-s", "0.5", "--no-progress"]


@pytest.fixture
def server():
    srv = VideoServer()
    yield srv
    srv.close()


def tables_of(out: Path) -> dict[str, dict]:
    data = json.loads((out / "report.json").read_text())
    return {b["id"]: b for s in data["sections"] for b in s["blocks"] if b["type"] == "table"}


@pytest.mark.slow
def test_leaderboard_videos_judged_by_one_judge_reproduce_published_scores_video_by_video(server, tmp_path):
    root = tmp_path / "root"
    test_csv, rows = write_test_csv(tmp_path / "videophy2_test.csv", server)
    header, _ = fixture_rows()
    assert {"video_url", "sa", "pc", "model_name"} <= set(header)
    # The judge answers each video's SA question with a score of its own (by caption: the question
    # quotes it), so the run's scores differ from video to video; PC questions quote nothing: one score.
    captions = sorted({r["caption"] for r in rows})
    script = {("sa", c): str(1 + k % 5) for k, c in enumerate(captions)}
    run_dir = root / "runs" / "board"
    with FakeOpenAI(models=("fake-vlm",)) as fake:
        fake.judge_script = script
        argv = ["run", "--videos", "videophy2-test", "--test-csv", str(test_csv), "--storage-root", str(root),
                "--out", str(run_dir), "--local", "--judge-model", "openai-vlm", "--llm-endpoint", fake.url,
                "--llm-model", "fake-vlm", "--llm-backoff-s", "0.01", *FAST]
        assert main(argv) == 0
        assert fake.problems == []  # every frame the endpoint got was a frame of a real video

    judged = [r for r in results(run_dir) if r["state"] == "judged"]
    assert len(judged) == len(rows)
    by_url = {r["video_url"]: r for r in judged}
    assert set(by_url) == {r["video_url"] for r in rows}  # results.csv names each video by its URL
    for r in rows:  # the judged score is the one the endpoint gave for that video's caption
        assert float(by_url[r["video_url"]]["sa"]) == float(script[("sa", r["caption"])])

    # Published scores: equal to ours except for two videos, one SA and one PC.
    changed_sa, changed_pc = rows[0]["video_url"], rows[5]["video_url"]
    published = tmp_path / "published.csv"
    out_rows = []
    for r in rows:
        ours = by_url[r["video_url"]]
        sa, pc = float(ours["sa"]), float(ours["pc"])
        sa = sa % 5 + 1 if r["video_url"] == changed_sa else sa
        pc = pc % 5 + 1 if r["video_url"] == changed_pc else pc
        out_rows.append([r["video_url"], r["caption"], r["model_name"], f"{sa:g}", f"{pc:g}"])
    csvio.write_csv(published, ["video_url", "caption", "model_name", "sa_pred_score", "pc_pred_score"],
                    out_rows)

    out = tmp_path / "lb"
    assert leaderboard_main(["--test-csv", str(test_csv), str(run_dir), "--out", str(out),
                             "--published-scores", str(published), "--bootstrap", "200"]) == 0
    tables = tables_of(out)
    repro = {r["model_id"]: r for r in tables["published_reproduction"]["rows"]}
    per_model: dict[str, int] = {}
    for r in rows:
        per_model[r["model_name"]] = per_model.get(r["model_name"], 0) + 1
    assert {m: r["n"] for m, r in repro.items()} == per_model  # every judged video found its published row
    assert sum(r["both_exact"] for r in repro.values()) == len(rows) - 2
    assert sum(r["sa_exact"] for r in repro.values()) == len(rows) - 1
    assert sum(r["pc_exact"] for r in repro.values()) == len(rows) - 1
    listed = {r["video_url"] for r in tables["published_mismatches"]["rows"]}
    assert listed == {changed_sa, changed_pc}
    # Our judge against the human labels of the very same videos, model by model.
    agreement = {r["model"]: r for r in tables["judge_agreement"]["rows"]}
    assert {MODEL_NAMES[m]: agreement[MODEL_NAMES[m]]["n"] for m in per_model} == {
        MODEL_NAMES[m]: n for m, n in per_model.items()}
    ours = [float(by_url[r["video_url"]]["sa"]) for r in rows]
    human = [float(r["sa"]) for r in rows]
    pooled = agreement["all leaderboard videos"]
    assert pooled["n"] == len(rows)
    assert pooled["r_sa"] == pytest.approx(stats.pearsonr(ours, human).statistic)
    assert (out / "tables" / "published_mismatches.csv").is_file()
