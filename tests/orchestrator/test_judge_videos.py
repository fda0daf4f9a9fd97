"""`videophy-bench run --videos SOURCE`: existing videos (tiny MP4s made here and real benchmark videos
from the shared data) judged by the real tiny judge, with every bad row recorded per item."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from run_dirs import assert_exports_match_ledger, results, rows

from videophy_bench.common import csvio
from videophy_bench.common.video import encode_mp4
from videophy_bench.orchestrator.cli import main
from videophy_bench.orchestrator.prompts import load_prompt_set, normalize_caption

FAST = ["--refresh-s", "0.5", "--no-progress"]
SHARED = Path(os.environ.get("VIDEOPHY_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared"))
EXAMPLES = SHARED / "data" / "videophy2" / "examples"
SAMPLE = load_prompt_set("sample").prompts


def tiny_mp4(path: Path, shade: int = 0) -> Path:
    """A real 5-frame H.264 MP4 (its content differs with `shade`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.full((5, 32, 48, 3), 0.2 + 0.1 * shade, np.float32)
    frames[:, :, : 8 + 4 * shade] = 0.9
    encode_mp4(frames, path, fps=8)
    return path


def write_csv(path: Path, rows: list[tuple[str, str]], rule: list[str] | None = None) -> Path:
    cols = ["videopath", "caption", *(["rule"] if rule else [])]
    csvio.write_csv(path, cols, ([p, c, *([rule[k]] if rule else [])] for k, (p, c) in enumerate(rows)))
    return path


def example_rows(n: int) -> list[tuple[str, str]]:
    """(absolute video path, caption) of `n` real benchmark videos from the official sa_pc.csv."""
    header, data = csvio.read_rows(EXAMPLES / "sa_pc.csv")
    col = {h: k for k, h in enumerate(header)}
    return [(str(EXAMPLES.parent / r[col["videopath"]]), r[col["caption"]]) for r in data[:n]]


def run_args(root: Path, name: str, source: Path, address: str, *extra: str) -> list[str]:
    return ["run", "--videos", str(source), "--prompts", "sample", "--storage-root", str(root),
            "--out", str(root / "runs" / name), "--evaluators", address, *FAST, *extra]


def test_csv_source_judges_good_rows_records_bad_ones_and_resumes(judge, tmp_path, capsys):
    root, address = judge
    mine = tmp_path / "mine"  # outside the storage root: videos are copied in
    good = [tiny_mp4(mine / "a.mp4", 0), tiny_mp4(mine / "sub" / "b.mp4", 1), tiny_mp4(tmp_path / "c.mp4", 2)]
    (mine / "empty.mp4").write_bytes(b"")
    (mine / "text.mp4").write_text("not a video at all\n")
    truncated = tiny_mp4(mine / "truncated.mp4", 3)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 3])
    real = example_rows(2)
    outside_caption = "  A kettle whistles  on a stove. "  # in no prompt set
    source = write_csv(mine / "mine.csv", [
        ("a.mp4", SAMPLE[0].caption),  # relative to the CSV
        ("sub/b.mp4", SAMPLE[1].caption),
        (str(good[2]), "  " + SAMPLE[2].caption.replace(" ", "   ") + " "),  # absolute; spacing differs
        *real,  # real benchmark videos, captions outside the sample set
        ("missing.mp4", SAMPLE[3].caption),
        ("empty.mp4", SAMPLE[4].caption),
        ("text.mp4", SAMPLE[5].caption),
        ("truncated.mp4", SAMPLE[6].caption),
        ("./a.mp4", SAMPLE[7].caption),  # the same file as the first row
        ("c-copy.mp4", outside_caption),
    ])
    shutil.copyfile(good[2], mine / "c-copy.mp4")
    args = run_args(root, "mine", source, address)
    assert main(args) == 0
    run_dir = root / "runs" / "mine"
    led = rows(run_dir)
    assert len(led) == 11 and {r["arm"] for r in led} == {"mine"}
    judged = [r for r in led if r["state"] == "judged"]
    failed = {r["caption"]: r["error"] for r in led if r["state"] == "failed"}
    assert len(judged) == 6 and len(failed) == 5
    assert failed[SAMPLE[3].caption].startswith("input: video file not found")
    assert "empty file" in failed[SAMPLE[4].caption]
    assert "not a decodable video" in failed[SAMPLE[5].caption]
    assert "not a decodable video" in failed[SAMPLE[6].caption]
    assert "duplicate: row 2 of the CSV" in failed[SAMPLE[7].caption]
    ids = {p.prompt_id for p in SAMPLE[:3]}
    assert {r["prompt_id"] for r in judged if r["prompt_id"] in ids} == ids  # mapped by caption
    outside = [r for r in judged if r["prompt_id"].startswith("x-")]
    assert {normalize_caption(r["caption"]) for r in outside} == {
        normalize_caption(c) for c in (real[0][1], real[1][1], outside_caption)}
    spaced = next(r for r in judged if r["prompt_id"] == SAMPLE[2].prompt_id)
    assert spaced["caption"] != SAMPLE[2].caption  # the judge read the CSV's text as written
    for r in judged:
        path = root / r["video_uri"]
        assert path.parent == run_dir / "videos" / "mine" and r["sha256"] and r["sa_parse"] and r["pc_parse"]
        assert r["gen_attempts"] == 0 and r["judge_attempts"] == 1 and r["gen_seconds"] is None
    csv_rows = results(run_dir)
    for r in csv_rows:
        assert r["gen_prompt"] == r["gen_seconds"] == r["prompt_tokens"] == "" and r["arm"] == "mine"
        mapped = r["prompt_id"] in {p.prompt_id for p in SAMPLE}
        assert bool(r["action"]) == mapped and (r["is_hard"] in {"True", "False"}) == mapped
    assert_exports_match_ledger(run_dir)
    man = json.loads((run_dir / "manifest.json").read_text())
    assert man["config"]["judge_only"] is True and man["config"]["generator_model"] == ""
    assert {r["kind"] for r in man["replicas"]} == {"evaluator"}
    src = man["video_sources"]["mine"]
    assert src["csv"] == str(source.resolve()) and src["generator"] is None and src["outside_prompt_set"] == 3
    assert src["csv_sha256"] and src["duplicate_lines"] == {"2": [11]}
    assert main(["status", str(run_dir)]) == 0 and "judged 6" in capsys.readouterr().out

    # Rerun: nothing judged again, no copy rewritten.
    before = {r["request_id"]: (r["judge_attempts"], r["sha256"], r["errors"]) for r in led}
    mtimes = {p: p.stat().st_mtime_ns for p in (run_dir / "videos").rglob("*.mp4")}
    assert main(args) == 0
    assert {r["request_id"]: (r["judge_attempts"], r["sha256"], r["errors"]) for r in rows(run_dir)} == before
    assert {p: p.stat().st_mtime_ns for p in (run_dir / "videos").rglob("*.mp4")} == mtimes

    # A changed video is judged again; a missing one that appeared is judged; the rest stays.
    tiny_mp4(mine / "sub" / "b.mp4", 4)
    tiny_mp4(mine / "missing.mp4", 5)
    assert main(args) == 0
    after = {r["request_id"]: r for r in rows(run_dir)}
    changed = {rid for rid, r in after.items() if (r["judge_attempts"], r["sha256"]) != before[rid][:2]}
    assert {after[rid]["caption"] for rid in changed} == {SAMPLE[1].caption, SAMPLE[3].caption}
    assert all(after[rid]["state"] == "judged" and after[rid]["judge_attempts"] == 1 + before[rid][0]
               for rid in changed)
    assert assert_exports_match_ledger(run_dir)["n_items"] == 11


