"""EvaluatorService over a real grpc.aio server on 127.0.0.1 with the tiny judge: health, GetInfo, answers
equal to a direct judge call, one decode for all tasks, micro-batching, busy, bad input and the token.

The server is started through `videophy_bench.evaluator.cli.serve`, the production entry point (flags,
interceptors, health, reflection, drain). The tiny judge is built once per session into a temporary
VIDEOPHY_CACHE and loaded in float32, as `serve evaluator --model tiny` does on CPU.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
import torch
from grpc import aio
from service_harness import NOT_SERVING, SERVING, Running, health_status, wait_for_health

from videophy_bench.common import judge_tasks
from videophy_bench.common.channel import ClientConfig
from videophy_bench.common.limits import MAX_ID_CHARS, MAX_JUDGE_QUERIES, MAX_JUDGE_TEXT_CHARS
from videophy_bench.common.server import ServiceHost
from videophy_bench.common.storage import sha256_file
from videophy_bench.evaluator import catalog, prefetch
from videophy_bench.evaluator.cli import SERVICE_NAME, build_parser, serve
from videophy_bench.evaluator.engine import to_service_error
from videophy_bench.evaluator.errors import EmptyVideoError, UnsupportedPromptError, VideoDecodeError
from videophy_bench.evaluator.judge import JudgeOutcome, JudgeQuery, MplugOwlJudge, load_judge
from videophy_bench.evaluator.model.frames import frame_indices
from videophy_bench.evaluator.model.templates import build_prompt
from videophy_bench.evaluator.model.tokenization import VIDEOCON_MAX_LENGTH
from videophy_bench.proto.v1 import common_pb2, evaluator_pb2, evaluator_pb2_grpc

VIDEOS = {
    "jetski.mp4": "A_jetski_moves_quickly_through_a_narrow_channel_between_two_rocky_outcrops_0.mp4",
    "map.mp4": "Hands_fold_a_map,_showing_the_creases_forming_as_sections_are_brought_together_0.mp4",
    "streamer.mp4": (
        "A_streamer,_cut_from_paper,_descends_from_a_high_point,_twisting_and_turning_gently_0.mp4"
    ),
}
CAPTIONS = {
    "jetski.mp4": "A jetski moves quickly through a narrow channel between two rocky outcrops.",
    "map.mp4": "Hands fold a map, showing the creases forming as sections are brought together.",
    "streamer.mp4": "A streamer, cut from paper, descends from a high point, twisting and turning gently.",
}
RULE = "Objects fall downward because of gravity."
SA, PC, RULE_T = evaluator_pb2.JUDGE_TASK_SA, evaluator_pb2.JUDGE_TASK_PC, evaluator_pb2.JUDGE_TASK_RULE
VC_SA, VC_PC = evaluator_pb2.JUDGE_TASK_VIDEOCON_SA, evaluator_pb2.JUDGE_TASK_VIDEOCON_PC
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


# -- fixtures ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_judge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MplugOwlJudge]:
    """The tiny judge, built into a temporary cache and loaded once (float32, the CPU default)."""
    cache = tmp_path_factory.mktemp("videophy-cache")
    old = os.environ.get("VIDEOPHY_CACHE")
    os.environ["VIDEOPHY_CACHE"] = str(cache)
    torch.set_num_threads(2)
    try:
        judge = load_judge("tiny", device="cpu", dtype="float32")
    finally:
        if old is None:
            os.environ.pop("VIDEOPHY_CACHE", None)
        else:
            os.environ["VIDEOPHY_CACHE"] = old
    yield judge
    judge.close()


@pytest.fixture(scope="session")
def storage(tmp_path_factory: pytest.TempPathFactory, videophy2_dir: Path) -> Path:
    """A storage root with three real example videos, a truncated one, an empty file and a frameless mp4."""
    root = tmp_path_factory.mktemp("storage")
    (root / "videos").mkdir()
    for name, src in VIDEOS.items():
        shutil.copyfile(videophy2_dir / "examples" / src, root / "videos" / name)
    data = (root / "videos" / "jetski.mp4").read_bytes()
    (root / "videos" / "corrupt.mp4").write_bytes(data[:2000])
    (root / "videos" / "empty.mp4").write_bytes(b"")
    _frameless_mp4(root / "videos" / "zero_frames.mp4")
    return root


def _frameless_mp4(path: Path) -> None:
    """An MP4 container that ffmpeg wrote with zero video frames (falls back to a bare `ftyp` box)."""
    try:
        import imageio_ffmpeg

        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                        "color=c=black:s=64x64:r=8", "-frames:v", "0", "-c:v", "libx264", "-pix_fmt",
                        "yuv420p", str(path)], check=True, capture_output=True, timeout=60)
    except Exception:
        path.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2")


class RecordingJudge:
    """The real tiny judge behind a recorder: which videos each forward got, an optional gate that holds
    forwards (to queue calls deterministically), and an optional narrower task list (a model that serves
    fewer tasks)."""

    def __init__(self, inner: MplugOwlJudge, tasks: Sequence[str] | None = None) -> None:
        self.inner = inner
        self.info = inner.info if tasks is None else dataclasses.replace(inner.info, tasks=tuple(tasks))
        self.batches: list[list[str]] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def validate(self, queries: Sequence[JudgeQuery]) -> None:
        self.inner.validate(queries)

    def judge(self, video_path: str, queries: list[JudgeQuery]) -> JudgeOutcome:
        return self.judge_batch([(video_path, queries)])[0]

    def judge_batch(self, items: list[tuple[str, list[JudgeQuery]]]) -> list[JudgeOutcome]:
        self.batches.append([Path(p).name for p, _ in items])
        self.entered.set()
        if self.gate is not None and not self.gate.wait(60):
            raise TimeoutError("test gate never opened")
        return self.inner.judge_batch(items)


# -- harness -------------------------------------------------------------------------------------------------
@asynccontextmanager
async def running_evaluator(factory: Callable[[], Any], storage: Path, flags: Sequence[str] = (), *,
                            wait_ready: bool = True,
                            on_exit: Callable[[], object] | None = None) -> AsyncIterator[Running]:
    """`cli.serve` on 127.0.0.1:0 with `factory` as the judge loader; drains and stops on exit
    (`on_exit` runs first, e.g. to open a load gate a failed test left closed)."""
    args = build_parser().parse_args(["--bind", "127.0.0.1:0", "--storage-root", str(storage),
                                      "--grace-s", "10", *flags])
    listening: asyncio.Future[ServiceHost] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(args, factory, on_listening=listening.set_result))
    await asyncio.wait({listening, task}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    run = Running(listening.result(), task)
    try:
        if wait_ready:
            await wait_for_health(run.target, "readiness", SERVING)
        yield run
    finally:
        if on_exit is not None:
            on_exit()
        await run.host.drain()
        await asyncio.wait_for(task, 30)


def request(video: str = "jetski.mp4", tasks: Sequence[int] = (SA, PC), request_id: str = "r1",
            text: str | None = None, **kwargs: Any) -> evaluator_pb2.EvaluateRequest:
    caption = CAPTIONS.get(video, "A ball rolls.") if text is None else text
    queries = [evaluator_pb2.JudgeQuery(task=t, text=RULE if t == RULE_T and text is None else caption)
               for t in tasks]
    return evaluator_pb2.EvaluateRequest(request_id=request_id, video_uri=f"videos/{video}", queries=queries,
                                         **kwargs)


async def evaluate(channel: aio.Channel, req: evaluator_pb2.EvaluateRequest, **kwargs: Any,
                   ) -> tuple[list[evaluator_pb2.EvaluateEvent], evaluator_pb2.EvaluateResult]:
    """All events of one Evaluate call and its result (exactly one result, last)."""
    events = [ev async for ev in evaluator_pb2_grpc.EvaluatorServiceStub(channel).Evaluate(req, **kwargs)]
    results = [ev for ev in events if ev.WhichOneof("event") == "result"]
    assert len(results) == 1 and events[-1] is results[0], events
    assert all(ev.request_id == req.request_id for ev in events)
    return events, results[0].result


async def evaluate_code(channel: aio.Channel, req: evaluator_pb2.EvaluateRequest, **kwargs: Any,
                        ) -> tuple[grpc.StatusCode, str]:
    """Status of an Evaluate call expected to fail; asserts that no result (no score) came before it."""
    events = []
    try:
        async for ev in evaluator_pb2_grpc.EvaluatorServiceStub(channel).Evaluate(req, **kwargs):
            events.append(ev)
    except grpc.aio.AioRpcError as e:
        assert not [ev for ev in events if ev.WhichOneof("event") == "result"], "a score came with an error"
        return e.code(), e.details() or ""
    return grpc.StatusCode.OK, ""


def direct(judge: MplugOwlJudge, storage: Path, req: evaluator_pb2.EvaluateRequest) -> JudgeOutcome:
    """The same request as a direct batch-of-one judge call."""
    names = {t.wire: t.name for t in judge_tasks.tasks()}
    queries = [JudgeQuery(names[q.task], q.text) for q in req.queries]
    return judge.judge(str(storage / req.video_uri), queries)


def assert_same(result: evaluator_pb2.EvaluateResult, expected: JudgeOutcome) -> None:
    """The service adds nothing: task, score, raw text, parse status and frames equal the direct call."""
    names = {t.wire: t.name for t in judge_tasks.tasks()}
    parse = {v: k for k, v in evaluator_pb2.ParseStatus.items()}
    assert list(result.frame_indices) == expected.frame_indices
    assert len(result.answers) == len(expected.answers)
    for got, want in zip(result.answers, expected.answers, strict=True):
        assert names[got.task] == want.task
        assert got.raw_text == want.raw_text
        assert parse[got.parse_status] == f"PARSE_STATUS_{want.parse_status.upper()}"
        if want.score is None:
            assert not got.HasField("score")
        elif judge_tasks.task(want.task).generative:
            assert got.HasField("score") and got.score == want.score
        else:  # a probability: batch padding may move the last float bits
            assert got.HasField("score") and got.score == pytest.approx(want.score, abs=1e-6)


# -- health and info -----------------------------------------------------------------------------------------
def test_health_not_serving_while_loading_then_serving(tiny_judge: MplugOwlJudge, storage: Path) -> None:
    gate = threading.Event()

    def factory() -> MplugOwlJudge:
        if not gate.wait(60):
            raise TimeoutError("load gate never opened")
        return tiny_judge

    async def main() -> None:
        async with running_evaluator(factory, storage, wait_ready=False, on_exit=gate.set) as run:
            for service in ("readiness", SERVICE_NAME):
                assert await health_status(run.target, service) == NOT_SERVING
            assert await health_status(run.target, "") == SERVING  # liveness while the judge loads
            async with run.channel() as ch:
                code, details = await evaluate_code(ch, request())
                assert code == grpc.StatusCode.UNAVAILABLE and "loading" in details
                with pytest.raises(grpc.aio.AioRpcError) as exc:
                    await evaluator_pb2_grpc.EvaluatorServiceStub(ch).GetInfo(common_pb2.GetInfoRequest())
                assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
                gate.set()
                await wait_for_health(run.target, "readiness", SERVING)
                assert await health_status(run.target, SERVICE_NAME) == SERVING
                _, res = await evaluate(ch, request())
                assert len(res.answers) == 2

    asyncio.run(main())


def test_get_info_tasks_capacity_model_runtime(tiny_judge: MplugOwlJudge, storage: Path) -> None:
    async def main() -> None:
        async with (
            running_evaluator(lambda: tiny_judge, storage, ["--max-batch", "3"]) as run,
            run.channel() as ch,
        ):
            info = await evaluator_pb2_grpc.EvaluatorServiceStub(ch).GetInfo(common_pb2.GetInfoRequest())
        assert info.capacity == 3
        assert list(info.tasks) == [SA, PC, RULE_T, VC_SA, VC_PC]
        assert (info.model.preset, info.model.model_id, info.model.dtype) == ("tiny", "tiny", "float32")
        assert info.runtime.device == "cpu" and info.runtime.hostname
        assert "torch" in info.runtime.library_versions

    asyncio.run(main())


# -- answers -------------------------------------------------------------------------------------------------
def test_evaluate_equals_direct_judge_and_shares_one_decode(
    tiny_judge: MplugOwlJudge, storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes: list[str] = []
    visions: list[int] = []
    real_decode, real_encode = prefetch.decode_video, tiny_judge.model.encode_video
    req = request("streamer.mp4", (SA, PC, RULE_T, VC_SA, VC_PC), request_id="all-tasks")
    expected = direct(tiny_judge, storage, req)  # before counting: the direct call decodes too

    def counting_decode(path: Any, *a: Any, **kw: Any) -> Any:
        decodes.append(Path(path).name)
        return real_decode(path, *a, **kw)

    def counting_encode(pixels: torch.Tensor) -> torch.Tensor:
        visions.append(pixels.shape[0])
        return real_encode(pixels)

    monkeypatch.setattr(prefetch, "decode_video", counting_decode)
    monkeypatch.setattr(tiny_judge.model, "encode_video", counting_encode)
    recorder = RecordingJudge(tiny_judge)

    async def main() -> None:
        async with running_evaluator(lambda: recorder, storage) as run, run.channel() as ch:
            events, res = await evaluate(ch, req)
        assert events[0].WhichOneof("event") == "progress" and events[0].progress.phase == "queued"
        assert_same(res, expected)
        assert [a.task for a in res.answers] == [SA, PC, RULE_T, VC_SA, VC_PC]
        for a in res.answers[:3]:
            assert a.raw_text and a.parse_status in (evaluator_pb2.PARSE_STATUS_PARSED,
                                                     evaluator_pb2.PARSE_STATUS_DIGIT_FALLBACK,
                                                     evaluator_pb2.PARSE_STATUS_UNPARSEABLE,
                                                     evaluator_pb2.PARSE_STATUS_PARSER_ERROR)
        for a in res.answers[3:]:
            assert a.parse_status == evaluator_pb2.PARSE_STATUS_PROBABILITY and 0.0 <= a.score <= 1.0
        # Five tasks, one decode, one vision pass, one forward; frames and timings once per video.
        assert decodes == ["streamer.mp4"] and visions == [1] and recorder.batches == [["streamer.mp4"]]
        total = expected.total_frames
        assert len(res.frame_indices) == 32 and list(res.frame_indices) == frame_indices(total)
        assert {"decode_s", "vision_s", "generate_s", "videocon_s", "total"} <= set(res.timings_s)
        assert all(v >= 0 for v in res.timings_s.values())
        assert res.model.preset == "tiny" and res.runtime.device == "cpu"

    asyncio.run(main())


def test_pc_needs_no_text_and_sha256_is_checked(tiny_judge: MplugOwlJudge, storage: Path) -> None:
    digest = sha256_file(storage / "videos" / "map.mp4")

    async def main() -> None:
        async with running_evaluator(lambda: tiny_judge, storage) as run, run.channel() as ch:
            req = request("map.mp4", (PC, VC_PC), text="", video_sha256=digest)
            _, res = await evaluate(ch, req)
            assert_same(res, direct(tiny_judge, storage, req))
            code, details = await evaluate_code(ch, request("map.mp4", video_sha256="0" * 64))
            assert code == PRECONDITION and "sha256" in details

    asyncio.run(main())


# -- batching and capacity -----------------------------------------------------------------------------------
async def _queued(stream: Any) -> None:
    """Wait for the call's first event: the servicer has accepted it (it counts against capacity)."""
    first = await stream.read()
    assert first.WhichOneof("event") == "progress" and first.progress.phase == "queued"


