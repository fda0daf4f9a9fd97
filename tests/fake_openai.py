"""A fake OpenAI-compatible chat-completions server on 127.0.0.1 for the refine and VLM-judge tests:
real HTTP (POST /v1/chat/completions, GET /v1/models), deterministic canned answers per refinement step
(either template set), every request recorded; `fail_next` queues error statuses to answer before the
canned ones, and `special` holds answers (content, finish_reason) for the requests of one step whose
user text contains a given string.

Judge requests (the AutoEval system sentence) are checked as a VLM server would see them: every
`image_url` part must be a base64 PNG/JPEG data URL that decodes, all of one size, `expected_frames`
of them when set, and each longer side at most `max_side`; a request that fails a check is answered
HTTP 400 with the reason (kept in `problems`). The decoded frames of each judge request are kept in
`judged` (task, question text, frames as uint8 arrays) for the tests to compare with the video;
`in_flight`/`peak_in_flight` count requests answered at once, and a closed `gate` holds them. The
answer is the first `judge_script` entry whose (task, substring of the question) matches, else
`JUDGE_DEFAULTS[task]`."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from videophy_bench.common.video import decode_mp4
from videophy_bench.evaluator.model.templates import AUTOEVAL_SYSTEM
from videophy_bench.orchestrator.phyt2v import templates as T

JUDGE_DEFAULTS = {"sa": "4", "pc": "Five.", "rule": "1"}
_JUDGE_TASKS = (("sa", "Does this video match"), ("pc", "adhere to the physical laws"),
                ("rule", "follow the physical rule"))


def step_of(body: dict[str, Any]) -> str:
    msgs = body.get("messages", [])
    system = next((m["content"] for m in msgs if m["role"] == "system"), "")
    if system == AUTOEVAL_SYSTEM:
        return "judge"
    for t in T.TEMPLATE_SETS.values():
        if system == t.law_system:
            return "law"
        if system == t.mismatch_system:
            return "mismatch"
        if system == t.refine_system:
            return "refine"
    if any(isinstance(m["content"], list) for m in msgs):
        return "caption"
    return "unknown"


def user_text(body: dict[str, Any]) -> str:
    for m in body["messages"]:
        if m["role"] == "user":
            c = m["content"]
            return c if isinstance(c, str) else " ".join(p.get("text", "") for p in c if p["type"] == "text")
    return ""


def answer(body: dict[str, Any]) -> str:
    step = step_of(body)
    digest = hashlib.sha256(user_text(body).encode()).hexdigest()[:8]
    if step == "law":
        return ('Thinking... the ball falls.\n{"main_object": "a ball", '
                '"physical_law": "gravity pulls it down; it bounces with less height each time"}')
    if step == "caption":
        n = sum(1 for p in body["messages"][0]["content"] if p["type"] == "image_url")
        return f"<think>look</think>A blurry shape drifts sideways across {n} frames."
    if step == "mismatch":
        return "Mismatch: the object drifts sideways instead of following the described action."
    if step == "refine":
        return f'Refined prompt: "refined-{digest}: the object moves as described, with weight."'
    return "?"


def official_indices(total: int, n: int) -> list[int]:
    """VIDEOPHY2's get_index, written out again here (not imported) so the judge is checked against it."""
    seg = float(total - 1) / n
    return [int(seg / 2) + int(np.round(seg * i)) for i in range(n)]


