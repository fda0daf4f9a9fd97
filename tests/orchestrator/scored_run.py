"""A real tiny run directory (`run --local --model tiny`: real MP4s, ledger and exports) whose judge
answers are then set to known scores, so the numbers it exports are known: for the tracking and push
tests. The tiny judge's own answers are unparseable; these are what AutoEval could have answered."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cli_process import LONG_S, local_args
from run_dirs import rows

from videophy_bench.orchestrator.export import export_run
from videophy_bench.orchestrator.ledger import Ledger, RunLock, StoredAnswer

# (SA, PC) of the run's items in prompt order: 2 of 4 pass (joint 0.5), mean SA 3.0, mean PC 3.25.
SCORES = ((5.0, 5.0), (4.0, 4.0), (2.0, 3.0), (1.0, 1.0))


def cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`videophy-bench ARGS` as a child process with `env` added to this one's."""
    return subprocess.run([sys.executable, "-m", "videophy_bench.orchestrator.cli", *args],
                          capture_output=True,
                          text=True, timeout=LONG_S, env={**os.environ, **(env or {})})


def tiny_run(run_dir: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = cli(local_args(run_dir, "--limit", str(len(SCORES)), *extra), env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def rescore(run_dir: Path) -> list[dict]:
    """Give the items SCORES (as parsed answers) and rewrite the exports; the items, in prompt order."""
    items = sorted(rows(run_dir), key=lambda r: r["prompt_id"])
    assert len(items) == len(SCORES)
    with RunLock(run_dir):
        led = Ledger(run_dir)
        try:
            for item, (sa, pc) in zip(items, SCORES, strict=True):
                led.record_answers(item["request_id"], [StoredAnswer("sa", sa, "parsed", f"{sa:g}"),
                                                        StoredAnswer("pc", pc, "parsed", f"{pc:g}")],
                                   replica="test", seconds=None, state="judged")
            export_run(run_dir, led.conn)
        finally:
            led.close()
    return items
