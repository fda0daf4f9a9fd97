"""A watchdog on the device threads: liveness fails while one step runs past its limit.

A GPU fault (an Xid, a hung NCCL/CUDA call, a wedged driver) blocks the device thread forever while
the event loop keeps answering health checks, so the replica would hold its item until the item's
deadline. The engines run every piece of device work inside `section()` and `beat()` at each step
(a denoising step, a judge batch); `stalled()` names the section whose last beat is older than
`limit_s`, and the health servicer (services/common/server.py) then answers liveness ("") with
NOT_SERVING, so the kubelet restarts the container and the orchestrator re-dispatches the item.

Only liveness turns: readiness keeps following the drain and the load, and a watchdog with
`limit_s <= 0` never reports a stall. The clock is injectable so tests stall a section without waiting.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass
class _Section:
    what: str
    last_beat: float


class DeviceWatchdog:
    def __init__(self, limit_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_s = limit_s
        self.clock = clock
        self._lock = threading.Lock()
        self._active: dict[int, _Section] = {}  # thread id -> its running section

    @contextlib.contextmanager
    def section(self, what: str) -> Iterator[None]:
        """Device work on the calling thread; the time since its start or last `beat()` is watched."""
        key = threading.get_ident()
        with self._lock:
            self._active[key] = _Section(what, self.clock())
        try:
            yield
        finally:
            with self._lock:
                self._active.pop(key, None)

    def watched(self, what: str, fn: Callable[..., object]) -> Callable[..., object]:
        """`fn` wrapped in `section(what)`, for an executor."""

        def run(*args: object) -> object:
            with self.section(what):
                return fn(*args)

        return run

    def beat(self) -> None:
        """The calling thread's section made progress (a step finished)."""
        key = threading.get_ident()
        with self._lock:
            s = self._active.get(key)
            if s is not None:
                s.last_beat = self.clock()

    def stalled(self) -> str | None:
        """Why liveness fails (a section silent for longer than the limit), or None."""
        if self.limit_s <= 0:
            return None
        now = self.clock()
        with self._lock:
            late = [(now - s.last_beat, s.what) for s in self._active.values()
                    if now - s.last_beat > self.limit_s]
        if not late:
            return None
        silent, what = max(late)
        return f"{what} made no progress for {silent:.0f} s (limit {self.limit_s:g} s)"
