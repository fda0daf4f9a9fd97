"""The official answer parser, including its quirks and the case where the official code crashes."""

from __future__ import annotations

import pytest

from videophy_bench.evaluator.model.parsing import ParseStatus, parse_answer


@pytest.mark.parametrize(
    ("text", "score", "status"),
    [
        ("4", 4, ParseStatus.PARSED),
        (" Five ", 5, ParseStatus.PARSED),
        ("The score is 3.", 3, ParseStatus.PARSED),
        ("10", 0, ParseStatus.PARSED),  # "0" is tried before "1"
        ("none", 1, ParseStatus.PARSED),  # contains "one"
        ("someone", 1, ParseStatus.PARSED),
        ("two or 5", 2, ParseStatus.PARSED),  # words before digits
        ("zero4", 0, ParseStatus.PARSED),
        ("9", 0, ParseStatus.UNPARSEABLE),  # digits out of range -> official 0
        ("garbage", 0, ParseStatus.UNPARSEABLE),
        ("", 0, ParseStatus.UNPARSEABLE),
        ("٣", 3, ParseStatus.DIGIT_FALLBACK),  # Arabic-Indic three: isdigit, int() accepts it
        ("３", 3, ParseStatus.DIGIT_FALLBACK),  # fullwidth three
        ("٧", 0, ParseStatus.UNPARSEABLE),  # 7 via fallback: out of range
    ],
)
def test_official_parser(text: str, score: int, status: ParseStatus) -> None:
    parsed = parse_answer(text)
    assert (parsed.score, parsed.status) == (score, status)


@pytest.mark.parametrize("text", ["x⁷y", "②", "a ⁷ b ²"])
def test_official_crash_is_flagged_not_raised(text: str) -> None:
    # The official script raises ValueError on int('⁷'); we flag it and keep going without a score.
    with pytest.raises(ValueError):
        int("".join(c for c in text if c.isdigit()))
    parsed = parse_answer(text)
    assert parsed.score is None
    assert parsed.status is ParseStatus.PARSER_ERROR
    assert parsed.rule.startswith("official_parser_raises")
