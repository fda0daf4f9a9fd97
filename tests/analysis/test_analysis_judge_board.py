"""The leaderboard on one judge: agreement statistics with known answers, the calibration to the human
scale on constructed data, the published-score reproduction on the real 21-row test fixture, and the
published scores fetched from a loopback Hub."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pandas as pd
import pytest
from analysis_ledgers import CATEGORIES, item, tables_of, write_run
from scipy import stats
from scipy.special import expit
from test_analysis_leaderboard import HEADER

from videophy_bench.common import csvio
from videophy_bench.orchestrator.analysis.agreement import agreement, cohen_kappa, confusion
from videophy_bench.orchestrator.analysis.calibration import (
    MIN_LABELLED,
    estimate,
    fit_calibration,
    leave_one_model_out,
)
from videophy_bench.orchestrator.analysis.cli import leaderboard_main
from videophy_bench.orchestrator.analysis.leaderboard import labels_to_results, match_human, read_test_csv
from videophy_bench.orchestrator.analysis.loading import load_run
from videophy_bench.orchestrator.analysis.published_scores import HUB_REPO, attach, load_published

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
from loopback_hub import LoopbackHub

FIXTURE = Path(__file__).resolve().parents[1] / "orchestrator" / "data" / "videophy2_test_rows.csv"


def fixture_rows() -> list[dict[str, str]]:
    with FIXTURE.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# -- agreement: known answers ---------------------------------------------------------------------


def test_kappa_of_known_tables():
    assert cohen_kappa({"tp": 20, "fp": 5, "fn": 10, "tn": 15}) == pytest.approx(0.4)  # p_o .7, p_e .5
    assert cohen_kappa({"tp": 7, "fp": 0, "fn": 0, "tn": 13}) == 1.0
    assert cohen_kappa({"tp": 0, "fp": 10, "fn": 10, "tn": 0}) == -1.0
    assert np.isnan(cohen_kappa({"tp": 0, "fp": 0, "fn": 0, "tn": 9}))  # both constant: undefined
    table = confusion(np.array([1, 1, 0, 0, 1, 0]), np.array([1, 0, 0, 1, 1, 0]))
    assert table == {"tp": 2, "fp": 1, "fn": 1, "tn": 2}


def test_agreement_perfect_and_known():
    sa = np.array([1, 2, 3, 4, 5, 4, 5, 2, 4, 3], float)
    pc = np.array([5, 4, 4, 4, 5, 3, 2, 1, 5, 4], float)
    joint = ((sa >= 4) & (pc >= 4)).astype(float)
    perfect = pd.DataFrame({"sa": sa, "pc": pc, "joint": joint, "sa_h": sa, "pc_h": pc, "joint_h": joint})
    a = agreement(perfect)
    assert (a["r_sa"], a["rho_sa"], a["r_pc"], a["rho_pc"]) == pytest.approx((1, 1, 1, 1))
    assert (a["accuracy"], a["kappa"], a["f1"]) == (1.0, 1.0, 1.0)
    assert (a["tp"], a["fp"], a["fn"], a["tn"]) == (3, 0, 0, 7)

    sa_h = np.array([2, 2, 3, 5, 4, 4, 5, 1, 3, 3], float)
    pc_h = np.array([5, 4, 4, 3, 5, 4, 4, 2, 5, 4], float)
    joint_h = ((sa_h >= 4) & (pc_h >= 4)).astype(float)  # passes: 4, 5, 6 (judge: 3, 4, 8)
    a = agreement(
        pd.DataFrame({"sa": sa, "pc": pc, "joint": joint, "sa_h": sa_h, "pc_h": pc_h, "joint_h": joint_h})
    )
    assert (a["tp"], a["fp"], a["fn"], a["tn"]) == (1, 2, 2, 5)
    assert a["accuracy"] == pytest.approx(0.6)
    assert a["kappa"] == pytest.approx((0.6 - 0.58) / 0.42)  # p_e = .3*.3 + .7*.7
    assert a["f1"] == pytest.approx(2 / 6)
    assert a["r_sa"] == pytest.approx(stats.pearsonr(sa, sa_h).statistic)
    assert a["rho_pc"] == pytest.approx(stats.spearmanr(pc, pc_h).statistic)
    assert a["r_sa_lo"] < a["r_sa"] < a["r_sa_hi"]


# -- calibration: a known monotone relation -------------------------------------------------------

TRUE_BETA = (-6.0, 0.8, 0.6, 1.0)  # intercept, SA, PC, judge pass


def true_p(sa: float, pc: float) -> float:
    b0, b1, b2, b3 = TRUE_BETA
    return float(expit(b0 + b1 * sa + b2 * pc + b3 * (sa >= 4 and pc >= 4)))


def labelled_frame(per_cell: int) -> pd.DataFrame:
    """Every (SA, PC) cell with ``per_cell`` videos, of which round(per_cell * p) humans pass."""
    rows = []
    for sa in range(1, 6):
        for pc in range(1, 6):
            passes = round(per_cell * true_p(sa, pc))
            for k in range(per_cell):
                rows.append(
                    {
                        "sa": sa,
                        "pc": pc,
                        "joint": float(sa >= 4 and pc >= 4),
                        "joint_h": float(k < passes),
                        "cluster": f"action {k % 20}",
                        "model": "m" if k % 2 else "n",
                    }
                )
    return pd.DataFrame(rows)


def run_frame(cells: list[tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sa": [c[0] for c in cells],
            "pc": [c[1] for c in cells],
            "status": "scored",
            "cluster": [f"a{i % 7}" for i in range(len(cells))],
        }
    )


def test_calibration_recovers_a_known_relation():
    labelled = labelled_frame(per_cell=2000)
    cal = fit_calibration(labelled, "judge", n_boot=0)
    assert cal.ok and list(cal.coefficients()) == ["intercept", "sa", "pc", "judge_pass"]
    assert list(cal.coefficients().values()) == pytest.approx(TRUE_BETA, abs=0.05)
    # maximum likelihood: the mean fitted probability equals the human pass rate, also among judge passes
    assert estimate(cal, labelled.assign(status="scored"))["human_est"] == pytest.approx(
        labelled["joint_h"].mean(), abs=1e-6
    )
    passes = labelled[labelled["joint"] == 1].assign(status="scored")
    assert estimate(cal, passes)["human_est"] == pytest.approx(passes["joint_h"].mean(), abs=1e-6)
    # monotone in the judge's scores, and on the known curve
    best, mid, worst = (estimate(cal, run_frame([c] * 50))["human_est"] for c in ((5, 5), (3, 3), (1, 1)))
    assert best > mid > worst
    assert best == pytest.approx(true_p(5, 5), abs=0.01) and worst == pytest.approx(true_p(1, 1), abs=0.01)
    # two models with the same relation: each one's human joint is recovered by a fit without it
    check = leave_one_model_out(labelled, "judge")
    assert [r["model_id"] for r in check] == ["m", "n"]
    assert all(abs(r["error"]) < 0.005 and not r["refused"] for r in check)


def test_calibration_interval_and_refusal():
    cal = fit_calibration(labelled_frame(per_cell=40), "judge", n_boot=300, seed=1)
    run = run_frame([(5, 5)] * 30 + [(2, 3)] * 30 + [(4, 4)] * 40)
    est = estimate(cal, run)
    assert est["human_est_lo"] < est["human_est"] < est["human_est_hi"] and est["share_unseen"] == 0.0
    assert est == estimate(fit_calibration(labelled_frame(per_cell=40), "judge", n_boot=300, seed=1), run)

    few = labelled_frame(per_cell=3)  # 75 videos
    refused = fit_calibration(few, "judge", n_boot=10)
    assert not refused.ok and f"at least {MIN_LABELLED} videos" in refused.refused
    assert (
        np.isnan(estimate(refused, run)["human_est"]) and estimate(refused, run)["refused"] == refused.refused
    )


# -- the published scores on the real 21-row fixture ----------------------------------------------

#: fixture row -> published (sa, pc) differing from ours: 3 wan (4,5 -> SA 3), 8 cogvideo (5,4 -> PC 5),
#: 13 videocrafter (1,3 -> 2,4)
CHANGED = {3: (3, 5), 8: (5, 5), 13: (2, 4)}


def judged_fixture_run(root: Path, name: str = "leaderboard-judged") -> Path:
    """Our judge on the fixture's videos (``run --videos videophy2-test`` layout): arm = model_name,
    video_url and caption_source per row, scores equal to the human ones."""
    rows = [
        item(
            f"vp2-{i:02d}",
            int(r["sa"]),
            int(r["pc"]),
            caption=r["caption"],
            arm=r["model_name"],
            video_url=r["video_url"],
            action=r["action"],
            caption_source="upsampled",
            video_path=f"videos/vp2-{i:02d}/x.mp4",
        )
        for i, r in enumerate(fixture_rows())
    ]
    return write_run(root, rows, name=name)


def published_csv(path: Path, by_url: bool = True) -> Path:
    rows = fixture_rows()
    columns = ["video_url", "caption", "model_name", "sa_pred_score", "pc_pred_score"]
    out = []
    for i, r in enumerate(rows):
        sa, pc = CHANGED.get(i, (int(r["sa"]), int(r["pc"])))
        out.append([r["video_url"] if by_url else "", r["caption"], r["model_name"], sa, pc])
    if not by_url:
        columns, out = columns[1:], [o[1:] for o in out]
    csvio.write_csv(path, columns, out)
    return path


def test_published_reproduction_on_the_fixture(tmp_path):
    test = labels_to_results(read_test_csv(FIXTURE))
    run = load_run(judged_fixture_run(tmp_path))
    matched, key = match_human(run.results, test)
    assert key == "video_url" and len(matched) == 21
    for by_url in (True, False):
        published = load_published(str(published_csv(tmp_path / f"pub{by_url}.csv", by_url=by_url)))
        attached = attach(matched, published)
        assert len(attached) == 21
        assert sorted(
            attached.index[(attached["sa"] != attached["sa_pub"]) | (attached["pc"] != attached["pc_pub"])]
        ) == sorted(
            matched.index[matched["video_url"].isin([fixture_rows()[i]["video_url"] for i in CHANGED])]
        )

    out = tmp_path / "lb"
    argv = [
        "--test-csv",
        str(FIXTURE),
        str(tmp_path / "leaderboard-judged"),
        "--out",
        str(out),
        "--bootstrap",
        "200",
        "--published-scores",
        str(tmp_path / "pubTrue.csv"),
    ]
    assert leaderboard_main(argv) == 0
    _, tables = tables_of(out)
    rep = {r["model_id"]: r for r in tables["published_reproduction"]["rows"]}
    assert (rep["wan"]["n"], rep["wan"]["sa_exact"], rep["wan"]["pc_exact"], rep["wan"]["both_exact"]) == (
        3,
        2,
        3,
        2,
    )
    assert (rep["wan"]["joint_ours"], rep["wan"]["joint_pub"]) == pytest.approx((1 / 3, 0.0))
    assert rep["wan"]["sa_diffs"] == "+0: 2, +1: 1" and rep["wan"]["joint_disagree"] == 1
    cog = rep["cogvideo"]
    assert (cog["n"], cog["sa_exact"], cog["pc_exact"], cog["joint_ours"], cog["joint_pub"]) == (
        4,
        4,
        3,
        0.5,
        0.5,
    )
    assert cog["pc_diffs"] == "-1: 1, +0: 3"
    assert (rep["videocrafter"]["sa_exact"], rep["videocrafter"]["pc_exact"]) == (4, 4)
    assert all(rep[m]["both_exact"] == rep[m]["n"] for m in ("sora", "hunyuan", "cosmos"))
    bad = tables["published_mismatches"]["rows"]
    assert sorted(r["video_url"] for r in bad) == sorted(fixture_rows()[i]["video_url"] for i in CHANGED)
    exported = csvio.read_frame(out / "tables" / "published_mismatches.csv")
    assert sorted(exported["caption"]) == sorted(fixture_rows()[i]["caption"] for i in CHANGED)

    # our judge equals the human labels here: perfect agreement, zero difference
    board = {r["model_id"]: r for r in tables["one_judge"]["rows"]}
    assert board["wan"]["diff"] == 0 and board["wan"]["human"] == pytest.approx(1 / 3)
    pooled = next(r for r in tables["judge_agreement"]["rows"] if r["model"] == "all leaderboard videos")
    assert (pooled["n"], pooled["kappa"], pooled["accuracy"], pooled["r_sa"]) == (
        21,
        1.0,
        1.0,
        pytest.approx(1.0),
    )
    assert any(
        r["model"] == "published AutoEval (paper)" and r["r_sa"] == 0.47
        for r in tables["judge_agreement"]["rows"]
    )


def test_published_scores_bad_file_is_one_line(tmp_path, capsys):
    judged_fixture_run(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("video_url,score\nx,1\n")
    argv = [
        "--test-csv",
        str(FIXTURE),
        str(tmp_path / "leaderboard-judged"),
        "--out",
        str(tmp_path / "o"),
        "--bootstrap",
        "0",
        "--published-scores",
        str(bad),
    ]
    assert leaderboard_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no SA/PC score columns" in err and not (tmp_path / "o").exists()


# -- the Hub: loopback ----------------------------------------------------------------------------


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    h = LoopbackHub()
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", h.url)
    monkeypatch.setattr(
        huggingface_hub.constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        h.url + "/{repo_id}/resolve/{revision}/{filename}",
    )
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    yield h
    h.close()


def test_published_scores_from_a_loopback_hub(tmp_path, hub, monkeypatch):
    judged_fixture_run(tmp_path)
    hub.commit(
        HUB_REPO,
        {
            "README.md": b"scores",
            "videophy2_autoeval_scores.csv": published_csv(tmp_path / "p.csv").read_bytes(),
        },
    )
    out = tmp_path / "lb"
    base = ["--test-csv", str(FIXTURE), str(tmp_path / "leaderboard-judged"), "--bootstrap", "0"]
    assert (
        leaderboard_main([*base, "--out", str(out)]) == 0
    )  # default: from the Hub when a run judged test videos
    _, tables = tables_of(out)
    assert sum(r["both_exact"] for r in tables["published_reproduction"]["rows"]) == 18
    assert any(r.startswith(f"GET /datasets/{HUB_REPO}/resolve/") for r in hub.requests)

    # the Hub gone: the default notes it in the report, an explicit `hub` is a one-line error
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    hub.close()
    assert leaderboard_main([*base, "--out", str(tmp_path / "lb2")]) == 0
    data, tables = tables_of(tmp_path / "lb2")
    texts = " ".join(b["text"] for s in data["sections"] for b in s["blocks"] if b["type"] == "text")
    assert "could not be read" in texts and "published_reproduction" not in tables
    assert leaderboard_main([*base, "--out", str(tmp_path / "lb3"), "--published-scores", "hub"]) == 2


# -- a user's run on the judge's scale and, estimated, on the human scale -------------------------

N_CAPTIONS = 120
FOLDERS = {"wan": "wan_videophy2_test_hard_upsampled", "cogvideo": "cogvideoX5b"}


def human(model: str, i: int) -> tuple[int, int]:
    sa = 1 + (i * 7 + (3 if model == "wan" else 0)) % 5
    pc = 1 + (i * 3 + (1 if model == "wan" else 2)) % 5
    return sa, pc


def judge_of(sa: int, pc: int, i: int) -> tuple[int, int]:
    """A noisy judge: off by one on a third of the videos."""
    shift = (i % 3) - 1
    return int(np.clip(sa + shift, 1, 5)), int(np.clip(pc - shift * (i % 2), 1, 5))


def write_big_test_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for model, folder in FOLDERS.items():
            for i in range(N_CAPTIONS):
                sa, pc = human(model, i)
                writer.writerow(
                    [
                        f"caption {i}",
                        f"https://h.example/{folder}/c{i}.mp4",
                        sa,
                        pc,
                        int(sa >= 4 and pc >= 4),
                        f"action {i % 12}",
                        int(i % 4 == 0),
                        "[]",
                        "[]",
                        "[]",
                        "[]",
                        model,
                        CATEGORIES[i % 2],
                        "",
                        "{}",
                        f"upsampled {i}",
                    ]
                )
    return path


def test_user_run_on_the_judge_scale_and_estimated_human(tmp_path):
    test_csv = write_big_test_csv(tmp_path / "videophy2_test.csv")
    board_rows, user_rows = [], []
    for model, folder in FOLDERS.items():
        for i in range(N_CAPTIONS):
            sa, pc = judge_of(*human(model, i), i)
            board_rows.append(
                item(
                    f"{model}-{i}",
                    sa,
                    pc,
                    caption=f"caption {i}",
                    arm=model,
                    video_url=f"https://h.example/{folder}/c{i}.mp4",
                    action=f"action {i % 12}",
                    caption_source="original" if model == "cogvideo" else "",
                )
            )
            # the user's run: the same judge-score multiset as the labelled videos (one seed per model)
            user_rows.append(
                item(
                    f"p{i}",
                    sa,
                    pc,
                    seed=0 if model == "wan" else 1,
                    caption=f"caption {i}",
                    gen_prompt=f"caption {i}",
                    action=f"action {i % 12}",
                )
            )
    write_run(tmp_path, board_rows, name="board")
    write_run(tmp_path, user_rows, name="mine", manifest={"name": "mine", "config": {"upsampled": False}})
    out = tmp_path / "lb"
    argv = [
        "--test-csv",
        str(test_csv),
        str(tmp_path / "board"),
        str(tmp_path / "mine"),
        "--out",
        str(out),
        "--bootstrap",
        "300",
        "--published-scores",
        "none",
    ]
    assert leaderboard_main(argv) == 0
    data, tables = tables_of(out)

    scale = {r["name"]: r for r in tables["judge_scale"]["rows"]}
    mine = scale["mine"]
    assert mine["human_kind"] == "estimate (calibrated)"
    labelled = pd.concat([pd.DataFrame([human(m, i) for i in range(N_CAPTIONS)]) for m in FOLDERS])
    human_joint = float(((labelled[0] >= 4) & (labelled[1] >= 4)).mean())
    assert mine["human"] == pytest.approx(human_joint, abs=1e-5)  # same score multiset: the MLE identity
    assert mine["human_lo"] < mine["human"] < mine["human_hi"]
    judge_joint = np.mean([float(r["sa"] >= 4 and r["pc"] >= 4) for r in user_rows])
    assert mine["judge_joint"] == pytest.approx(judge_joint)
    assert scale["Wan2.1-T2V-14B"]["human_kind"] == "human labels"

    like = {r["model"]: r for r in tables["like_for_like"]["rows"]}
    assert like["CogVideoX-5B"]["like_for_like"] is True
    assert like["Wan2.1-T2V-14B"]["like_for_like"] is False
    assert "yours the original captions, theirs the upsampled captions" in like["Wan2.1-T2V-14B"]["differs"]
    texts = " ".join(b["text"] for s in data["sections"] for b in s["blocks"] if b["type"] == "text")
    assert (
        "mine (judge AutoEval (this project), generated from the original captions): like for like with "
        "CogVideoX-5B." in texts
    )
    check = {r["model_id"]: r for r in tables["calibration_check"]["rows"]}
    # humans pass no wan video: a fit on wan alone is refused; one on cogvideo alone misses wan's 0%
    assert check["cogvideo"]["error"] is None and "0 human passes" in check["cogvideo"]["refused"]
    assert (check["wan"]["human"], check["wan"]["judge"]) == (0.0, 0.0) and check["wan"]["error"] > 0
    assert f"largest {100 * check['wan']['error']:.1f} pp" in texts
    assert "(nearly) separate the human passes" in texts  # this judge never passes a human fail
    html = (out / "report.html").read_text()
    assert 'data-table="judge_scale"' in html and "estimate (calibrated)" in html
    assert (out / "latex" / "one_judge.tex").exists()


def test_judge_key_names_the_sa_pc_judge_and_its_revision(tmp_path):
    from videophy_bench.orchestrator.analysis.judge_board import judge_key, run_caption_choice
    from videophy_bench.orchestrator.analysis.loading import split_conditions

    def run(name: str, evaluators: list[tuple[str, str, str]], **config: object):
        models = {"evaluator": [{"preset": p, "model_id": m, "revision": r} for p, m, r in evaluators]}
        path = write_run(
            tmp_path, [item("p0", 4, 4)], name=name, manifest={"models": models, "config": config}
        )
        return split_conditions(load_run(path))[0]

    auto = ("videophy_2_auto", "videophysics/videophy_2_auto", "a" * 40)
    videocon = ("videocon_physics", "videophysics/videocon_physics", "b" * 40)
    both, alone = run("both", [auto, videocon], upsampled=True), run("alone", [auto])
    other = run("other", [("videophy_2_auto", "videophysics/videophy_2_auto", "c" * 40)])
    assert (
        judge_key(both)
        == judge_key(alone)
        == "AutoEval (this project) [videophysics/videophy_2_auto@aaaaaaaaaaaa]"
    )
    assert judge_key(other) != judge_key(alone)
    assert (run_caption_choice(both), run_caption_choice(alone)) == ("upsampled", "original")
