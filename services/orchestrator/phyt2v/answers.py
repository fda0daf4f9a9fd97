"""Checks on every LLM/VLM answer before it is used; a refused answer is stored with its reason and
never becomes a caption, a mismatch or a prompt.

Refused: an answer cut off by the server (`finish_reason` other than `stop`: `length` is max_tokens),
an unclosed reasoning block (`<think>` without `</think>`: the answer is still thinking), an answer that
is empty once reasoning is stripped, a refusal ("I'm sorry, ..."), and, for refined prompts, one over
`MAX_REFINED_WORDS` words or over the generator's `MAX_PROMPT_CHARS`.
"""

from __future__ import annotations

import re

from videophy_bench.common.limits import MAX_PROMPT_CHARS, check_text

# The templates ask for at most 120 words; a little slack for models that count differently.
MAX_REFINED_WORDS = 200
ACCEPTED_FINISH_REASONS = (None, "stop", "eos", "end_turn")
_UNCLOSED = re.compile(r"<(think|thinking|reasoning)>", re.I)
_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry,|i apologi[sz]e|i can'?not|i can'?t|i'?m unable|i am unable|"
    r"i'?m not able|i am not able|i won'?t|as an ai\b)",
    re.I,
)


class AnswerRefused(ValueError):
    """An answer that cannot be used; the message is the reason (stored with the answer)."""


def check_answer(step: str, raw: str, cleaned: str, finish_reason: str | None) -> None:
    """Raise `AnswerRefused` unless the answer of `step` (raw text, and after parsing) can be used."""
    if finish_reason not in ACCEPTED_FINISH_REASONS:
        hint = " (cut off at --llm-max-tokens)" if finish_reason == "length" else ""
        raise AnswerRefused(f"{step}: finish_reason={finish_reason}{hint}")
    if _UNCLOSED.search(raw) and not re.search(r"</(think|thinking|reasoning)>", raw, re.I):
        raise AnswerRefused(f"{step}: unclosed reasoning block (<think> without </think>)")
    if not cleaned.strip():
        raise AnswerRefused(f"{step}: empty answer")
    if _REFUSAL.match(cleaned):
        raise AnswerRefused(f"{step}: a refusal: {cleaned[:80]!r}")


def check_refined(prompt: str) -> None:
    """The bounds of a refined prompt beyond `check_answer`: words, and the generator's request limits."""
    words = len(prompt.split())
    if words > MAX_REFINED_WORDS:
        raise AnswerRefused(f"refine: {words} words; at most {MAX_REFINED_WORDS} are accepted")
    reason = check_text("refined prompt", prompt, MAX_PROMPT_CHARS)
    if reason:
        raise AnswerRefused(f"refine: {reason}")

