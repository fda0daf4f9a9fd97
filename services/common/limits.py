"""Bounds on the size and cost of one request, written once for every side that checks them.

The services check them before any model work (a violation is `InvalidRequest`: INVALID_ARGUMENT,
never retried); the orchestrator checks the same bounds when it loads a prompt set, so a CSV that a
service would refuse is refused at load with its line. Token-level bounds (the judge's context, the
generator's text-encoder cap) are checked by the services themselves, with their tokenizers.
"""

from __future__ import annotations

from videophy_bench.common.errors import InvalidRequest

# Generator: one positive or negative prompt. UMT5 reads at most 512 tokens; this cap only bounds
# the cost of tokenizing (real VideoPhy-2 upsampled captions are far below it).
MAX_PROMPT_CHARS = 8_000
# Generator: prompts in one Prepare call (the orchestrator sends batches of 64).
MAX_PREPARE_PROMPTS = 256
# Evaluator: the text of one judge query (a caption or a rule), before tokenizing. As long as a
# generator prompt, so the text a video was made from can also judge it; the binding bound is the
# judge's context (2048 tokens, checked with its tokenizer), this cap only bounds tokenizing.
MAX_JUDGE_TEXT_CHARS = MAX_PROMPT_CHARS
# Evaluator: queries in one Evaluate call (there are five judge tasks).
MAX_JUDGE_QUERIES = 16
# Ids and request ids: file-name-sized.
MAX_ID_CHARS = 200
# Storage-relative paths (video_uri, output_prefix): well under PATH_MAX.
MAX_URI_CHARS = 1_024


def check_text(what: str, text: str, limit: int) -> str | None:
    """None when `text` is within `limit` characters and has no NUL, else the reason, naming the limit."""
    if len(text) > limit:
        return f"{what} has {len(text)} characters; the limit is {limit}"
    if "\x00" in text:
        return f"{what} contains a NUL character"
    return None


def require_texts(*fields: tuple[str, str, int]) -> None:
    """For the services: InvalidRequest naming the first (what, text, limit) that `check_text` refuses."""
    for what, text, limit in fields:
        reason = check_text(what, text, limit)
        if reason:
            raise InvalidRequest(reason)
