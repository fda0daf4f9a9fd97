"""Two real orchestrators on one run directory (a rescheduled Job pod whose predecessor still drains):
the second waits for the lock up to --lock-wait-s and then resumes the run, or exits 75 (retryable) in
one line; a signal during the wait stops it at once. Every wait is on an event (a log line, the
ledger, a process's exit)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from cli_process import FAST, LONG_S, finished
from run_dirs import ledger_has, rows, wait_for

from videophy_bench.orchestrator import exit_codes
from videophy_bench.orchestrator.ledger import RunLock, RunLocked, lock_holder

WAITING = "waiting up to"


def _args(storage: Path, gen: str, ev: str, limit: int, *extra: str) -> list[str]:
    out = str(storage / "runs" / "lk")
    return ["run", "--prompts", "sample", "--storage-root", str(storage), "--out", out,
            "--generators", gen, "--evaluators", ev, "--limit", str(limit), *FAST, *extra]


def test_held_lock_is_refused_after_the_wait(tmp_path: Path) -> None:
    with RunLock(tmp_path, "the first run"):
        with pytest.raises(RunLocked, match=r"\(pid \d+ \(the first run\).*still held after 0.2 s"):
            RunLock(tmp_path).acquire(wait_s=0.2)
        with pytest.raises(RunLocked) as no_wait:
            RunLock(tmp_path).acquire()
        assert "still held" not in str(no_wait.value)
    assert RunLock(tmp_path).acquire(wait_s=0.2).release() is None  # free again: taken at once


def test_second_orchestrator_waits_for_the_first_then_resumes(services, cli, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gen, ev = services.generator(gate=gate), services.evaluator()  # videos after the first wait for gate
    for s in (gen, ev):
        s.wait_ready()
    run_dir = services.root / "runs" / "lk"
    first = cli(_args(services.root, gen.address, ev.address, 2))
    wait_for(
        lambda: ledger_has(run_dir, lambda r: r["state"] == "judged")
        and ledger_has(run_dir, lambda r: r["state"] == "generating"),
        LONG_S,
        "the first run has no judged item with another one generating",
    )
    assert lock_holder(run_dir)

    # Interactive default (--lock-wait-s 0): refused at once, one line, retryable code, nothing touched.
    quick = cli(_args(services.root, gen.address, ev.address, 3))
    assert quick.wait() == exit_codes.LOCKED == 75
    err = quick.stderr()
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"videophy-bench run: run directory {run_dir} is in use by another orchestrator")

    # A short wait: the wait is announced, then the same one error line and 75.
    short = cli(_args(services.root, gen.address, ev.address, 3, "--lock-wait-s", "0.5"))
    assert short.wait() == 75
    assert WAITING in short.stderr() and "still held after 0.5 s" in short.last_line()
    assert short.stderr().count("videophy-bench run:") == 1

    # A pod stopped while it waits exits at once with the signal's code (retried by the Job).
    stopped = cli(_args(services.root, gen.address, ev.address, 3, "--lock-wait-s", str(LONG_S)))
    wait_for(lambda: WAITING in stopped.stderr(), LONG_S, "the stopped orchestrator never waited")
    stopped.proc.send_signal(signal.SIGTERM)
    assert stopped.wait() == exit_codes.SIGTERM == 143
    assert stopped.last_line() == ("videophy-bench run: interrupted by SIGTERM: before any item was "
                                   "dispatched; rerun the same command to resume")

    second = cli(_args(services.root, gen.address, ev.address, 3, "--lock-wait-s", str(LONG_S)))
    wait_for(lambda: WAITING in second.stderr(), LONG_S, "the second orchestrator never waited")
    assert second.proc.poll() is None
    assert len(rows(run_dir)) == 2, "a waiting orchestrator touched the ledger"
    done_by_first = finished(run_dir)

    gate.touch()  # the first run can finish now
    assert first.wait() == 0, first.stderr()[-3000:]
    assert second.wait() == 0, second.stderr()[-3000:]
    assert "is free: taking it over" in second.stderr()
    led = rows(run_dir)
    assert len(led) == 3 and {r["state"] for r in led} == {"judged"}
    # The second run extended the first; nothing the first finished was made again.
    assert {k: v for k, v in finished(run_dir).items() if k in done_by_first} == done_by_first
    assert lock_holder(run_dir) is None
