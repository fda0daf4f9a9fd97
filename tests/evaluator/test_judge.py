"""Judge API behaviour: bad inputs, batching equality, the tiny judge and the judge CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from videophy_bench.evaluator import judge_cli
from videophy_bench.evaluator.errors import (
    EmptyTextError,
    JudgeInputError,
    UnknownTaskError,
    UnsupportedPromptError,
    VideoDecodeError,
    VideoNotFoundError,
)
from videophy_bench.evaluator.judge import JudgeQuery, load_judge
from videophy_bench.evaluator.tiny import build_tiny_judge

JETSKI = "examples/A_jetski_moves_quickly_through_a_narrow_channel_between_two_rocky_outcrops_0.mp4"
STREAMER = (
    "examples/A_streamer,_cut_from_paper,_descends_from_a_high_point,_twisting_and_turning_gently_0.mp4"
)
MAP = "examples/Hands_fold_a_map,_showing_the_creases_forming_as_sections_are_brought_together_0.mp4"


def test_bad_inputs(fp32_judge, videophy2_dir: Path, tmp_path: Path) -> None:
    video = str(videophy2_dir / JETSKI)
    with pytest.raises(UnknownTaskError):
        fp32_judge.judge(video, [JudgeQuery("joint")])
    with pytest.raises(EmptyTextError):
        fp32_judge.judge(video, [JudgeQuery("sa", "   ")])
    with pytest.raises(EmptyTextError):
        fp32_judge.judge(video, [JudgeQuery("rule", "")])
    with pytest.raises(UnsupportedPromptError):
        fp32_judge.judge(video, [JudgeQuery("sa", "a cat <image>")])
    with pytest.raises(JudgeInputError):
        fp32_judge.judge(video, [])
    with pytest.raises(VideoNotFoundError):
        fp32_judge.judge(str(tmp_path / "missing.mp4"), [JudgeQuery("pc")])
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes((videophy2_dir / JETSKI).read_bytes()[:2000])
    with pytest.raises(VideoDecodeError):
        fp32_judge.judge(str(corrupt), [JudgeQuery("pc")])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(JudgeInputError) as info:
        fp32_judge.judge_batch([(video, [JudgeQuery("pc")]), (str(empty), [JudgeQuery("pc")])])
    assert info.value.item_index == 1
    # A bad item in a stream costs only that item.
    results = list(fp32_judge.judge_stream([(str(empty), [JudgeQuery("pc")]), (video, [JudgeQuery("pc")])]))
    assert isinstance(results[0][1], JudgeInputError)
    assert results[1][1].answers[0].task == "pc"


def test_batch_equals_batch_of_one(fp32_judge, videophy2_dir: Path) -> None:
    items = [
        (
            str(videophy2_dir / JETSKI),
            [JudgeQuery("sa", "A jetski."), JudgeQuery("pc"), JudgeQuery("videocon_pc")],
        ),
        (
            str(videophy2_dir / STREAMER),
            [
                JudgeQuery("rule", "Paper falls slowly because of air resistance."),
                JudgeQuery("videocon_sa", "A paper streamer descends."),
            ],
        ),
        (str(videophy2_dir / MAP), [JudgeQuery("sa", "Hands fold a map, showing the creases forming.")]),
    ]
    batched = fp32_judge.judge_batch(items)
    singles = [fp32_judge.judge(path, [q]) for path, qs in items for q in qs]
    flat = [a for outcome in batched for a in outcome.answers]
    assert len(flat) == len(singles) == 6
    for got, single in zip(flat, singles, strict=True):
        assert got.task == single.answers[0].task
        assert got.raw_text == single.answers[0].raw_text
        if got.parse_status == "probability":
            assert abs(got.score - single.answers[0].score) <= 1e-6
        else:
            assert got.score == single.answers[0].score
    # Left padding must not leak: prompts of different lengths were batched together.
    model = fp32_judge.model
    ids = [
        fp32_judge.tokenizer.encode_generate_prompt("<|video|> short"),
        fp32_judge.tokenizer.encode_generate_prompt("<|video|> a much longer prompt than the other one"),
    ]
    visual = torch.randn(2, 65, model.language_model.config.hidden_size)
    with torch.inference_mode():
        e, m = model.embed_prompts(ids, list(visual))
        both = model.greedy_generate(e, m, max_new_tokens=8)
        for row in range(2):
            e1, m1 = model.embed_prompts([ids[row]], [visual[row]])
            one = model.greedy_generate(e1, m1, max_new_tokens=8)
            assert both.tokens[row] == one.tokens[0]
            torch.testing.assert_close(both.first_logits[row], one.first_logits[0], atol=1e-4, rtol=1e-5)


def test_tiny_judge_builds_offline_and_runs(tmp_path: Path, videophy2_dir: Path) -> None:
    directory = build_tiny_judge(tmp_path / "tiny")
    names = {p.name for p in directory.iterdir()}
    assert {
        "config.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "preprocessor_config.json",
        "pytorch_model.bin.index.json",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
    } <= names
    shard = torch.load(directory / "pytorch_model-00001-of-00002.bin", weights_only=True)
    assert all(t.dtype == torch.bfloat16 for t in shard.values())
    assert "vision_model.encoder.layers.0.temporal.conv.weight" in shard
    built_ns = (directory / "pytorch_model-00001-of-00002.bin").stat().st_mtime_ns
    assert build_tiny_judge(directory) == directory
    assert (directory / "pytorch_model-00001-of-00002.bin").stat().st_mtime_ns == built_ns  # idempotent
    judge = load_judge(directory, dtype="float32")
    try:
        queries = [
            JudgeQuery("sa", "A jetski."),
            JudgeQuery("pc"),
            JudgeQuery("rule", "Water splashes."),
            JudgeQuery("videocon_sa", "A jetski."),
            JudgeQuery("videocon_pc"),
        ]
        first = judge.judge(str(videophy2_dir / JETSKI), queries)
        again = judge.judge(str(videophy2_dir / JETSKI), queries)
        assert [a.task for a in first.answers] == [q.task for q in queries]
        assert first.answers == again.answers  # deterministic
        for a in first.answers[:3]:
            assert a.parse_status in {"parsed", "digit_fallback", "unparseable", "parser_error"}
        for a in first.answers[3:]:
            assert 0.0 <= a.score <= 1.0
        assert judge.info.dtype == "float32" and judge.info.name == "local"
    finally:
        judge.close()


def _examples_copy(videophy2_dir: Path, tmp_path: Path, name: str) -> Path:
    dst = tmp_path / "videophy2"
    if not dst.exists():
        (dst / "examples").mkdir(parents=True)
        for p in (videophy2_dir / "examples").iterdir():
            (dst / "examples" / p.name).symlink_to(p)
    return dst / "examples" / name


def test_judge_cli_on_examples(
    reference: dict, fixture_dir: Path, videophy2_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out_pc.csv"
    csv_in = _examples_copy(videophy2_dir, tmp_path, "sa_pc.csv")
    rc = judge_cli.main(
        [
            "--checkpoint",
            str(fixture_dir),
            "--task",
            "pc",
            "--input-csv",
            str(csv_in),
            "--output-csv",
            str(out),
            "--dtype",
            "float32",
            "--batch-size",
            "3",
        ]
    )
    df = pd.read_csv(out)
    assert list(df.columns) == ["Unnamed: 0", "caption", "videopath", "score", "raw_text", "parse_status"]
    expected = [r["fp32"]["parsed_score"] for r in reference["records"] if r["task"] == "pc"]
    for got, exp in zip(df["score"], expected, strict=True):
        assert (pd.isna(got) and exp is None) or got == exp
    assert df["parse_status"][2] == "parser_error"  # record 12: the official script would crash here
    assert rc == 1  # a row without a score is reported through the exit code

    out_rule = tmp_path / "out_rule.csv"
    rc = judge_cli.main(
        [
            "--checkpoint",
            str(fixture_dir),
            "--task",
            "rule",
            "--input-csv",
            str(_examples_copy(videophy2_dir, tmp_path, "rule.csv")),
            "--output-csv",
            str(out_rule),
            "--dtype",
            "float32",
            "--batch-size",
            "4",
        ]
    )
    assert rc == 0
    rule = pd.read_csv(out_rule)
    assert list(rule["score"]) == [
        r["fp32"]["parsed_score"] for r in reference["records"] if r["task"] == "rule"
    ]
    official = pd.read_csv(videophy2_dir / "examples" / "output_rule.csv")
    assert list(rule.columns[:4]) == list(official.columns)  # same layout as the official output


def test_judge_cli_rejects_missing_columns(tmp_path: Path) -> None:
    bad = tmp_path / "in.csv"
    bad.write_text("videopath\nx.mp4\n")
    assert (
        judge_cli.main(
            [
                "--checkpoint",
                "tiny",
                "--task",
                "sa",
                "--input-csv",
                str(bad),
                "--output-csv",
                str(tmp_path / "o.csv"),
            ]
        )
        == 2
    )


def test_unknown_checkpoint_raises(tmp_path: Path, fixture_dir: Path) -> None:
    from videophy_bench.evaluator.errors import CheckpointError

    with pytest.raises(CheckpointError):
        load_judge(tmp_path / "does-not-exist")
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(fixture_dir / "config.json", half)  # a config but no weights
    with pytest.raises(CheckpointError):
        load_judge(half)