async def _rest(stream: Any) -> evaluator_pb2.EvaluateResult:
    """The remaining events of a call started with `read()` (the two read styles may not be mixed)."""
    events = []
    while (ev := await stream.read()) is not aio.EOF:
        events.append(ev)
    assert events and events[-1].WhichOneof("event") == "result"
    return events[-1].result


def test_queued_calls_share_one_forward_and_equal_batch_of_one(tiny_judge: MplugOwlJudge,
                                                               storage: Path) -> None:
    recorder = RecordingJudge(tiny_judge)
    recorder.gate = threading.Event()
    reqs = [
        request("jetski.mp4", (SA, PC), "first"),
        request("map.mp4", (SA, PC, VC_PC), "b1"),
        request("streamer.mp4", (RULE_T, VC_SA), "b2"),
        request("jetski.mp4", (PC,), "b3"),
    ]

    async def main() -> None:
        async with (
            running_evaluator(lambda: recorder, storage, ["--max-batch", "4"]) as run,
            run.channel() as ch,
        ):
            stub = evaluator_pb2_grpc.EvaluatorServiceStub(ch)
            streams = [stub.Evaluate(reqs[0])]
            await _queued(streams[0])
            assert await asyncio.to_thread(recorder.entered.wait, 30)  # the first forward is held
            for req in reqs[1:]:
                streams.append(stub.Evaluate(req))
                await _queued(streams[-1])
            recorder.gate.set()
            results = await asyncio.gather(*(_rest(s) for s in streams))
        # The three calls queued behind the first went through one forward together.
        assert recorder.batches == [["jetski.mp4"], ["map.mp4", "streamer.mp4", "jetski.mp4"]]
        for req, res in zip(reqs, results, strict=True):
            assert_same(res, direct(tiny_judge, storage, req))

    asyncio.run(main())


