"""`python -m videophy_bench.orchestrator.die_with_parent PARENT_PID CMD...`: exec CMD, killed with
its parent.

Local mode starts its children through this rather than a Popen `preexec_fn`: a `preexec_fn` makes
Popen fork() the orchestrator, whose gRPC threads (busy once the run dispatches) can abort the
forked child before it execs. Without one, Popen uses vfork; the parent-death signal is set here, in
the child, and survives the exec. Standard library only, so it starts fast.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    parent, cmd = int(argv[0]), argv[1:]
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        return 1  # the orchestrator died before the signal was set: nobody to serve
    os.execv(cmd[0], cmd)
    return 1  # not reached: execv replaces this process or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