def sent_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) a frame must arrive at: aspect kept, shrunk to `max_side`, never enlarged."""
    scale = min(1.0, (max_side or max(width, height)) / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


_DECODED: dict[tuple[str, int], np.ndarray] = {}


def frames_problem(frames: list[np.ndarray], video: Path, max_side: int | None,
                   tol: float = 3.0) -> str | None:
    """Why `frames` are not the official get_index frames of `video` (decoded here by imageio-ffmpeg,
    not by the judge's decord), at the size the rule gives; None when they are."""
    key = (str(video), video.stat().st_mtime_ns)
    if key not in _DECODED:
        _DECODED[key] = decode_mp4(video)[0]
    ours = _DECODED[key]
    want = official_indices(len(ours), len(frames))
    h, w = ours.shape[1:3]
    size = sent_size(w, h, max_side)
    for k, frame in zip(want, frames, strict=True):
        if (frame.shape[1], frame.shape[0]) != size:
            return f"{video.name}: a frame of {frame.shape[1]}x{frame.shape[0]}, expected {size[0]}x{size[1]}"
        ref = ours[k] if size == (w, h) else np.asarray(
            Image.fromarray(ours[k]).resize(size, Image.Resampling.BICUBIC))
        diff = float(np.abs(ref.astype(np.int16) - frame.astype(np.int16)).mean())
        if diff > tol:
            return f"{video.name}: the frame sent for index {k} differs from it (mean abs diff {diff:.1f})"
    return None


def judge_task(text: str) -> str:
    return next((t for t, marker in _JUDGE_TASKS if marker in text), "unknown")


def decode_images(body: dict[str, Any]) -> tuple[list[np.ndarray], list[str]]:
    """The frames of a request's image_url parts, and their formats; raises ValueError on a bad one."""
    frames, formats = [], []
    for m in body["messages"]:
        if not isinstance(m["content"], list):
            continue
        for part in m["content"]:
            if part["type"] != "image_url":
                continue
            head, _, data = part["image_url"]["url"].partition(",")
            if head not in ("data:image/png;base64", "data:image/jpeg;base64"):
                raise ValueError(f"not a base64 PNG/JPEG data URL: {head[:40]!r}")
            img = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
            if img.format.lower() != head[len("data:image/"):-len(";base64")]:
                raise ValueError(f"{head} holds a {img.format}")
            frames.append(np.asarray(img.convert("RGB")))
            formats.append(img.format.lower())
    return frames, formats


class FakeOpenAI:
    def __init__(self, api_key: str | None = None, models: tuple[str, ...] | None = None) -> None:
        self.api_key = api_key
        self.models = models  # what GET /v1/models lists (None: it answers 404)
        self.expected_frames: int | None = None
        self.max_side: int | None = None
        self.problems: list[str] = []
        self.judged: list[tuple[str, str, list[np.ndarray]]] = []
        # (task, substring of the question) -> answer text, (content, finish_reason), (None, raw body),
        # or an HTTP status to answer with every time
        self.judge_script: dict[tuple[str, str], Any] = {}
        # question text -> the video it is about (frames are then compared with it), or None
        self.video_of: Any = None
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # every HTTP status answered, in order
        self.fail_next: list[int] = []
        # (step, substring of the user text) -> (content, finish_reason) answered instead of the canned one
        self.special: dict[tuple[str, str], tuple[str, str]] = {}
        self.lock = threading.Lock()
        # Requests being answered now, the most at once, and a gate that holds them all while closed.
        self.flight = threading.Condition()
        self.in_flight = self.peak_in_flight = 0
        self.gate: threading.Event | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _auth_ok(self) -> bool:
                return not fake.api_key or self.headers.get("Authorization") == f"Bearer {fake.api_key}"

            def _send(self, status: int, payload: Any) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path != "/v1/models" or fake.models is None:  # None: a server without the route
                    return self._send(404, {"error": {"message": "no such route"}})
                if not self._auth_ok():
                    return self._send(401, {"error": {"message": "bad key"}})
                return self._send(200, {"object": "list", "data": [
                    {"id": n, "object": "model", "created": 0, "owned_by": "fake"} for n in fake.models]})

            def do_POST(self) -> None:
                with fake.flight:
                    fake.in_flight += 1
                    fake.peak_in_flight = max(fake.peak_in_flight, fake.in_flight)
                    fake.flight.notify_all()
                try:
                    if fake.gate is not None:
                        fake.gate.wait()
                    self._post()
                finally:
                    with fake.flight:
                        fake.in_flight -= 1

            def _post(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    # headers: the message object, read in any case as HTTP means them
                    fake.requests.append({"path": self.path, "headers": self.headers, "body": body})
                    status = fake.fail_next.pop(0) if fake.fail_next else 200
                    if status == 200 and not self._auth_ok():
                        status = 401
                    fake.statuses.append(status)
                if status == 200 and step_of(body) == "judge":  # frames first: checked and kept
                    problem = fake.check_judge(body)
                    if problem:
                        with fake.lock:
                            fake.problems.append(problem)
                            fake.statuses[-1] = 400
                        return self._send(400, {"error": {"message": problem, "code": 400}})
                    scripted = fake.scripted(body)
                    if isinstance(scripted, int):
                        status = fake.statuses[-1] = scripted
                if status != 200:
                    return self._send(status, {"error": {"message": f"fake error {status}", "code": status}})
                content, finish = fake.answer(body)
                if content is None:  # a raw body (not a chat completion at all)
                    return self._send(200, finish.encode())
                self._send(200, {
                    "id": "fake",
                    "object": "chat.completion",
                    "model": body.get("model"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                 "finish_reason": finish}],
                })

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def scripted(self, body: dict[str, Any]) -> Any:
        text = user_text(body)
        task = judge_task(text)
        with self.lock:
            return next((a for (t, needle), a in self.judge_script.items() if t == task and needle in text),
                        None)

    def check_judge(self, body: dict[str, Any]) -> str | None:
        """Why a VLM server would refuse this judge request (None: it is fine); records its frames."""
        try:
            frames, _ = decode_images(body)
        except (ValueError, OSError) as exc:
            return f"bad image: {exc}"
        if not frames:
            return "no image in the request"
        if len({f.shape for f in frames}) != 1:
            return f"frames of different sizes: {sorted({f.shape for f in frames})}"
        if self.expected_frames is not None and len(frames) != self.expected_frames:
            return f"{len(frames)} frames, expected {self.expected_frames}"
        if self.max_side is not None and max(frames[0].shape[:2]) > self.max_side:
            return f"frame of {frames[0].shape[1]}x{frames[0].shape[0]} over {self.max_side} px"
        text = user_text(body)
        video = self.video_of(text) if self.video_of else None
        if video is not None:
            problem = frames_problem(frames, Path(video), self.max_side)
            if problem:
                return problem
        with self.lock:
            self.judged.append((judge_task(text), text, frames))
        return None

    def answer(self, body: dict[str, Any]) -> tuple[str | None, str]:
        step, text = step_of(body), user_text(body)
        if step == "judge":
            task, scripted = judge_task(text), self.scripted(body)
            if isinstance(scripted, tuple):
                return scripted
            return (JUDGE_DEFAULTS.get(task, "?") if scripted is None else scripted), "stop"
        with self.lock:
            for (s, needle), special in self.special.items():
                if s == step and needle in text:
                    return special
        return answer(body), "stop"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def steps(self) -> list[str]:
        return [step_of(r["body"]) for r in self.requests]

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