def test_more_calls_than_capacity_get_resource_exhausted(tiny_judge: MplugOwlJudge, storage: Path) -> None:
    recorder = RecordingJudge(tiny_judge)
    recorder.gate = threading.Event()

    async def main() -> None:
        async with (
            running_evaluator(lambda: recorder, storage, ["--max-batch", "2"]) as run,
            run.channel() as ch,
        ):
            stub = evaluator_pb2_grpc.EvaluatorServiceStub(ch)
            running = stub.Evaluate(request(request_id="a"))
            await _queued(running)
            assert await asyncio.to_thread(recorder.entered.wait, 30)
            queued = stub.Evaluate(request("map.mp4", request_id="b"))
            await _queued(queued)
            code, details = await evaluate_code(ch, request("streamer.mp4", request_id="c"))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "2/2" in details
            recorder.gate.set()
            assert len((await _rest(running)).answers) == 2
            assert len((await _rest(queued)).answers) == 2
            _, res = await evaluate(ch, request("streamer.mp4", request_id="c"))  # room again
            assert len(res.answers) == 2

    asyncio.run(main())


# -- bad input -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("req", "code", "fragment"),
    [
        (request("missing.mp4"), PRECONDITION, "does not exist"),
        (request("corrupt.mp4"), PRECONDITION, "cannot decode"),
        (request("empty.mp4"), PRECONDITION, "empty.mp4"),
        (request("zero_frames.mp4"), PRECONDITION, "zero_frames.mp4"),
        (request(tasks=(evaluator_pb2.JUDGE_TASK_UNSPECIFIED,)), INVALID, "unknown task"),
        (request(tasks=(SA, 42)), INVALID, "unknown task"),
        (request(tasks=()), INVALID, "no queries"),
        (request(tasks=(SA,), text="   "), INVALID, "empty caption"),
        (request(tasks=(RULE_T,), text=""), INVALID, "empty rule"),
        (request(tasks=(VC_SA,), text=""), INVALID, "empty caption"),
        (request(tasks=(SA,), text="a cat <image> jumps"), INVALID, "<image>"),
        (evaluator_pb2.EvaluateRequest(request_id="r1", video_uri="../videos/jetski.mp4",
                                       queries=[evaluator_pb2.JudgeQuery(task=PC)]), INVALID, "storage root"),
        (evaluator_pb2.EvaluateRequest(request_id="r1", video_uri="/etc/passwd",
                                       queries=[evaluator_pb2.JudgeQuery(task=PC)]), INVALID, "relative"),
        (evaluator_pb2.EvaluateRequest(request_id="r1", video_uri="",
                                       queries=[evaluator_pb2.JudgeQuery(task=PC)]), INVALID, "empty"),
    ],
    ids=["missing", "corrupt", "empty-file", "zero-frames", "unspecified-task", "unknown-task", "no-tasks",
         "blank-caption", "empty-rule", "empty-videocon-caption", "image-token", "dotdot", "absolute",
         "empty-uri"],
)
def test_bad_input_is_refused_and_server_keeps_serving(tiny_judge: MplugOwlJudge, storage: Path,
                                                       req: evaluator_pb2.EvaluateRequest,
                                                       code: grpc.StatusCode, fragment: str) -> None:
    async def main() -> None:
        async with running_evaluator(lambda: tiny_judge, storage) as run, run.channel() as ch:
            got, details = await evaluate_code(ch, req)
            assert (got, fragment in details) == (code, True), details
            _, res = await evaluate(ch, request("map.mp4", (PC,)))  # still serving
            assert len(res.answers) == 1

    asyncio.run(main())


