"""Faults under a real CLI process: local children killed (supervised, restarted, or the run ends in one
line), and SIGTERM/SIGINT (drain, exit 143/130, exports, resumable). Every wait is on an event: a
ledger state, a log line or the process's exit."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from cli_process import FAST, LONG_S, SLOW_GENERATION, alive, finished, local_args
from run_dirs import assert_exports_match_ledger, ledger_has, rows, wait_for

from videophy_bench.orchestrator.cli import main


@pytest.mark.slow
def test_killed_local_generator_is_reported_restarted_and_the_run_completes(tmp_path, cli):
    run_dir = tmp_path / "run"
    run = cli(local_args(run_dir, "--limit", "5", "--seeds", "2", *SLOW_GENERATION))
    wait_for(
        lambda: ledger_has(run_dir, lambda r: r["state"] == "judged", at_least=2)
        and ledger_has(run_dir, lambda r: r["state"] == "generating"),
        LONG_S,
        "no judged item with another one generating",
    )
    before = finished(run_dir)
    (victim,) = run.pids("generator-0")
    old_address = f"127.0.0.1:{(run_dir / 'logs' / 'generator-0.port').read_text().strip()}"
    os.kill(victim, signal.SIGKILL)
    assert run.wait() == 0, run.stderr()[-3000:]

    err = run.stderr()
    assert f"generator-0 (pid {victim}) was killed by SIGKILL; restarting it (1 of 3); last lines of" in err
    assert "\n  | " in err  # the tail of the dead child's log follows its warning line
    assert len(run.pids("generator-0")) == 2 and "Traceback" not in err
    led = rows(run_dir)
    assert len(led) == 10 and {r["state"] for r in led} == {"judged"}
    assert {k: v for k, v in finished(run_dir).items() if k in before} == before  # nothing remade
    new_address = f"127.0.0.1:{(run_dir / 'logs' / 'generator-0.port').read_text().strip()}"
    assert new_address != old_address
    assert any(r["gen_replica"] == new_address for r in led)  # the restarted child got work
    assert_exports_match_ledger(run_dir)


@pytest.mark.slow
def test_local_child_that_cannot_come_back_ends_the_run_in_one_line(tmp_path, cli):
    """With one restart allowed, the child is killed twice: the second death (while it starts or
    after) has no restart left, so the run stops with exit 1 and one line."""
    run_dir = tmp_path / "run"
    run = cli(local_args(run_dir, "--limit", "10", "--seeds", "2", "--local-restarts", "1"))
    wait_for(lambda: ledger_has(run_dir, lambda r: r["state"] == "generating"), LONG_S, "no work began")
    os.kill(run.pids("generator-0")[0], signal.SIGKILL)
    wait_for(lambda: len(run.pids("generator-0")) == 2, LONG_S, "generator-0 was not restarted")
    second = run.pids("generator-0")[1]
    evaluator = run.pids("evaluator-0")[0]
    os.kill(second, signal.SIGKILL)
    assert run.wait() == 1

    err = run.stderr()
    log = run_dir / "logs" / "generator-0.log"
    assert re.fullmatch(
        rf"videophy-bench run: generator-0 \(pid {second}\) was killed by SIGKILL"
        rf"( while starting: .*|; no restart left \(1 of 1 used\)) \(log: {re.escape(str(log))}\)",
        run.last_line(),
    ), run.last_line()
    assert err.count("videophy-bench run:") == 1 and "Traceback" not in err
    assert not alive(evaluator)  # the other children were stopped
    assert_exports_match_ledger(run_dir)


def remote_args(storage: Path, gen: str, ev: str, *extra: str) -> list[str]:
    out = str(storage / "runs" / "sig")
    return ["run", "--prompts", "sample", "--storage-root", str(storage), "--out", out,
            "--generators", gen, "--evaluators", ev, *FAST, *extra]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_drains_the_run_and_a_rerun_completes_it(services, cli, sig):
    # The generator makes one video, then holds the next ones at a gate: when the signal comes, one
    # item is judged, the replica's two slots hold one each, and the rest were never taken.
    gate = services.root / "gate"
    gen, ev = services.generator(gate=gate), services.evaluator()
    for s in (gen, ev):
        s.wait_ready()
    args = remote_args(services.root, gen.address, ev.address, "--limit", "6")
    run_dir = services.root / "runs" / "sig"
    run = cli(args)
    wait_for(
        lambda: ledger_has(run_dir, lambda r: r["state"] == "judged")
        and ledger_has(run_dir, lambda r: r["state"] == "generating"),
        LONG_S,
        "no judged item with another one generating",
    )
    run.proc.send_signal(sig)
    wait_for(lambda: "draining: no new items" in run.stderr(), LONG_S, "no drain began")
    gate.touch()  # the calls in flight may finish now, within the drain's grace
    assert run.wait() == 128 + sig

    err = run.stderr()
    assert "Traceback" not in err and err.count("videophy-bench run:") == 1
    line = re.fullmatch(
        rf"videophy-bench run: interrupted by {sig.name}: (\d+) of 6 done; rerun the same command to resume",
        run.last_line(),
    )
    assert line, run.last_line()
    led = rows(run_dir)
    judged = [r for r in led if r["state"] == "judged"]
    assert int(line.group(1)) == len(judged) < 6
    # The drain let the calls in flight finish (default grace 30 s): nothing is left half-made, and
    # nothing was taken after the signal.
    assert not any(r["state"] == "generating" for r in led)
    assert any(r["state"] == "pending" and r["gen_attempts"] == 0 for r in led)
    assert_exports_match_ledger(run_dir)

    before = finished(run_dir)
    assert main(args) == 0
    assert {r["state"] for r in rows(run_dir)} == {"judged"}
    assert {k: v for k, v in finished(run_dir).items() if k in before} == before
    assert_exports_match_ledger(run_dir)


@pytest.mark.parametrize("how", ["second signal", "grace over"])
def test_drain_that_cannot_finish_stops_and_leaves_the_item_resumable(services, cli, how):
    """A generation far longer than the test: the run stops on a second SIGTERM (the grace is
    longer than any deadline here) or when a 1 s grace is over, and the item stays unfinished."""
    gen, ev = services.generator(delay=3600), services.evaluator()
    for s in (gen, ev):
        s.wait_ready()
    grace = "3600" if how == "second signal" else "1"
    run_dir = services.root / "runs" / "sig"
    run = cli(remote_args(services.root, gen.address, ev.address, "--limit", "3", "--drain-grace-s", grace))
    wait_for(lambda: ledger_has(run_dir, lambda r: r["state"] == "generating"), LONG_S, "no work began")
    run.proc.send_signal(signal.SIGTERM)
    if how == "second signal":
        wait_for(lambda: "draining: no new items" in run.stderr(), LONG_S, "no drain began")
        run.proc.send_signal(signal.SIGTERM)
    assert run.wait() == 143

    err = run.stderr()
    assert "Traceback" not in err
    assert run.last_line() == (
        "videophy-bench run: interrupted by SIGTERM: 0 of 3 done; rerun the same command to resume"
    )
    led = rows(run_dir)
    assert {r["state"] for r in led} <= {"pending", "generating"}  # never claimed finished
    assert ledger_has(run_dir, lambda r: r["state"] == "generating")
    assert_exports_match_ledger(run_dir)
