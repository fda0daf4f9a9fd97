"""A small OpenAI-compatible chat-completions client (stdlib HTTP, tenacity retries).

429, 5xx and connection failures are retried with exponential backoff; any other 4xx raises
`EndpointError` at once with the status and the start of the body (401/403: check --api-key-env).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from tenacity import RetryError, retry_if_exception_type, stop_after_attempt, wait_exponential
from tenacity import Retrying as _Retrying


class EndpointError(RuntimeError):
    """The endpoint refused the request (a 4xx other than 429) or kept failing after all retries."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Transient(RuntimeError):
    """A failure worth retrying (429, 5xx, connection error, timeout)."""


@dataclass
class Exchange:
    request: dict[str, Any]  # the JSON body sent
    raw: str  # the raw response body
    content: str  # choices[0].message.content
    seconds: float
    attempts: int
    finish_reason: str | None = None  # choices[0].finish_reason ("stop", "length", ...), as sent


def chat_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


class ChatClient:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        max_attempts: int = 5,
        backoff_s: float = 1.0,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> None:
        self.url = chat_url(base_url)
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_tokens = max_tokens
        self.temperature = temperature

    def body(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def _post_once(self, data: bytes) -> str:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", errors="replace")[:500]
            if exc.code == 429 or exc.code >= 500:
                raise _Transient(f"HTTP {exc.code} from {self.url}: {text}") from exc
            hint = " (check the API key: --api-key-env)" if exc.code in (401, 403) else ""
            raise EndpointError(
                f"{self.url} refused the request with HTTP {exc.code}{hint}: {text}", exc.code
            ) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise _Transient(f"{self.url}: {exc}") from exc

    def chat(self, messages: list[dict[str, Any]]) -> Exchange:
        body = self.body(messages)
        data = json.dumps(body).encode()
        start = time.monotonic()
        retrying = _Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=60),
            reraise=False,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    raw = self._post_once(data)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise EndpointError(f"gave up after {attempts} attempts: {last}") from last
        try:
            choice = json.loads(raw)["choices"][0]
            content = choice["message"]["content"]
            finish = choice.get("finish_reason")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise EndpointError(f"{self.url}: not a chat-completions answer: {raw[:300]!r}") from exc
        if isinstance(content, list):  # some servers answer with content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return Exchange(body, raw, str(content or ""), time.monotonic() - start, attempts,
                        None if finish is None else str(finish))