# Far over the limits (the cases), each answered INVALID_ARGUMENT naming its limit. The last two fit
# the character limit but not the judge's context: four byte-fallback tokens per character.
OVER_CONTEXT = "\U0001f600" * 1000
OVERSIZED = {
    "1MB-caption": (request(text="a" * 1_000_000), f"the limit is {MAX_JUDGE_TEXT_CHARS}"),
    "30k-caption": (request(text="a ball rolls. " * 2200), f"the limit is {MAX_JUDGE_TEXT_CHARS}"),
    "nul-caption": (request(text="a ball\x00 rolls"), "NUL"),
    "nul-videocon-caption": (request(tasks=(VC_SA,), text="a\x00"), "NUL"),
    "long-rule": (request(tasks=(RULE_T,), text="x" * (MAX_JUDGE_TEXT_CHARS + 1)),
                  f"the limit is {MAX_JUDGE_TEXT_CHARS}"),
    "too-many-queries": (request(tasks=(PC,) * (MAX_JUDGE_QUERIES + 1)), f"the limit is {MAX_JUDGE_QUERIES}"),
    "duplicated-task": (request(tasks=(SA, PC, SA)), "asked twice"),
    "1MB-request-id": (request(request_id="r" * 1_000_000), f"the limit is {MAX_ID_CHARS}"),
    "long-video-uri": (request(video="a" * 5000 + ".mp4"), "the limit is 1024"),
    "bad-sha256": (request(video_sha256="x" * 100_000), "64 lower-case hex"),
    "caption-over-context": (request(tasks=(SA, PC), text=OVER_CONTEXT), "context is 2048 tokens"),
    "rule-over-context": (request(tasks=(PC, RULE_T), text=OVER_CONTEXT), "context is 2048 tokens"),
}


