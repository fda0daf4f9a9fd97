"""`videophy-bench run --local --judge-model openai-vlm`: the real services (tiny generator, the
evaluator serving the VLM judge) against a loopback server speaking the OpenAI chat-completions
protocol, which compares every frame it receives with the video it is about (tests/fake_openai.py)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, judge_task, user_text
from run_dirs import assert_exports_match_ledger, results, rows

from videophy_bench.common import csvio
from videophy_bench.orchestrator.analysis.loading import load_run, split_conditions
from videophy_bench.orchestrator.cli import main
from videophy_bench.orchestrator.prompts import load_prompt_set

FAST = ["--refresh-s", "0.5", "--no-progress"]
SAMPLE = load_prompt_set("sample").prompts
KEY = "s3cret-key-value"
SHARED = Path(os.environ.get("VIDEOPHY_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared"))
EXAMPLES = SHARED / "data" / "videophy2" / "examples"


def vlm_args(fake: FakeOpenAI, *extra: str) -> list[str]:
    return ["--judge-model", "openai-vlm", "--llm-endpoint", fake.url, "--llm-model", "fake-vlm",
            "--llm-backoff-s", "0.01", *extra, *FAST]


def quoted_in(text: str, *values: str) -> bool:
    return any(v and f'"{v}"' in text for v in values)


def ledger_video(run_dir: Path, text: str) -> Path | None:
    """The video of the run whose caption (or rule) the question quotes."""
    found = [r for r in rows(run_dir) if r["video_uri"] and quoted_in(text, r["caption"], r["rule"])]
    return run_dir / found[0]["video_uri"] if len(found) == 1 else None


def same_frames(a, b) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and (x == y).all() for x, y in zip(a, b, strict=True))


def check_pc_frames(fake: FakeOpenAI) -> None:
    """pc questions quote nothing, so the server could not name their video: each must have been sent
    exactly the frames of some video's sa question (checked against the video itself)."""
    sa = [f for t, _, f in fake.judged if t == "sa"]
    pcs = [f for t, _, f in fake.judged if t == "pc"]
    assert pcs and all(any(same_frames(p, s) for s in sa) for p in pcs)


def test_local_run_scores_parses_and_records_failures_then_resumes(tmp_path, capsys):
    run_dir = tmp_path / "vlm"
    caps = [p.caption for p in SAMPLE[:5]]
    with FakeOpenAI(models=("fake-vlm",), api_key=KEY) as fake:
        fake.expected_frames, fake.max_side = 4, 448
        fake.video_of = lambda text: ledger_video(run_dir, text)
        fake.judge_script = {("sa", caps[1]): "٣", ("sa", caps[2]): "It shows nothing useful.",
                             ("sa", caps[3]): 400, ("sa", caps[4]): 503}
        args = ["run", "--local", "--model", "tiny", "--prompts", "sample", "--limit", "5", "--out",
                str(run_dir), "--max-attempts", "2", *vlm_args(fake, "--judge-frames", "4", "--llm-attempts",
                                                                "2", "--llm-api-key", KEY)]
        assert main(args) == 0  # every item settled: two of them failed, with their reasons
        assert fake.problems == []  # every frame arrived as the video's own, at its size
        check_pc_frames(fake)
        res = {r["caption"]: r for r in results(run_dir)}
        got = [(res[c]["state"], res[c]["sa"], res[c]["sa_parse"], res[c]["sa_raw"], res[c]["pc"],
                res[c]["pc_parse"]) for c in caps[:3]]
        assert got == [("judged", "4.0", "parsed", "4", "5.0", "parsed"),
                       ("judged", "3.0", "digit_fallback", "٣", "5.0", "parsed"),
                       ("judged", "0.0", "unparseable", "It shows nothing useful.", "5.0", "parsed")]
        assert [res[c]["joint"] for c in caps[:3]] == ["1.0", "0.0", "0.0"]
        refused, down = res[caps[3]], res[caps[4]]
        assert refused["state"] == down["state"] == "failed" and refused["sa"] == down["sa"] == ""
        assert refused["error"].startswith("judge: INVALID_ARGUMENT: sa: openai-vlm endpoint:")
        assert "refused the request with HTTP 400" in refused["error"]
        assert down["error"].startswith("judge: UNAVAILABLE: sa: openai-vlm endpoint: gave up after 2 "
                                        "attempts")
        assert down["error"].endswith("(after 2 attempts)")  # the dispatcher's attempts, each retried twice
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["config"]["judge_model"] == "fake-vlm"  # the endpoint's model is the run's judge
        assert manifest["config"]["judge_revision"] == (
            "autoeval-chat-1 frames=4:get_index side<=448 png max_tokens=255 temperature=0")
        assert manifest["sessions"][-1]["argv"][-len(FAST) - 2:-len(FAST)] == ["--llm-api-key", "REDACTED"]
        for path in (p for p in run_dir.rglob("*") if p.is_file()):  # the key is nowhere in the run
            assert KEY.encode() not in path.read_bytes(), path
        assert all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in fake.requests)

        # Resume: only what failed is asked again (the endpoint works now), the rest stays as it is.
        before = {r["request_id"]: (r["judge_attempts"], r["sa_raw"]) for r in rows(run_dir)}
        asked = len(fake.requests)
        fake.judge_script = {("sa", caps[1]): "٣", ("sa", caps[2]): "It shows nothing useful."}
        assert main(args) == 0
        again = [user_text(r["body"]) for r in fake.requests[asked:]]
        sa_again = [t for t in again if judge_task(t) == "sa"]
        assert len(again) == 4 and len(sa_again) == 2 and all(quoted_in(t, *caps[3:]) for t in sa_again)
        after = {r["request_id"]: r for r in rows(run_dir)}
        for rid, (attempts, raw) in before.items():
            if raw:
                assert (after[rid]["judge_attempts"], after[rid]["sa_raw"]) == (attempts, raw)
        assert {r["state"] for r in after.values()} == {"judged"}
        assert assert_exports_match_ledger(run_dir)["n_items"] == 5
    # Reports name the judge: never shown as the AutoEval itself.
    assert split_conditions(load_run(run_dir))[0].judge == "fake-vlm (openai-vlm, AutoEval rubric)"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--judge-model", "openai-vlm"], "openai-vlm needs --llm-endpoint URL and --llm-model NAME"),
        (["--judge-model", "openai-vlm", "--llm-endpoint", "http://127.0.0.1:{port}/v1", "--llm-model", "m",
          "--llm-attempts", "1"], "--llm-endpoint: gave up after 1 attempts: http://127.0.0.1:{port}/v1/models"),
        (["--judge-model", "openai-vlm", "--llm-endpoint", "{fake}", "--llm-model", "m"],
         "does not serve model 'm' (it serves fake-vlm): check --llm-model"),
        (["--judge-model", "tiny", "--llm-endpoint", "http://h/v1", "--llm-model", "m"],
         "--llm-endpoint applies to a judge over an endpoint (openai-vlm), not --judge-model tiny"),
        (["--judge-model", "openai-vlm", "--llm-endpoint", "http://h/v1", "--llm-model", "m",
          "--judge-frames", "0"], "--judge-frames 0: must be in 1..64"),
        (["--judge-model", "openai-vlm", "--llm-endpoint", "http://h/v1", "--api-key-env", "NO_SUCH_VAR_X",
          "--llm-model", "m"], "--api-key-env NO_SUCH_VAR_X is not set"),
    ],
)
def test_bad_endpoint_or_flags_are_one_line_before_anything_starts(tmp_path, capsys, extra, message):
    port = closed_port()
    run_dir = tmp_path / "never"
    with FakeOpenAI(models=("fake-vlm",)) as fake:
        extra = [a.format(port=port, fake=fake.url) for a in extra]
        message = message.format(port=port)
        code = main(["run", "--local", "--model", "tiny", "--prompts", "sample", "--limit", "1", "--out",
                     str(run_dir), "--llm-backoff-s", "0.01", *extra, *FAST])
        assert fake.requests == []
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert "Traceback" not in err and not run_dir.exists()


