"""The real `videophy-bench` CLI as a child process, for tests that kill things under it: its stderr,
the pids of the local children it started, and what a finished item looked like."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from run_dirs import rows

LONG_S = 600.0  # generous deadlines for a busy 2-core machine; a pass never waits for them
FAST = ["--refresh-s", "0.5", "--no-progress"]


class Cli:
    """`python -m videophy_bench.orchestrator.cli ...` in its own session, stderr to a file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "videophy_bench.orchestrator.cli", *args],
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self, child: str) -> list[int]:
        """Pids of every start of a local child ("started generator-0 (pid N, ...")."""
        return [int(p) for p in re.findall(rf"started {re.escape(child)} \(pid (\d+),", self.stderr())]

    def wait(self) -> int:
        return self.proc.wait(timeout=LONG_S)

    def last_line(self) -> str:
        return self.stderr().rstrip("\n").splitlines()[-1]


def local_args(run_dir: Path, *extra: str) -> list[str]:
    return ["run", "--local", "--model", "tiny", "--prompts", "sample", "--out", str(run_dir), *FAST, *extra]


# A tiny video takes ~40 ms in 4 steps, far less than judging it, so a whole run is generated before the
# second item is judged. Tests that kill a generator "while it still has work" give it more steps, so
# generation, not judging, is the slower stage and the moment they wait for surely comes.
SLOW_GENERATION = ("--steps", "200")


def finished(run_dir: Path) -> dict[str, tuple]:
    """Judged items: what must never change again (video hash, when it was made, attempts)."""
    return {
        r["request_id"]: (r["sha256"], r["generated_at"], r["gen_attempts"])
        for r in rows(run_dir)
        if r["state"] == "judged"
    }


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
