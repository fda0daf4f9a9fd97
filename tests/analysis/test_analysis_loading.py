"""The one loader: typing, item status, joint recomputation, manifests and conditions."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_ledgers import item, write_run

from videophy_bench.orchestrator.analysis.loading import (
    conditions_from_runs,
    load_results,
    load_run,
    prepare_results,
    split_conditions,
)


def test_status_and_joint_are_derived_from_scores_and_parse_flags(tmp_path):
    rows = [
        item("ok-pass", 4, 5, joint=0.0),  # a wrong joint in the file is recomputed
        item("ok-fail", 5, 3),
        item("unparse", 0, 5, sa_parse="unparseable", sa_raw="the video shows"),
        item("failed", None, None, state="failed", error="CUDA out of memory"),
        item("pending", None, None, state="generated"),
        item("half", 4, None),
    ]
    df = load_results(write_run(tmp_path, rows) / "results.csv")
    status = dict(zip(df["prompt_id"], df["status"], strict=True))
    assert status == {
        "ok-pass": "scored",
        "ok-fail": "scored",
        "unparse": "unparseable",
        "failed": "failed",
        "pending": "not_judged",
        "half": "not_judged",
    }
    joint = dict(zip(df["prompt_id"], df["joint"], strict=True))
    assert joint["ok-pass"] == 1.0 and joint["ok-fail"] == 0.0
    assert pd.isna(joint["unparse"]) and pd.isna(joint["failed"]) and pd.isna(joint["half"])
    official = dict(zip(df["prompt_id"], df["joint_official"], strict=True))
    assert official["unparse"] == 0.0 and pd.isna(official["failed"])


def test_types_missing_columns_and_verbatim_raw_text(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("prompt_id,sa,pc,is_hard,sa_raw\nx,4,4,True,NA\ny,2,5,0,None\nz,3,3,,\n")
    df = load_results(path)
    assert str(df["seed"].dtype) == "Int64" and df["seed"].tolist() == [0, 0, 0]
    assert df["arm"].tolist() == ["base"] * 3
    assert str(df["is_hard"].dtype) == "boolean"
    assert df["is_hard"].tolist()[:2] == [True, False] and pd.isna(df["is_hard"].iloc[2])
    assert df["sa_raw"].tolist()[:2] == ["NA", "None"]
    assert df["cluster"].tolist() == ["prompt:x", "prompt:y", "prompt:z"]
    assert prepare_results(df)["status"].tolist() == df["status"].tolist()  # idempotent


def test_prompt_id_is_required():
    with pytest.raises(ValueError, match="prompt_id"):
        prepare_results(pd.DataFrame({"prompt_id": ["a", None], "sa": [4, 4], "pc": [4, 4]}))


def test_run_label_from_manifest_and_missing_results(tmp_path):
    run_dir = write_run(tmp_path, [item("a", 4, 4)], name="dir", manifest={"name": "wan-5b baseline"})
    assert load_run(run_dir).label == "wan-5b baseline"
    assert load_run(run_dir / "results.csv").label == "wan-5b baseline"
    assert load_run(run_dir, label="mine").label == "mine"
    with pytest.raises(FileNotFoundError):
        load_run(tmp_path / "nope")


def test_conditions_split_by_arm_and_round(tmp_path):
    rows = [
        item("a", 4, 4, round=0),
        item("a", 2, 4, round=1),
        item("b", 4, 4, round=0),
        item("b", 5, 5, round=1),
    ]
    run = load_run(write_run(tmp_path, rows, name="phyt2v"))
    conds = split_conditions(run)
    assert [c.label for c in conds] == ["phyt2v [round 0]", "phyt2v [round 1]"]
    assert [len(c.df) for c in conds] == [2, 2]
    only_round_1 = split_conditions(run, round_=1)
    assert [c.label for c in only_round_1] == ["phyt2v"]
    assert only_round_1[0].df["sa"].tolist() == [2.0, 5.0]
    with pytest.raises(ValueError):
        split_conditions(run, arm="missing")
    twice = conditions_from_runs([run, run], round_=0)
    assert [c.label for c in twice] == ["phyt2v", "phyt2v (2)"]
