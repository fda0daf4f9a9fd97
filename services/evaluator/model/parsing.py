"""The official VideoPhy-2 answer parser (``VIDEOPHY2/inference.py``), with its outcomes made explicit.

Order: lower-case and strip; the first of ``zero..five`` then ``0..5`` found as a *substring* wins;
otherwise all
``str.isdigit()`` characters are concatenated and ``int()`` of them is used when it is in 0..5, else 0.
Quirks kept on purpose: ``"10"`` -> 0 (``"0"`` is tried first), ``"someone"`` -> 1, task ranges are not
enforced.
One input makes the official script crash: a character such as ``'⁷'`` is ``isdigit()`` but ``int()``
rejects it.
That case is reported as ``PARSER_ERROR`` with no score instead of raising.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

_NUM_MAP: tuple[tuple[str, int], ...] = (
    ("zero", 0),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("0", 0),
    ("1", 1),
    ("2", 2),
    ("3", 3),
    ("4", 4),
    ("5", 5),
)


class ParseStatus(enum.StrEnum):
    PARSED = "parsed"  # a substring key matched
    DIGIT_FALLBACK = "digit_fallback"  # concatenated digits gave a value in 0..5
    UNPARSEABLE = "unparseable"  # nothing usable: the official score 0 is kept, flagged
    PARSER_ERROR = "parser_error"  # the official parser raises on this text; no score
    PROBABILITY = "probability"  # VideoCon-Physics: a P(Yes) ratio, nothing parsed


@dataclass(frozen=True)
class ParsedAnswer:
    score: int | None
    status: ParseStatus
    rule: str  # which branch fired, e.g. "substring:four", "fallback_digits:3", "fallback_none"


def parse_answer(text: str) -> ParsedAnswer:
    lowered = text.lower().strip()
    for key, value in _NUM_MAP:
        if key in lowered:
            return ParsedAnswer(value, ParseStatus.PARSED, f"substring:{key}")
    digits = "".join(c for c in lowered if c.isdigit())
    if not digits:
        return ParsedAnswer(0, ParseStatus.UNPARSEABLE, "fallback_none")
    try:
        value = int(digits)
    except ValueError as exc:  # e.g. superscripts: isdigit() but not decimal
        return ParsedAnswer(None, ParseStatus.PARSER_ERROR, f"official_parser_raises: ValueError: {exc}")
    if value in range(6):
        return ParsedAnswer(value, ParseStatus.DIGIT_FALLBACK, f"fallback_digits:{digits}")
    return ParsedAnswer(0, ParseStatus.UNPARSEABLE, "fallback_none")
