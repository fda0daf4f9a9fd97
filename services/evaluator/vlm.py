"""The VLM judge (`--model openai-vlm`): the VideoPhy-2 AutoEval rubric asked of any OpenAI-compatible
chat endpoint (e.g. vLLM serving Qwen2.5-VL), answering the AutoEval's own tasks (sa, pc, rule).

Per video: the frames of `frame_rule.FrameRule` are decoded once and sent with every task of the video,
as `image_url` parts before the text (so a server's prefix cache serves the second and third task).
Each task is one chat request: the AutoEval's system sentence as the system message, then the frames and
the AutoEval's question for the task (`model.templates.question`, the official wording) followed by
`ANSWER_FORMAT`, at temperature 0 with the AutoEval's cap of 255 new tokens. The answer is parsed by the
AutoEval's own parser (`model.parsing`), so scores and parse statuses mean the same as the AutoEval's,
and the raw text is kept.

Failures are per video, never the run's: an empty answer, a refusal or garbage is an answer (parsed and
flagged, e.g. `unparseable`); a request the endpoint refuses (4xx) or keeps failing on (connection
refused, 5xx, timeouts, after `max_attempts`) makes that video's outcome a `JudgeEndpointError`.
Answers already received for a video are kept (`_AnswerCache`), so a retried video asks only what failed.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from videophy_bench.common.openai_chat import (
    ChatClient,
    EndpointError,
    EndpointSettings,
    data_url,
    image_part,
)
from videophy_bench.evaluator.catalog import JudgeSpec
from videophy_bench.evaluator.errors import JudgeEndpointError, JudgeError, JudgeInputError
from videophy_bench.evaluator.frame_rule import JPEG_QUALITY, FrameRule
from videophy_bench.evaluator.judge import JudgeAnswer, JudgeInfo, JudgeOutcome, JudgeQuery, check_queries
from videophy_bench.evaluator.model.frames import decode_video
from videophy_bench.evaluator.model.modeling import OFFICIAL_MAX_NEW_TOKENS
from videophy_bench.evaluator.model.parsing import parse_answer
from videophy_bench.evaluator.model.templates import AUTOEVAL_SYSTEM, question

# Chat models explain themselves unless told not to, and the official parser takes the first number
# word anywhere ("someone" scores 1): one fixed line asks for the bare number.
ANSWER_FORMAT = "Answer with the number only."
PROMPT_VERSION = "autoeval-chat-1"  # the message layout above; part of the judge's revision
CACHE_ANSWERS = 4096


@dataclass(frozen=True)
class SampledFrames:
    urls: list[str]  # data URLs, in frame order
    indices: list[int]
    total_frames: int
    size: tuple[int, int]  # (width, height) sent
    seconds: float


def sample_frames(path: str, rule: FrameRule) -> SampledFrames:
    """The frames of `rule` as data URLs; raises a JudgeInputError subclass for a bad video."""
    from PIL import Image

    start = time.perf_counter()
    decoded = decode_video(path, rule.frames, size=None)
    h, w = decoded.frames.shape[1:3]
    scale = min(1.0, rule.max_side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    urls: dict[int, str] = {}  # repeated indices (short videos) are encoded once
    for k, frame in zip(decoded.indices, decoded.frames, strict=True):
        if k not in urls:
            img = Image.fromarray(np.ascontiguousarray(frame))
            if size != (w, h):
                img = img.resize(size, Image.Resampling.BICUBIC)
            urls[k] = data_url(img, rule.image_format, JPEG_QUALITY)
    return SampledFrames([urls[k] for k in decoded.indices], decoded.indices, decoded.total_frames, size,
                         time.perf_counter() - start)


def messages(task: str, text: str, frames: Sequence[str]) -> list[dict[str, Any]]:
    """The chat request of one task: the AutoEval system sentence; the frames, then the rubric."""
    return [
        {"role": "system", "content": AUTOEVAL_SYSTEM},
        {"role": "user", "content": [*(image_part(u) for u in frames),
                                     {"type": "text", "text": question(task, text) + "\n" + ANSWER_FORMAT}]},
    ]


class _AnswerCache:
    """Answers by (video file identity, task, text): a video judged again after one of its requests
    failed asks only the tasks that have no answer yet. Bounded; thread-safe."""

    def __init__(self, size: int = CACHE_ANSWERS) -> None:
        self._items: OrderedDict[tuple, JudgeAnswer] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    @staticmethod
    def key(path: str, q: JudgeQuery) -> tuple:
        st = os.stat(path)
        return (os.path.realpath(path), st.st_size, st.st_mtime_ns, q.task, q.text)

    def get(self, key: tuple) -> JudgeAnswer | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: tuple, answer: JudgeAnswer) -> None:
        with self._lock:
            self._items[key] = answer
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class VlmJudge:
    """A `videophy_bench.evaluator.judge.Judge` over a chat endpoint (see the module docstring)."""

    device_work = False  # network waits, bounded by --llm-timeout-s and --llm-attempts

    def __init__(self, client: ChatClient, info: JudgeInfo, rule: FrameRule, concurrency: int = 8,
                 decode_workers: int = 2) -> None:
        self.client = client
        self.info = info
        self.rule = rule
        self._requests = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="vlm")
        self._decode = ThreadPoolExecutor(max(1, decode_workers), thread_name_prefix="frames")
        self._answers = _AnswerCache()

    def validate(self, queries: Sequence[JudgeQuery]) -> None:
        """Tasks and texts as every judge checks them (no request, no decoding). The endpoint's own
        context bounds the prompt's tokens: a prompt over it is a 4xx for that video."""
        check_queries(queries, self.info)

    def judge(self, video_path: str, queries: list[JudgeQuery]) -> JudgeOutcome:
        out = self.judge_batch([(video_path, queries)])[0]
        if isinstance(out, BaseException):
            raise out
        return out

    def judge_batch(self, items: list[tuple[str, list[JudgeQuery]]]) -> list[JudgeOutcome | JudgeError]:
        for index, (_, queries) in enumerate(items):
            try:
                self.validate(queries)
            except JudgeInputError as exc:
                exc.item_index = index  # type: ignore[attr-defined]
                raise
        paths = [os.fspath(p) for p, _ in items]
        decoding = [self._decode.submit(sample_frames, p, self.rule) for p in paths]
        frames: list[SampledFrames] = []
        for index, fut in enumerate(decoding):
            try:
                frames.append(fut.result())
            except JudgeInputError as exc:  # a bad video: raised before any request, as the contract says
                exc.item_index = index  # type: ignore[attr-defined]
                raise
        asked: list[list[JudgeAnswer | Future]] = []
        for path, (_, queries), f in zip(paths, items, frames, strict=True):
            row: list[JudgeAnswer | Future] = []
            for q in queries:
                key = _AnswerCache.key(path, q)
                row.append(self._answers.get(key) or self._requests.submit(self._ask, key, q, f.urls))
            asked.append(row)
        return [self._outcome(row, f) for row, f in zip(asked, frames, strict=True)]

    def close(self) -> None:
        self._requests.shutdown(wait=False, cancel_futures=True)
        self._decode.shutdown(wait=False, cancel_futures=True)

    # ---- internals ----------------------------------------------------------------------------------------
    def _ask(self, key: tuple, q: JudgeQuery, urls: list[str]) -> tuple[JudgeAnswer, float]:
        try:
            ex = self.client.chat(messages(q.task, q.text, urls), max_tokens=OFFICIAL_MAX_NEW_TOKENS)
        except EndpointError as exc:
            # A refusal (4xx) gets the same answer again; anything else may pass on a later attempt.
            transient = exc.transient or exc.status is None
            raise JudgeEndpointError(f"{q.task}: {self.info.name} endpoint: {exc}",
                                     transient=transient) from exc
        parsed = parse_answer(ex.content)
        score = float(parsed.score) if parsed.score is not None else None
        answer = JudgeAnswer(q.task, score, ex.content, parsed.status.value, parsed.rule)
        self._answers.put(key, answer)
        return answer, ex.seconds

    def _outcome(self, row: list[JudgeAnswer | Future], f: SampledFrames) -> JudgeOutcome | JudgeError:
        answers: list[JudgeAnswer] = []
        seconds = 0.0
        failure: JudgeError | None = None
        for a in row:  # every request is waited for, so a failed video leaves nothing running
            if isinstance(a, JudgeAnswer):
                answers.append(a)
                continue
            try:
                answer, s = a.result()
            except JudgeError as exc:
                failure = failure or exc
                continue
            answers.append(answer)
            seconds = max(seconds, s)
        if failure is not None:
            return failure
        return JudgeOutcome(answers, f.indices, f.total_frames, {"decode_s": f.seconds, "request_s": seconds})


def load_vlm_judge(spec: JudgeSpec, source: str, *, endpoint: EndpointSettings | None = None,
                   frames: FrameRule | None = None, check: bool = True, **_device: Any) -> VlmJudge:
    """The factory of `openai-vlm`: `endpoint` is where to ask (required); `frames` the frame rule.
    The judge's model id is the endpoint's model name (the run records it as its judge model); its
    revision names the protocol (prompt version, frame rule, token cap), so runs that differ in any of
    them never share a run directory. `device`/`dtype` do not apply (the endpoint owns the model)."""
    if endpoint is None:
        raise ValueError(f"judge {spec.name}: give --llm-endpoint URL and --llm-model NAME")
    rule = frames or FrameRule()
    client = ChatClient.from_settings(endpoint, temperature=0.0)
    if check:
        client.check()
    revision = f"{PROMPT_VERSION} {rule.describe()} max_tokens={OFFICIAL_MAX_NEW_TOKENS} temperature=0"
    info = JudgeInfo(name=spec.name, model_id=endpoint.model, revision=revision, tasks=tuple(spec.tasks),
                     dtype="", device="cpu")
    return VlmJudge(client, info, rule, endpoint.concurrency)
