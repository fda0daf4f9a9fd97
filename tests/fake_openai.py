"""A fake OpenAI-compatible chat-completions server on 127.0.0.1 for the refine tests: real HTTP,
deterministic canned answers per refinement step (either template set), every request recorded;
`fail_next` queues error statuses to answer before the canned ones, and `special` holds answers
(content, finish_reason) for the requests of one step whose user text contains a given string."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from services.orchestrator.phyt2v import templates as T


def step_of(body: dict[str, Any]) -> str:
    msgs = body.get("messages", [])
    system = next((m["content"] for m in msgs if m["role"] == "system"), "")
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


class FakeOpenAI:
    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # every HTTP status answered, in order
        self.fail_next: list[int] = []
        # (step, substring of the user text) -> (content, finish_reason) answered instead of the canned one
        self.special: dict[tuple[str, str], tuple[str, str]] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    status = fake.fail_next.pop(0) if fake.fail_next else 200
                    if status == 200 and fake.api_key and (
                        self.headers.get("Authorization") != f"Bearer {fake.api_key}"
                    ):
                        status = 401
                    fake.statuses.append(status)
                if status != 200:
                    payload = {"error": {"message": f"fake error {status}", "code": status}}
                else:
                    content, finish = fake.answer(body)
                    payload = {
                        "id": "fake",
                        "object": "chat.completion",
                        "model": body.get("model"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                     "finish_reason": finish}],
                    }
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, body: dict[str, Any]) -> tuple[str, str]:
        step, text = step_of(body), user_text(body)
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
