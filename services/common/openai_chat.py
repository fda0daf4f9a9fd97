"""One client for OpenAI-compatible chat-completions endpoints (vLLM, SGLang, Ollama, OpenAI), shared by
the PhyT2V refiner (`videophy_bench.orchestrator.phyt2v`) and the VLM judge (`videophy_bench.evaluator.vlm`).

The protocol is the official `openai` client's; retries are tenacity's, bounded by `max_attempts` (the
client's own retries are off so there is one bound): 429, 5xx, timeouts and connection failures are
retried with exponential backoff; any other status raises `EndpointError` at once with the status and
the start of the body (401/403: check the API key). The API key is never logged, recorded in an
exchange, or put on a child process's command line
(`videophy_bench.common.redact.redact_argv`, `API_KEY_ENV`).
Torch-free; `openai` and Pillow are imported only when used.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryError, retry_if_exception_type, stop_after_attempt, wait_exponential
from tenacity import Retrying as _Retrying

from videophy_bench.common.cli_fields import add_cli_args, cli_field, cli_values
from videophy_bench.common.settings import env_name

# Sent when no key is given: the openai client insists on one, servers without auth ignore it (vLLM's
# documented convention). The user's OPENAI_API_KEY is never sent implicitly to another endpoint.
NO_KEY = "EMPTY"
KEY_FLAG = "--llm-api-key"
API_KEY_ENV = env_name(KEY_FLAG)  # VIDEOPHY_LLM_API_KEY: how a child evaluator gets the key
KEY_HINT = " (check the API key: --llm-api-key, --api-key-env)"


class EndpointError(RuntimeError):
    """The endpoint refused the request (`status`: a 4xx other than 429), answered something that is not
    a chat completion, or kept failing after all retries (`transient`: worth trying again later)."""

    def __init__(self, message: str, status: int | None = None, *, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


class _Transient(RuntimeError):
    """A failure worth retrying (429, 5xx, connection error, timeout)."""


@dataclass
class Exchange:
    request: dict[str, Any]  # the JSON body sent
    raw: str  # the raw response body
    content: str  # choices[0].message.content ("" when none; a refusal's text when the server refused)
    seconds: float
    attempts: int
    finish_reason: str | None = None  # choices[0].finish_reason ("stop", "length", ...), as sent


ENDPOINT = "judge over an endpoint (--judge-model openai-vlm; refine's LLM too): the configuration " \
    "records the endpoint's model name, never the URL or the key"


@dataclass(frozen=True)
class EndpointSettings:
    """Where and how to ask: the `--llm-*` flags (declared here once; `add_endpoint_flags`,
    `from_cli_args`). The key has a flag of its own that never shows its value."""

    url: str | None = cli_field("--llm-endpoint", "OpenAI-compatible base URL, e.g. http://host:8000/v1",
                                ENDPOINT, env=True, dest="llm_endpoint", default=None)
    model: str | None = cli_field("--llm-model", "model name the endpoint serves (as vLLM names it)",
                                  ENDPOINT, env=True, dest="llm_model", default=None)
    timeout_s: float = cli_field("--llm-timeout-s", "timeout of one request", ENDPOINT, env=True,
                                 dest="llm_timeout_s", default=300.0, type=float)
    max_attempts: int = cli_field("--llm-attempts", "attempts on 429/5xx/timeouts/no connection", ENDPOINT,
                                  env=True, dest="llm_attempts", default=5, type=int)
    backoff_s: float = cli_field("--llm-backoff-s", "first retry wait (doubles)", ENDPOINT, env=True,
                                 dest="llm_backoff_s", default=1.0, type=float)
    concurrency: int = cli_field("--llm-concurrency", "requests (refine: items) in flight at once", ENDPOINT,
                                 env=True, dest="llm_concurrency", default=8, type=int)
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.concurrency < 1 or self.timeout_s <= 0 or self.backoff_s < 0:
            raise ValueError("--llm-attempts and --llm-concurrency must be >= 1, --llm-timeout-s > 0, "
                             "--llm-backoff-s >= 0")

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace, url: str | None = None,
                      model: str | None = None) -> EndpointSettings | None:
        """The settings the flags give (`url`/`model` override theirs); None without an endpoint.
        Raises ValueError (a usage error) for an unset --api-key-env or a bad number."""
        values = cli_values(cls, args)
        values["url"], values["model"] = url or values["url"], model or values["model"]
        if not values["url"]:
            return None
        if not values["model"]:
            raise ValueError("--llm-endpoint needs --llm-model (the model name the endpoint serves)")
        key = args.llm_api_key or os.environ.get(API_KEY_ENV)
        if args.api_key_env:
            key = os.environ.get(args.api_key_env)
            if not key:
                raise ValueError(f"--api-key-env {args.api_key_env} is not set")
        return cls(**values, api_key=key or None)

    def argv(self) -> list[str]:
        """The flags that give a child service these settings; the key goes through its environment
        (`API_KEY_ENV`), never its command line."""
        return ["--llm-endpoint", str(self.url), "--llm-model", str(self.model), "--llm-timeout-s",
                str(self.timeout_s), "--llm-attempts", str(self.max_attempts), "--llm-backoff-s",
                str(self.backoff_s), "--llm-concurrency", str(self.concurrency)]


def api_base(url: str) -> str:
    """`http://h:8000/v1` from itself or from its `/chat/completions` URL."""
    return url.rstrip("/").removesuffix("/chat/completions")


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
        import openai

        debug = logging.getLogger().isEnabledFor(logging.DEBUG)
        for name in ("httpx2", "httpx"):  # one INFO line per request otherwise (--log-level DEBUG keeps it)
            if not debug and logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)
        self.base_url = api_base(base_url)
        self.url = self.base_url + "/chat/completions"
        self.model = model
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._client = openai.OpenAI(base_url=self.base_url, api_key=api_key or NO_KEY, timeout=timeout_s,
                                     max_retries=0)

    @classmethod
    def from_settings(cls, s: EndpointSettings, **options: Any) -> ChatClient:
        return cls(s.url, s.model, api_key=s.api_key, timeout_s=s.timeout_s, max_attempts=s.max_attempts,
                   backoff_s=s.backoff_s, **options)

    def body(self, messages: list[dict[str, Any]], max_tokens: int | None = None) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens if max_tokens is None else max_tokens,
        }

    def _retrying(self, call, what: str):
        """`call()` with the bounded retries; returns (result, attempts)."""
        import openai

        attempts = 0

        def once():
            nonlocal attempts
            attempts += 1
            try:
                return call()
            except openai.APIStatusError as exc:
                text = exc.response.text[:500]
                code = exc.status_code
                if code == 429 or code >= 500:
                    raise _Transient(f"HTTP {code} from {what}: {text}") from exc
                hint = KEY_HINT if code in (401, 403) else ""
                raise EndpointError(f"{what} refused the request with HTTP {code}{hint}: {text}",
                                    code) from exc
            except openai.APIConnectionError as exc:  # incl. APITimeoutError
                cause = exc.__cause__ or exc
                raise _Transient(f"{what}: {type(exc).__name__}: {cause}") from exc

        retrying = _Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=60),
            reraise=False,
        )
        try:
            return retrying(once), attempts
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise EndpointError(f"gave up after {attempts} attempts: {last}", transient=True) from last

    def chat(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None) -> Exchange:
        body = self.body(messages, max_tokens)
        start = time.monotonic()
        response, attempts = self._retrying(
            lambda: self._client.chat.completions.with_raw_response.create(**body), self.url)
        raw = response.text
        try:
            choice = json.loads(raw)["choices"][0]
            message = choice["message"]
            content = message.get("content")
            finish = choice.get("finish_reason")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise EndpointError(f"{self.url}: not a chat-completions answer: {raw[:300]!r}") from exc
        if isinstance(content, list):  # some servers answer with content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not content and isinstance(message.get("refusal"), str):  # OpenAI's structured refusal
            content = message["refusal"]
        return Exchange(body, raw, str(content or ""), time.monotonic() - start, attempts,
                        None if finish is None else str(finish))

    def served_models(self) -> list[str] | None:
        """Model ids the endpoint lists (GET /models); None when it has no such route (404/405)."""
        try:
            page, _ = self._retrying(lambda: self._client.models.list(), self.base_url + "/models")
        except EndpointError as exc:
            if exc.status in (404, 405):
                return None
            raise
        return [m.id for m in page.data]

    def check(self) -> None:
        """Raise EndpointError (one line) unless the endpoint answers and serves `model`."""
        models = self.served_models()
        if models is not None and self.model not in models:
            raise EndpointError(f"{self.base_url} does not serve model {self.model!r} (it serves "
                                f"{', '.join(models) or 'nothing'}): check --llm-model", 404)


# ---- images ---------------------------------------------------------------------------------------------


def data_url(image: Any, fmt: str = "png", quality: int = 90) -> str:
    """A PIL image or uint8 HxWx3 array as a base64 data URL (PNG lossless; JPEG at `quality`)."""
    from PIL import Image

    img = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buf = io.BytesIO()
    if fmt == "png":
        img.convert("RGB").save(buf, format="PNG", compress_level=1)  # lossless either way; 1 is fast
    else:
        img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode()


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


# ---- flags ------------------------------------------------------------------------------------------------
def add_endpoint_flags(parser: argparse.ArgumentParser,
                       groups: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `--llm-*` flags (each also from VIDEOPHY_*): one spelling for `run`, `refine` and
    `serve evaluator`; returns the argparse groups by title (videophy_bench.common.cli_fields)."""
    groups = add_cli_args(EndpointSettings, parser, groups)
    g = groups[ENDPOINT]
    # default None: the environment is read in from_cli_args, so --help never shows a key
    g.add_argument(KEY_FLAG, default=None, metavar="KEY",
                   help=f"API key of the endpoint; prefer the environment [env {API_KEY_ENV}]")
    g.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="environment variable holding the API key (e.g. OPENAI_API_KEY)")
    return groups
