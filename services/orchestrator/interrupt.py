"""SIGINT and SIGTERM during `run`: the first drains, a second stops at once; both end in one line.

Kubernetes stops a pod with SIGTERM (so does `timeout`); Ctrl-C is SIGINT. While items are being
dispatched, the first signal calls the drain callback (no new item is taken; work in flight may
finish within the grace period). Before or after dispatch, and on a second signal, the run's task is
cancelled. Either way the run's `finally` stops local children and writes the exports, and the
caller raises `Interrupted` (exit code 128 + the signal's number: 130 SIGINT, 143 SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run stopped on a signal. A KeyboardInterrupt, so a caller's Ctrl-C handling still applies."""

    def __init__(self, signum: int, tally: tuple[int, int] | None) -> None:
        self.signum = signum
        self.code = 128 + signum
        where = f"{tally[0]} of {tally[1]} done" if tally else "before any item was dispatched"
        super().__init__(
            f"interrupted by {signal.Signals(signum).name}: {where}; rerun the same command to resume"
        )


class SignalStop:
    """Signal handling of one run: `install()` in its task, `draining(cb)` around the dispatch."""

    def __init__(self) -> None:
        self.signum: int | None = None  # the first signal received
        self.tally: tuple[int, int] | None = None  # (done, selected), set by the run once known
        self._drain: Callable[[], None] | None = None
        self._task: asyncio.Task | None = None
        self._cancelled = False

    def install(self) -> None:
        """Handle SIGINT/SIGTERM in the running loop (a no-op outside the main thread)."""
        self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
                loop.add_signal_handler(sig, self._on_signal, sig)

    @contextlib.contextmanager
    def draining(self, drain: Callable[[], None]) -> Iterator[None]:
        """Within the block a first signal calls `drain` instead of stopping at once."""
        self._drain = drain
        try:
            yield
        finally:
            self._drain = None

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.signum is None:
            self.signum = signum
            if self._drain is not None:
                log.warning("%s: finishing the work in flight, then stopping (again: stop now)", name)
                self._drain()
                return
        if not self._cancelled and self._task is not None:
            self._cancelled = True  # once: a third signal must not cut the exports short
            log.warning("%s: stopping now", name)
            self._task.cancel()
