"""``videophy-bench judge`` as a drop-in for the official inference.py: its option spelling end to end, and an
output CSV that reads back exactly whatever the captions, paths and raw answers hold (issue 11 item 7)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from nasty_text import FRAGMENTS, UNDECODABLE, nasty_strings

from videophy_bench.common import csvio
from videophy_bench.evaluator import judge_cli
from videophy_bench.evaluator.judge import JudgeQuery, load_judge
from videophy_bench.evaluator.tiny import build_tiny_judge, default_tiny_dir

REPO = Path(__file__).resolve().parents[2]
JETSKI = "examples/A_jetski_moves_quickly_through_a_narrow_channel_between_two_rocky_outcrops_0.mp4"
FRAMES = "8"  # fewer frames than the official 32: exercises --num_frames and keeps the test quick


@pytest.fixture(scope="module")
def tiny_dir() -> Path:
    return build_tiny_judge(default_tiny_dir())


def _judge_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "videophy_bench.orchestrator.cli", "judge", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "services")])}


def test_official_spelling_end_to_end_with_nasty_text(
    tiny_dir: Path, videophy2_dir: Path, tmp_path: Path
) -> None:
    nasty_name = tmp_path / 'clip, "one"\r\n é.mp4'
    plain = tmp_path / "plain.mp4"
    for dst in (nasty_name, plain):
        shutil.copy(videophy2_dir / JETSKI, dst)
    judged_captions = ['A jetski, "fast"\r\nin a channel', "lone \r inside", " spaced  caption "]
    missing = [str(tmp_path / f"gone {f!s}.mp4") for f in FRAGMENTS if "\x00" not in f]  # no NUL in paths
    notes = nasty_strings(10, seed=5)
    rows: list[list[str]] = []
    for k, caption in enumerate(judged_captions):
        rows.append([caption, str(nasty_name if k % 2 else plain)])
    rows.append([UNDECODABLE[0] + " caption", str(plain)])  # no valid text: refused for that row only
    rows.append(["nul\x00 and \r alone", str(plain)])  # NUL: refused by the judge's input limits
    rows.append(["", str(plain)])  # empty caption: an input error, the cell stays empty
    rows += [[f"caption {k}", path] for k, path in enumerate(missing)]
    rows = [[*r, notes[k % len(notes)]] for k, r in enumerate(rows)]
    csv_in, csv_out = tmp_path / "in.csv", tmp_path / "out.csv"
    csvio.write_csv(csv_in, ["caption", "videopath", "note"], rows)

    argv = ["--input_csv", str(csv_in), "--output_csv", str(csv_out), "--checkpoint", str(tiny_dir)]
    argv += ["--task", "sa", "--num_frames", FRAMES, "--batch_size", "2", "--dtype", "float32"]
    proc = subprocess.run(_judge_cmd(*argv), env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr  # rows without a score are reported by the exit code
    assert "Traceback" not in proc.stderr
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert f"on {device}, float32" in proc.stderr  # the GPU when there is one
    assert f"judged {len(rows)}/{len(rows)} videos" in proc.stderr  # progress without a terminal

    header, out = csvio.read_rows(csv_out)
    assert header == ["", "caption", "videopath", "note", "score", "raw_text", "parse_status"]
    assert [r[1:4] for r in out] == rows  # every input cell echoed byte-exact
    assert [r[0] for r in out] == [str(k) for k in range(len(rows))]
    frame = csvio.read_frame(csv_out)
    for have, want in zip(frame.itertuples(index=False), out, strict=True):
        assert ["" if pd.isna(v) else v for v in have] == want  # pandas reads the same cells
    # pandas defaults otherwise (as the official tools read): the score column is float
    assert pd.read_csv(csv_out, encoding_errors="surrogateescape")["score"].dtype == float

    judge = load_judge(tiny_dir, dtype="float32", num_frames=int(FRAMES))
    try:
        for k, caption in enumerate(judged_captions):
            answer = judge.judge(rows[k][1], [JudgeQuery("sa", caption)]).answers[0]
            score = "" if answer.score is None else str(float(answer.score))
            assert out[k][4:] == [score, answer.raw_text, answer.parse_status]  # raw answer verbatim
    finally:
        judge.close()
    n = len(judged_captions)
    assert out[n][4:6] == ["", "text is not valid UTF-8 (undecodable bytes in the input CSV)"]
    assert out[n + 1][4:] == ["", "the caption for task 'sa' contains a NUL character", "input_error"]
    assert out[n + 2][4] == "" and out[n + 2][6] == "input_error"
    for row, path in zip(out[n + 3 :], missing, strict=True):
        assert row[4:] == ["", f"video not found: {path}", "input_error"]  # nasty text in raw_text


def test_bad_options_fail_fast_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_in = tmp_path / "in.csv"
    csvio.write_csv(csv_in, ["caption", "videopath"], [["a", "x.mp4"]])
    base = ["--checkpoint", "tiny", "--input_csv", str(csv_in)]
    with pytest.raises(SystemExit) as info:  # no abbreviations: --output is not --output_csv
        judge_cli.main([*base, "--output", str(tmp_path / "o.csv")])
    assert info.value.code == 2
    assert judge_cli.main([*base, "--output_csv", str(tmp_path / "no" / "o.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert judge_cli.main([*base, "--output_csv", str(tmp_path / "o.csv"), "--device", "cuda"]) == 2
        assert capsys.readouterr().err.strip() == "error: --device cuda: no CUDA GPU is available here"
    assert not (tmp_path / "o.csv").exists()


def test_ctrl_c_keeps_the_rows_judged_so_far(tiny_dir: Path, videophy2_dir: Path, tmp_path: Path) -> None:
    rows = [[f"caption {k}", str(videophy2_dir / JETSKI)] for k in range(400)]
    csv_in, csv_out = tmp_path / "in.csv", tmp_path / "out.csv"
    csvio.write_csv(csv_in, ["caption", "videopath"], rows)
    argv = ["--input_csv", str(csv_in), "--output_csv", str(csv_out), "--checkpoint", str(tiny_dir)]
    proc = subprocess.Popen(
        _judge_cmd(*argv, "--num_frames", FRAMES, "--dtype", "float32"),
        env=_env(),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # wait for the first progress line, then interrupt
            if "judged 10/400" in line:
                proc.send_signal(signal.SIGINT)
                break
        rest = proc.stderr.read()
        assert proc.wait(timeout=300) == 130, rest
    finally:
        proc.kill()
    assert "Traceback" not in rest and "interrupted:" in rest
    _, out = csvio.read_rows(csv_out)
    assert len(out) == 400 and [r[1:3] for r in out] == rows
    statuses = [r[5] for r in out]
    assert statuses[:10].count("not_judged") == 0
    assert 10 <= sum(s != "not_judged" for s in statuses) < 400
    assert all(r[3] == "" for r in out if r[5] == "not_judged")
