"""The openai-vlm judge against a loopback server speaking the OpenAI chat-completions protocol
(tests/fake_openai.py), over real MP4s: the frames that arrive are decoded and compared with the
video's own frames (decoded here by another decoder, imageio-ffmpeg), answers are parsed and flagged
as the AutoEval's, endpoint failures stay the video's."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from fake_openai import FakeOpenAI, official_indices, user_text

from videophy_bench.common.openai_chat import NO_KEY, EndpointError, EndpointSettings
from videophy_bench.common.video import decode_mp4, encode_mp4
from videophy_bench.evaluator.errors import EmptyTextError, JudgeEndpointError, UnsupportedPromptError
from videophy_bench.evaluator.frame_rule import FrameRule
from videophy_bench.evaluator.judge import JudgeQuery, load_judge
from videophy_bench.evaluator.model.templates import AUTOEVAL_SYSTEM

CAPTION = "A ball rolls down a ramp."
RULE = "The ball accelerates."
QUERIES = [JudgeQuery("sa", CAPTION), JudgeQuery("pc"), JudgeQuery("rule", RULE)]


def moving_mp4(path: Path, frames: int = 40, w: int = 96, h: int = 64) -> Path:
    """A real H.264 MP4 whose every frame is different: a bright bar moves, the background darkens."""
    video = np.zeros((frames, h, w, 3), np.float32)
    for k in range(frames):
        video[k] = 0.8 - 0.015 * k
        x = (k * 7) % (w - 8)
        video[k, :, x : x + 8] = (0.1, 0.9, 0.2)
    encode_mp4(video, path, fps=8)
    return path


def settings(fake: FakeOpenAI, **kw) -> EndpointSettings:
    return EndpointSettings(fake.url, "fake-vlm", backoff_s=0.01, **kw)


def vlm(fake: FakeOpenAI, rule: FrameRule | None = None, **kw):
    return load_judge("openai-vlm", endpoint=settings(fake, **kw), frames=rule or FrameRule())


def test_frames_arrive_as_the_videos_frames_and_answers_are_parsed(tmp_path):
    video = moving_mp4(tmp_path / "v.mp4")
    with FakeOpenAI(models=("fake-vlm", "other")) as fake:
        fake.expected_frames, fake.max_side = 8, 448
        judge = vlm(fake)
        out = judge.judge(str(video), QUERIES)
        assert fake.problems == []
        ours, _ = decode_mp4(video)
        want = official_indices(len(ours), 8)
        assert out.frame_indices == want and out.total_frames == len(ours) == 40
        assert [(a.task, a.score, a.parse_status, a.raw_text) for a in out.answers] == [
            ("sa", 4.0, "parsed", "4"), ("pc", 5.0, "parsed", "Five."), ("rule", 1.0, "parsed", "1")]
        assert sorted(t for t, _, _ in fake.judged) == ["pc", "rule", "sa"]
        first = fake.judged[0][2]
        for _, _, frames in fake.judged:  # every task of the video sees the same frames
            assert len(frames) == 8 and all(np.array_equal(a, b) for a, b in zip(frames, first, strict=True))
        for k, frame in zip(want, first, strict=True):
            assert frame.shape == ours[k].shape  # 96x64: under 448 px, sent at its own size
            diffs = [np.abs(frame.astype(int) - f.astype(int)).mean() for f in ours]
            assert int(np.argmin(diffs)) == k and diffs[k] < 2.0  # this frame and no other
        assert len({f.tobytes() for f in first}) == 8  # eight different frames
        body = fake.requests[0]["body"]
        assert body["model"] == "fake-vlm" and body["temperature"] == 0 and body["max_tokens"] == 255
        assert body["messages"][0] == {"role": "system", "content": AUTOEVAL_SYSTEM}
        texts = {t: text for t, text, _ in fake.judged}
        assert texts["sa"].startswith(f'Does this video match the description: "{CAPTION}"? Please rate')
        assert f'physical rule: "{RULE}"?\nChoose 0 if not' in texts["rule"]
        assert all(t.endswith("\nAnswer with the number only.") for t in texts.values())
        assert fake.requests[0]["headers"]["Authorization"] == f"Bearer {NO_KEY}"
        assert judge.info.model_id == "fake-vlm" and judge.info.name == "openai-vlm"
        assert judge.info.revision == ("autoeval-chat-1 frames=8:get_index side<=448 png max_tokens=255 "
                                       "temperature=0")
        judge.close()


def test_large_frames_shrink_keeping_aspect_and_jpeg_is_sent_as_jpeg(tmp_path):
    video = moving_mp4(tmp_path / "wide.mp4", frames=9, w=640, h=360)
    with FakeOpenAI(models=("fake-vlm",)) as fake:
        fake.expected_frames, fake.max_side = 4, 448
        judge = vlm(fake, FrameRule(4, 448, "jpeg"))
        out = judge.judge(str(video), [JudgeQuery("pc")])
        assert fake.problems == [] and out.answers[0].score == 5.0
        frames = fake.judged[0][2]
        assert [f.shape for f in frames] == [(252, 448, 3)] * 4
        assert all(u["image_url"]["url"].startswith("data:image/jpeg;base64,")
                   for u in fake.requests[0]["body"]["messages"][1]["content"][:4])
        judge.close()


ANSWERS = {  # caption -> (raw answer, score, parse status) as the AutoEval's parser flags them
    "digits": ("٣", 3.0, "digit_fallback"),
    "garbage": ("The video is blurry.", 0.0, "unparseable"),
    "crash": ("x⁷y", None, "parser_error"),
    "empty": ("", 0.0, "unparseable"),
    "refusal": ("I'm sorry, I can't help with that.", 0.0, "unparseable"),
    "chatty": ("I would rate it 4 because someone rolls it.", 1.0, "parsed"),  # the official quirk, kept
}


def test_scripted_answers_are_parsed_and_flagged_like_the_autoeval(tmp_path):
    video = moving_mp4(tmp_path / "v.mp4", frames=12)
    with FakeOpenAI(models=("fake-vlm",)) as fake:
        fake.judge_script = {("sa", f"[{name}]"): text for name, (text, _, _) in ANSWERS.items()}
        judge = vlm(fake)
        outs = judge.judge_batch([(str(video), [JudgeQuery("sa", f"[{name}] {CAPTION}")])
                                  for name in ANSWERS])
        for name, out in zip(ANSWERS, outs, strict=True):
            a = out.answers[0]
            assert (a.raw_text, a.score, a.parse_status) == ANSWERS[name], name
        judge.close()


def test_endpoint_failures_are_the_videos_and_answers_received_are_kept(tmp_path):
    video = str(moving_mp4(tmp_path / "v.mp4", frames=10))
    with FakeOpenAI(models=("fake-vlm",)) as fake:
        judge = vlm(fake, max_attempts=3)
        fake.fail_next = [500, 503]  # retried: the third attempt answers
        assert judge.judge(video, [JudgeQuery("pc")]).answers[0].score == 5.0
        assert fake.statuses == [500, 503, 200]

        fake.judge_script = {("pc", ""): (None, "<html>proxy error</html>")}  # not a chat completion
        other = str(moving_mp4(tmp_path / "other.mp4", frames=11))  # (pc of `video` is answered: kept)
        outs = judge.judge_batch([(video, [JudgeQuery("sa", CAPTION), JudgeQuery("rule", RULE)]),
                                  (other, [JudgeQuery("sa", CAPTION), JudgeQuery("pc")])])
        assert [a.score for a in outs[0].answers] == [4.0, 1.0]  # the first video is not held up
        assert isinstance(outs[1], JudgeEndpointError) and outs[1].transient
        assert "pc: openai-vlm endpoint" in str(outs[1]) and "not a chat-completions answer" in str(outs[1])
        asked = len(fake.requests)
        fake.judge_script = {}
        again = judge.judge(other, [JudgeQuery("sa", CAPTION), JudgeQuery("pc")])
        assert [a.score for a in again.answers] == [4.0, 5.0]
        assert len(fake.requests) == asked + 1  # only pc was asked again: sa's answer was kept

        fake.fail_next = [400]  # a refusal of the request: not retried, not transient
        with pytest.raises(JudgeEndpointError, match="HTTP 400") as info:
            judge.judge(video, [JudgeQuery("rule", "refused rule")])
        assert not info.value.transient and fake.statuses[-1] == 400
        fake.fail_next = [500] * 3
        with pytest.raises(JudgeEndpointError, match="gave up after 3 attempts") as info:
            judge.judge(video, [JudgeQuery("rule", "another rule")])
        assert info.value.transient
        judge.close()


def test_requests_in_flight_are_bounded_by_the_concurrency(tmp_path):
    videos = [str(moving_mp4(tmp_path / f"v{k}.mp4", frames=6 + k)) for k in range(3)]
    with FakeOpenAI(models=("fake-vlm",)) as fake:
        judge = vlm(fake, concurrency=2)
        fake.gate = threading.Event()  # every request waits here until the test opens it
        with ThreadPoolExecutor(1) as pool:
            batch = pool.submit(judge.judge_batch, [(v, QUERIES) for v in videos])
            with fake.flight:
                assert fake.flight.wait_for(lambda: fake.in_flight >= 2, timeout=120)
            fake.gate.set()
            outs = batch.result(timeout=300)
        assert [len(o.answers) for o in outs] == [3, 3, 3] and len(fake.requests) == 9
        assert fake.peak_in_flight == 2  # nine requests, never more than two at once
        judge.close()


def test_bad_text_is_refused_before_any_request_or_decoding(tmp_path):
    with FakeOpenAI(models=("fake-vlm",)) as fake:
        judge = vlm(fake)
        missing = str(tmp_path / "missing.mp4")  # never decoded: the text is checked first
        with pytest.raises(EmptyTextError):
            judge.judge(missing, [JudgeQuery("sa", "  ")])
        with pytest.raises(UnsupportedPromptError, match="8001 characters; the limit is 8000"):
            judge.judge(missing, [JudgeQuery("rule", "x" * 8001)])
        assert fake.requests == []
        judge.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_endpoint_that_cannot_serve_is_refused_at_load_in_one_line(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(EndpointError, match="gave up after 2 attempts") as info:
        load_judge("openai-vlm", endpoint=EndpointSettings(url, "m", max_attempts=2, backoff_s=0.01))
    assert "\n" not in str(info.value)
    with FakeOpenAI(models=("qwen2.5-vl",)) as fake, pytest.raises(
            EndpointError, match=re.escape("does not serve model 'fake-vlm' (it serves qwen2.5-vl)")):
        vlm(fake)
    with FakeOpenAI(api_key="s3cret", models=("fake-vlm",)) as fake:
        with pytest.raises(EndpointError, match=r"HTTP 401.*--llm-api-key"):
            vlm(fake)
        key = EndpointSettings(fake.url, "fake-vlm", api_key="s3cret")
        judge = load_judge("openai-vlm", endpoint=key)
        assert "s3cret" not in repr(key) and "s3cret" not in repr(judge.info)
        judge.judge(str(moving_mp4(tmp_path / "v.mp4", 5)), [JudgeQuery("pc")])
        assert fake.requests[-1]["headers"]["Authorization"] == "Bearer s3cret"
        judge.close()


# -- the service ---------------------------------------------------------------------------------------------
def serve_process(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "videophy_bench.evaluator", "--bind", "127.0.0.1:0", *flags],
                          capture_output=True, text=True, timeout=300)


def test_serve_evaluator_refuses_a_bad_endpoint_in_one_line_before_serving():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    cases = [
        (["--model", "openai-vlm"], 2, "--model openai-vlm needs --llm-endpoint URL and --llm-model NAME"),
        (["--model", "tiny", "--llm-endpoint", url], 2, "--llm-endpoint applies to judges over an endpoint"),
        (["--model", "openai-vlm", "--llm-endpoint", url, "--llm-model", "m", "--llm-attempts", "1"], 1,
         f"videophy-bench serve evaluator: gave up after 1 attempts: {url}/models"),
    ]
    for flags, code, message in cases:
        done = serve_process(*flags)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == code and len(lines) == 1 and message in lines[0], done.stderr


def test_the_servicer_serves_the_vlm_judge_with_limits_first_and_failures_per_call(tmp_path):
    from grpc import StatusCode
    from service_harness import SERVING, wait_for_health

    from videophy_bench.common import judge_tasks
    from videophy_bench.common.server import ServiceHost
    from videophy_bench.evaluator.cli import build_parser, serve
    from videophy_bench.proto.v1 import common_pb2, evaluator_pb2, evaluator_pb2_grpc

    (tmp_path / "videos").mkdir()
    moving_mp4(tmp_path / "videos" / "v.mp4")
    wire = {t.name: t.wire for t in judge_tasks.tasks()}

    def req(rid: str, caption: str, *tasks: str) -> evaluator_pb2.EvaluateRequest:
        return evaluator_pb2.EvaluateRequest(request_id=rid, video_uri="videos/v.mp4", queries=[
            evaluator_pb2.JudgeQuery(task=wire[t], text=caption if t == "sa" else "") for t in tasks])

    async def outcome(stub, request):
        try:
            return [e async for e in stub.Evaluate(request)][-1].result
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details()

    async def main(fake: FakeOpenAI) -> None:
        args = build_parser().parse_args([
            "--bind", "127.0.0.1:0", "--storage-root", str(tmp_path), "--grace-s", "5",
            "--model", "openai-vlm", "--llm-endpoint", fake.url, "--llm-model", "fake-vlm",
            "--llm-attempts", "2", "--llm-backoff-s", "0.01", "--judge-frames", "6"])
        listening: asyncio.Future[ServiceHost] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(args, on_listening=listening.set_result))
        host = await listening
        target = f"127.0.0.1:{host.port}"
        try:
            await wait_for_health(target, "readiness", SERVING)
            async with grpc.aio.insecure_channel(target) as ch:
                stub = evaluator_pb2_grpc.EvaluatorServiceStub(ch)
                info = await stub.GetInfo(common_pb2.GetInfoRequest())
                assert (info.model.model_id, info.model.preset) == ("fake-vlm", "openai-vlm")
                assert "frames=6:get_index" in info.model.revision
                assert sorted(info.tasks) == sorted(wire[t] for t in ("sa", "pc", "rule"))
                good, down, huge = await asyncio.gather(
                    outcome(stub, req("good", CAPTION, "sa", "pc")),
                    outcome(stub, req("down", "[down] " + CAPTION, "sa")),
                    outcome(stub, req("huge", "x" * 8001, "sa")))
        finally:
            await host.drain()
            await asyncio.wait_for(task, 30)
        assert [(a.score, a.raw_text) for a in good.answers] == [(4.0, "4"), (5.0, "Five.")]
        assert list(good.frame_indices) == official_indices(40, 6)
        assert down[0] == StatusCode.UNAVAILABLE and "gave up after 2 attempts: HTTP 503" in down[1]
        assert huge == (StatusCode.INVALID_ARGUMENT, "the caption for task 'sa' has 8001 characters; the "
                                                    "limit is 8000")

    with FakeOpenAI(models=("fake-vlm",)) as fake:
        fake.expected_frames = 6
        fake.judge_script = {("sa", "[down]"): 503}
        asyncio.run(main(fake))
        assert fake.problems == [] and not any("xxxx" in user_text(r["body"]) for r in fake.requests)


def test_help_never_shows_the_key_and_the_environment_gives_it(monkeypatch):
    from videophy_bench.common.openai_chat import API_KEY_ENV
    from videophy_bench.evaluator.cli import build_parser
    from videophy_bench.orchestrator.cli import build_parser as run_parser

    monkeypatch.setenv(API_KEY_ENV, "zzz-secret")
    parser = build_parser()
    assert "zzz-secret" not in parser.format_help()
    run = run_parser()._subparsers._group_actions[0].choices["run"]
    assert "zzz-secret" not in run.format_help() and "--llm-api-key" in run.format_help()
    args = parser.parse_args(["--model", "openai-vlm", "--llm-endpoint", "http://h/v1", "--llm-model", "m"])
    assert EndpointSettings.from_cli_args(args).api_key == "zzz-secret"
    flag = parser.parse_args(["--llm-endpoint", "http://h/v1", "--llm-model", "m", "--llm-api-key", "k2"])
    assert EndpointSettings.from_cli_args(flag).api_key == "k2"