def test_directory_source_in_place_and_escapes_are_refused(judge, tmp_path):
    root, address = judge
    incoming = root / "incoming"  # under the storage root: judged where it lies
    inside = tiny_mp4(incoming / "v" / "one.mp4", 0)
    outside = tiny_mp4(tmp_path / "outside.mp4", 1)
    (incoming / "v" / "link.mp4").symlink_to(outside)
    tiny_mp4(root / "elsewhere.mp4", 2)  # under the root, but outside the directory source
    write_csv(incoming / "videos.csv", [
        ("v/one.mp4", SAMPLE[0].caption),
        ("v/link.mp4", SAMPLE[1].caption),
        ("../elsewhere.mp4", SAMPLE[2].caption),
        (str(outside), SAMPLE[3].caption),
    ])
    (incoming / "notes.csv").write_text("ignored\n")  # videos.csv is the one read
    assert main(run_args(root, "dir", incoming, address, "--arm", "wan2.2")) == 0
    run_dir = root / "runs" / "dir"
    led = {r["caption"]: r for r in rows(run_dir)}
    one = led[SAMPLE[0].caption]
    assert one["state"] == "judged" and one["video_uri"] == "incoming/v/one.mp4" and one["arm"] == "wan2.2"
    assert inside.stat().st_nlink == 1 and not list((run_dir / "videos").rglob("*.mp4"))  # nothing copied
    for caption in (SAMPLE[1].caption, SAMPLE[2].caption, SAMPLE[3].caption):
        assert led[caption]["state"] == "failed" and "escapes the source directory" in led[caption]["error"]
        assert led[caption]["video_uri"] is None and led[caption]["judge_attempts"] == 0
    assert_exports_match_ledger(run_dir)


