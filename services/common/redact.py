"""Secrets out of recorded command lines: a run's manifest keeps each session's argv, and a manifest
goes to trackers and Hub repos, so a value given to a secret-bearing flag is replaced wherever argv is
stored or shown. Flags naming a file or an environment variable (`--auth-token-file`, `--api-key-env`)
hold no secret and are kept."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

MASK = "REDACTED"
_SECRET_FLAG = re.compile(r"^--[\w-]*(token|secret|password|api-key)$")


def redact_argv(argv: Sequence[Any]) -> list[str]:
    """`argv` with the value of every secret flag (`--flag VALUE` or `--flag=VALUE`) replaced by MASK."""
    out: list[str] = []
    hide = False
    for arg in map(str, argv):
        flag, eq, _ = arg.partition("=")
        if hide:
            out.append(MASK)
        elif eq and _SECRET_FLAG.match(flag):
            out.append(f"{flag}={MASK}")
        else:
            out.append(arg)
        hide = not hide and not eq and bool(_SECRET_FLAG.match(arg))
    return out
