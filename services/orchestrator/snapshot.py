"""A consistent copy of a run's SQLite ledger, also while an orchestrator writes it.

`python -m videophy_bench.orchestrator.snapshot RUN_DIR OUT_DIR [--live]` writes OUT_DIR/ledger.sqlite, one
self-contained file (no -wal), checked with `PRAGMA quick_check`. Copying ledger.sqlite and its -wal
with `cp`/`tar` while a writer commits can tear them (a checkpoint rewrites pages of the main file
mid-copy), and a WAL database is only coherent on the host of its writer (the -shm index is shared
memory), so:

- `--live` (run beside the writer, in the orchestrator's own pod): `VACUUM INTO` from a read-only
  connection. SQLite runs it inside one read transaction, so the output is the ledger as of one
  commit, and the writer is never blocked.
- without `--live` (the fetch pod, with the videos volume mounted read-only, on any node): only when
  no orchestrator holds the run directory. A shared flock on RUN_DIR/.lock keeps one from starting
  while ledger.sqlite and its -wal (left by a killed run: committed transactions) are copied, then
  the copy is folded into one file in OUT_DIR. If an orchestrator holds the lock, exit LIVE (3) naming
  it: the caller then snapshots with `--live` where that orchestrator runs.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from videophy_bench.common.arguments import Parser
from videophy_bench.orchestrator.ledger import LEDGER_NAME, LedgerCorrupt, connect, shared_lock

LIVE = 3  # exit code: an orchestrator holds the run directory; snapshot with --live beside it
WAL_SUFFIX = "-wal"


class SnapshotError(RuntimeError):
    """The snapshot could not be taken; one line for the user."""


class RunIsLive(SnapshotError):
    def __init__(self, holder: str) -> None:
        super().__init__(f"the run directory is in use by an orchestrator ({holder}); snapshot it with "
                         "--live where that orchestrator runs")
        self.holder = holder


def _vacuum_into(conn: sqlite3.Connection, out_dir: Path) -> Path:
    """VACUUM INTO a temporary name (it refuses an existing file), then move it over OUT_DIR's ledger."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{LEDGER_NAME}.partial"
    tmp.unlink(missing_ok=True)
    conn.execute("VACUUM INTO ?", (str(tmp),))
    dest = out_dir / LEDGER_NAME
    tmp.replace(dest)
    connect(out_dir, readonly=True).close()  # quick_check of the result (LedgerCorrupt otherwise)
    return dest


def snapshot_live(run_dir: Path, out_dir: Path) -> Path:
    """The ledger as of its last commit, read beside a running writer (same host)."""
    conn = connect(run_dir, readonly=True)  # raises LedgerCorrupt / FileNotFoundError
    try:
        return _vacuum_into(conn, out_dir)
    finally:
        conn.close()


def snapshot_idle(run_dir: Path, out_dir: Path) -> Path:
    """The ledger of a run no orchestrator holds, from a possibly read-only directory; RunIsLive if held."""
    src = run_dir / LEDGER_NAME
    if not src.is_file():
        raise FileNotFoundError(f"{run_dir}: no {LEDGER_NAME} (not a run directory?)")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        copy = Path(tmp) / LEDGER_NAME
        with shared_lock(run_dir) as holder:
            if holder is not None:
                raise RunIsLive(holder)
            shutil.copyfile(src, copy)
            wal = src.with_name(LEDGER_NAME + WAL_SUFFIX)
            if wal.is_file():  # committed transactions a killed writer did not checkpoint
                shutil.copyfile(wal, copy.with_name(LEDGER_NAME + WAL_SUFFIX))
        # The copy is ours and writable: opening it replays the WAL (the stale -shm was not copied).
        conn = sqlite3.connect(copy, timeout=30)
        try:
            return _vacuum_into(conn, out_dir)
        finally:
            conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = Parser(prog="python -m videophy_bench.orchestrator.snapshot", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="the run directory holding ledger.sqlite")
    p.add_argument("out_dir", type=Path, help="where ledger.sqlite (the snapshot) is written")
    p.add_argument("--live", action="store_true",
                   help="read beside the running orchestrator (same host) instead of requiring it idle")
    args = p.parse_args(argv)
    try:
        dest = (snapshot_live if args.live else snapshot_idle)(args.run_dir, args.out_dir)
    except RunIsLive as e:
        print(f"live: {e}", file=sys.stderr)
        return LIVE
    except (SnapshotError, LedgerCorrupt, OSError, sqlite3.Error) as e:
        print(f"error: snapshot of {args.run_dir}: {e}", file=sys.stderr)
        return 1
    print(f"snapshot {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
