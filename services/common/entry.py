"""What every entry point does the same way: logging set up once, and one line instead of a traceback.

`videophy-bench` (and each command it delegates to) and `python -m videophy_bench.generator|evaluator` run
their body through `guarded`: an unexpected exception is printed as `videophy-bench <cmd>: <message>`
with exit code 1; its traceback is shown only when logging is at DEBUG (`--log-level DEBUG`).
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable

from videophy_bench.common.settings import LOG_FORMAT

RUNTIME_FAILURE = 1
INTERRUPTED = 130


class LogLevelError(ValueError):
    """`--log-level` is not a level `logging` knows."""


# Our own exceptions' module prefix, from this package's name rather than a copy of it.
_OURS = __name__.split(".")[0] + "."

def configure_logging(level: str | int) -> None:
    """The root handler with the project's format; library loggers print through it only."""
    if isinstance(level, str):
        level = level.upper()
        if not isinstance(logging.getLevelName(level), int):
            raise LogLevelError(f"--log-level {level}: not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logging.getLogger().setLevel(level)
    print_library_logs_once()


def print_library_logs_once() -> None:
    """huggingface_hub adds its own stderr handler and still propagates: every warning came out twice.
    (diffusers and transformers already keep theirs to themselves.)"""
    logging.getLogger("huggingface_hub").propagate = False


def one_line(exc: BaseException) -> str:
    """The first non-empty line of the message (the type name when there is none)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def guarded(command: str, body: Callable[[], int]) -> int:
    """Run `body`; an exception it lets out becomes one line on stderr (traceback only at DEBUG)."""
    try:
        return body()
    except KeyboardInterrupt:
        print(f"videophy-bench {command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:
        debug = logging.getLogger().isEnabledFor(logging.DEBUG)
        if debug:
            traceback.print_exc()
        text = one_line(exc)
        if not type(exc).__module__.startswith(_OURS):  # ours are written to be read as they are
            text = f"{type(exc).__name__}: {text}"
            text += "" if debug else " (--log-level DEBUG shows the traceback)"
        print(f"videophy-bench {command}: {text}", file=sys.stderr)
        return RUNTIME_FAILURE