def example_csv(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """The 20 real example videos as one --videos CSV: the sa_pc rows (caption), and the rule rows with a
    caption made from the file name; and the video of each caption and rule."""
    out, by_text = [], {}
    for name, has_rule in (("sa_pc.csv", False), ("rule.csv", True)):
        header, data = csvio.read_rows(EXAMPLES / name)
        col = {h: k for k, h in enumerate(header)}
        for r in data:
            path = EXAMPLES.parent / r[col["videopath"]]
            caption = r[col["caption"]] if not has_rule else path.stem.rstrip("_0123456789").replace("_", " ")
            rule = r[col["rule"]] if has_rule else ""
            out.append([str(path), caption, rule])
            by_text.update({caption: path, **({rule: path} if rule else {})})
    csvio.write_csv(tmp_path / "examples.csv", ["videopath", "caption", "rule"], out)
    return tmp_path / "examples.csv", by_text


def test_real_example_videos_through_the_vlm_judge(tmp_path):
    source, by_text = example_csv(tmp_path)
    run_dir = tmp_path / "examples"
    with FakeOpenAI(models=("fake-vlm",)) as fake:
        fake.expected_frames, fake.max_side = 8, 448
        fake.video_of = lambda text: next((p for t, p in by_text.items() if quoted_in(text, t)), None)
        fake.judge_script = {("rule", ""): "0 - the rule is violated."}
        args = ["run", "--videos", str(source), "--local", "--prompts", "sample", "--out", str(run_dir),
                *vlm_args(fake)]
        assert main(args) == 0
        assert fake.problems == []
        check_pc_frames(fake)
    judged = [f for t, _, f in fake.judged if t != "pc"]
    # Shrunk to 448 px on the longer side (each one's exact size and pixels were checked by the server).
    assert len(judged) == 30 and {max(f[0].shape[:2]) for f in judged} == {448}
    assert all(len({x.tobytes() for x in f}) == 8 for f in judged)  # eight different frames each
    res = results(run_dir)
    assert len(res) == 20 and {r["state"] for r in res} == {"judged"}
    assert {(r["sa"], r["pc"], r["sa_parse"]) for r in res} == {("4.0", "5.0", "parsed")}
    rules = [r for r in res if r["rule_parse"]]
    assert len(rules) == 10 and {(r["rule"], r["rule_raw"]) for r in rules} == {
        ("0.0", "0 - the rule is violated.")}
    assert assert_exports_match_ledger(run_dir)["n_items"] == 20