def test_oversized_requests_are_refused_before_any_model_work(tiny_judge: MplugOwlJudge,
                                                               storage: Path) -> None:
    recorder = RecordingJudge(tiny_judge)

    async def main() -> dict[str, tuple[grpc.StatusCode, str]]:
        async with running_evaluator(lambda: recorder, storage) as run, run.channel() as ch:
            got = {name: await evaluate_code(ch, req) for name, (req, _) in OVERSIZED.items()}
            _, res = await evaluate(ch, request("map.mp4", (PC,)))  # still serving
            assert len(res.answers) == 1
        return got

    got = asyncio.run(main())
    wrong = {name: got[name] for name, (_, fragment) in OVERSIZED.items()
             if got[name][0] != INVALID or fragment not in got[name][1] or len(got[name][1]) > 200}
    assert wrong == {}
    assert recorder.batches == [["map.mp4"]]  # no refused call reached the model (nor decoded its video)


def test_caption_fits_the_context_up_to_the_last_token(tiny_judge: MplugOwlJudge) -> None:
    """The AutoEval prompt is never truncated (official `max_length=256` bounds the generated tokens only):
    a caption whose prompt fills the context exactly is accepted, one token more is refused."""
    context = tiny_judge.context_tokens
    assert context == 2048  # the LLaMA-7B value the tiny judge keeps

    unit = " 1"  # digits are split: two tokens per unit
    for task in ("sa", "rule"):
        def tokens(text: str, task: str = task) -> int:
            return len(tiny_judge.tokenizer.encode_generate_prompt(build_prompt(task, text)))

        lo, hi = 1, MAX_JUDGE_TEXT_CHARS // len(unit)  # bisect: the largest repeat count that fits
        assert tokens(unit * lo) <= context < tokens(unit * hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if tokens(unit * mid) <= context else (lo, mid)
        fits, over = unit * lo, unit * hi
        assert context - tokens(unit) < tokens(fits) <= context < tokens(over)
        tiny_judge.validate([JudgeQuery(task, fits)])
        with pytest.raises(UnsupportedPromptError, match=f"context is {context} tokens"):
            tiny_judge.validate([JudgeQuery(task, over)])


def test_long_videocon_caption_is_truncated_as_the_official_dataset_does(tiny_judge: MplugOwlJudge,
                                                                         storage: Path) -> None:
    """VideoCon-Physics feeds 257 tokens whatever the caption (official `MultiModalDataset`): a caption that
    differs only past them gets the same score, while the AutoEval prompt keeps the whole caption."""
    head = "A ball rolls down a long wooden ramp and bounces twice. " * 30
    a, b = request(tasks=(VC_SA,), text=head + "It stops."), request(tasks=(VC_SA,), text=head + "It flies.")
    encoded = tiny_judge.tokenizer.encode_videocon_prompt(build_prompt("videocon_sa", a.queries[0].text))
    assert len(encoded.input_ids) == VIDEOCON_MAX_LENGTH + 1 and encoded.last_position == VIDEOCON_MAX_LENGTH
    tiny_judge.validate([JudgeQuery("sa", head)])  # fits the AutoEval context: scored whole

    async def main() -> tuple[evaluator_pb2.EvaluateResult, evaluator_pb2.EvaluateResult]:
        async with running_evaluator(lambda: tiny_judge, storage) as run, run.channel() as ch:
            return (await evaluate(ch, a))[1], (await evaluate(ch, b))[1]

    res_a, res_b = asyncio.run(main())
    assert res_a.answers[0].score == res_b.answers[0].score
    assert_same(res_a, direct(tiny_judge, storage, a))


def test_task_the_model_does_not_serve_is_invalid(tiny_judge: MplugOwlJudge, storage: Path) -> None:
    autoeval_only = RecordingJudge(tiny_judge, tasks=catalog.judge_spec("videophy_2_auto").tasks)

    async def main() -> None:
        async with running_evaluator(lambda: autoeval_only, storage) as run, run.channel() as ch:
            info = await evaluator_pb2_grpc.EvaluatorServiceStub(ch).GetInfo(common_pb2.GetInfoRequest())
            assert list(info.tasks) == [SA, PC, RULE_T]
            code, details = await evaluate_code(ch, request(tasks=(SA, VC_PC)))
            assert code == INVALID and "not served" in details
        assert autoeval_only.batches == []  # refused before any model work

    asyncio.run(main())


def test_bad_video_in_a_batch_costs_only_that_call(tiny_judge: MplugOwlJudge, storage: Path) -> None:
    recorder = RecordingJudge(tiny_judge)
    recorder.gate = threading.Event()
    good = [request("map.mp4", (SA,), "good1"), request("streamer.mp4", (PC, VC_PC), "good2")]

    async def main() -> None:
        async with (
            running_evaluator(lambda: recorder, storage, ["--max-batch", "4"]) as run,
            run.channel() as ch,
        ):
            stub = evaluator_pb2_grpc.EvaluatorServiceStub(ch)
            first = stub.Evaluate(request("jetski.mp4", (PC,), "first"))
            await _queued(first)
            assert await asyncio.to_thread(recorder.entered.wait, 30)
            bad = stub.Evaluate(request("corrupt.mp4", (SA,), "bad"))
            await _queued(bad)
            streams = []
            for req in good:
                streams.append(stub.Evaluate(req))
                await _queued(streams[-1])
            recorder.gate.set()
            await _rest(first)
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await _rest(bad)
            assert exc.value.code() == PRECONDITION
            results = [await _rest(s) for s in streams]
        assert recorder.batches[1] == ["corrupt.mp4", "map.mp4", "streamer.mp4"]  # the batched try
        for req, res in zip(good, results, strict=True):
            assert_same(res, direct(tiny_judge, storage, req))

    asyncio.run(main())


def test_error_mapping_of_judge_input_errors() -> None:
    from videophy_bench.common.errors import FailedPrecondition, InvalidRequest
    from videophy_bench.evaluator.errors import EmptyTextError, UnsupportedPromptError, VideoNotFoundError

    for exc in (VideoNotFoundError("x"), VideoDecodeError("x"), EmptyVideoError("x")):
        assert isinstance(to_service_error(exc), FailedPrecondition)
    for exc in (EmptyTextError("x"), UnsupportedPromptError("x")):
        assert isinstance(to_service_error(exc), InvalidRequest)


# -- token ---------------------------------------------------------------------------------------------------
def test_token_refused_and_accepted(tiny_judge: MplugOwlJudge, storage: Path) -> None:
    async def main() -> None:
        async with running_evaluator(lambda: tiny_judge, storage, ["--auth-token", "s3cret"]) as run:
            assert await health_status(run.target, "readiness") == SERVING  # probes need no token
            for config in (ClientConfig(), ClientConfig(token="wrong")):
                async with run.channel(config) as ch:
                    code, _ = await evaluate_code(ch, request(), metadata=config.metadata)
                    assert code == grpc.StatusCode.UNAUTHENTICATED
                    with pytest.raises(grpc.aio.AioRpcError) as exc:
                        await evaluator_pb2_grpc.EvaluatorServiceStub(ch).GetInfo(
                            common_pb2.GetInfoRequest(), metadata=config.metadata)
                    assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
            ok = ClientConfig(token="s3cret")
            async with run.channel(ok) as ch:
                _, res = await evaluate(ch, request(), metadata=ok.metadata)
                assert len(res.answers) == 2
                info = await evaluator_pb2_grpc.EvaluatorServiceStub(ch).GetInfo(
                    common_pb2.GetInfoRequest(), metadata=ok.metadata)
                assert info.capacity == 4

    asyncio.run(main())


def test_the_engine_judges_without_any_grpc(tiny_judge: MplugOwlJudge, storage: Path) -> None:
    """The data plane alone (services/evaluator/engine.py): no server, no channel, the same answers as
    the judge called directly, and its refusals are domain errors."""
    from videophy_bench.common.errors import FailedPrecondition
    from videophy_bench.common.storage import Storage
    from videophy_bench.evaluator.engine import EvaluationEngine, VideoJudgeRequest

    async def main() -> None:
        engine = EvaluationEngine(lambda: tiny_judge, Storage(storage), capacity=2)
        await engine.load()
        queries = [JudgeQuery("sa", CAPTIONS["jetski.mp4"]), JudgeQuery("pc", "")]
        events = [e async for e in engine.evaluate(VideoJudgeRequest("r1", "videos/jetski.mp4", queries))]
        assert events[0] == "queued" and len(events) == 2
        want = tiny_judge.judge(str(storage / "videos" / "jetski.mp4"), queries)
        assert [(a.task, a.score, a.raw_text) for a in events[1].answers] == [
            (a.task, a.score, a.raw_text) for a in want.answers]
        assert "total" in events[1].timings
        with pytest.raises(FailedPrecondition, match="does not exist"):
            [e async for e in engine.evaluate(VideoJudgeRequest("r2", "videos/missing.mp4", queries))]

    asyncio.run(main())
