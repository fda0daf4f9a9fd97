"""Text that breaks naive CSV writers and readers, for the round-trip tests of the project's CSVs."""

from __future__ import annotations

import random

# Fragments: line ends, quotes, delimiters, NUL, spaces, words pandas would take for missing, a BOM,
# Unicode line separators, non-UTF-8 input bytes (surrogateescape), a formula, a backslash.
FRAGMENTS: tuple[str, ...] = (
    "\r",
    "\n",
    "\r\n",
    "\n\r",
    '"',
    '""',
    ",",
    "\x00",
    " ",
    "\t",
    "NA",
    "nan",
    "None",
    "null",
    "#",
    "\ufeff",
    "\u2028\x85\x0b\x0c\x1c",
    "=1+2",
    "'",
    "\\",
    "é 漢字 🙂",
    "plain words",
)
# Lone surrogates from decoding the bytes ff, fe and c3 with errors="surrogateescape".
UNDECODABLE: tuple[str, ...] = (b"\xff\xfe".decode("utf-8", "surrogateescape"), "\udcc3")

FIXED: tuple[str, ...] = (
    *FRAGMENTS,
    "a\rb",
    "a\nb",
    "a\r\nb",
    'he said "a, b"\r\n',
    " lead",
    "trail ",
    "  ",
    "nul\x00in\x00side",
    "x" * 300_000,  # longer than csv's default field limit (128 KiB)
)


def nasty_strings(n: int, seed: int = 0, undecodable: bool = True) -> list[str]:
    """The fixed cases, then ``n`` random concatenations of fragments (deterministic for a seed)."""
    rng = random.Random(seed)
    pool = FRAGMENTS + (UNDECODABLE if undecodable else ())
    fixed = FIXED + (tuple(u + " bytes " + u for u in UNDECODABLE) if undecodable else ())
    made = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 8))) for _ in range(n)]
    return [*fixed, *made]
