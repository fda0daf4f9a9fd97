"""Fault injection under one real local run (tiny models, the real CLI in a child process): a replica
killed mid-run, the orchestrator killed mid-run, then at rest a corrupt MP4, a missing MP4 and a
corrupt ledger. Asserts that nothing finished is lost or made again, that only the damaged videos are
remade, and that every fault is answered in one line, without a traceback. Every wait is on an event.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_process import LONG_S, SLOW_GENERATION, alive, local_args
from run_dirs import assert_exports_match_ledger, ledger_has, rows, wait_for

N_ITEMS = 12  # 6 prompts x 2 seeds


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "videophy_bench.orchestrator.cli", *args],
        capture_output=True, text=True, timeout=LONG_S,
    )


def _made(run_dir: Path) -> dict[str, tuple]:
    """Every item with a video: its sha256 and the file's identity. A remade video is a new file (the
    generator writes atomically: a new inode); the ledger's own timestamps do not survive a rebuild."""
    out = {}
    for r in rows(run_dir):
        if r["sha256"]:
            st = (run_dir / r["video_uri"]).stat()
            out[r["request_id"]] = (r["sha256"], st.st_ino, st.st_mtime_ns)
    return out


def _damage_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_killed_replica_killed_orchestrator_corrupt_videos_and_ledger_lose_and_remake_nothing(tmp_path, cli):
    run_dir = tmp_path / "run"
    args = local_args(run_dir, "--limit", "6", "--seeds", "2", *SLOW_GENERATION)

    # 1. A generator replica dies mid-run: the supervisor restarts it and the run goes on.
    run = cli(args)
    wait_for(
        lambda: ledger_has(run_dir, lambda r: r["state"] == "judged", at_least=2)
        and ledger_has(run_dir, lambda r: r["state"] == "generating"),
        LONG_S, "no judged item with another one generating",
    )
    os.kill(run.pids("generator-0")[0], signal.SIGKILL)
    wait_for(lambda: len(run.pids("generator-0")) == 2, LONG_S, "generator-0 was not restarted")

    # 2. The orchestrator itself is killed mid-run (its children die with it).
    wait_for(lambda: ledger_has(run_dir, lambda r: r["state"] == "judged", at_least=4), LONG_S,
             "the restarted generator made nothing")
    children = [*run.pids("generator-0"), *run.pids("evaluator-0")]
    os.kill(run.proc.pid, signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    wait_for(lambda: not any(alive(p) for p in children), LONG_S, "local children outlived the orchestrator")
    assert "Traceback" not in run.stderr()
    made = _made(run_dir)
    judged = sorted(r["request_id"] for r in rows(run_dir) if r["state"] == "judged")
    assert len(judged) >= 4

    # 3. At rest: one finished video corrupted, one deleted, and the ledger's header overwritten
    # (the committed rows still in the WAL are lost with it: only the sidecars tell of them).
    by_id = {r["request_id"]: r for r in rows(run_dir)}
    corrupt, missing = judged[0], judged[1]
    _damage_middle(run_dir / by_id[corrupt]["video_uri"])
    (run_dir / by_id[missing]["video_uri"]).unlink()
    ledger = run_dir / "ledger.sqlite"
    with open(ledger, "r+b") as f:
        f.write(b"\xff" * 100)

    # 4. The next run refuses in one line, naming the way out; `recover` rebuilds the ledger.
    refused = _cli(*args)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert f"videophy-bench recover {run_dir}" in refused.stderr
    recovered = _cli("recover", str(run_dir))
    assert recovered.returncode == 0, recovered.stderr
    assert "Traceback" not in recovered.stdout + recovered.stderr
    assert list(run_dir.glob("ledger.sqlite.corrupt-*"))  # the damaged ledger is kept, not deleted

    # 5. The same command finishes the run: every item judged, only the two damaged videos remade.
    final = _cli(*args)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "Traceback" not in final.stderr
    after = {r["request_id"]: r for r in rows(run_dir)}
    assert len(after) == N_ITEMS and {r["state"] for r in after.values()} == {"judged"}
    now = _made(run_dir)
    assert {rid for rid, was in made.items() if now[rid] != was} == {corrupt, missing}  # only those remade
    assert_exports_match_ledger(run_dir)