def test_csv_under_root_cannot_reach_out_through_dotdot_or_symlinks(judge, tmp_path):
    root, address = judge
    outside = tiny_mp4(tmp_path / "far" / "x.mp4", 0)
    (root / "drop").mkdir(exist_ok=True)
    (root / "drop" / "x.mp4").symlink_to(outside)
    rel = os.path.relpath(outside, root / "drop")  # ../../...: climbs out of the storage root
    source = write_csv(root / "drop" / "list.csv", [("x.mp4", SAMPLE[0].caption), (rel, SAMPLE[1].caption),
                                                    (str(outside), SAMPLE[2].caption)])
    assert main(run_args(root, "drop", source, address)) == 0
    led = {r["caption"]: r for r in rows(root / "runs" / "drop")}
    link_error = led[SAMPLE[0].caption]["error"]
    assert "escapes the storage root" in link_error and "symlink" in link_error
    assert "escapes the storage root" in led[SAMPLE[1].caption]["error"]
    assert led[SAMPLE[2].caption]["state"] == "judged"  # an absolute path outside the root is copied in


@pytest.mark.parametrize(
    ("setup", "extra", "message"),
    [
        ("none", [], "no such file or directory"),
        ("nocol", [], "has no videopath column"),
        ("empty_dir", [], "holds no CSV"),
        ("ok", ["--model", "tiny"], "--model does not apply"),
        ("ok", ["--seeds", "2", "--upsampled"], "--upsampled, --seeds do not apply"),
        ("ok", ["--arm", "../x"], "is not a safe file name"),
    ],
)
def test_bad_source_or_options_are_one_line_and_create_nothing(tmp_path, capsys, setup, extra, message):
    source = tmp_path / "src.csv"
    if setup == "nocol":
        source.write_text("path,caption\na.mp4,x\n")
    elif setup == "empty_dir":
        source = tmp_path / "d"
        source.mkdir()
    elif setup == "ok":
        write_csv(source, [("a.mp4", "x")])
    out = tmp_path / "run"
    code = main(["run", "--videos", str(source), "--prompts", "sample", "--out", str(out),
                 "--evaluators", "127.0.0.1:1", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_videos_need_a_judge(tmp_path, capsys):
    source = write_csv(tmp_path / "src.csv", [("a.mp4", "x")])
    assert main(["run", "--videos", str(source), "--out", str(tmp_path / "run")]) == 2
    assert "--videos needs a judge" in capsys.readouterr().err


@pytest.mark.slow
def test_local_starts_only_the_judge(tmp_path):
    src = tmp_path / "src"
    write_csv(src / "videos.csv", [(tiny_mp4(src / f"{k}.mp4", k).name, SAMPLE[k].caption) for k in range(2)])
    run_dir = tmp_path / "run"
    args = ["run", "--local", "--videos", str(src), "--judge-model", "tiny", "--prompts", "sample",
            "--out", str(run_dir), *FAST]
    assert main(args) == 0
    led = rows(run_dir)
    assert len(led) == 2 and {r["state"] for r in led} == {"judged"} and {r["arm"] for r in led} == {"src"}
    started = sorted(p.name for p in (run_dir / "logs").iterdir())
    assert started and all(name.startswith("evaluator-") for name in started), started


@pytest.mark.slow
def test_local_judge_from_a_checkpoint_directory_in_the_official_layout(tmp_path):
    """`--judge-model DIR` (a checkpoint as the official repo lays it out) also with --local: the
    evaluator child loads it from there, and the run records the directory and its content revision."""
    from videophy_bench.evaluator.tiny import build_tiny_judge

    checkpoint = build_tiny_judge(tmp_path / "my-judge")
    src = tmp_path / "src"
    write_csv(src / "videos.csv", [(tiny_mp4(src / f"{k}.mp4", k).name, SAMPLE[k].caption) for k in range(2)])
    run_dir = tmp_path / "run"
    args = ["run", "--local", "--allow-cpu", "--videos", str(src), "--judge-model", str(checkpoint),
            "--prompts", "sample", "--out", str(run_dir), *FAST]
    assert main(args) == 0
    led = rows(run_dir)
    assert len(led) == 2 and {r["state"] for r in led} == {"judged"}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["judge_model"] == str(checkpoint)
    (evaluator,) = manifest["models"]["evaluator"]
    assert evaluator["revision"].startswith("local")  # a directory has no Hub commit: its content hash
