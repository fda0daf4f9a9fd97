"""Ledger snapshots for `cluster fetch` (services/orchestrator/snapshot.py), against real SQLite writers.

The writer is a separate process that holds the run lock like an orchestrator and commits transactions
into a real ledger (its schema from `ledger.connect`) as fast as it can, with rows big enough that
SQLite checkpoints the WAL into the main file while the snapshot is taken. Every transaction adds one
`meta` row and sets `count` to the number of such rows, so a torn copy shows as a count that does not
match its rows. The test waits for the writer's commits on its stdout, never on time.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from videophy_bench.orchestrator import ledger, snapshot

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534

WRITER = r'''
import os, signal, sys
from pathlib import Path
from videophy_bench.orchestrator import ledger
run_dir, mode = Path(sys.argv[1]), sys.argv[2]
lock = ledger.RunLock(run_dir, "test writer").acquire()
conn = ledger.connect(run_dir)
conn.isolation_level = None
if mode == "die":
    conn.execute("PRAGMA wal_autocheckpoint=0")  # every commit stays in the WAL, as after a crash
stop = int(sys.argv[3]) if len(sys.argv) > 3 else None
n = 0
while stop is None or n < stop:
    n += 1
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO meta VALUES (?, ?)", (f"row{n:08d}", "x" * 3000))
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('count', ?)", (str(n),))
    conn.execute("COMMIT")
    print(n, flush=True)
if mode == "die":
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: committed frames stay in the WAL
'''


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{REPO}"}


@pytest.fixture()
def run_dir() -> Iterator[Path]:
    # Under /tmp with 0755: the read-only checks run as another UID, which must traverse it.
    root = Path(tempfile.mkdtemp(prefix="videophy-snapshot-", dir="/tmp"))
    root.chmod(0o755)
    d = root / "runs" / "r1"
    d.mkdir(parents=True)
    yield d
    shutil.rmtree(root)


def consistent_count(db_dir: Path) -> int:
    """The snapshot's commit count, after checking its rows agree with it (a torn copy would not)."""
    conn = ledger.connect(db_dir, readonly=True)  # quick_check too
    try:
        count = int(conn.execute("SELECT value FROM meta WHERE key = 'count'").fetchone()[0])
        rows = conn.execute("SELECT COUNT(*) FROM meta WHERE key LIKE 'row%'").fetchone()[0]
    finally:
        conn.close()
    assert rows == count
    return count


def snapshot_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "videophy_bench.orchestrator.snapshot", *args], env=env(),
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def snapshot_as(uid: int, *args: str) -> int:
    """snapshot.main in a forked child running as uid (this interpreter lives under /root, which
    another UID cannot execute), the way the fetch pod's UID sees a volume it cannot write."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        rc = 1
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            rc = snapshot.main(list(args))
        finally:
            os._exit(rc)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_live_snapshot_beside_a_committing_writer(run_dir: Path, tmp_path: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir), "forever"], env=env(),
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert writer.stdout is not None
        # Past SQLite's auto-checkpoint (1000 pages of 4 KiB): the main file is being rewritten too.
        while int(writer.stdout.readline()) < 1500:
            pass
        # Without --live the fetch pod refuses: the orchestrator holds the run (and its -shm is local).
        refused = snapshot_cli(str(run_dir), str(tmp_path / "idle"))
        assert refused.returncode == snapshot.LIVE, refused.stderr
        assert "test writer" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
        taken = []
        for i in range(3):  # each one while the writer keeps committing
            out = tmp_path / f"snap{i}"
            proc = snapshot_cli(str(run_dir), str(out), "--live")
            assert proc.returncode == 0, proc.stderr
            assert sorted(p.name for p in out.iterdir()) == [ledger.LEDGER_NAME]  # one file, no -wal
            taken.append(consistent_count(out))
        assert taken[0] >= 1500 and taken == sorted(taken)
    finally:
        writer.kill()
        writer.wait()


def test_idle_snapshot_keeps_a_killed_writers_wal_from_a_read_only_directory(run_dir: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", WRITER, str(run_dir), "die", "200"], env=env(),
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == -signal.SIGKILL
    wal = run_dir / (ledger.LEDGER_NAME + snapshot.WAL_SUFFIX)
    assert wal.stat().st_size > 0, "the committed transactions must still be in the WAL"
    # Reading the main file alone would lose them: not even the schema has reached it.
    main_only = run_dir.parent / "main-only"
    main_only.mkdir()
    shutil.copyfile(run_dir / ledger.LEDGER_NAME, main_only / ledger.LEDGER_NAME)
    conn = sqlite3.connect(main_only / ledger.LEDGER_NAME)
    assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'meta'").fetchone()[0] == 0
    conn.close()
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    out = run_dir.parent / "out"
    out.mkdir()
    os.chown(out, NOBODY, NOBODY)
    if os.geteuid() == 0:  # as the fetch pod sees the volume: not writable (owned by root, 0755/0644)
        assert snapshot_as(NOBODY, str(run_dir), str(out)) == 0
    else:
        taken = snapshot_cli(str(run_dir), str(out))
        assert taken.returncode == 0, taken.stderr
    assert consistent_count(out) == 200
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before, "the run directory is untouched"


def test_the_shared_lock_holds_off_an_orchestrator(run_dir: Path) -> None:
    ledger.RunLock(run_dir).acquire().release()  # the lock file exists, as after any run
    with ledger.shared_lock(run_dir) as holder:
        assert holder is None
        with pytest.raises(ledger.RunLocked):
            ledger.RunLock(run_dir, "late orchestrator").acquire(0)
    ledger.RunLock(run_dir).acquire().release()


def test_not_a_run_directory(run_dir: Path, tmp_path: Path) -> None:
    proc = snapshot_cli(str(run_dir), str(tmp_path / "o"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: snapshot of {run_dir}: {run_dir}: no ledger.sqlite "
                                                "(not a run directory?)"]
