"""The human leaderboard from a synthetic videophy2_test.csv with the real column layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from analysis_ledgers import CATEGORIES, item, write_run

from videophy_bench.orchestrator.analysis.cli import leaderboard_main
from videophy_bench.orchestrator.analysis.leaderboard import (
    agreement,
    human_leaderboard,
    labels_to_results,
    match_human,
    read_test_csv,
)
from videophy_bench.orchestrator.analysis.loading import load_run

# header of videophysics/videophy2_test videophy2_test.csv, including its unnamed empty column
HEADER = [
    "caption",
    "video_url",
    "sa",
    "pc",
    "joint",
    "action",
    "is_hard",
    "physics_rules_followed",
    "physics_rules_unfollowed",
    "physics_rules_cannot_be_determined",
    "human_violated_rules",
    "model_name",
    "category",
    "",
    "metadata_rules",
    "upsampled_caption",
]
FOLDERS = {"wan": "wan_videophy2_test_hard_upsampled", "cogvideo": "cogvideoX5b_hard_upsampled"}
BASE_URL = "https://videophysics2testvideos.s3.us-east-2.amazonaws.com"


def caption(i: int) -> str:
    return f"A person does thing {i}, with a comma; and a 'quote'."


def human_scores(model: str, i: int) -> tuple[int, int]:
    """wan: prompts 0-9 pass (of 20); cogvideo: prompts 0-3 pass. Hard = prompts 15-19."""
    passes = i < (10 if model == "wan" else 4)
    return (5, 4) if passes else (2 + i % 2, 3 + i % 3)


def write_test_csv(path: Path, wrong_joint_rows: int = 0) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for model, folder in FOLDERS.items():
            for i in range(20):
                sa, pc = human_scores(model, i)
                joint = int(sa >= 4 and pc >= 4)
                if model == "cogvideo" and i >= 20 - wrong_joint_rows:
                    joint = 1 - joint
                name = caption(i).replace(" ", "_")
                writer.writerow(
                    [
                        caption(i),
                        f"{BASE_URL}/{folder}/{name}.mp4",
                        sa,
                        pc,
                        joint,
                        f"action {i % 7}",
                        int(i >= 15),
                        "['a rule']",
                        "[]",
                        "[]",
                        "[]",
                        model,
                        CATEGORIES[i % 2],
                        "",
                        "{'a rule': 'Gravity'}",
                        f"upsampled {i}",
                    ]
                )
    return path


def test_reader_keeps_the_real_layout(tmp_path):
    raw = read_test_csv(write_test_csv(tmp_path / "videophy2_test.csv"))
    assert len(raw) == 40 and "Unnamed: 13" in raw.columns
    assert raw["caption"].iloc[0] == caption(0)
    with pytest.raises(ValueError, match="missing columns"):
        bad = tmp_path / "bad.csv"
        bad.write_text("caption,sa\nx,1\n")
        read_test_csv(bad)


def test_human_leaderboard_known_answers(tmp_path):
    test = labels_to_results(read_test_csv(write_test_csv(tmp_path / "t.csv")))
    rows = {r["model_id"]: r for r in human_leaderboard(test, n_boot=500, seed=0)}
    wan, cog = rows["wan"], rows["cogvideo"]
    assert wan["model"] == "Wan2.1-T2V-14B" and wan["judge"].startswith("human")
    assert (wan["n"], wan["joint"], cog["joint"]) == (20, 0.5, 0.2)
    assert (wan["hard"], wan["n_hard"], wan["easy"]) == (0.0, 5, 10 / 15)
    # categories alternate by prompt: Object Interactions = odd prompts (sorted first)
    assert wan["cat0"] == pytest.approx(5 / 10) and cog["cat0"] == pytest.approx(2 / 10)
    assert wan["joint_lo"] < 0.5 < wan["joint_hi"] and wan["joint_boot_lo"] < 0.5 < wan["joint_boot_hi"]
    assert wan["published_all"] == pytest.approx(0.326)
    assert [r["model_id"] for r in human_leaderboard(test, n_boot=0)] == ["wan", "cogvideo"]


def test_agreement_by_video_path_tail(tmp_path):
    test = labels_to_results(read_test_csv(write_test_csv(tmp_path / "t.csv")))
    rng = np.random.default_rng(0)
    rows = []
    for i in range(20):
        sa_h, pc_h = human_scores("wan", i)
        sa, pc = (
            int(np.clip(sa_h + rng.integers(-1, 2), 1, 5)),
            int(np.clip(pc_h + rng.integers(-1, 2), 1, 5)),
        )
        name = caption(i).replace(" ", "_")
        rows.append(
            item(f"w{i}", sa, pc, caption=caption(i), video_path=f"videos/{FOLDERS['wan']}/{name}.mp4")
        )
    run = load_run(write_run(tmp_path, rows, name="judge-on-wan"))
    matched, key = match_human(run.results, test)
    assert key == "video path tail" and len(matched) == 20
    result = agreement(matched)
    ours = run.results.sort_values("prompt_id", key=lambda s: s.str[1:].astype(int))
    human = np.array([human_scores("wan", i) for i in range(20)], dtype=float)
    assert result["r_sa"] == pytest.approx(np.corrcoef(ours["sa"], human[:, 0])[0, 1])
    assert result["r_pc"] == pytest.approx(np.corrcoef(ours["pc"], human[:, 1])[0, 1])
    judge = ((ours["sa"] >= 4) & (ours["pc"] >= 4)).to_numpy()
    truth = (human[:, 0] >= 4) & (human[:, 1] >= 4)
    tp, fp, fn = (judge & truth).sum(), (judge & ~truth).sum(), (~judge & truth).sum()
    assert result["accuracy"] == pytest.approx((judge == truth).mean())
    assert result["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_caption_and_model_fallback_match(tmp_path):
    test = labels_to_results(read_test_csv(write_test_csv(tmp_path / "t.csv")))
    rows = [
        # Spelled with other white space than the test set: the same caption once normalised.
        item(f"c{i}", 5, 5, caption=caption(i).replace(" ", "  ", 1) + " " * (i % 2), arm="cogvideo",
             video_path=f"videos/{i}.mp4")
        for i in range(6)
    ]
    matched, key = match_human(load_run(write_run(tmp_path, rows)).results, test)
    assert key == "caption + model" and len(matched) == 6
    assert matched["joint_h"].tolist() == [1.0] * 4 + [0.0] * 2


def test_leaderboard_cli_with_local_csv_and_a_run(tmp_path):
    test_csv = write_test_csv(tmp_path / "videophy2_test.csv", wrong_joint_rows=2)
    run = write_run(
        tmp_path,
        [item(f"p{i}", 5 if i < 3 else 2, 4, is_hard=i >= 8, category=CATEGORIES[i % 2]) for i in range(10)],
        name="wan22-5b",
    )
    out = tmp_path / "lb"
    assert (
        leaderboard_main(["--test-csv", str(test_csv), str(run), "--out", str(out), "--bootstrap", "200"])
        == 0
    )
    data = json.loads((out / "report.json").read_text())
    tables = {b["id"]: b for s in data["sections"] for b in s["blocks"] if b["type"] == "table"}
    board = {r["model"]: r for r in tables["leaderboard"]["rows"]}
    assert board["Wan2.1-T2V-14B"]["joint"] == 0.5
    assert board["wan22-5b"]["judge"] == "AutoEval (this project)" and board["wan22-5b"]["joint"] == 0.3
    gap = {r["model"]: r for r in tables["autoeval_gap"]["rows"]}
    assert gap["Wan2.1-T2V-14B"]["gap"] == pytest.approx(0.169 - 0.5)
    texts = " ".join(b["text"] for s in data["sections"] for b in s["blocks"] if b["type"] == "text")
    assert "disagrees with SA>=4 and PC>=4 on 2 of 40 rows" in texts
    assert "cannot be measured" in texts  # the run shares no video with the test set
    html = (out / "report.html").read_text()
    assert 'data-table="leaderboard"' in html and 'data-figure="leaderboard_plot"' in html
    assert (out / "tables" / "leaderboard.csv").exists()


def test_leaderboard_cli_rejects_a_bad_csv(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert leaderboard_main(["--test-csv", str(bad), "--out", str(tmp_path / "o"), "--bootstrap", "0"]) == 2
    assert "missing columns" in capsys.readouterr().err
